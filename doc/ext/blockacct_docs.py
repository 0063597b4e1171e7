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
"""Sphinx directives that generate parts of the docs while building.

``.. blockacct-meter-table::`` is the meter table of
``ceilometer_blockacct/meters.py``, rendered by ``tools/meter_table.py``
(the README's copy is checked against it by a unit test).
``.. blockacct-sample-config::`` runs ``oslo-config-generator`` on the
package's options, as ``tox -e genconfig`` does, and shows its output.
"""

import os
import subprocess
import sys
import tempfile

from docutils import nodes
from docutils.parsers import rst
from docutils.statemachine import StringList

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'ceilometer',
                              'blockacct-config-generator.conf')


class MeterTable(rst.Directive):
    """The meter table, from the meter table."""

    has_content = False

    def run(self):
        from tools import meter_table

        node = nodes.section()
        node.document = self.state.document
        lines = StringList(meter_table.meter_table_rst().splitlines(),
                           source='ceilometer_blockacct/meters.py')
        self.state.nested_parse(lines, self.content_offset, node)
        return node.children


class SampleConfig(rst.Directive):
    """The sample ``[blockacct]`` configuration, generated now."""

    has_content = False

    def run(self):
        generator = os.path.join(os.path.dirname(sys.executable),
                                 'oslo-config-generator')
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, 'blockacct.conf.sample')
            # NOTE: the generator config's output_file is relative to the
            # repository; --output-file overrides it.
            result = subprocess.run(
                [generator, '--config-file', GENERATOR_CONF,
                 '--output-file', out], cwd=ROOT, capture_output=True,
                text=True)
            if result.returncode != 0:
                raise self.severe('oslo-config-generator failed: %s'
                                  % result.stderr.strip())
            with open(out, encoding='utf-8') as f:
                text = f.read()
        block = nodes.literal_block(text, text)
        block['language'] = 'ini'
        return [block]


def setup(app):
    """Register the directives."""
    app.add_directive('blockacct-meter-table', MeterTable)
    app.add_directive('blockacct-sample-config', SampleConfig)
    return {'parallel_read_safe': True, 'parallel_write_safe': True,
            'version': '1'}
