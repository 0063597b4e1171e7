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

import importlib.util
import io
import os
import subprocess
import sys
import tempfile
from unittest import mock

import fixtures
import testtools

from ceilometer_blockacct import meters

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))


def _load_tool():
    """tools/meter_table.py, a developer tool outside the package."""
    spec = importlib.util.spec_from_file_location(
        'meter_table', os.path.join(ROOT, 'tools', 'meter_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestDocs(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tool = _load_tool()

    def test_readme_table_matches_meter_table(self):
        with open(os.path.join(ROOT, 'README.rst')) as f:
            text = f.read()
        self.assertEqual(self.tool.render_readme(text), text,
                         'README meter table drifted: run tox -e docs-table')
        for m in meters.METERS:
            self.assertIn('``%s``' % m.name, text)

    def test_missing_markers(self):
        self.assertRaises(ValueError, self.tool.render_readme, 'no table')

    def test_tool_rewrites_only_the_file_it_is_given(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        readme = os.path.join(tmp, 'README.rst')
        marker = self.tool.BEGIN + ' (anything the README says)'
        with open(readme, 'w') as f:
            f.write('Title\n\n%s\n\nold rows\n\n%s\n\ntail\n'
                    % (marker, self.tool.END))
        out = io.StringIO()
        with mock.patch('sys.stdout', out), mock.patch('sys.stderr', out):
            self.assertEqual(1, self.tool.main(['--check', readme]))
            self.assertEqual(0, self.tool.main([readme]))
            self.assertEqual(0, self.tool.main(['--check', readme]))
        with open(readme) as f:
            text = f.read()
        self.assertEqual('Title\n\n%s\n\n%s\n\n%s\n\ntail\n'
                         % (marker, self.tool.meter_table_rst(),
                            self.tool.END), text)
        # The README argument is required: nothing is written by default.
        with mock.patch('sys.stderr', io.StringIO()):
            self.assertRaises(SystemExit, self.tool.main, [])

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
