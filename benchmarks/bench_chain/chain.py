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
"""One run: the real chain on this machine, every side, interval and N.

The services start once: a private libvirtd with ``--real-vms`` kernel-less
guests (2 virtio disks each, a steady paced workload), RabbitMQ, Gnocchi
(PostgreSQL, gnocchi-api, metricd; basic auth) and our archive policies
(``ceilometer-blockacct gnocchi-setup``).  Each measured point starts the
real ``ceilometer-agent-notification`` and ``ceilometer-polling`` (through
:mod:`.replay`, which adds synthetic VMs beyond the real guests) for one
side at one interval, lets one cycle pass, then measures a window: CPU of
every component, samples sent, Gnocchi's backlog; then stops the agents
and lets metricd drain before the next point.
"""

import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

from benchmarks.bench_chain import analyse
from benchmarks.bench_chain import apiprofile
from benchmarks.bench_chain import procs
from ceilometer_blockacct.gnocchi import values
from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import ceilometer_agents
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host
from ceilometer_blockacct.tests.functional.fixtures import rabbitmq
from ceilometer_blockacct.tests.functional.fixtures import services

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# Ceilometer's own disk pollsters: what a cloud polls without this plugin.
UPSTREAM_METERS = tuple('disk.device.%s.%s' % (op, what)
                        for op in ('read', 'write')
                        for what in ('bytes', 'requests', 'latency'))
# A profile polled by its one pollster (the shipped polling-<profile>.yaml),
# the same meters one pollster each ('<profile>/meters': before), and
# upstream's.
PER_METER = '/meters'
SIDES = (tuple(meters.PROFILES) + tuple(p + PER_METER for p in meters.PROFILES)
         + ('upstream',))
DEFAULT_SIDES = ('billing', 'monitoring', 'all', 'all' + PER_METER,
                 'upstream')
# Each guest disk: 2 reads and 2 writes of 4 KiB per round, one round a
# second (int 15h/86h waits between rounds: the vCPU idles).
WORKLOAD = guest_mod.Workload(reads=2, writes=2, sectors=8)
PACE_US = 1000000
QUERY = '{"execute": "query-blockstats"}'


def side_meters(side):
    """The meter names ``side`` publishes."""
    if side == 'upstream':
        return list(UPSTREAM_METERS)
    return [m.name for m in meters.profile(side.replace(PER_METER, ''))]


def side_pollsters(side):
    """What polling.yaml lists for ``side``."""
    if side == 'upstream' or side.endswith(PER_METER):
        return side_meters(side)
    return [meters.profile_pollster(side)]


class Agents(ceilometer_agents.CeilometerAgents):
    """The real agents; ceilometer-polling started through :mod:`.replay`."""

    def __init__(self, spec_path, **kwargs):
        super().__init__(**kwargs)
        self.spec_path = spec_path

    def _start(self, name, binary, args):
        if name != 'polling':
            return super()._start(name, binary, args)
        env = dict(os.environ, PYTHONWARNINGS='ignore::DeprecationWarning')
        return self._spawn(
            'ceilometer-polling',
            [os.path.join(services.VENV_BIN, 'python'), '-m',
             'benchmarks.bench_chain.replay', self.spec_path,
             '--config-file', self.config_file] + args,
            log_path=self.log_path(name), env=env, cwd=REPO)


class Chain:
    """The services of one run, and :meth:`measure` for one point."""

    def __init__(self, args, say):
        self.args = args
        self.say = say
        self.stack = contextlib.ExitStack()
        self.guests = []
        self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stack.close()

    # -- services, once per run -------------------------------------------

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix='blockacct-chain-')
        self.stack.callback(shutil.rmtree, self.tmp, True)
        self.say('libvirtd ...')
        self.host = self.stack.enter_context(libvirt_host.LibvirtHost())
        self.say('%d guests (2 disks each) ...' % self.args.real_vms)
        for i in range(self.args.real_vms):
            guest = guest_mod.Guest(
                self.host, [guest_mod.Disk('vda', workload=WORKLOAD),
                            guest_mod.Disk('vdb', workload=WORKLOAD)],
                name='bench-chain-%02d' % i, rounds=0, pace_us=PACE_US,
                nova=guest_mod.NovaMeta(name='bench-chain-%02d' % i))
            self.guests.append(self.stack.enter_context(guest))
        self.say('rabbitmq ...')
        self.rabbit = self.stack.enter_context(rabbitmq.RabbitMQ())
        self.say('gnocchi (processing delay %d s, %d metricd workers) ...'
                 % (self.args.processing_delay, self.args.metricd_workers))
        self.gnocchi = self.stack.enter_context(gnocchi_stack.GnocchiStack(
            self.args.processing_delay, self.args.metricd_workers,
            auth_mode='basic'))
        subprocess.run(
            [os.path.join(services.VENV_BIN, 'ceilometer-blockacct'),
             'gnocchi-setup', '--gnocchi-url', self.gnocchi.url],
            check=True, capture_output=True, timeout=120,
            env={k: v for k, v in os.environ.items()
                 if not k.startswith(('OS_', 'GNOCCHI_'))})
        self.template = self.record(self.guests[0])
        self.idle = self.idle_rates()

    def idle_rates(self):
        """CPU seconds per second of each service with no agent running.

        RabbitMQ's Erlang VM, metricd's passes over nothing and
        PostgreSQL's own work cost CPU with no sample at all: each point
        subtracts them, so its figures are the cost of its samples.
        """
        comps = self.components(None)
        seconds = self.args.idle_seconds
        cpu0, start = comps.cpu(), time.monotonic()
        time.sleep(seconds)
        cpu1, took = comps.cpu(), time.monotonic() - start
        rates = {k: round((cpu1[k] - cpu0[k]) / took, 4) for k in cpu1}
        self.say('idle CPU (s per s): %s' % ', '.join(
            '%s %.3f' % item for item in rates.items()))
        return rates

    def record(self, guest):
        """The template of the synthetic VMs: one real guest's answers."""
        # NOTE: a few rounds first, so every counter has moved.
        guest.wait_for('...', timeout=60)
        return {'uuid': guest.uuid, 'name': guest.name,
                'reply': guest.qmp_text(QUERY),
                'xml': guest.domain.XMLDesc(0)}

    def components(self, agents):
        """The chain's components; without ``agents``, the services'."""
        session = procs.by_session
        svc = self.gnocchi._services
        found = {}
        if agents is not None:
            found = {
                'polling': session(agents._services['ceilometer-polling']
                                   .proc.pid),
                'notification': session(
                    agents._services['ceilometer-notification'].proc.pid),
            }
        return procs.Components(dict(found, **{
            # NOTE: the Erlang VM's command line names its home, under
            # the fixture's directory (not its node name).
            'rabbitmq': procs.by_cmdline('-home %s/' % self.rabbit.root),
            'gnocchi-api': session(svc['gnocchi-api'].proc.pid),
            'metricd': session(svc['gnocchi-metricd'].proc.pid),
            'postgresql': session(
                self.gnocchi.postgresql._service.proc.pid),
        }))

    def backlog(self):
        return self.gnocchi.client().status.get()[
            'storage']['summary']['measures']

    # -- one point ------------------------------------------------------------

    def measure(self, side, interval, vms):
        real = min(vms, self.args.real_vms)
        synthetic = vms - real
        names = side_meters(side)
        point_dir = tempfile.mkdtemp(prefix='%s-%ds-%d-' % (
            side.replace('/', '-'), interval, vms), dir=self.tmp)
        counts = os.path.join(point_dir, 'counts')
        spec = os.path.join(point_dir, 'spec.json')
        with open(spec, 'w') as f:
            json.dump({'keep': [g.uuid for g in self.guests[:real]],
                       'synthetic': synthetic, 'template': self.template,
                       'counts': counts}, f)
        agents = Agents(spec, libvirt_uri=self.host.uri,
                        transport_url=self.rabbit.transport_url,
                        gnocchi=self.gnocchi, interval=interval,
                        meter_names=side_pollsters(side),
                        rabbit=self.rabbit,
                        host='bench-chain', start_timeout=120,
                        # NOTE: each point's agent starts on a new state:
                        # nothing to repair, no audit traffic in the window.
                        blockacct={'repair_after_restart': 'false'})
        point = {'side': side, 'interval': interval, 'vms': vms,
                 'disks': 2 * vms, 'real_vms': real,
                 'synthetic_vms': synthetic, 'meters': len(names)}
        started = False
        try:
            agents.start()
            started = True
            comps = self.components(agents)
            first = self._wait_first_cycle(counts, interval)
            self._wait_quiet(interval)
            time.sleep(self.args.warmup)
            api_log = self.gnocchi._services['gnocchi-api'].log_path
            api_offset = os.path.getsize(api_log)
            start, cpu0 = time.monotonic(), comps.cpu()
            backlog = []
            # NOTE: at least one whole cycle, whatever --window says.
            end = start + max(self.args.window, interval + 10)
            while True:
                now = time.monotonic()
                backlog.append((round(now - start, 1), self.backlog()))
                if now >= end:
                    break
                time.sleep(min(self.args.backlog_every, end - now))
                agents.check_alive()
            cpu1, stop = comps.cpu(), time.monotonic()
            sent = _samples_between(counts, start, stop)
            with open(api_log, errors='replace') as f:
                f.seek(api_offset)
                requests = analyse.api_requests(f)
            took = stop - start
            raw = {k: cpu1[k] - cpu0[k] for k in cpu1}
            point.update({
                'window': round(took, 1),
                'first_cycle_s': round(first, 1),
                'cpu_raw': {k: round(v, 2) for k, v in raw.items()},
                'cpu': {k: round(max(0.0, v - self.idle.get(k, 0) * took),
                                 2) for k, v in raw.items()},
                'samples': sent, 'backlog': backlog,
                'api_requests': requests,
                'per_poll': len(names) * 2 * vms,
                'errors': {name: len(agents.errors(name))
                           for name in ('polling', 'notification')},
            })
            if self.args.keep_logs:
                shutil.copytree(os.path.join(agents.root, 'log'),
                                os.path.join(self.args.out, 'logs',
                                             os.path.basename(point_dir)))
        finally:
            if started:
                agents.cleanUp()
        point['storage'] = self.storage(side, interval)
        drained = time.monotonic()
        left = self._drain()
        point['drain_s'] = round(time.monotonic() - drained, 1)
        point['left_after_drain'] = left
        return analyse.summarise(point)

    def _wait_first_cycle(self, counts, interval):
        started = time.monotonic()
        services.wait_until(lambda: os.path.exists(counts),
                            'the first polling cycle', 120 + interval,
                            interval=0.5)
        # NOTE: a cycle's notifications go out together; then the first
        # publish creates resources and metrics, left out of the window.
        time.sleep(2)
        return time.monotonic() - started

    def _wait_quiet(self, interval):
        """Wait until metricd has processed the first cycle.

        Its publish created resources and metrics: not a steady cycle's
        work, so it stays out of the window.
        """
        seen = []

        def processed():
            backlog = self.backlog()
            seen.append(backlog)
            return max(seen) > 0 and backlog == 0
        with contextlib.suppress(services.StackStartError):
            services.wait_until(processed, 'the first cycle processed',
                                max(interval - 5, 1), interval=1)

    def _drain(self):
        with contextlib.suppress(services.StackStartError):
            services.wait_until(lambda: not self.backlog(), 'metricd',
                                self.args.drain_timeout, interval=1)
        return self.backlog()

    def storage(self, side, interval):
        """Bytes per disk per day, from the archive policies Gnocchi used."""
        client = self.gnocchi.client()
        rid = meters.resource_id(self.guests[0].uuid, 'vda')
        try:
            resource = client.resource.get(meters.RESOURCE_TYPE, rid)
        except Exception:  # noqa: reported as unknown
            return None
        policies, cache = [], {}
        for name in side_meters(side):
            metric_id = resource['metrics'].get(name)
            if metric_id is None:
                continue
            ap = client.metric.get(metric_id)['archive_policy']
            if ap['name'] not in cache:
                cache[ap['name']] = (
                    [(values.to_seconds(d['granularity']),
                      values.to_seconds(d['timespan']))
                     for d in ap['definition']],
                    len(ap['aggregation_methods']))
            policies.append(cache[ap['name']])
        return {'metrics': len(policies),
                'bytes_per_disk_day': analyse.storage_bytes(
                    policies, interval)}

    # -- the run -----------------------------------------------------------

    def run(self):
        started = time.monotonic()
        result = {
            'started': datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec='seconds'),
            'machine': {'cpus': os.cpu_count(),
                        'cpu': _cpu_model(), 'python':
                        platform.python_version()},
            'args': {k: (v if k != 'steps' else
                         {str(i): n for i, n in v.items()})
                     for k, v in vars(self.args).items()
                     if k not in ('report',)},
            'points': [],
        }
        self.start()
        result['versions'] = _versions(self.host)
        for interval in self.args.intervals:
            for side in self.args.sides:
                for vms in self.args.steps.get(interval, self.args.vms):
                    self.say('%s at %d s, %d VMs (%d disks) ...' % (
                        side, interval, vms, 2 * vms))
                    try:
                        point = self.measure(side, interval, vms)
                    except services.StackStartError as exc:
                        # NOTE: the next N would fail alike: next side.
                        self.say('  FAILED: %s' % exc)
                        result.setdefault('failures', []).append({
                            'side': side, 'interval': interval, 'vms': vms,
                            'error': str(exc)})
                        break
                    result['points'].append(point)
                    self.say(_line(point))
                    if point['keeps_up'] is False:
                        break
        if self.args.profile_api:
            self.say('profiling gnocchi-api in this process ...')
            result['api_profile'] = self.profile_api()
        result['seconds'] = round(time.monotonic() - started)
        return result

    def profile_api(self):
        """:mod:`.apiprofile` on the real guests' disks, every meter."""
        rids = [meters.resource_id(g.uuid, dev) for g in self.guests
                for dev in ('vda', 'vdb')]
        rows = [(m.name, m.archive_policy, m.unit) for m in meters.METERS]
        return apiprofile.profile(self.gnocchi.config_file, rids, rows,
                                  rounds=self.args.profile_rounds)


def _samples_between(counts, start, stop):
    total = 0
    with open(counts) as f:
        for line in f:
            at, n = line.split()
            if start <= float(at) < stop:
                total += int(n)
    return total


def _line(p):
    per = p['cpu_per_1000']
    return ('  %d samples in %.0f s; CPU s/1000 samples: %s; backlog %s; '
            'keeps up: %s' % (
                p['samples'], p['window'], ', '.join(
                    '%s %.2f' % (k, v) for k, v in per.items()
                    if v is not None),
                [v for _t, v in p['backlog']], p['keeps_up']))


def _cpu_model():
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    return platform.processor()


def _versions(host):
    import importlib.metadata as md

    libvirt_v, qemu_v = host.versions()
    found = {'libvirt': libvirt_v, 'qemu': qemu_v}
    for name in ('ceilometer', 'gnocchi', 'oslo.messaging'):
        with contextlib.suppress(md.PackageNotFoundError):
            found[name] = md.version(name)
    return found
