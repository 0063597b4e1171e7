# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""The docs' meter table is generated from the meter table."""

import os
import subprocess
import sys
import tempfile

import testtools

from ceilometer_blockacct import docs
from ceilometer_blockacct import meters

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))


class TestDocs(testtools.TestCase):

    def test_readme_table_matches_meter_table(self):
        with open(os.path.join(ROOT, 'README.rst')) as f:
            text = f.read()
        self.assertEqual(docs.render_readme(text), text,
                         'README meter table drifted: run '
                         'ceilometer-blockacct gen-docs')
        for m in meters.METERS:
            self.assertIn('``%s``' % m.name, text)

    def test_missing_markers(self):
        self.assertRaises(ValueError, docs.render_readme, 'no table')

    def test_sample_config_is_generated_from_the_options(self):
        gen = os.path.join(os.path.dirname(sys.executable),
                           'oslo-config-generator')
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, 'sample.conf')
            subprocess.run([gen, '--namespace', 'ceilometer_blockacct',
                            '--wrap-width', '79', '--output-file', out],
                           check=True, capture_output=True)
            with open(out) as f:
                fresh = f.read()
        with open(os.path.join(ROOT, 'etc', 'ceilometer',
                               'blockacct.conf.sample')) as f:
            self.assertEqual(fresh, f.read(),
                             'sample config drifted: run tox -e genconfig')
