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
"""The whole system on one machine: ``python -m tools.allinone``.

Runs :class:`~ceilometer_blockacct.tests.functional.fixtures.allinone.
AllInOne` (libvirt + a customer's QEMU guest doing I/O, RabbitMQ,
PostgreSQL + Keystone + Gnocchi, Ceilometer's agents with this plugin,
polling every second) for ``--duration`` seconds, measures metricd's CPU,
prints ``gnocchi measures show`` for the main meters, then the customer's
own view beside the admin's, plots what Gnocchi returns (:mod:`.report`),
and stops everything.  One run at a time per machine
(:data:`LOCK_FILE`); SIGINT/SIGTERM stop everything started.
"""

import argparse
import datetime
import fcntl
import os
import signal
import sys
import time

from ceilometer_blockacct.tests.functional.fixtures import allinone
from ceilometer_blockacct.tests.functional.fixtures import services
from tools.allinone import report

LOCK_FILE = os.environ.get('BLOCKACCT_ALLINONE_LOCK',
                           '/run/lock/blockacct-allinone.lock')
OUTPUT_DIR = '/var/tmp/blockacct-allinone'

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130


class Busy(Exception):
    """Another run holds the lock."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: stop everything and exit."""


class RunLock(object):
    """An exclusive fcntl lock on :data:`LOCK_FILE`, for one run at a time.

    The kernel drops it when the process dies, whatever the way: a stale
    file never blocks the next run.
    """

    def __init__(self, path=None):
        self.path = path or LOCK_FILE
        self._fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors='replace').strip()
            os.close(fd)
            raise Busy('another all-in-one run is up (%s; lock %s): wait '
                       'for it to end, or stop it with Ctrl-C or kill '
                       '<pid>' % (holder or 'pid unknown', self.path)) \
                from None
        os.ftruncate(fd, 0)
        os.write(fd, ('pid %d, started %s' % (
            os.getpid(), time.strftime('%Y-%m-%d %H:%M:%S'))).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _say(text):
    print('all-in-one: %s' % text, flush=True)


# -- the command --------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog='all-in-one',
        description='Run libvirt + a QEMU guest, RabbitMQ, Gnocchi and '
                    "Ceilometer's agents with this plugin on this machine, "
                    'then print and plot what Gnocchi received.')
    parser.add_argument('--duration', type=float, default=240,
                        help='seconds of polling (default: 240)')
    parser.add_argument('--interval', type=int, default=1,
                        help='polling interval, seconds (default: 1)')
    parser.add_argument('--metric-processing-delay', type=int, default=15,
                        help="metricd's delay between passes, seconds "
                             '(default: 15, see doc/all-in-one.rst)')
    parser.add_argument('--metricd-workers', type=int, default=1,
                        help='metricd processing workers (default: 1)')
    parser.add_argument('--auth', choices=('keystone', 'basic'),
                        default='keystone',
                        help='keystone (default): every service '
                             'authenticates with a Keystone of its own, '
                             'the guest belongs to a customer; basic: '
                             "Gnocchi's basic auth, no Keystone")
    parser.add_argument('--panel', action='store_true',
                        help="also start Horizon with the Disk I/O panel "
                             "(doc/panel.rst) on loopback, print its URL "
                             "and the customer's login, and keep "
                             'everything up after the report until Ctrl-C '
                             '(needs --auth keystone)')
    parser.add_argument('--output-dir', default=OUTPUT_DIR,
                        help='where the plot and the logs go (default: '
                             '%(default)s)')
    return parser


_signal_received = []


def _handle_signals():
    def interrupt(signum, frame):
        _signal_received.append(signal.Signals(signum).name)
        # NOTE: once: a second ^C must not break the cleanup under way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def run(args, say=_say):
    """Start, poll for args.duration, report, stop; returns an exit code."""
    stamp = time.strftime('%Y%m%d-%H%M%S')
    out_dir = os.path.join(args.output_dir, stamp)
    os.makedirs(out_dir, exist_ok=True)
    aio = allinone.AllInOne(
        args.interval, args.metric_processing_delay, args.metricd_workers,
        log_dir=os.path.join(out_dir, 'logs'), say=say,
        auth_mode=args.auth)
    started = time.monotonic()
    try:
        aio.start()
    except services.StackStartError as exc:
        say('FAILED to start: %s' % exc)
        say('logs: %s' % os.path.join(out_dir, 'logs'))
        return EXIT_FAILED
    except Exception:
        # NOTE: fixtures stops what had started, then wraps what
        # interrupted setUp in MultipleExceptions (or in a TypeError of its
        # own, when a nested fixture was interrupted).
        if _signal_received:
            raise Interrupted(_signal_received[0]) from None
        raise
    try:
        panel = None
        if args.panel:
            panel = _start_panel(aio, say)
        setup_seconds = time.monotonic() - started
        say('everything is up in %.1f s (%s)' % (setup_seconds, ', '.join(
            '%s %.1f s' % item for item in aio.timings.items())))
        say('guest %s (disks %s), libvirt %s; Gnocchi %s; RabbitMQ %s' % (
            aio.guest.uuid, ', '.join(d.target for d in allinone.DISKS),
            aio.host.uri, aio.stack.url, aio.rabbit.node))
        if aio.customer is not None:
            say('Keystone %s: the guest belongs to project %s (user %s); '
                'project %s owns nothing' % (
                    aio.keystone.auth_url, aio.customer.project_name,
                    aio.customer.username, aio.other.project_name))
        say('polling every %d s for %d s (metric_processing_delay %s s, '
            '%d metricd worker(s)) ...' % (
                args.interval, args.duration, args.metric_processing_delay,
                args.metricd_workers))
        cpu0, wall0 = aio.metricd_cpu_seconds(), time.monotonic()
        deadline = wall0 + args.duration
        while time.monotonic() < deadline:
            time.sleep(min(10, max(0, deadline - time.monotonic())))
            aio.check_alive()
            elapsed = time.monotonic() - wall0
            cpu = aio.metricd_cpu_seconds() - cpu0
            say('%4.0f s: metricd %.0f%% of a core, backlog %d measures' % (
                elapsed, 100 * cpu / elapsed, aio.backlog()))
        cpu = aio.metricd_cpu_seconds() - cpu0
        elapsed = time.monotonic() - wall0
        backlog = aio.backlog()
        say('metricd used %.1f CPU s in %.0f s: %.0f%% of one core; '
            'backlog at the end %d measures' % (
                cpu, elapsed, 100 * cpu / elapsed, backlog))
        for name, lines in (('polling', aio.agents.errors('polling')),
                            ('notification',
                             aio.agents.errors('notification'))):
            if lines:
                say('%d ERROR lines in ceilometer-%s.log, last: %s' % (
                    len(lines), name, lines[-1][:300]))
        # NOTE: stop polling first, so that the read-back sees every
        # measure of the run, processed.
        aio.agents.stop_polling()
        polling_end = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(2)  # the notification agent's batch_timeout is 1 s
        waited = time.monotonic()
        left = aio.wait_processed()
        say('polling stopped; metricd processed the rest in %.1f s%s' % (
            time.monotonic() - waited,
            ' (%d measures still waiting)' % left if left else ''))
        report.print_measures(aio, end=polling_end)
        report.print_customer_view(aio)
        client = aio.stack.client()
        png = os.path.join(out_dir, 'allinone.png')
        report.plot(client, aio, png)
        say('plot: %s' % png)
        if panel is not None:
            _show_panel(aio, panel, say)
            while True:
                # NOTE: until ^C or SIGTERM (Interrupted), which stop
                # everything in the finally below.
                time.sleep(3600)
        return EXIT_OK
    except services.StackStartError as exc:
        say('FAILED: %s' % exc)
        return EXIT_FAILED
    finally:
        say('stopping everything ...')
        stop = time.monotonic()
        aio.cleanUp()
        say('stopped in %.1f s; logs: %s' % (
            time.monotonic() - stop, os.path.join(out_dir, 'logs')))


def _start_panel(aio, say):
    """Horizon with the panel on the all-in-one's Keystone and Gnocchi."""
    from ceilometer_blockacct.tests.functional.fixtures import horizon

    started = time.monotonic()
    panel = aio.useFixture(horizon.Horizon(aio.keystone, aio.stack.region))
    say('Horizon with the Disk I/O panel up in %.1f s: %s'
        % (time.monotonic() - started, panel.url))
    return panel


def _show_panel(aio, panel, say):
    say('Disk I/O panel: %s/project/disk_io/ -- log in (domain Default) as '
        '%s, password %s, to see that customer\'s disks; as %s, password '
        '%s, for a customer who owns nothing; or as admin, password %s, '
        'for Admin > Compute > Disk I/O' % (
            panel.url, aio.customer.username, aio.customer.password,
            aio.other.username, aio.other.password,
            aio.keystone.admin.password))
    say('everything stays up until Ctrl-C')


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.panel and args.auth != 'keystone':
        _parser().error('--panel needs --auth keystone (Horizon logs in '
                        'with Keystone)')
    if os.geteuid() != 0:
        print('all-in-one: run as root (private libvirtd, RabbitMQ, '
              "PostgreSQL's own user)", file=sys.stderr)
        return EXIT_FAILED
    lock = RunLock()
    try:
        lock.acquire()
    except Busy as exc:
        print('all-in-one: %s' % exc, file=sys.stderr)
        return EXIT_BUSY
    _handle_signals()
    try:
        return run(args)
    except Interrupted as exc:
        print('all-in-one: interrupted (%s): everything started was '
              'stopped' % exc, file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        lock.release()


if __name__ == '__main__':
    sys.exit(main())
