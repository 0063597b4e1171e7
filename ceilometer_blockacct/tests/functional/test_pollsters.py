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
"""The pollsters against a real libvirtd and real QEMU (TCG) guests.

Expected values come from the guest program's constants (the workloads
below, plus SeaBIOS's own boot read), never from QMP or the code under test.
The pollsters run as ``ceilometer-polling`` runs them (:mod:`.agent`).
"""

import os
import signal
import time

import fixtures
import testtools

from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional import agent as agent_mod
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host

Disk = guest_mod.Disk
Workload = guest_mod.Workload
SECTOR = 512

# The test guest: every kind of request on some disk.
BOOT = Workload(reads=12, writes=7, sectors=8, invalid_reads=2,
                invalid_writes=3)
FAILING = Workload(reads=5, writes=4, sectors=16, failed_reads=2,
                   failed_writes=3)
FLUSHING = Workload(writes=2, sectors=1, flushes=4)
FAILED_FLUSH = Workload(writes=1, sectors=1, failed_flushes=2)
DISKS = [Disk('vda', 'virtio', BOOT), Disk('vdb', 'virtio', FAILING),
         Disk('hda', 'ide', FLUSHING), Disk('hdb', 'ide', FAILED_FLUSH)]


def expected_deltas(target, times=1):
    """Per-disk delta meters implied by the program's constants."""
    w = {d.target: d.workload for d in DISKS}[target]
    ide = target.startswith('hd')
    # IDE PIO: one QEMU request per sector, and the invalid request's
    # first sector is valid (see fixtures.guest).
    per = w.sectors if ide else 1
    rd_ops = w.reads * per + (w.invalid_reads if ide else 0)
    wr_ops = w.writes * per + (w.invalid_writes if ide else 0)
    rd_bytes = (rd_ops * SECTOR if ide else w.reads * w.sectors * SECTOR)
    wr_bytes = (wr_ops * SECTOR if ide else w.writes * w.sectors * SECTOR)
    if target == 'vda':  # the boot disk: SeaBIOS reads the boot sector
        rd_ops += 1
        rd_bytes += SECTOR
    want = {
        'disk.device.read.bytes.delta': rd_bytes,
        'disk.device.write.bytes.delta': wr_bytes,
        'disk.device.read.requests.delta': rd_ops,
        'disk.device.write.requests.delta': wr_ops,
        'disk.device.flush.requests.delta': w.flushes,
        'disk.device.read.requests.failed.delta': w.failed_reads,
        'disk.device.write.requests.failed.delta': w.failed_writes,
        'disk.device.flush.requests.failed.delta': w.failed_flushes,
        'disk.device.read.requests.invalid.delta': w.invalid_reads,
        'disk.device.write.requests.invalid.delta': w.invalid_writes,
        'disk.device.flush.requests.invalid.delta': 0,
    }
    return {k: v * times for k, v in want.items()}


def cumulative_of(deltas):
    """The cumulative meters that accumulate the given deltas."""
    return {
        'disk.device.flush.requests':
            deltas['disk.device.flush.requests.delta'],
        'disk.device.read.requests.failed':
            deltas['disk.device.read.requests.failed.delta'],
        'disk.device.write.requests.failed':
            deltas['disk.device.write.requests.failed.delta'],
        'disk.device.flush.requests.failed':
            deltas['disk.device.flush.requests.failed.delta'],
        'disk.device.read.requests.invalid':
            deltas['disk.device.read.requests.invalid.delta'],
        'disk.device.write.requests.invalid':
            deltas['disk.device.write.requests.invalid.delta'],
        'disk.device.flush.requests.invalid': 0,
    }


def subset(got, keys):
    return {k: got.get(k) for k in keys}


class PollsterTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.host = libvirt_host.get_shared_host()
        self.logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(name)s %(message)s'))

    def agent(self, state_dir, **blockacct):
        """A new agent on ``state_dir``; the previous one there stops."""
        running = self.__dict__.setdefault('_running', {})
        if state_dir in running:
            running.pop(state_dir).stop()
        running[state_dir] = self.useFixture(agent_mod.PollingAgent(
            self.host, state_dir, blockacct=blockacct))
        return running[state_dir]

    def agent_with_state(self, state_dir, **blockacct):
        """An agent that has completed a cycle with a VM on the host.

        Ceilometer calls no pollster while discovery finds nothing, so the
        agent's state exists once it has polled some VM: a witness here.
        """
        agent = self.agent(state_dir, **blockacct)
        witness = guest_mod.Guest(self.host, [Disk('vda')])
        with witness:
            witness.wait_done()
            agent.poll()
        return agent

    def guest(self, disks=DISKS, **kwargs):
        return self.useFixture(guest_mod.Guest(self.host, disks, **kwargs))

    def disk_samples(self, samples, guest, target):
        return agent_mod.by_meter(samples, '%s-%s' % (guest.uuid, target))


class TestCounts(PollsterTestCase):

    def test_new_vm_is_counted_exactly(self):
        state = agent_mod.new_state_dir(self)
        agent = self.agent_with_state(state)
        guest = self.guest()
        guest.wait_done()
        samples = agent.poll()
        for target in ('vda', 'vdb', 'hda', 'hdb'):
            got = self.disk_samples(samples, guest, target)
            want = expected_deltas(target)
            self.assertEqual(want, subset(got, want), target)
            self.assertEqual(cumulative_of(want),
                             subset(got, cumulative_of(want)), target)
            self.assertGreater(got['disk.device.idle.time'], 0, target)
            for op in ('read', 'write'):
                if want['disk.device.%s.requests.delta' % op]:
                    self.assertGreater(
                        got['disk.device.%s.total.time' % op], 0, target)
            # A new disk: the average over its whole life (the requests
            # the program made, its failed ones included); no interval
            # for a queue depth yet.
            for op in ('read', 'write'):
                done = (want['disk.device.%s.requests.delta' % op]
                        + want['disk.device.%s.requests.failed.delta' % op])
                if done:
                    self.assertAlmostEqual(
                        got['disk.device.%s.total.time' % op] / done / 1e6,
                        got['disk.device.%s.latency.avg' % op], 9, target)
            self.assertNotIn('disk.device.read.queue.depth', got)
        meta = [s for s in samples if s['resource_id'] == guest.uuid + '-vdb']
        # vdb: no flush or discard latency (none completed), no queue
        # depth (no interval yet).
        self.assertEqual(len(meters.METERS) - 6, len(meta))
        for s in meta:
            self.assertEqual('vdb', s['resource_metadata']['disk_name'])
            self.assertEqual(guest.uuid,
                             s['resource_metadata']['instance_id'])
        # Nothing happened since: zero deltas, zero queue depth, and no
        # latency (no request completed).
        again = self.disk_samples(agent.poll(), guest, 'vda')
        self.assertEqual({k: 0 for k in expected_deltas('vda')},
                         subset(again, expected_deltas('vda')))
        self.assertEqual(0.0, again['disk.device.read.queue.depth'])
        self.assertNotIn('disk.device.read.latency.avg', again)

    def test_first_run_bills_nothing_then_restart_counts_whole(self):
        state = agent_mod.new_state_dir(self)
        guest = self.guest()
        guest.wait_done()
        agent = self.agent(state)
        first = self.disk_samples(agent.poll(), guest, 'vdb')
        want = expected_deltas('vdb')
        self.assertEqual({k: 0 for k in want}, subset(first, want))
        self.assertIn('becomes the baseline, not billed', self.logger.output)
        # QEMU restarts (destroy + start): the new process's counters are
        # new, whole; the old process's are never counted again.
        guest.restart()
        guest.wait_done()
        second = agent.poll()
        for target in ('vda', 'vdb', 'hda', 'hdb'):
            want = expected_deltas(target)
            self.assertEqual(want, subset(
                self.disk_samples(second, guest, target), want), target)
        self.assertIn('runs in a new QEMU process', self.logger.output)

    def test_deltas_across_restarts_sum_to_the_workload(self):
        state = agent_mod.new_state_dir(self)
        agent = self.agent_with_state(state)
        guest = self.guest()
        totals = {}
        for _ in range(3):
            guest.wait_done()
            samples = agent.poll()
            for target in ('vda', 'vdb', 'hda', 'hdb'):
                got = self.disk_samples(samples, guest, target)
                for k in expected_deltas(target):
                    totals[(target, k)] = totals.get((target, k), 0) + got[k]
            guest.restart()
        guest.wait_done()
        samples = agent.poll()
        for target in ('vda', 'vdb', 'hda', 'hdb'):
            got = self.disk_samples(samples, guest, target)
            for k, v in expected_deltas(target, times=4).items():
                self.assertEqual(v, totals[(target, k)] + got[k],
                                 (target, k))


class TestAgentRestart(PollsterTestCase):

    def test_second_agent_resumes_without_loss_or_double(self):
        rounds = 6
        disks = [Disk('vda', 'virtio', Workload(reads=3, writes=2))]
        state = agent_mod.new_state_dir(self)
        first = self.agent_with_state(state)
        guest = self.guest(disks, rounds=rounds, pace_us=200000)
        guest.wait_for('.', timeout=60)  # at least one round done
        got_a = self.disk_samples(first.poll(), guest, 'vda')
        self.assertLess(guest.rounds_done(), rounds)
        # A new agent process: new objects, the same state directory.
        guest.wait_done()
        second = self.agent(state)
        got_b = self.disk_samples(second.poll(), guest, 'vda')
        key = 'disk.device.write.bytes.delta'
        self.assertEqual(rounds * 2 * 8 * SECTOR, got_a[key] + got_b[key])
        key = 'disk.device.read.requests.delta'
        self.assertEqual(rounds * 3 + 1, got_a[key] + got_b[key])
        self.assertGreater(got_a[key], 0)
        self.assertGreater(got_b[key], 0)
        got_c = self.disk_samples(second.poll(), guest, 'vda')
        self.assertEqual(0, got_c[key])

    def test_crash_after_saving_loses_that_poll_never_repeats_it(self):
        # An agent dies after its pollsters saved their baselines but
        # before the samples were sent: that poll is lost, and the next
        # agent process does not send it again.
        rounds = 6
        disks = [Disk('vda', 'virtio', Workload(reads=3, writes=2))]
        state = agent_mod.new_state_dir(self)
        first = self.agent_with_state(state)
        guest = self.guest(disks, rounds=rounds, pace_us=200000)
        guest.wait_for('.', timeout=60)
        unsent = self.disk_samples(first.poll(), guest, 'vda')  # "crash"
        guest.wait_done()
        second = self.agent(state)
        sent = self.disk_samples(second.poll(), guest, 'vda')
        key = 'disk.device.read.requests.delta'
        self.assertGreater(unsent[key], 0)
        self.assertEqual(rounds * 3 + 1 - unsent[key], sent[key])


class TestIntervalValues(PollsterTestCase):

    IOPS = 40

    def test_latency_and_queue_depth_bounded_by_iotune(self):
        # One request in flight at a time, throttled to IOPS: each request
        # waits about 1/IOPS, and at most one is ever queued.
        disks = [Disk('vda', 'virtio', Workload(reads=4, writes=4),
                      iotune={'total_iops_sec': self.IOPS})]
        state = agent_mod.new_state_dir(self)
        agent = self.agent(state)
        guest = self.guest(disks, rounds=0)
        guest.wait_for('.', timeout=60)
        agent.poll()
        time.sleep(3)
        got = self.disk_samples(agent.poll(), guest, 'vda')
        min_ms = 1000.0 / self.IOPS
        # NOTE: a request waits up to 1/IOPS; less when the guest (TCG, on
        # a loaded machine) issues its next request later than the throttle
        # would let it: measured 16.5-19.8 ms of 25 at load average 16.
        self.assertGreater(got['disk.device.read.latency.avg'], 0.5 * min_ms)
        self.assertGreater(got['disk.device.write.latency.avg'],
                           0.5 * min_ms)
        depth = (got['disk.device.read.queue.depth']
                 + got['disk.device.write.queue.depth'])
        self.assertLessEqual(depth, 1.02)
        self.assertGreater(depth, 0.5)
        # Little's law ties the two: iops * latency = depth.
        ops = (got['disk.device.read.requests.delta']
               + got['disk.device.write.requests.delta'])
        self.assertLessEqual(ops / 3.5, self.IOPS * 1.1)


class TestFaults(PollsterTestCase):

    TIMEOUT = 3.0

    def test_stuck_monitor_does_not_delay_other_vms(self):
        state = agent_mod.new_state_dir(self)
        agent = self.agent_with_state(state, read_timeout=self.TIMEOUT)
        disks = [Disk('vda', 'virtio', Workload(reads=1))]
        stuck = self.guest(disks)
        healthy = self.guest(disks)
        stuck.wait_done()
        healthy.wait_done()
        # Both known to the agent, as VMs of a running host are.
        agent.poll()
        os.kill(stuck.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, stuck.pid, signal.SIGCONT)
        start = time.monotonic()
        samples = agent.poll()
        self.assertLess(time.monotonic() - start, self.TIMEOUT + 2.0)
        self.assertEqual(0, self.disk_samples(
            samples, healthy, 'vda')['disk.device.read.requests.delta'])
        self.assertEqual({}, self.disk_samples(samples, stuck, 'vda'))
        self.assertIn('did not answer query-blockstats', self.logger.output)
        # Still stuck next cycle: skipped at once, not waited for again.
        start = time.monotonic()
        samples = agent.poll()
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertIn('still has not returned', self.logger.output)
        self.assertIn('disk.device.read.requests.delta', self.disk_samples(
            samples, healthy, 'vda'))
        # Once QEMU runs again, so does its accounting, nothing lost.
        os.kill(stuck.pid, signal.SIGCONT)
        for _ in range(50):
            got = self.disk_samples(agent.poll(), stuck, 'vda')
            if got:
                break
            time.sleep(0.1)
        self.assertEqual(0, got['disk.device.read.requests.delta'])

    def test_bulk_stats_when_qmp_is_off(self):
        state = agent_mod.new_state_dir(self)
        agent = self.agent_with_state(state, enable_qmp=False)
        guest = self.guest()
        guest.wait_done()
        got = self.disk_samples(agent.poll(), guest, 'hda')
        basic = {k: v for k, v in expected_deltas('hda').items()
                 if '.failed' not in k and '.invalid' not in k}
        self.assertEqual(basic, subset(got, basic))
        self.assertEqual(set(), {k for k in got
                                 if 'failed' in k or 'invalid' in k
                                 or 'idle' in k})

    def test_qmp_refused_falls_back_to_bulk(self):
        state = agent_mod.new_state_dir(self)
        # The read-only socket cannot carry a read-write connection.
        agent = self.agent_with_state(state, libvirt_uri=self.host.ro_uri)
        guest = self.guest()
        guest.wait_done()
        got = self.disk_samples(agent.poll(), guest, 'vdb')
        want = expected_deltas('vdb')
        self.assertEqual(want['disk.device.read.bytes.delta'],
                         got['disk.device.read.bytes.delta'])
        self.assertNotIn('disk.device.read.requests.failed.delta', got)
        agent.poll()
        # Logged once, as one error of the reader.
        refusals = [line for line in self.logger.output.splitlines()
                    if line.startswith('ERROR ceilometer_blockacct.sources')
                    and 'refused' in line]
        self.assertEqual(1, len(refusals), self.logger.output)

    def test_domain_vanishing_between_discovery_and_read(self):
        state = agent_mod.new_state_dir(self)
        agent = self.agent(state)
        gone = self.guest()
        kept = self.guest()
        gone.wait_done()
        kept.wait_done()
        # Discovery sees both; the domain is destroyed before our read.
        discovered = agent.manager.discover(['local_instances'])
        self.assertIn(gone.uuid, [i.id for i in discovered])
        gone.destroy()
        exts = [e for e in agent.manager.extensions
                if e.name == 'disk.device.read.bytes.delta']
        samples = list(exts[0].obj.get_samples(agent.manager, {},
                                               discovered))
        ids = {s.resource_id for s in samples}
        self.assertIn(kept.uuid + '-vda', ids)
        self.assertNotIn(gone.uuid + '-vda', ids)
        self.assertNotIn('ERROR', self.logger.output)
