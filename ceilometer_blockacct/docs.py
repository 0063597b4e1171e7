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
"""Documentation generated from the meter table (README's meter section)."""

import re

from ceilometer_blockacct import meters

BEGIN = '.. BEGIN GENERATED METER TABLE (ceilometer-blockacct gen-docs)'
END = '.. END GENERATED METER TABLE'


def meter_table_rst():
    """The meter table as an RST list-table."""
    lines = ['.. list-table::', '   :header-rows: 1', '',
             '   * - meter', '     - type', '     - unit',
             '     - from (QMP field)', '     - archive policy',
             '     - billable', '     - description']
    for m in meters.METERS:
        lines += ['   * - ``%s``' % m.name, '     - %s' % m.type,
                  '     - %s' % m.unit,
                  '     - %s' % ', '.join('``%s``' % f for f in m.sources),
                  '     - ``%s``' % m.archive_policy,
                  '     - %s' % ('yes' if m.billable else 'no'),
                  '     - %s' % m.description]
    return '\n'.join(lines)


def render_readme(text):
    """Return ``text`` with the generated block replaced by the table."""
    pattern = re.compile(re.escape(BEGIN) + '.*?' + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError('README has no generated meter table markers')
    block = '%s\n\n%s\n\n%s' % (BEGIN, meter_table_rst(), END)
    return pattern.sub(lambda _m: block, text)


def gen_docs(argv):
    """``ceilometer-blockacct gen-docs [README]``: rewrite the meter table."""
    path = argv[0] if argv else 'README.rst'
    with open(path) as f:
        text = f.read()
    new = render_readme(text)
    if new != text:
        with open(path, 'w') as f:
            f.write(new)
        print('%s: meter table updated' % path)
    return 0
