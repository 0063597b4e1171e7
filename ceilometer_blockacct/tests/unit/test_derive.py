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
"""Derivation: formulas, the placement table, identities, plausibility."""

import logging

import fixtures
import testtools

from ceilometer_blockacct import derive
from ceilometer_blockacct import meters
from ceilometer_blockacct import monitoring
from ceilometer_blockacct.sources import records

LIMITS = derive.Limits(bytes_per_second=10 ** 9,
                       requests_per_second=10 ** 6, queue_depth=1000)
S = 10 ** 9  # ns per second
NOW = 3600 * S  # readings happen an hour after boot
E1 = records.Epoch('boot', 1, 100 * S)
E2 = records.Epoch('boot', 2, 200 * S)


def point(counters, epoch=E1, mono_ns=NOW, account_failed=None,
          device_id='virtio-disk0/libvirt-1-format', is_new=False,
          lifetime_s=None, conflict=None):
    return derive.Point(key='uuid-vda', counters=counters, epoch=epoch,
                        mono_ns=mono_ns, account_failed=account_failed,
                        device_id=device_id, is_new=is_new,
                        lifetime_s=lifetime_s, conflict=conflict)


def base(values, epoch=E1, mono_ns=NOW - 10 * S,
         device_id='virtio-disk0/libvirt-1-format', refused=None):
    return derive.Baseline(epoch, device_id, mono_ns, values, refused)


RB = meters.BY_NAME['disk.device.read.bytes.delta']
RR = meters.BY_NAME['disk.device.read.requests.delta']
RL = meters.BY_NAME['disk.device.read.latency.avg']
WL = meters.BY_NAME['disk.device.write.latency.avg']
RQ = meters.BY_NAME['disk.device.read.queue.depth']
IDLE = meters.BY_NAME['disk.device.idle.time']
RT = meters.BY_NAME['disk.device.read.total.time']


class Base(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def assertLogged(self, level, text):
        lines = [line for line in self.log.output.splitlines()
                 if text in line]
        self.assertTrue(lines, '%r not logged in:\n%s' % (text,
                                                          self.log.output))


class TestPlacement(Base):

    def test_same_identity_bills_the_increase(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 5000}),
                                base([1000]), LIMITS)
        self.assertEqual(4000, vol)
        self.assertEqual([5000, None], new.values)
        self.assertEqual((E1, NOW), (new.epoch, new.mono_ns))

    def test_new_process_proven_new_bills_the_whole_counter(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 700}, epoch=E2,
                                          is_new=True),
                                base([1000]), LIMITS)
        self.assertEqual(700, vol)
        self.assertEqual(E2, new.epoch)

    def test_new_process_not_proven_new_bills_zero_and_logs(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 9000}, epoch=E2),
                                base([1000]), LIMITS)
        self.assertEqual(0, vol)
        self.assertEqual([9000, None], new.values)
        self.assertLogged('WARNING', 'not billed')
        self.assertIn('amount 9000', self.log.output)

    def test_no_baseline_not_new_is_zero_new_is_whole(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 9000}), None, LIMITS)
        self.assertEqual((0, [9000, None]), (vol, new.values))
        vol, new = derive.delta(RB, point({'rd_bytes': 9000}, is_new=True),
                                None, LIMITS)
        self.assertEqual((9000, [9000, None]), (vol, new.values))

    def test_replugged_device_is_a_new_identity(self):
        # Same process, another device: the old baseline does not apply.
        p = point({'rd_bytes': 300}, device_id='virtio-disk0/libvirt-5-fmt',
                  is_new=True)
        vol, new = derive.delta(RB, p, base([5000]), LIMITS)
        self.assertEqual(300, vol)
        self.assertEqual('virtio-disk0/libvirt-5-fmt', new.device_id)

    def test_replug_reading_more_than_old_baseline_is_not_a_continuation(
            self):
        # Scenario 7: 6 GiB on a re-plugged disk against a 5 GiB baseline
        # of the old device bills nothing when its age is unknown.
        p = point({'rd_bytes': 6 * 2 ** 30},
                  device_id='virtio-disk0/libvirt-5-fmt')
        vol, new = derive.delta(RB, p, base([5 * 2 ** 30]), LIMITS)
        self.assertEqual(0, vol)
        self.assertEqual('virtio-disk0/libvirt-5-fmt', new.device_id)

    def test_unknown_device_id_matches_either_side(self):
        vol, _ = derive.delta(RB, point({'rd_bytes': 5000}, device_id=None),
                              base([1000]), LIMITS)
        self.assertEqual(4000, vol)

    def test_backwards_within_one_identity_bills_nothing_keeps_higher(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 10}), base([1000]),
                                LIMITS)
        self.assertEqual((None, None), (vol, new))
        self.assertLogged('ERROR', 'went backwards')

    def test_stale_reading_bills_nothing(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 900},
                                          mono_ns=NOW - 20 * S),
                                base([1000]), LIMITS)
        self.assertEqual((None, None), (vol, new))
        self.assertLogged('ERROR', 'stale')

    def test_stale_reading_of_an_older_process_bills_nothing(self):
        # Scenario 2 across a restart: a cached reading of the old process
        # derived after the new process's baseline was committed.
        vol, new = derive.delta(RB, point({'rd_bytes': 10 ** 6},
                                          mono_ns=NOW - 20 * S, is_new=True),
                                base([5], epoch=E2), LIMITS)
        self.assertEqual((None, None), (vol, new))
        self.assertLogged('ERROR', 'stale')

    def test_conflicting_reading_bills_nothing(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 5000}, is_new=True,
                                          conflict='device seen as vdb'),
                                base([1000]), LIMITS)
        self.assertEqual((None, None), (vol, new))
        self.assertLogged('ERROR', 'device seen as vdb')

    def test_absent_counter_gives_nothing_and_keeps_baseline(self):
        vol, new = derive.delta(RB, point({}), base([1000]), LIMITS)
        self.assertEqual((None, None), (vol, new))

    def test_sum_of_deltas_over_a_restart_equals_the_workload(self):
        # Process 1 reads 100, 250, 400; process 2 (proven new) 30, 80.
        b, total = base([100]), 0
        for i, (value, epoch) in enumerate([(250, E1), (400, E1), (30, E2),
                                            (80, E2)]):
            p = point({'rd_bytes': value}, epoch=epoch,
                      mono_ns=NOW + i * S, is_new=(epoch == E2))
            vol, b = derive.delta(RB, p, b, LIMITS)
            total += vol
        self.assertEqual(300 + 80, total)


class TestPlausibility(Base):

    def test_implausible_increase_is_refused_and_never_a_baseline(self):
        # Scenario 1: a counter read as 2^64-1 once, then normal again.
        b = base([1000])
        vol, kept = derive.delta(RB, point({'rd_bytes': 2 ** 64 - 1}), b,
                                 LIMITS)
        self.assertIsNone(vol)
        self.assertEqual([1000], kept.values[:1])
        self.assertLogged('ERROR', 'implausible increase')
        vol, new = derive.delta(RB, point({'rd_bytes': 3000},
                                          mono_ns=NOW + 10 * S),
                                kept, LIMITS)
        self.assertEqual(2000, vol)
        self.assertIsNone(new.refused)

    def test_a_real_jump_is_not_billed_but_what_follows_is(self):
        b = base([1000])
        jump = 10 ** 15
        _, kept = derive.delta(RB, point({'rd_bytes': jump}), b, LIMITS)
        vol, new = derive.delta(RB, point({'rd_bytes': jump + 500},
                                          mono_ns=NOW + 10 * S),
                                kept, LIMITS)
        self.assertEqual(500, vol)
        self.assertEqual([jump + 500, None], new.values)

    def test_whole_counter_bounded_by_the_lifetime(self):
        # 1 GB/s at most: 5 s of life cannot have read 10 GB.
        vol, new = derive.delta(RB, point({'rd_bytes': 10 * 10 ** 9},
                                          is_new=True, lifetime_s=5),
                                None, LIMITS)
        self.assertEqual((None, None), (vol, new))
        vol, _ = derive.delta(RB, point({'rd_bytes': 4 * 10 ** 9},
                                        is_new=True, lifetime_s=5),
                              None, LIMITS)
        self.assertEqual(4 * 10 ** 9, vol)

    def test_implausible_first_reading_never_becomes_the_baseline(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 2 ** 63},
                                          lifetime_s=5), None, LIMITS)
        self.assertEqual((None, None), (vol, new))

    def test_latency_of_refused_increases_is_not_published(self):
        # Scenario 14: 1e-27 ms from a delta the delta meter refused.
        b = base([1000, 10, 0])
        vol, new = monitoring.latency(
            RL, point({'rd_total_time_ns': 2000, 'rd_operations': 10 ** 30,
                       'failed_rd_operations': 0}), b, LIMITS)
        self.assertEqual((None, None), (vol, new))

    def test_implausible_queue_depth(self):
        vol, _ = monitoring.queue_depth(
            RQ, point({'rd_total_time_ns': 2000 * 10 * S}),
            base([0]), LIMITS)
        self.assertIsNone(vol)

    def test_idle_time_longer_than_the_process_is_not_published(self):
        self.assertIsNone(monitoring.raw(
            IDLE, point({'idle_time_ns': 10 ** 12}, lifetime_s=60), LIMITS))
        self.assertLogged('ERROR', 'implausible value')
        self.assertEqual(30 * S, monitoring.raw(
            IDLE, point({'idle_time_ns': 30 * S}, lifetime_s=60), LIMITS))

    def test_cumulative_counter_bounded_by_the_lifetime(self):
        # queue_depth 1000: at most 1000 s of request time per second.
        self.assertIsNone(monitoring.raw(
            RT, point({'rd_total_time_ns': 1001 * 60 * S}, lifetime_s=60),
            LIMITS))
        self.assertEqual(5 * S, monitoring.raw(
            RT, point({'rd_total_time_ns': 5 * S}, lifetime_s=60), LIMITS))


class TestLatency(Base):

    def test_average(self):
        vol, new = monitoring.latency(
            RL, point({'rd_total_time_ns': 5 * 10 ** 6, 'rd_operations': 14,
                       'failed_rd_operations': 0}),
            base([1 * 10 ** 6, 10, 0]), LIMITS)
        self.assertEqual(1.0, vol)
        self.assertEqual([5 * 10 ** 6, 14, 0], new.values)

    def test_no_sample_without_completed_requests(self):
        vol, new = monitoring.latency(
            RL, point({'rd_total_time_ns': 10, 'rd_operations': 4}),
            base([10, 4, None]), LIMITS)
        self.assertIsNone(vol)
        self.assertIsNotNone(new)

    def test_failed_requests_count_when_qemu_charges_their_time(self):
        vol, _ = monitoring.latency(
            WL, point({'wr_total_time_ns': 9 * 10 ** 6, 'wr_operations': 4,
                       'failed_wr_operations': 2}, account_failed=True),
            base([0, 1, 0]), LIMITS)
        # 9 ms over 3 completed + 2 failed requests.
        self.assertEqual(1.8, vol)

    def test_failed_requests_ignored_when_not_charged(self):
        vol, _ = monitoring.latency(
            WL, point({'wr_total_time_ns': 9 * 10 ** 6, 'wr_operations': 4,
                       'failed_wr_operations': 2}, account_failed=False),
            base([0, 1, 0]), LIMITS)
        self.assertEqual(3.0, vol)

    def test_first_reading_of_an_old_identity_gives_no_sample(self):
        vol, new = monitoring.latency(
            RL, point({'rd_total_time_ns': 10, 'rd_operations': 4}), None,
            LIMITS)
        self.assertIsNone(vol)
        self.assertEqual([10, 4, None], new.values)

    def test_new_process_averages_its_whole_life(self):
        vol, _ = monitoring.latency(
            RL, point({'rd_total_time_ns': 6 * 10 ** 6, 'rd_operations': 3},
                      epoch=E2, is_new=True),
            base([10 ** 9, 1000, 0]), LIMITS)
        self.assertEqual(2.0, vol)

    def test_backwards_keeps_the_baseline(self):
        vol, new = monitoring.latency(
            RL, point({'rd_total_time_ns': 6, 'rd_operations': 3}),
            base([10 ** 9, 1000, 0]), LIMITS)
        self.assertEqual((None, None), (vol, new))


class TestQueueDepth(Base):

    def test_littles_law(self):
        # 20 s of request time in 10 s of wall time: 2 in flight on average.
        vol, _ = monitoring.queue_depth(
            RQ, point({'rd_total_time_ns': 25 * S}), base([5 * S]), LIMITS)
        self.assertEqual(2.0, vol)

    def test_no_sample_across_identities(self):
        vol, new = monitoring.queue_depth(
            RQ, point({'rd_total_time_ns': 25 * S}, epoch=E2),
            base([5 * S]), LIMITS)
        self.assertIsNone(vol)
        self.assertEqual(E2, new.epoch)


class TestCompute(Base):

    def test_raw_kinds(self):
        c = meters.BY_NAME['disk.device.flush.requests']
        self.assertEqual((7, None), derive.compute(
            c, point({'flush_operations': 7}), None, LIMITS))

    def test_baseline_json_round_trip_and_validation(self):
        b = base([1, None], refused=[5, [7, None]])
        self.assertEqual(b, derive.Baseline.from_json(b.to_json()))
        old = records.Epoch.from_key('boot:7')
        self.assertEqual(records.Epoch('boot', 7, None), old)
        for bad in [{'epoch': 'x'}, [],
                    {'epoch': 'b:1:-', 'device': None, 'mono_ns': 'x',
                     'values': []},
                    {'epoch': 'b:1:-', 'device': None, 'mono_ns': 1,
                     'values': [-1]},
                    {'epoch': 'b:1:-', 'device': None, 'mono_ns': 1,
                     'values': [2 ** 64]}]:
            self.assertRaises(ValueError, derive.Baseline.from_json, bad)


class TestImplausiblePolicy(Base):
    """[blockacct] implausible_policy and the refused amounts."""

    def run_policy(self, policy, increase):
        limits = derive.Limits(10 ** 9, 10 ** 6, 1000, 64 * 2 ** 20, policy)
        refused = []
        p = point({'rd_bytes': 1000 + increase, 'rd_operations': 10 ** 6})
        p.on_refused = lambda meter, amount: refused.append(
            (meter.name, amount))
        vol, new = derive.delta(RB, p, base([1000, 0]), limits)
        return vol, new, refused

    def test_refuse_bills_nothing_and_counts_it_all(self):
        # 10 s at 1 GB/s at most: 10 GB; 25 GB is refused whole.
        vol, new, refused = self.run_policy(derive.REFUSE, 25 * 10 ** 9)
        self.assertIsNone(vol)
        self.assertEqual([1000, 0], new.values)    # the old baseline kept
        self.assertEqual([(RB.name, 25 * 10 ** 9)], refused)

    def test_cap_bills_the_bound_and_counts_the_rest(self):
        vol, new, refused = self.run_policy(derive.CAP, 25 * 10 ** 9)
        self.assertEqual(10 * 10 ** 9, vol)
        self.assertEqual(1000 + 25 * 10 ** 9, new.values[0])
        self.assertEqual([(RB.name, 15 * 10 ** 9)], refused)

    def test_bill_bills_it_all_and_logs(self):
        vol, new, refused = self.run_policy(derive.BILL, 25 * 10 ** 9)
        self.assertEqual(25 * 10 ** 9, vol)
        self.assertEqual([], refused)
        self.assertLogged('ERROR', 'billed all the same')

    def test_plausible_increase_refuses_nothing(self):
        vol, _, refused = self.run_policy(derive.REFUSE, 5 * 10 ** 9)
        self.assertEqual((5 * 10 ** 9, []), (vol, refused))


class TestBytesPerRequest(Base):

    def test_bytes_need_requests_to_carry_them(self):
        limits = derive.Limits(10 ** 9, 10 ** 6, 1000, 2 ** 20)
        # Two requests of at most 1 MiB carry at most 2 MiB.
        ok, _ = derive.delta(RB, point({'rd_bytes': 2 * 2 ** 20,
                                        'rd_operations': 12}),
                             base([0, 10]), limits)
        self.assertEqual(2 * 2 ** 20, ok)
        bad, _ = derive.delta(RB, point({'rd_bytes': 2 * 2 ** 20 + 1,
                                         'rd_operations': 12}),
                              base([0, 10]), limits)
        self.assertIsNone(bad)
        self.assertLogged('ERROR', 'implausible increase')

    def test_unknown_request_counter_bounds_by_rate_only(self):
        limits = derive.Limits(10 ** 9, 10 ** 6, 1000, 2 ** 20)
        vol, _ = derive.delta(RB, point({'rd_bytes': 5 * 2 ** 20}),
                              base([0, None]), limits)
        self.assertEqual(5 * 2 ** 20, vol)
