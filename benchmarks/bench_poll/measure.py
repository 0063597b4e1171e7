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
"""Measuring one polling cycle: wall time, CPU of every process, RPCs."""

import collections
import contextlib
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')


# libvirt RPC program numbers (remote_protocol.x, qemu_protocol.x).
PROG_REMOTE = 0x20008086
PROG_QEMU = 0x20008087
RPC_RX = re.compile(r'RPC_SERVER_CLIENT_MSG_RX: client=(\S+) len=\d+ '
                    r'prog=(\d+) vers=\d+ proc=(\d+) type=0 ')


# -- processes ----------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process (all its threads, dead ones included)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Procs:
    """CPU counters of libvirtd and of every guest's QEMU."""

    def __init__(self, host, guests):
        with open(os.path.join(host.root, 'libvirtd.pid')) as f:
            self.libvirtd = int(f.read().strip())
        self.qemus = [g.pid for g in guests]

    def sample(self):
        return (cpu_seconds(self.libvirtd),
                sum(cpu_seconds(p) for p in self.qemus))


# -- libvirtd's RPC log -------------------------------------------------------

class RpcLog:
    """Counts the RPCs libvirtd receives, from its own log.

    The host fixture has no libvirtd.conf hook, so the log output and filter
    are set at run time through the admin socket (virt-admin); the filter is
    on only around counting cycles.
    """

    def __init__(self, host):
        self.admin = 'libvirtd:///system?socket=%s/libvirt-admin-sock' % (
            host.sock_dir)
        self.path = os.path.join(host.log_dir, 'rpc.log')
        self._admin('daemon-log-outputs', '3:file:%s 2:file:%s' % (
            os.path.join(host.log_dir, 'libvirtd.log'), self.path))
        # NOTE: the client asks CONNECT_SUPPORTS_FEATURE (typed parameter
        # strings) before each typed-parameter call (blockStatsFlags).
        self.names = {(PROG_REMOTE, 60): 'supportsFeature'}

    def _admin(self, *args):
        subprocess.run(['virt-admin', '-q', '-c', self.admin] + list(args),
                       check=True, stdout=subprocess.DEVNULL)

    @contextlib.contextmanager
    def counting(self):
        """Yields a Counter filled with ``{(prog, proc): calls}`` on exit."""
        found = collections.Counter()
        self._admin('daemon-log-filters', '2:rpc.netserverclient')
        start = os.path.getsize(self.path) if os.path.exists(
            self.path) else 0
        try:
            yield found
        finally:
            time.sleep(0.05)
            self._admin('daemon-log-filters', '')
            with open(self.path, errors='replace') as f:
                f.seek(start)
                text = f.read()
            for _client, prog, proc in RPC_RX.findall(text):
                prog = int(prog)
                if prog in (PROG_REMOTE, PROG_QEMU):
                    found[(prog, int(proc))] += 1

    def calibrate(self, calls):
        """Name the procedure numbers by making each call once."""
        for name, fn in calls:
            with self.counting() as seen:
                fn()
            for key in seen:
                self.names.setdefault(key, name)

    def label(self, counter):
        named_ = collections.Counter()
        for k, v in counter.items():
            named_[self.names.get(k, '%s:%d' % (
                'qemu' if k[0] == PROG_QEMU else 'remote', k[1]))] += v
        return dict(sorted(named_.items()))


# -- measuring ----------------------------------------------------------------

def idle_rates(procs, seconds):
    """CPU seconds per wall second of libvirtd and the QEMUs, unpolled."""
    a = procs.sample()
    t = time.perf_counter()
    time.sleep(seconds)
    b = procs.sample()
    dt = time.perf_counter() - t
    return (b[0] - a[0]) / dt, (b[1] - a[1]) / dt


def measure(sides, resources, procs, rates, cycles, rpclog):
    """Warm-up, then ``cycles`` interleaved cycles of every side."""
    runs = {name: {'wall': [], 'cpu': [], 'lv': 0.0, 'qemu': 0.0,
                   'samples': None} for name in sides}
    for fn in sides.values():
        fn(resources)                       # warm-up (first sight, XML)
    for _ in range(cycles):
        for name, fn in sides.items():
            p0 = procs.sample()
            c0 = time.process_time()
            t0 = time.perf_counter()
            n = fn(resources)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
            p1 = procs.sample()
            r = runs[name]
            r['wall'].append(wall)
            r['cpu'].append(cpu)
            r['lv'] += p1[0] - p0[0] - rates[0] * wall
            r['qemu'] += p1[1] - p0[1] - rates[1] * wall
            r['samples'] = n
            time.sleep(0.02)
    out = {}
    for name, fn in sides.items():
        with rpclog.counting() as rpcs:
            fn(resources)
        r = runs[name]
        out[name] = {
            'wall_ms': 1e3 * statistics.median(r['wall']),
            'wall_ms_min': 1e3 * min(r['wall']),
            'wall_ms_max': 1e3 * max(r['wall']),
            'agent_cpu_ms': 1e3 * statistics.median(r['cpu']),
            # NOTE: /proc ticks are 10 ms: averaged over the cycles.
            'libvirtd_cpu_ms': max(0.0, 1e3 * r['lv'] / cycles),
            'qemu_cpu_ms': max(0.0, 1e3 * r['qemu'] / cycles),
            'samples': r['samples'],
            'rpcs': sum(rpcs.values()),
            'rpcs_by_call': rpclog.label(rpcs),
        }
        o = out[name]
        o['total_cpu_ms'] = (o['agent_cpu_ms'] + o['libvirtd_cpu_ms']
                             + o['qemu_cpu_ms'])
        # CPU share of one core of a 1 Hz cycle.
        o['cpu_share_1hz'] = o['total_cpu_ms'] / 1e3
    return out


def measure_discovery(disc, procs, rates, rpclog):
    disc.discover(None)                     # warm (connection, caches)
    p0 = procs.sample()
    c0 = time.process_time()
    t0 = time.perf_counter()
    resources = disc.discover(None)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    p1 = procs.sample()
    with rpclog.counting() as rpcs:
        disc.discover(None)
    return resources, {
        'wall_ms': 1e3 * wall, 'agent_cpu_ms': 1e3 * cpu,
        'libvirtd_cpu_ms': max(0.0, 1e3 * (p1[0] - p0[0] - rates[0] * wall)),
        'qemu_cpu_ms': max(0.0, 1e3 * (p1[1] - p0[1] - rates[1] * wall)),
        'instances': len(resources), 'rpcs': sum(rpcs.values()),
        'rpcs_by_call': rpclog.label(rpcs)}


def profile_ours(fn, resources, cycles, top=25):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(cycles):
        fn(resources)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats('cumulative').print_stats(top)
    stats.sort_stats('tottime').print_stats(top)
    return out.getvalue()
