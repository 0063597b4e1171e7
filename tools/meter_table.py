#!/usr/bin/env python3
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
"""The README's meter table, generated from the meter table (developers).

``tox -e docs-table`` rewrites the block between the markers of the
README given on the command line; ``--check`` only says whether it is
current (exit 1 if not).  A unit test runs the same check.  Not part of the
installed product: it writes a file of this repository.
"""

import argparse
import re
import sys

from ceilometer_blockacct import meters

BEGIN = '.. BEGIN GENERATED METER TABLE'
END = '.. END GENERATED METER TABLE'
# The BEGIN line is kept as the README writes it (it may name this tool).
_BLOCK = re.compile('(%s[^\n]*)\n.*?%s' % (re.escape(BEGIN), re.escape(END)),
                    re.S)


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
    """Return ``text`` with the generated block replaced by the table.

    :raises ValueError: if ``text`` has no BEGIN ... END markers.
    """
    if not _BLOCK.search(text):
        raise ValueError('no "%s" ... "%s" markers' % (BEGIN, END))
    table = meter_table_rst()
    return _BLOCK.sub(
        lambda m: '%s\n\n%s\n\n%s' % (m.group(1), table, END), text)


def main(argv=None):
    """Rewrite (or ``--check``) the meter table of one README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('readme', help='the README.rst to update')
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 if the table is stale')
    args = parser.parse_args(argv)
    with open(args.readme, encoding='utf-8') as f:
        text = f.read()
    try:
        new = render_readme(text)
    except ValueError as exc:
        print('%s: %s' % (args.readme, exc), file=sys.stderr)
        return 2
    if new == text:
        print('%s: meter table is current' % args.readme)
        return 0
    if args.check:
        print('%s: meter table is stale: run tox -e docs-table'
              % args.readme, file=sys.stderr)
        return 1
    with open(args.readme, 'w', encoding='utf-8') as f:
        f.write(new)
    print('%s: meter table updated' % args.readme)
    return 0


if __name__ == '__main__':
    sys.exit(main())
