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
"""Pollsters as Ceilometer loads them, over a fake reader."""

import itertools
import os
from unittest import mock

from ceilometer.compute import discovery
from ceilometer import service
import fixtures
from stevedore import named
import testtools

from ceilometer_blockacct import cycle
from ceilometer_blockacct import meters
from ceilometer_blockacct import opts
from ceilometer_blockacct.sources import records
from ceilometer_blockacct import state

S = 10 ** 9


def instance(uuid='11111111-2222-3333-4444-555555555555'):
    return discovery.NovaLikeServer(
        id=uuid, name='vm1', flavor={'id': 'f1', 'name': 'tiny', 'vcpus': 1,
                                     'ram': 32, 'disk': 1, 'ephemeral': 0,
                                     'swap': 0},
        image=None, os_type='hvm', architecture='x86_64',
        **{'OS-EXT-SRV-ATTR:instance_name': 'instance-1',
           'OS-EXT-SRV-ATTR:host': 'h', 'OS-EXT-STS:vm_state': 'running'},
        tenant_id='p1', user_id='u1', hostId='hid', status='active',
        metadata={})


# Monotonic seconds of scripted readings: ten apart, across agent restarts.
_CLOCK = itertools.count(2 * 10 ** 6, 10)


class FakeReader:
    """Serves a scripted list of readings, one per read() call."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def read(self, ids):
        self.calls += 1
        served = self.script.pop(0)
        for r in served.values():
            # Readings of the script are ten seconds apart unless set.
            r.mono_ns = r.mono_ns or next(_CLOCK) * S
        out = records.Readings({i: r for i, r in served.items() if i in ids})
        out.listing = getattr(served, 'listing', None)
        return out


BOOT_ID = state.boot_id()


def epoch(dom_id=1, start=None):
    return records.Epoch(BOOT_ID, dom_id, start)


def reading(uuid, counters, epoch=epoch(), mono_ns=None,
            account_failed=True, device_id=None):
    """One VM's reading, with a listing of that VM alone."""
    out = records.Readings({uuid: records.VMReading(
        instance_id=uuid, epoch=epoch, mono_ns=mono_ns, source='qmp',
        disks={'vda': records.DiskCounters('vda', dict(counters),
                                           account_failed, device_id)})})
    out.listing = records.Listing(BOOT_ID, {uuid: epoch.dom_id}, 0)
    return out


FULL = {'rd_bytes': 0, 'wr_bytes': 0, 'rd_operations': 0,
        'wr_operations': 0, 'flush_operations': 0, 'rd_total_time_ns': 0,
        'wr_total_time_ns': 0, 'flush_total_time_ns': 0,
        'failed_rd_operations': 0, 'failed_wr_operations': 0,
        'failed_flush_operations': 0, 'invalid_rd_operations': 0,
        'invalid_wr_operations': 0, 'invalid_flush_operations': 0,
        'idle_time_ns': 5}


def grow(**inc):
    c = dict(FULL)
    for k, v in inc.items():
        c[k] += v
    return c


class TestPollsters(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = service.prepare_service([], [])
        opts.register_opts(self.conf)
        self.conf.set_override('repair_after_restart', False, 'blockacct')
        state_dir = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 's')
        self.conf.set_override('state_dir', state_dir, 'blockacct')
        self.useFixture(fixtures.FakeLogger())
        mgr = named.NamedExtensionManager(
            'ceilometer.poll.compute', names=list(meters.BY_NAME),
            invoke_on_load=True, invoke_args=(self.conf,))
        self.exts = list(mgr)
        self.inst = instance()

    def use(self, script):
        """A new agent (as after a restart) on the same state_dir."""
        fake = FakeReader(script)
        # The agent the pollsters made when loaded, or the last one here.
        self.exts[0].obj.agent.store.close()
        agent = cycle.Agent(self.conf, reader=fake)
        self.addCleanup(agent.store.close)
        for e in self.exts:
            e.obj.agent = agent
        return fake

    def poll(self):
        cache, out = {}, {}
        for e in self.exts:
            for s in e.obj.get_samples(None, cache, [self.inst]):
                out[s.name] = s
        return out

    def test_all_meters_loaded_by_stevedore(self):
        self.assertEqual(set(meters.BY_NAME), {e.name for e in self.exts})

    def test_one_read_per_cycle_shared_by_every_meter(self):
        u = self.inst.id
        fake = self.use([reading(u, FULL, mono_ns=10 ** 6 * S),
                         reading(u, grow(rd_bytes=4096, rd_operations=8,
                                         rd_total_time_ns=16 * 10 ** 6),
                                 mono_ns=(10 ** 6 + 10) * S)])
        first = self.poll()
        self.assertEqual(1, fake.calls)
        # First run: no agent state, deltas are 0; no interval values yet.
        self.assertEqual(0, first['disk.device.read.bytes.delta'].volume)
        self.assertNotIn('disk.device.read.latency.avg', first)
        second = self.poll()
        self.assertEqual(2, fake.calls)
        self.assertEqual(4096, second['disk.device.read.bytes.delta'].volume)
        self.assertEqual(8, second['disk.device.read.requests.delta'].volume)
        self.assertEqual(2.0, second['disk.device.read.latency.avg'].volume)
        self.assertEqual(0.0016,
                         second['disk.device.read.queue.depth'].volume)
        # No write completed: no write latency sample.
        self.assertNotIn('disk.device.write.latency.avg', second)
        s = second['disk.device.read.bytes.delta']
        self.assertEqual(u + '-vda', s.resource_id)
        self.assertEqual('vda', s.resource_metadata['disk_name'])
        self.assertEqual(u, s.resource_metadata['instance_id'])
        self.assertEqual(('u1', 'p1'), (s.user_id, s.project_id))
        self.assertEqual('delta', s.type)

    def test_agent_restart_resumes_without_loss_or_double(self):
        u = self.inst.id
        self.use([reading(u, FULL),
                  reading(u, grow(wr_operations=1, wr_bytes=100))])
        self.poll()
        self.assertEqual(100, self.poll()[
            'disk.device.write.bytes.delta'].volume)
        # A new agent process (new Agent, same state dir).
        self.use([reading(u, grow(wr_operations=2, wr_bytes=250))])
        self.assertEqual(150, self.poll()[
            'disk.device.write.bytes.delta'].volume)

    def test_qemu_restart_counts_the_new_process_whole(self):
        u = self.inst.id
        self.use([reading(u, FULL), reading(u, grow(wr_operations=10)),
                  reading(u, grow(wr_operations=3), epoch=epoch(2))])
        self.poll()
        total = self.poll()['disk.device.write.requests.delta'].volume
        total += self.poll()['disk.device.write.requests.delta'].volume
        self.assertEqual(13, total)

    def test_absent_counters_are_not_emitted(self):
        u = self.inst.id
        basic = {'rd_bytes': 1, 'rd_operations': 1}
        self.use([reading(u, basic)])
        got = self.poll()
        # and the refused meters, which need no counter.
        self.assertEqual({'disk.device.read.bytes.delta',
                          'disk.device.read.requests.delta',
                          'disk.device.bytes.refused',
                          'disk.device.requests.refused'}, set(got))

    def test_one_bad_disk_does_not_stop_the_cycle(self):
        u, v = self.inst.id, 'aaaaaaaa-2222-3333-4444-555555555555'
        other = instance(v)
        bad = reading(u, FULL)
        bad[u].disks['vda'].counters = None  # breaks every derivation
        both = dict(bad)
        both.update(reading(v, FULL))
        self.use([both])
        cache, names = {}, set()
        for e in self.exts:
            for s in e.obj.get_samples(None, cache, [self.inst, other]):
                if e.obj.meter.kind != meters.KIND_REFUSED:
                    names.add(s.resource_id)
        self.assertEqual({v + '-vda'}, names)

    def test_crash_between_saving_and_publishing_loses_one_poll(self):
        # The state is saved before the samples leave get_samples(): an
        # agent that dies with them unpublished loses that poll, and the
        # next agent never publishes it again (no double billing).
        u = self.inst.id
        self.use([reading(u, FULL),
                  reading(u, grow(rd_operations=1, rd_bytes=100))])
        self.poll()
        lost = self.poll()['disk.device.read.bytes.delta'].volume
        self.assertEqual(100, lost)  # ...computed, saved, never published
        self.use([reading(u, grow(rd_operations=2, rd_bytes=130))])
        self.assertEqual(30, self.poll()[
            'disk.device.read.bytes.delta'].volume)

    def test_state_write_failure_publishes_no_delta(self):
        u = self.inst.id
        self.use([reading(u, FULL),
                  reading(u, grow(rd_operations=1, rd_bytes=100)),
                  reading(u, grow(rd_operations=2, rd_bytes=150))])
        self.poll()
        with mock.patch.object(state.StateStore, 'save',
                               side_effect=state.StateError('disk full')):
            got = self.poll()
        self.assertNotIn('disk.device.read.bytes.delta', got)
        # Cumulative meters need no state and still come out.
        self.assertIn('disk.device.read.total.time', got)
        # The next successful cycle covers the whole interval.
        self.assertEqual(150, self.poll()[
            'disk.device.read.bytes.delta'].volume)

    def test_a_vm_started_after_a_listing_is_billed_whole(self):
        u, v = self.inst.id, 'aaaaaaaa-2222-3333-4444-555555555555'
        first = reading(u, FULL)
        second = reading(u, grow(rd_operations=1, rd_bytes=10))
        second.update(reading(v, grow(rd_operations=1, rd_bytes=700),
                              epoch=epoch(2)))
        second.listing = records.Listing(BOOT_ID, {u: 1, v: 2}, 0)
        self.use([first, second])
        self.poll()
        cache, got = {}, {}
        for e in self.exts:
            for s in e.obj.get_samples(None, cache, [self.inst,
                                                     instance(v)]):
                got[s.name, s.resource_id] = s.volume
        name = 'disk.device.read.bytes.delta'
        self.assertEqual(10, got[name, u + '-vda'])
        self.assertEqual(700, got[name, v + '-vda'])

    def test_two_sources_never_bill_one_growth_twice(self):
        # Scenario 2: source A's cycle read before source B's; B commits
        # first, then A derives its older reading.
        u = self.inst.id
        self.use([reading(u, FULL),
                  reading(u, grow(rd_operations=1, rd_bytes=100)),
                  reading(u, grow(rd_operations=1, rd_bytes=300))])
        self.poll()
        ext = [e for e in self.exts
               if e.name == 'disk.device.read.bytes.delta'][0]
        cache_a, cache_b = {}, {}
        cycle.cycle(cache_a, ext.obj.agent).read([self.inst])
        b = ext.obj.get_samples(None, cache_b, [self.inst])
        a = ext.obj.get_samples(None, cache_a, [self.inst])
        self.assertEqual([300], [s.volume for s in b])
        self.assertEqual([], [s.volume for s in a])

    def test_unusable_state_dir_is_one_error_naming_the_option(self):
        conf = service.prepare_service([], [])
        opts.register_opts(conf)
        conf.set_override('repair_after_restart', False, 'blockacct')
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'x')
        with open(path, 'w'):
            pass
        conf.set_override('state_dir', os.path.join(path, 's'), 'blockacct')
        log = self.useFixture(fixtures.FakeLogger())
        mgr = named.NamedExtensionManager(
            'ceilometer.poll.compute', names=list(meters.BY_NAME),
            invoke_on_load=True, invoke_args=(conf,))
        self.assertEqual([], list(mgr))
        errors = [line for line in log.output.splitlines()
                  if 'accounting is OFF' in line]
        self.assertEqual(1, len(errors))
        self.assertIn('[blockacct] state_dir', errors[0])
