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
"""``ceilometer-blockacct SUBCOMMAND [ARGS]``: the console script.

To add a subcommand, add one line to :data:`SUBCOMMANDS`: its name, the
``module:function`` that takes ``argv`` (the arguments after the
subcommand) and returns an exit code, and a one-line help.  Modules are
imported only when their subcommand runs, so a slow import costs nothing to
the others.
"""

import importlib
import sys

SUBCOMMANDS = {
    'gnocchi-setup': ('ceilometer_blockacct.cmd.gnocchi_setup:main',
                      'create or check our Gnocchi archive policies'),
    'gen-resources': ('ceilometer_blockacct.cmd.gnocchi_setup:gen_resources',
                      'write the Gnocchi resources definition file'),
    'gen-docs': ('ceilometer_blockacct.docs:gen_docs',
                 "rewrite the README's meter table from the meter table"),
    'gen-cloudkitty': ('ceilometer_blockacct.cloudkitty:gen_cloudkitty',
                       "write CloudKitty's metrics.yml for the billable "
                       'meters'),
    'show': ('ceilometer_blockacct.cmd.show:main',
             "an iostat-like view of this host's VM disks"),
}


def _usage():
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ['usage: ceilometer-blockacct SUBCOMMAND [-h] [ARGS]', '',
             'subcommands:']
    lines += ['  %-*s  %s' % (width, name, text)
              for name, (_target, text) in sorted(SUBCOMMANDS.items())]
    return '\n'.join(lines)


def main(argv=None):
    """Dispatch to the subcommand named by the first argument."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print('ceilometer-blockacct: unknown subcommand %r\n\n%s'
              % (name, _usage()), file=sys.stderr)
        return 2
    module, _sep, func = SUBCOMMANDS[name][0].partition(':')
    return getattr(importlib.import_module(module), func)(rest)


if __name__ == '__main__':
    sys.exit(main())
