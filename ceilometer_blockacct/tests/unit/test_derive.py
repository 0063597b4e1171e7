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
"""Derivation: formulas, the first-delta table, epochs and plausibility."""

import testtools

from ceilometer_blockacct import derive
from ceilometer_blockacct import meters

LIMITS = derive.Limits(bytes_per_second=10 ** 9,
                       requests_per_second=10 ** 6, queue_depth=1000)
S = 10 ** 9  # ns per second
BOOT = 3600 * S  # readings happen an hour after boot


def point(counters, epoch='e1', mono_ns=BOOT, account_failed=None):
    return derive.Point(key='uuid-vda', counters=counters, epoch=epoch,
                        mono_ns=mono_ns, account_failed=account_failed)


def base(values, epoch='e1', mono_ns=BOOT - 10 * S):
    return derive.Baseline(epoch, mono_ns, 0.0, values)


RB = meters.BY_NAME['disk.device.read.bytes.delta']
RR = meters.BY_NAME['disk.device.read.requests.delta']
RL = meters.BY_NAME['disk.device.read.latency.avg']
WL = meters.BY_NAME['disk.device.write.latency.avg']
RQ = meters.BY_NAME['disk.device.read.queue.depth']


class TestFirstDeltaTable(testtools.TestCase):

    def test_known_same_epoch(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 5000}),
                                base([1000]), True, LIMITS)
        self.assertEqual(4000, vol)
        self.assertEqual([5000], new.values)
        self.assertEqual('e1', new.epoch)

    def test_known_new_epoch_counts_whole_counter(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 700}, epoch='e2'),
                                base([1000]), True, LIMITS)
        self.assertEqual(700, vol)
        self.assertEqual('e2', new.epoch)

    def test_new_epoch_with_larger_counter_is_still_whole(self):
        vol, _ = derive.delta(RB, point({'rd_bytes': 9000}, epoch='e2'),
                              base([1000]), True, LIMITS)
        self.assertEqual(9000, vol)

    def test_unknown_disk_with_agent_state_counts_whole(self):
        vol, new = derive.delta(RB, point({'rd_bytes': 700}), None, True,
                                LIMITS)
        self.assertEqual(700, vol)
        self.assertEqual([700], new.values)

    def test_no_agent_state_gives_zero_and_logs(self):
        logger = self.useFixture(__import__('fixtures').FakeLogger())
        vol, new = derive.delta(RB, point({'rd_bytes': 700}), None, False,
                                LIMITS)
        self.assertEqual(0, vol)
        self.assertEqual([700], new.values)
        self.assertIn('(700) becomes the baseline and is not billed',
                      logger.output)

    def test_backwards_in_same_epoch_is_a_reset(self):
        vol, _ = derive.delta(RB, point({'rd_bytes': 300}), base([1000]),
                              True, LIMITS)
        self.assertEqual(300, vol)

    def test_absent_counter_gives_nothing_and_keeps_baseline(self):
        self.assertEqual((None, None),
                         derive.delta(RB, point({}), base([1]), True,
                                      LIMITS))

    def test_sum_of_deltas_over_restart_equals_workload(self):
        # Process 1 does 3 + 4 requests, process 2 does 5 + 2.
        readings = [({'rd_operations': 3}, 'e1'),
                    ({'rd_operations': 7}, 'e1'),
                    ({'rd_operations': 5}, 'e2'),
                    ({'rd_operations': 7}, 'e2')]
        bl, total = None, 0
        for i, (counters, epoch) in enumerate(readings):
            vol, bl = derive.delta(RR, point(counters, epoch,
                                             BOOT + i * S), bl, True,
                                   LIMITS)
            total += vol
        self.assertEqual(14, total)


class TestPlausibility(testtools.TestCase):

    def test_implausible_rate_is_refused_and_logged(self):
        logger = self.useFixture(__import__('fixtures').FakeLogger())
        # 10 s at most 1e9 B/s: 1e11 is impossible.
        vol, new = derive.delta(RB, point({'rd_bytes': 10 ** 11}),
                                base([0]), True, LIMITS)
        self.assertIsNone(vol)
        self.assertEqual([10 ** 11], new.values)
        self.assertIn('implausible increase', logger.output)

    def test_whole_counter_bounded_by_uptime(self):
        vol, _ = derive.delta(RR, point({'rd_operations': 10 ** 12},
                                        epoch='e2'),
                              base([0]), True, LIMITS)
        self.assertIsNone(vol)

    def test_implausible_queue_depth(self):
        vol, _ = derive.queue_depth(
            RQ, point({'rd_total_time_ns': 10 ** 7 * S}), base([0]), LIMITS)
        self.assertIsNone(vol)


class TestLatency(testtools.TestCase):

    def test_average(self):
        vol, new = derive.latency(
            RL, point({'rd_total_time_ns': 30 * 10 ** 6, 'rd_operations': 20,
                       'failed_rd_operations': 0}),
            base([10 * 10 ** 6, 10, 0]), LIMITS)
        # 20 ms over 10 requests.
        self.assertEqual(2.0, vol)
        self.assertEqual([30 * 10 ** 6, 20, 0], new.values)

    def test_no_sample_without_completed_requests(self):
        vol, _ = derive.latency(
            RL, point({'rd_total_time_ns': 5, 'rd_operations': 10}),
            base([5, 10, None]), LIMITS)
        self.assertIsNone(vol)

    def test_failed_requests_count_when_qemu_charges_their_time(self):
        # account_failed on: 2 failed requests added time, not operations.
        p = point({'wr_total_time_ns': 12 * 10 ** 6, 'wr_operations': 4,
                   'failed_wr_operations': 2}, account_failed=True)
        vol, _ = derive.latency(WL, p, base([0, 0, 0]), LIMITS)
        self.assertEqual(2.0, vol)

    def test_failed_requests_ignored_when_not_charged(self):
        p = point({'wr_total_time_ns': 12 * 10 ** 6, 'wr_operations': 4,
                   'failed_wr_operations': 2}, account_failed=False)
        vol, _ = derive.latency(WL, p, base([0, 0, 0]), LIMITS)
        self.assertEqual(3.0, vol)

    def test_first_reading_gives_no_sample(self):
        vol, new = derive.latency(
            RL, point({'rd_total_time_ns': 5, 'rd_operations': 1}), None,
            LIMITS)
        self.assertIsNone(vol)
        self.assertIsNotNone(new)

    def test_new_epoch_averages_the_new_process(self):
        vol, _ = derive.latency(
            RL, point({'rd_total_time_ns': 8 * 10 ** 6, 'rd_operations': 4},
                      epoch='e2'),
            base([10 ** 9, 100, None]), LIMITS)
        self.assertEqual(2.0, vol)


class TestQueueDepth(testtools.TestCase):

    def test_littles_law(self):
        # 15 s of request time in 10 s of wall time: 1.5 in flight.
        vol, _ = derive.queue_depth(
            RQ, point({'rd_total_time_ns': 20 * S}), base([5 * S]), LIMITS)
        self.assertEqual(1.5, vol)

    def test_no_sample_across_epochs(self):
        vol, new = derive.queue_depth(
            RQ, point({'rd_total_time_ns': S}, epoch='e2'), base([5 * S]),
            LIMITS)
        self.assertIsNone(vol)
        self.assertEqual('e2', new.epoch)


class TestCompute(testtools.TestCase):

    def test_raw_kinds(self):
        m = meters.BY_NAME['disk.device.idle.time']
        self.assertEqual((42, None), derive.compute(
            m, point({'idle_time_ns': 42}), None, False, LIMITS))
        m = meters.BY_NAME['disk.device.flush.requests']
        self.assertEqual((None, None), derive.compute(
            m, point({}), None, False, LIMITS))

    def test_baseline_json_round_trip_and_validation(self):
        b = base([1, None, 3])
        self.assertEqual(b, derive.Baseline.from_json(b.to_json()))
        self.assertRaises(ValueError, derive.Baseline.from_json,
                          ['e', 'x', 0, []])
        self.assertRaises(ValueError, derive.Baseline.from_json,
                          ['e', 1, 0, ['1']])
