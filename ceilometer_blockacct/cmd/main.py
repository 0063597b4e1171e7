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
"""``ceilometer-blockacct SUBCOMMAND [ARGS]``: one cliff application.

Every subcommand is a cliff command class under this package, registered
in the :data:`NAMESPACE` entry-point group of setup.cfg (the entry point
name is the subcommand).  ``ceilometer-blockacct help`` lists them.
"""

import argparse
import logging
import sys

from cliff import app
from cliff import commandmanager
import pbr.version

from ceilometer_blockacct.cmd import base

NAMESPACE = 'ceilometer_blockacct.cli'
PROG = 'ceilometer-blockacct'

# Console level per -q / (default) / -v / -vv; --debug means -vv.
_CONSOLE_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}


def version():
    """The installed package's version, as pbr computed it."""
    return pbr.version.VersionInfo('ceilometer-blockacct').release_string()


class _OursOnly(logging.Filter):
    """At the default verbosity, libraries' records stay off the console.

    keystoneauth logs every connection retry as a warning and Ceilometer's
    imports warn about eventlet: on the console they would bury the one
    line that says what went wrong.  ``-v`` or ``--debug`` shows them.
    """

    def filter(self, record):
        return record.name.partition('.')[0] in ('ceilometer_blockacct',
                                                 PROG)


class BlockacctApp(app.App):
    """The ``ceilometer-blockacct`` application."""

    NAME = PROG
    LOG = logging.getLogger(PROG)

    def __init__(self, stdin=None, stdout=None, stderr=None):
        super().__init__(
            description=__doc__.splitlines()[0].partition(': ')[2],
            version=version(),
            command_manager=commandmanager.CommandManager(NAMESPACE),
            stdin=stdin, stdout=stdout, stderr=stderr,
            deferred_help=True)
        self._handlers = []

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        # NOTE: the application's parser sees every argument first: with
        # abbreviations, a subcommand's --log would be taken as --log-file.
        parser = super().build_option_parser(
            description, version, argparse_kwargs={'allow_abbrev': False})
        for action in parser._actions:
            if isinstance(action, argparse._VersionAction):
                # cliff names the program after sys.argv[0].
                action.version = '%s %s' % (PROG, version)
        return parser

    def configure_logging(self):
        """cliff's handlers, redacted, at our levels; warnings logged."""
        if self.options.debug:
            self.options.verbose_level = 3
        root = logging.getLogger()
        before = list(root.handlers)
        super().configure_logging()
        self._handlers = [h for h in root.handlers if h not in before]
        console_level = _CONSOLE_LEVELS.get(self.options.verbose_level,
                                            logging.DEBUG)
        for handler in self._handlers:
            if isinstance(handler, logging.FileHandler):
                handler.setFormatter(base.RedactingFormatter(
                    self.LOG_FILE_MESSAGE_FORMAT))
                continue
            handler.setFormatter(base.RedactingFormatter(
                self.CONSOLE_MESSAGE_FORMAT))
            handler.setLevel(console_level)
            if self.options.verbose_level <= 1:
                handler.addFilter(_OursOnly())
        logging.captureWarnings(True)

    def interact(self):
        """No interactive shell: without a subcommand, print the usage."""
        names = sorted(name for name, _ep in self.command_manager
                       if name not in ('complete', 'help'))
        self.stderr.write(
            'usage: %s [--version] [-v | -q] [--debug] SUBCOMMAND [ARGS]\n'
            'subcommands: %s (%s help SUBCOMMAND tells more)\n'
            % (PROG, ', '.join(names), PROG))

    def run(self, argv):
        """Run one subcommand; return its exit code."""
        try:
            result = super().run(argv)
            if self.interactive_mode:
                return base.EXIT_USAGE
            return result
        except SystemExit as exc:
            # NOTE: argparse exits 2 on bad arguments and 0 after --help;
            # cliff's --help before any subcommand exits with no code.
            if exc.code is None:
                return 0
            return exc.code if isinstance(exc.code, int) else base.EXIT_USAGE
        finally:
            # Several runs in one process (tests) must not pile handlers.
            root = logging.getLogger()
            for handler in self._handlers:
                root.removeHandler(handler)
                handler.close()
            self._handlers = []
            logging.captureWarnings(False)


def main(argv=None):
    """Console script ``ceilometer-blockacct``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return BlockacctApp().run(argv)


if __name__ == '__main__':
    sys.exit(main())
