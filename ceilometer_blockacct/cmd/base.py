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
"""What every subcommand shares: typed errors, one line each, redacted.

A command raises :class:`CommandError` (or a subclass) for anything the
operator can act on; :class:`OneLineErrors` is the one place that turns it
into one line on stderr and the error's exit code.  Anything else is a bug:
cliff logs it (a traceback with ``--debug``) and exits 1.
"""

import logging
import re

from cliff import command
from cliff import lister

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# The userinfo of a URL ('scheme://user:password@host'): greedy up to the
# last '@' before the path, so a password with a raw '@' goes too.
_USERINFO = re.compile(r'(?<=://)[^/\s?#]*@')
MAX_LINE = 500


def redact(text):
    """``text`` with the credentials of every URL in it replaced."""
    return _USERINFO.sub('***@', text)


def one_line(text):
    """``text`` redacted, on one line, at most :data:`MAX_LINE` long.

    A server's error page (HTML, a stack trace) must not turn the error
    into a screenful.
    """
    text = ' '.join(redact(str(text)).split())
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE - 3] + '...'
    return text


class CommandError(Exception):
    """A failure the operator can act on: one line, an exit code."""

    exit_code = EXIT_FAILED


class RedactingFormatter(logging.Formatter):
    """A formatter that never writes a URL's credentials (tracebacks too)."""

    def format(self, record):
        return redact(super().format(record))


class OneLineErrors(object):
    """Mixin for cliff commands: :class:`CommandError` -> line + exit code."""

    log = logging.getLogger(__name__)

    def run(self, parsed_args):
        try:
            return super().run(parsed_args)
        except CommandError as exc:
            # NOTE: the traceback is for --debug only; the line below says
            # it all.
            if getattr(self.app_args, 'debug', False):
                self.log.debug('%s failed', self.cmd_name, exc_info=True)
            self.app.stderr.write('%s: %s\n' % (self.cmd_name,
                                                one_line(exc)))
            return exc.exit_code


class Command(OneLineErrors, command.Command):
    """A subcommand that prints text and returns an exit code."""


class Lister(OneLineErrors, lister.Lister):
    """A subcommand that prints rows through cliff's formatters."""
