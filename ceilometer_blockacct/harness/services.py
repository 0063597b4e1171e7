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
"""Child services for the harness: start, log, wait, stop, explain.

Every fixture of :mod:`ceilometer_blockacct.harness` that runs processes
(PostgreSQL, Gnocchi, RabbitMQ, Ceilometer's agents, CloudKitty, the
all-in-one) builds on :class:`ServiceFixture`: each child runs in its own
process group with its own log, is stopped at cleanUp, and a part that
cannot start raises :class:`StackStartError` with the end of its log.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import fixtures

# NOTE: derived from the interpreter, not $PATH: the services must be the
# ones installed next to the code under test.
VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))


class StackStartError(Exception):
    """A part of the stack did not start; the message says why."""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tail(path, lines=15):
    try:
        with open(path, errors='replace') as f:
            text = f.read().splitlines()[-lines:]
    except OSError:
        return '(no log at %s)' % path
    return ' | '.join(text) or '(empty log %s)' % path


class Service:
    """One child process with its log file."""

    def __init__(self, name, argv, log_path, **popen_kwargs):
        self.name = name
        self.log_path = log_path
        try:
            with open(log_path, 'ab') as log:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    # NOTE: own process group, so stop() also reaches the
                    # workers uwsgi and metricd fork, and a ^C aimed at the
                    # test runner does not kill the services before cleanup.
                    start_new_session=True, **popen_kwargs)
        except OSError as exc:
            raise StackStartError(
                'cannot start %s: %s' % (name, exc)) from None

    def check_alive(self):
        if self.proc.poll() is not None:
            raise StackStartError('%s exited with %s: %s' % (
                self.name, self.proc.returncode, tail(self.log_path)))

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(self.proc.pid, sig)
            # NOTE: past the timeout, SIGKILL below.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        # NOTE: the leader may be gone while forked workers linger.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait()


def run_once(name, argv, log_path, timeout, **kwargs):
    """Run a one-shot command, raising StackStartError with its log."""
    with open(log_path, 'ab') as log:
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, timeout=timeout,
                                    **kwargs)
        except subprocess.TimeoutExpired:
            raise StackStartError('%s did not finish within %ss: %s' % (
                name, timeout, tail(log_path))) from None
        except OSError as exc:
            raise StackStartError('cannot run %s: %s' % (name, exc)) from None
    if result.returncode != 0:
        raise StackStartError('%s failed with %s: %s' % (
            name, result.returncode, tail(log_path)))


def first_start_error(exc):
    """The StackStartError inside fixtures' MultipleExceptions, if any."""
    if isinstance(exc, StackStartError):
        return exc
    for item in getattr(exc, 'args', ()):
        if isinstance(item, tuple) and len(item) == 3:
            found = first_start_error(item[1])
            if found is not None:
                return found
    return None


class ServiceFixture(fixtures.Fixture):
    """A fixture of child services that scripts can start and stop.

    Subclasses set :attr:`root` (a directory with a ``log`` folder) in
    ``_setUp`` before spawning; :meth:`start` gives scripts the one-line
    reason of a failed start.
    """

    root = None

    def __init__(self):
        super().__init__()
        #: seconds each start step took
        self.timings = {}
        self._services = {}

    def start(self):
        """setUp, raising the StackStartError itself if a part failed.

        On failure everything already started is stopped.
        """
        try:
            self.setUp()
        except Exception as exc:
            # NOTE: fixtures wraps setUp failures in MultipleExceptions
            # (which useFixture and testtools understand, so setUp keeps
            # it); scripts and get_shared_stack want the reason.
            found = first_start_error(exc)
            if found is None or found is exc:
                raise
            raise found from None
        return self

    def __enter__(self):
        return self.start()

    def _make_root(self, name, keep=False):
        """Create :attr:`root` with its ``log`` folder, removed at cleanUp.

        :param keep: leave it behind (``keep_dir``) to read the logs.
        """
        self.root = tempfile.mkdtemp(prefix='blockacct-%s-' % name)
        if not keep:
            self.addCleanup(shutil.rmtree, self.root, True)
        os.mkdir(os.path.join(self.root, 'log'))
        return self.root

    def _log(self, name):
        return os.path.join(self.root, 'log', '%s.log' % name)

    def _step(self, name, func, *args):
        """Run one start step and record its duration in :attr:`timings`."""
        started = time.monotonic()
        result = func(*args)
        self.timings[name] = round(time.monotonic() - started, 2)
        return result

    def _spawn(self, name, argv, log_path=None, **kwargs):
        """Start service ``name``, stopped at cleanUp."""
        service = Service(name, argv, log_path or self._log(name), **kwargs)
        self._services[name] = service
        self.addCleanup(service.stop)
        return service

    def log_tail(self, name, lines=15):
        """Last lines of the log of service ``name``."""
        return tail(self._log(name), lines)

    def check_alive(self):
        """Raise StackStartError if a service of this fixture has died."""
        for service in self._services.values():
            service.check_alive()
