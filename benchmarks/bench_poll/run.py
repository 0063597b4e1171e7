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
"""One run: a private libvirtd, N guests, every side measured per N."""

import collections
import contextlib
import datetime
import os
import platform
import shutil
import subprocess
import tempfile
import time

from ceilometer.compute import discovery as discovery_mod
import libvirt
import libvirt_qemu

from benchmarks.bench_poll import measure
from benchmarks.bench_poll import report
from benchmarks.bench_poll import sides as sides_mod
from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host

WORKLOAD = guest_mod.Workload(reads=4, writes=4, sectors=8)
TARGETS = ('vda', 'vdb', 'vdc', 'vdd', 'vde')


# -- the run ------------------------------------------------------------------

class Bench:

    def __init__(self, args):
        self.args = args
        self.stack = contextlib.ExitStack()
        self.guests = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stack.close()

    def start_host(self):
        self.tmp = tempfile.mkdtemp(prefix='blockacct-bench-',
                                    dir=self.args.state_parent)
        self.stack.callback(shutil.rmtree, self.tmp, True)
        self.host = self.stack.enter_context(libvirt_host.LibvirtHost())
        # NOTE: guests go before their host (the stack unwinds LIFO).
        self.stack.callback(self.remove_guests)
        self.rpclog = measure.RpcLog(self.host)
        uri = self.host.uri
        os.makedirs(self.args.out, exist_ok=True)
        # NOTE: each prepare_service() sets up the root logger again; one
        # file (outside the temporary directory) serves all three.
        agent_log = os.path.join(self.args.out, 'bench_poll.agent.log')
        make_conf = sides_mod.make_conf
        self.conf_up = make_conf(self.tmp, 'upstream', uri, agent_log)
        self.conf_qmp = make_conf(self.tmp, 'ours-qmp', uri, agent_log, {
            'state_dir': os.path.join(self.tmp, 'state-qmp'),
            'enable_qmp': 'true'})
        self.conf_bulk = make_conf(self.tmp, 'ours-bulk', uri, agent_log, {
            'state_dir': os.path.join(self.tmp, 'state-bulk'),
            'enable_qmp': 'false'})
        ours = [m.name for m in meters.METERS]
        self.ext_qmp = sides_mod.load_pollsters(self.conf_qmp, ours)
        self.ext_bulk = sides_mod.load_pollsters(self.conf_bulk, ours)
        self.ext_up = sides_mod.load_pollsters(self.conf_up,
                                               sides_mod.UPSTREAM_METERS)
        self.disc = discovery_mod.InstanceDiscovery(self.conf_up)
        self.workers = self.conf_qmp.blockacct.max_concurrent_reads

    def calibrate(self):
        g = self.add_guests(1, 2)[0]
        g.wait_done()
        rw = libvirt.open(self.host.uri)
        ro = libvirt.openReadOnly(self.host.uri)
        d_ro = ro.lookupByUUIDString(g.uuid)
        d_rw = rw.lookupByUUIDString(g.uuid)
        self.rpclog.calibrate([
            ('lookupByUUIDString', lambda: ro.lookupByUUIDString(g.uuid)),
            ('listAllDomains', lambda: ro.listAllDomains(
                libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)),
            ('getAllDomainStats', lambda: ro.getAllDomainStats(
                libvirt.VIR_DOMAIN_STATS_BLOCK)),
            ('info', d_ro.info), ('state', d_ro.state),
            ('XMLDesc', lambda: d_ro.XMLDesc(0)),
            ('blockStats', lambda: d_ro.blockStats('vda')),
            ('blockStatsFlags', lambda: d_ro.blockStatsFlags('vda', 0)),
            ('metadata', lambda: d_ro.metadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, guest_mod.NOVA_NS)),
            ('name', d_ro.name),
            ('qemuMonitorCommand', lambda: libvirt_qemu.qemuMonitorCommand(
                d_rw, '{"execute": "query-blockstats"}', 0)),
        ])
        rw.close()
        ro.close()
        self.remove_guests()

    def add_guests(self, count, disks):
        new = []
        for _ in range(count):
            i = len(self.guests)
            name = 'bench-%02d-%dd' % (i, disks)
            g = guest_mod.Guest(
                self.host,
                [guest_mod.Disk('vda')] + [
                    guest_mod.Disk(t, workload=WORKLOAD)
                    for t in TARGETS[1:disks]],
                name=name, rounds=1, memory_mib=32,
                nova=guest_mod.NovaMeta(name=name))
            g.setUp()
            self.guests.append(g)
            new.append(g)
        return new

    def remove_guests(self):
        for g in self.guests:
            g.cleanUp()
        self.guests = []

    def wait_idle(self):
        for g in self.guests:
            g.wait_done(timeout=120)
        # NOTE: the program ends in cli; hlt: a halted TCG guest burns
        # (almost) nothing; check it rather than assume it.
        procs = measure.Procs(self.host, self.guests)
        time.sleep(0.5)
        rates = measure.idle_rates(procs, self.args.idle_seconds)
        return procs, rates

    def point(self, n, disks):
        """Measure every side with ``n`` guests of ``disks`` disks."""
        procs, rates = self.wait_idle()
        resources, disc = measure.measure_discovery(self.disc, procs, rates,
                                                    self.rpclog)
        if len(resources) != n:
            raise RuntimeError('discovery found %d instances, %d running'
                               % (len(resources), n))
        raw_qmp = sides_mod.RawQmp(self.host.uri, max(n, 1))
        raw_qmp8 = sides_mod.RawQmp(self.host.uri, self.workers)
        raw_bulk = sides_mod.RawBulk(self.host.uri)
        sides = collections.OrderedDict([
            ('ours-qmp', lambda r: sides_mod.poll_cycle(self.ext_qmp, r)),
            ('ours-bulk', lambda r: sides_mod.poll_cycle(self.ext_bulk, r)),
            ('upstream', lambda r: sides_mod.poll_cycle(self.ext_up, r)),
            ('raw-qmp', raw_qmp),
            ('raw-qmp-8', raw_qmp8),
            ('raw-bulk', raw_bulk),
        ])
        try:
            result = measure.measure(sides, resources, procs, rates,
                                     self.args.cycles, self.rpclog)
            prof = None
            if self.args.profile and n == max(self.args.vms) and disks == 2:
                prof = measure.profile_ours(sides['ours-qmp'], resources,
                                            self.args.cycles)
        finally:
            for raw in (raw_qmp, raw_qmp8, raw_bulk):
                raw.close()
        return {'vms': n, 'disks_per_vm': disks, 'discovery': disc,
                'idle_cpu_share': {'libvirtd': rates[0], 'qemu': rates[1]},
                'sides': result, 'profile': prof}

    def run(self):
        args = self.args
        t0 = time.monotonic()
        self.start_host()
        self.calibrate()
        points = []
        for n in sorted(args.vms):
            self.add_guests(n - len(self.guests), 2)
            report.log('N=%d: %d guests running, measuring'
                       % (n, len(self.guests)))
            points.append(self.point(n, 2))
        if args.disks4:
            self.remove_guests()
            self.add_guests(args.disks4, 4)
            report.log('N=%d with 4 disks: measuring' % args.disks4)
            points.append(self.point(args.disks4, 4))
        self.remove_guests()
        return {'environment': environment(self.host),
                'args': {'vms': args.vms, 'cycles': args.cycles,
                         'disks4': args.disks4,
                         'max_concurrent_reads': self.workers,
                         'state_dir_fs': fs_of(self.tmp)},
                'rpc_names': {'%s:%d' % ('qemu' if k[0] == measure.PROG_QEMU
                                         else 'remote', k[1]): v
                              for k, v in self.rpclog.names.items()},
                'points': points,
                'seconds': time.monotonic() - t0}


def fs_of(path):
    out = subprocess.run(['df', '--output=fstype,source', path],
                         capture_output=True, text=True).stdout.split()
    return ' '.join(out[2:]) if len(out) >= 4 else 'unknown'


def environment(host):
    lv, qemu = host.versions()
    cpu = 'unknown'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    try:
        from importlib import metadata
        ceilo = metadata.version('ceilometer')
    except Exception:  # noqa: informational only
        ceilo = 'unknown'
    with open('/etc/os-release') as f:
        osname = dict(line.rstrip().split('=', 1) for line in f
                      if '=' in line).get('PRETTY_NAME', '').strip('"')
    import ceilometer_blockacct
    return {'libvirt': lv, 'qemu': qemu, 'ceilometer': ceilo,
            'package': os.path.dirname(ceilometer_blockacct.__file__),
            'libvirt_python': libvirt.getVersion(),
            'python': platform.python_version(), 'kernel': platform.release(),
            'os': osname, 'cpu': cpu, 'cores': os.cpu_count(),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime(
                '%Y-%m-%d %H:%M UTC')}
