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
"""The whole system on one machine: ``python -m ...harness.allinone``.

:class:`AllInOne` brings up, on loopback only, a private libvirtd with one
kernel-less QEMU (TCG) guest doing a steady, rate-limited disk workload
(reads, writes, IDE flushes, a few invalid and failed requests per round,
libvirt ``<iotune>`` on the boot disk), RabbitMQ, PostgreSQL + Gnocchi
(api + metricd, + the real ``ceilometer-upgrade``), our archive policies
through ``ceilometer-blockacct gnocchi-setup``, and the real
``ceilometer-polling`` (compute namespace, ``libvirt_metadata``
discovery) and ``ceilometer-agent-notification`` (gnocchi publisher with
our resources file) at a 1 s polling interval.

:func:`main` runs it for ``--duration`` seconds, measures metricd's CPU,
prints ``gnocchi measures show`` for the main meters at 1 s and 1 min,
plots bytes/s, average latency and queue depth per operation from what
Gnocchi returns (:func:`plot`), and stops everything.  One run at a time
per machine (:data:`LOCK_FILE`); SIGINT/SIGTERM stop everything started.
"""

import argparse
from concurrent import futures
import datetime
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time


from ceilometer_blockacct.harness import ceilometer_agents
from ceilometer_blockacct.harness import gnocchi_stack
from ceilometer_blockacct.harness import guest as guest_mod
from ceilometer_blockacct.harness import libvirt_host
from ceilometer_blockacct.harness import rabbitmq
from ceilometer_blockacct.harness import services

LOCK_FILE = os.environ.get('BLOCKACCT_ALLINONE_LOCK',
                           '/run/lock/blockacct-allinone.lock')
OUTPUT_DIR = '/var/tmp/blockacct-allinone'

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130

Disk = guest_mod.Disk
Workload = guest_mod.Workload

# NOTE: the guest's program runs one request at a time (int 13h), one
# round every PACE_US at most.  The boot disk is throttled by libvirt
# <iotune> below what a round asks for, so its requests wait in QEMU's
# throttle queue: that is the latency and queue depth the plot shows.
PACE_US = 100000
DISKS = (
    Disk('vda', 'virtio',
         Workload(reads=4, writes=4, sectors=16, invalid_reads=1,
                  invalid_writes=1),
         iotune={'total_iops_sec': 40}),
    Disk('vdb', 'virtio',
         Workload(reads=2, writes=2, sectors=8, failed_reads=1,
                  failed_writes=1)),
    Disk('hda', 'ide', Workload(writes=1, sectors=8, flushes=1)),
)
OPS = ('read', 'write', 'flush')

# (meter, aggregation) printed with `gnocchi measures show`, and the disks.
MAIN_MEASURES = (
    ('disk.device.write.bytes.delta', 'sum', ('vda', 'hda')),
    ('disk.device.read.bytes.delta', 'sum', ('vda',)),
    ('disk.device.write.latency.avg', 'mean', ('vda',)),
    ('disk.device.write.queue.depth', 'mean', ('vda',)),
    ('disk.device.flush.requests.delta', 'sum', ('hda',)),
    ('disk.device.read.requests.failed.delta', 'sum', ('vdb',)),
    ('disk.device.write.requests.invalid.delta', 'sum', ('vda',)),
)


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


class AllInOne(services.ServiceFixture):
    """Every service of the all-in-one, started in order, stopped on cleanUp.

    :param interval: polling interval of our meters (seconds).
    :param metric_processing_delay: metricd's delay (seconds).
    :param metricd_workers: metricd's processing workers.
    :param log_dir: if set, every service's logs are copied there on
        cleanUp (before the temporary directories go).
    :param say: callable for progress lines (None: silent).
    """

    def __init__(self, interval=1, metric_processing_delay=15,
                 metricd_workers=1, log_dir=None, say=_say):
        super().__init__()
        self.interval = interval
        self.metric_processing_delay = metric_processing_delay
        self.metricd_workers = metricd_workers
        self.log_dir = log_dir
        self.say = say or (lambda text: None)
        self._stop_mark = time.monotonic()
        self.host = self.guest = self.rabbit = self.stack = None
        self.agents = None

    def _step(self, name, func, *args):
        self.say('%s ...' % name)
        # NOTE: cleanups run last in, first out: this one runs once what
        # this step started has stopped.
        self.addCleanup(self._stopped, name)
        started = time.monotonic()
        result = func(*args)
        self.timings[name] = round(time.monotonic() - started, 1)
        self.say('%s: up in %.1f s' % (name, self.timings[name]))
        return result

    def _setUp(self):
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
        self.host = self._step('libvirtd', self.useFixture,
                               libvirt_host.LibvirtHost())
        self._keep_logs(self.host.log_dir, 'libvirt')
        self.guest = self._step('guest', self.useFixture, guest_mod.Guest(
            self.host, list(DISKS), name='blockacct-allinone',
            rounds=0, pace_us=PACE_US))
        self.rabbit = self._step('rabbitmq', self.useFixture,
                                 rabbitmq.RabbitMQ())
        self._keep_logs(self.rabbit.log_dir, 'rabbitmq')
        self.stack = self._step('gnocchi', self.useFixture,
                                gnocchi_stack.GnocchiStack(
                                    self.metric_processing_delay,
                                    self.metricd_workers))
        self._keep_logs(os.path.join(self.stack.root, 'log'), 'gnocchi')
        self._step('gnocchi-setup', self.gnocchi_setup)
        self.agents = self._step('ceilometer agents', self.useFixture,
                                 ceilometer_agents.CeilometerAgents(
                                     self.host.uri,
                                     self.rabbit.transport_url,
                                     self.stack.url,
                                     interval=self.interval,
                                     rabbit=self.rabbit))
        self._keep_logs(os.path.join(self.agents.root, 'log'), 'ceilometer')

    def _stopped(self, name):
        now = time.monotonic()
        self.say('%s: stopped in %.1f s' % (name, now - self._stop_mark))
        self._stop_mark = now

    def cleanUp(self, *args, **kwargs):
        self._stop_mark = time.monotonic()
        return super().cleanUp(*args, **kwargs)

    def _keep_logs(self, source, name):
        """Copy ``source`` to log_dir/name on cleanUp, before it goes.

        NOTE: cleanups run last in, first out: added after a service's
        fixture, this runs before that fixture removes its directory.
        """
        if self.log_dir:
            self.addCleanup(shutil.copytree, source,
                            os.path.join(self.log_dir, name),
                            dirs_exist_ok=True)

    def gnocchi_setup(self):
        """``ceilometer-blockacct gnocchi-setup`` against the stack."""
        result = subprocess.run(
            [os.path.join(services.VENV_BIN, 'ceilometer-blockacct'),
             'gnocchi-setup', '--gnocchi-url', self.stack.url],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise services.StackStartError(
                'gnocchi-setup failed: %s' % result.stderr.strip())
        return result.stdout

    # -- while running -----------------------------------------------------

    def resource_id(self, target):
        """Ceilometer's instance_disk id of a guest disk."""
        return '%s-%s' % (self.guest.uuid, target)

    def check_alive(self):
        """Raise StackStartError if a service has died."""
        self.stack.check_alive()
        self.rabbit.check_alive()
        self.agents.check_alive()
        if not self.guest.domain.isActive():
            raise services.StackStartError('the guest has stopped: %r'
                                           % self.guest.serial()[-200:])

    def metricd_cpu_seconds(self):
        """CPU seconds used so far by metricd (master and workers)."""
        proc = self.stack._services['gnocchi-metricd'].proc
        return _session_cpu_seconds(proc.pid)

    def backlog(self):
        """Measures Gnocchi has received but metricd not yet processed."""
        status = self.stack.client().status.get()
        return status['storage']['summary']['measures']

    def wait_processed(self, timeout=180):
        """Wait until metricd has processed every received measure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.backlog()
            if not left:
                return 0
            time.sleep(1)
        return self.backlog()


def _session_cpu_seconds(sid):
    """User + system CPU seconds of every process of session ``sid``."""
    ticks = os.sysconf('SC_CLK_TCK')
    total = 0
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] is field 3 (state): session is field 6, utime 14,
        # stime 15, cutime 16, cstime 17.
        if int(fields[3]) == sid:
            total += sum(int(x) for x in fields[11:15])
    return total / ticks


# -- reading back from Gnocchi ------------------------------------------------

def _measures(client, resource_id, meter, aggregation, granularity,
              start=None):
    """[(timestamp, value)] of one metric of one resource, [] if none."""
    from gnocchiclient import exceptions as g_exc

    try:
        rows = client.metric.get_measures(
            meter, resource_id=resource_id, aggregation=aggregation,
            granularity=granularity, start=start)
    except (g_exc.NotFound, g_exc.MetricNotFound):
        return []
    return [(ts, value) for ts, _gran, value in rows]


def series(client, resource_id, op, interval=1):
    """What the plot shows for one disk and op, read back from Gnocchi.

    ``{(quantity, granularity): [(timestamp, value)]}`` with quantity in
    bytes/s (read and write only), latency ms and queue depth.  At 1 s:
    the per-poll values (``*.bytes.delta`` sums, ``latency.avg`` and
    ``queue.depth`` means).  At 1 min: ratios of sums, never means of
    gauges: Σ Δbytes / seconds polled, Σ Δtime / Σ completed requests,
    Σ Δtime / seconds polled, where seconds polled = the minute's count of
    polls x ``interval`` (the first and last minutes of a run are partial).
    """
    prefix = 'disk.device.%s' % op
    result = {}
    polled = {ts: n * interval for ts, n in _measures(
        client, resource_id, prefix + '.requests.delta', 'count', 60)}
    if op != 'flush':
        result[('bytes', 1)] = [
            (ts, v / 1.0) for ts, v in _measures(
                client, resource_id, prefix + '.bytes.delta', 'sum', 1)]
        result[('bytes', 60)] = [
            (ts, v / polled[ts]) for ts, v in _measures(
                client, resource_id, prefix + '.bytes.delta', 'sum', 60)
            if polled.get(ts)]
    result[('latency', 1)] = _measures(client, resource_id,
                                       prefix + '.latency.avg', 'mean', 1)
    result[('queue', 1)] = _measures(client, resource_id,
                                     prefix + '.queue.depth', 'mean', 1)
    # NOTE: ratios of sums of reset-safe deltas (doc/gnocchi.rst); failed
    # requests count as completed (QEMU's account_failed=on adds their
    # time to the total).
    time_ns = dict(_measures(client, resource_id,
                             prefix + '.total.time.delta', 'sum', 60))
    done = dict(_measures(client, resource_id, prefix + '.requests.delta',
                          'sum', 60))
    for ts, v in _measures(client, resource_id,
                           prefix + '.requests.failed.delta', 'sum', 60):
        done[ts] = done.get(ts, 0) + v
    result[('latency', 60)] = sorted(
        (ts, time_ns[ts] / done[ts] / 1e6) for ts in time_ns
        if done.get(ts))
    result[('queue', 60)] = sorted((ts, v / 1e9 / polled[ts])
                                   for ts, v in time_ns.items()
                                   if polled.get(ts))
    return result


def plot(client, aio, path):
    """Write the PNG: bytes/s, latency, queue depth at 1 s and 1 min."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import dates as mdates
    from matplotlib import pyplot

    rows = (('bytes', 'bytes/s'), ('latency', 'average latency (ms)'),
            ('queue', 'queue depth (requests)'))
    fig, axes = pyplot.subplots(len(rows), 2, figsize=(15, 11),
                                sharex='col', squeeze=False)
    styles = {'read': '-', 'write': '--', 'flush': ':'}
    colors = {'vda': 'tab:blue', 'vdb': 'tab:orange', 'hda': 'tab:green'}
    for disk in DISKS:
        rid = aio.resource_id(disk.target)
        for op in OPS:
            data = series(client, rid, op, aio.interval)
            for row, (quantity, _label) in enumerate(rows):
                for col, gran in enumerate((1, 60)):
                    points = data.get((quantity, gran)) or []
                    if not points or not any(v for _ts, v in points):
                        continue
                    xs, ys = map(list, zip(*points))
                    if gran == 60:
                        # NOTE: one value per minute, drawn over its minute.
                        xs.append(xs[-1] + datetime.timedelta(seconds=60))
                        ys.append(ys[-1])
                    axes[row][col].plot(
                        xs, ys, styles[op], color=colors[disk.target],
                        drawstyle='steps-post' if gran == 60 else 'default',
                        linewidth=1.2, label='%s %s' % (disk.target, op))
    for row, (_quantity, label) in enumerate(rows):
        for col, title in enumerate(('1 s granularity', '1 min '
                                     'granularity (ratios of sums)')):
            ax = axes[row][col]
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(title)
            if ax.lines:
                ax.legend(fontsize=7, ncol=3, loc='upper left')
            ax.xaxis.set_major_formatter(mdates.DateFormatter('%H:%M:%S'))
    fig.suptitle('ceilometer-blockacct all-in-one: guest %s, read back '
                 'from Gnocchi (vda throttled to %s IOPS; vdb with failing '
                 'I/O; hda IDE with flushes)' % (
                     aio.guest.uuid, DISKS[0].iotune['total_iops_sec']),
                 fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)
    return path


def print_measures(aio, out=sys.stdout, last_seconds=8, end=None):
    """``gnocchi measures show`` (the CLI) for :data:`MAIN_MEASURES`.

    At 1 s granularity only the ``last_seconds`` before ``end`` (now).
    """
    gnocchi = os.path.join(services.VENV_BIN, 'gnocchi')
    env = dict(os.environ)
    env.update(aio.stack.env)
    end = end or datetime.datetime.now(datetime.timezone.utc)
    start = (end - datetime.timedelta(seconds=last_seconds)).replace(
        microsecond=0).isoformat()
    commands = []
    for meter, aggregation, targets in MAIN_MEASURES:
        for target in targets:
            rid = aio.resource_id(target)
            for gran, extra in ((1, ['--start', start]), (60, [])):
                commands.append([gnocchi, 'measures', 'show', '--resource-id',
                                 rid, '--aggregation', aggregation,
                                 '--granularity', str(gran)] + extra
                                + [meter])

    def show(argv):
        result = subprocess.run(argv, env=env, capture_output=True,
                                text=True, timeout=60)
        return result.stdout if result.returncode == 0 else (
            'ERROR: %s' % result.stderr.strip())

    # NOTE: the CLI takes ~2 s to start; run a few at once, print in order.
    with futures.ThreadPoolExecutor(4) as pool:
        for argv, text in zip(commands, pool.map(show, commands)):
            print('$ gnocchi %s' % ' '.join(argv[1:]), file=out)
            print(text.rstrip() + '\n', file=out, flush=True)


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
    aio = AllInOne(args.interval, args.metric_processing_delay,
                   args.metricd_workers, log_dir=os.path.join(out_dir, 'logs'),
                   say=say)
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
        setup_seconds = time.monotonic() - started
        say('everything is up in %.1f s (%s)' % (setup_seconds, ', '.join(
            '%s %.1f s' % item for item in aio.timings.items())))
        say('guest %s (disks %s), libvirt %s; Gnocchi %s; RabbitMQ %s' % (
            aio.guest.uuid, ', '.join(d.target for d in DISKS),
            aio.host.uri, aio.stack.url, aio.rabbit.node))
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
        print_measures(aio, end=polling_end)
        client = aio.stack.client()
        png = os.path.join(out_dir, 'allinone.png')
        plot(client, aio, png)
        say('plot: %s' % png)
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


def main(argv=None):
    args = _parser().parse_args(argv)
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
