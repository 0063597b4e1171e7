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
"""Why a read gave no reading: typed errors and their one policy table.

Sources raise (or return) these; :data:`POLICY` alone decides the log level
and what the reader does instead.  libvirt errors are typed by
:func:`classify` from their error code and domain, never from message text.
:class:`Reporter` logs each failure once per episode: the first failure of
a subject at the table's level, repeats at DEBUG, the recovery at INFO.
"""

import collections
import errno
import logging

from ceilometer.compute.virt.libvirt import utils as lv_utils
import libvirt

# What the reader does instead of the failed read (the table's fallbacks).
SKIP = 'skip'            # no reading of this VM this cycle
BULK = 'bulk'            # read this VM from libvirt bulk stats (backoff)
BULK_ALL = 'bulk-all'    # QMP is off for the connection (backoff): bulk
RECONNECT = 'reconnect'  # reopen the connection next time; VM skipped

# Scopes given to classify(): who refused, a connection or one domain.
CONNECTION = 'connection'
DOMAIN = 'domain'


class ReadError(Exception):
    """Base of every typed read error; ``str()`` is the log message."""

    what = 'read failed'

    def __init__(self, subject, detail=''):
        self.subject = subject
        self.detail = detail
        tail = ' (%s)' % detail if detail else ''
        super().__init__('%s: %s%s' % (subject, self.what, tail))


class DomainGone(ReadError):
    """The domain stopped or vanished: normal, not an error."""

    what = 'domain is gone (stopped, migrated or undefined)'


class QMPRefused(ReadError):
    """libvirt refused QMP for this one domain (ACL, polkit)."""

    what = 'QMP query refused for this domain (ACL or polkit rule)'


class ConnectionRefused(ReadError):
    """The read-write connection or its QMP access was refused."""

    what = ('libvirt refused the connection or the call (authentication, '
            'socket permissions, ACL, or a read-only connection); see the '
            'docs on permissions')


class ConnectionLost(ReadError):
    """The libvirt connection broke (or could not be opened)."""

    what = 'libvirt connection lost or unreachable; reconnecting next time'


class ReplyMalformed(ReadError):
    """An answer (QMP reply, live XML) that cannot be used at all."""

    what = 'unusable answer'


class ReadHung(ReadError):
    """A call that started and overran its deadline."""

    what = 'did not answer within the deadline'

    def __init__(self, subject, call, deadline):
        self.what = (
            'did not answer %s within %.1f s (hung monitor, held job lock '
            'or stuck daemon): no samples for it this cycle, and it is not '
            'called again until that call returns' % (call, deadline))
        super().__init__(subject)


class StillHung(ReadError):
    """A call that overran earlier still has not returned."""

    what = 'the earlier call still has not returned; skipped'


class Busy(ReadError):
    """libvirt gave up waiting for the domain's job lock."""

    what = 'domain busy (libvirt job lock timed out)'


class LibvirtFailed(ReadError):
    """Any other libvirt error."""

    what = 'libvirt error'


class Unexpected(ReadError):
    """Not a libvirt error at all: a bug (logged with its traceback)."""

    what = 'unexpected error'


Policy = collections.namedtuple('Policy', 'level fallback')

# THE table: every typed error, its log level (first of an episode) and
# what the reader does instead.  Nothing else decides either.
POLICY = {
    DomainGone: Policy(logging.DEBUG, SKIP),
    QMPRefused: Policy(logging.ERROR, BULK),
    ConnectionRefused: Policy(logging.ERROR, BULK_ALL),
    ConnectionLost: Policy(logging.WARNING, RECONNECT),
    ReplyMalformed: Policy(logging.WARNING, SKIP),
    ReadHung: Policy(logging.WARNING, SKIP),
    StillHung: Policy(logging.WARNING, SKIP),
    Busy: Policy(logging.WARNING, SKIP),
    LibvirtFailed: Policy(logging.WARNING, SKIP),
    Unexpected: Policy(logging.ERROR, SKIP),
}

_GONE = frozenset([libvirt.VIR_ERR_NO_DOMAIN,
                   # 'domain is not running'
                   libvirt.VIR_ERR_OPERATION_INVALID])
_AUTH = frozenset([libvirt.VIR_ERR_AUTH_FAILED,
                   libvirt.VIR_ERR_AUTH_CANCELLED,
                   libvirt.VIR_ERR_AUTH_UNAVAILABLE])
# A connection object that was closed under us.
_CLOSED = frozenset([libvirt.VIR_ERR_INVALID_CONN,
                     libvirt.VIR_ERR_NO_CONNECT])


def classify(exc, subject, scope=DOMAIN):
    """The typed error for ``exc`` raised while reading ``subject``.

    :param exc: any exception; a ``libvirtError`` is typed by its code.
    :param subject: what was read (instance uuid, or a label and URI).
    :param scope: :data:`CONNECTION` when opening or listing (a refusal
        concerns every domain), :data:`DOMAIN` for one domain's call.
    """
    if isinstance(exc, ReadError):
        return exc
    if not isinstance(exc, libvirt.libvirtError):
        err = Unexpected(subject, '%s: %s' % (type(exc).__name__, exc))
        # NOTE: keeps the worker thread's traceback for the log line.
        err.__cause__ = exc
        return err
    code = exc.get_error_code()
    detail = exc.get_error_message() or str(exc)
    if code in _GONE:
        return DomainGone(subject, detail)
    if code == libvirt.VIR_ERR_OPERATION_DENIED:
        # NOTE: what a read-only connection answers to any write API,
        # here virDomainQemuMonitorCommand: it concerns every domain.
        return ConnectionRefused(subject, detail)
    if code == libvirt.VIR_ERR_ACCESS_DENIED:
        cls = ConnectionRefused if scope == CONNECTION else QMPRefused
        return cls(subject, detail)
    if code in _AUTH or (code == libvirt.VIR_ERR_SYSTEM_ERROR
                         and exc.get_int1() in (errno.EACCES, errno.EPERM)):
        # The socket's permissions or the daemon's authentication.
        return ConnectionRefused(subject, detail)
    if lv_utils.is_disconnection_exception(exc) or code in _CLOSED:
        return ConnectionLost(subject, detail)
    if code == libvirt.VIR_ERR_OPERATION_TIMEOUT:
        return Busy(subject, detail)
    return LibvirtFailed(subject, detail)


class Reporter:
    """Logs typed errors by :data:`POLICY`, once per episode per subject.

    An episode is a run of failures of one kind for one subject (a VM's QMP
    read, the listing, the bulk call...): its first failure is logged at
    the table's level, repeats at DEBUG, and the first success after it at
    INFO.  Only the thread running the reads uses a Reporter.
    """

    def __init__(self, log):
        self._log = log
        # subject key -> [error class, failures so far]
        self._open = {}

    def failed(self, key, err, extra=''):
        """Log ``err`` (a :class:`ReadError`) and return its Policy."""
        policy = POLICY[type(err)]
        current = self._open.get(key)
        if current is not None and current[0] is type(err):
            current[1] += 1
            self._log.debug('%(err)s%(extra)s [%(n)d times in a row]',
                            {'err': err, 'extra': extra, 'n': current[1]})
            return policy
        self._open[key] = [type(err), 1]
        self._log.log(policy.level, '%(err)s%(extra)s',
                      {'err': err, 'extra': extra},
                      exc_info=(err.__cause__
                                if isinstance(err, Unexpected) else None))
        return policy

    def succeeded(self, key, label):
        """End ``key``'s episode, if any, with one INFO line."""
        current = self._open.pop(key, None)
        if current is not None and POLICY[current[0]].level > logging.DEBUG:
            self._log.info('%(label)s works again after %(n)d failed '
                           'attempt(s) (%(what)s)',
                           {'label': label, 'n': current[1],
                            'what': current[0].__name__})

    def forget(self, keep):
        """Drop the episodes whose key ``keep(key)`` rejects."""
        for key in [k for k in self._open if not keep(k)]:
            del self._open[key]
