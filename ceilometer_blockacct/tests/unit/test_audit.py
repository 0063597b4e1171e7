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
"""The audit's pure logic: pairs, buckets, the balance, repair amounts.

Histories are polls as the chain produces them: each poll has a counter
value and its delta, stamped apart by up to a quarter of a second (one
pollster each); :func:`gnocchi_buckets` aggregates them as Gnocchi does
(``last`` of the cumulative meter, ``sum`` of the delta meter, per 1 s
bucket).
"""

import argparse
import math

import testtools

from ceilometer_blockacct.audit import auditor
from ceilometer_blockacct.audit import balance as balance_mod
from ceilometer_blockacct.audit import pairs
from ceilometer_blockacct.audit import repair
from ceilometer_blockacct.audit import timeline
from ceilometer_blockacct.cmd import audit as cmd_audit
from ceilometer_blockacct import meters

T0 = 1_800_000_000.0
END = T0 + 200


def polls(increments, start=T0 + 1.5, interval=1.0, skew=0.3,
          first=1000):
    """One poll per increment: ``(t_counter, value, t_delta, delta)``.

    The delta is stamped ``skew`` s after the counter (negative: before;
    a list: one after the other, as Ceilometer runs the pollsters of a
    cycle in a random order), so some pairs straddle a bucket boundary.
    """
    skews = skew if isinstance(skew, list) else [skew]
    out, value = [], first
    for k, inc in enumerate(increments):
        value += inc
        t = start + k * interval
        out.append((t, value, t + skews[k % len(skews)], inc))
    return out


def gnocchi_buckets(history, drop_deltas=(), extra=(), g=1.0):
    """What Gnocchi holds of ``history``.

    Polls whose index is in ``drop_deltas`` lost their delta sample;
    ``extra`` is ``[(ts, amount)]`` posted to the delta meter.
    """
    lasts, sums = {}, {}
    for k, (tc, value, td, delta) in enumerate(history):
        lasts[math.floor(tc / g) * g] = value
        if k not in drop_deltas:
            b = math.floor(td / g) * g
            sums[b] = sums.get(b, 0) + delta
    for ts, amount in extra:
        b = math.floor(ts / g) * g
        sums[b] = sums.get(b, 0) + amount
    return balance_mod.merge(
        [(ts, g, v) for ts, v in sorted(lasts.items())],
        [(ts, g, v) for ts, v in sorted(sums.items())])


IDLE = [0] * 8
# Idle, busy (7 a poll) for a minute and a half, idle: as a disk is.
STEADY = IDLE + [7] * 90 + IDLE * 3


class TestPairs(testtools.TestCase):

    def test_every_delta_meter_has_its_counter_s_cumulative_meter(self):
        found = {p.delta: p for p in pairs.pairs()}
        deltas = [m for m in meters.METERS if m.kind == meters.KIND_DELTA]
        self.assertEqual(sorted(m.name for m in deltas), sorted(found))
        upstream = {'disk.device.read.bytes', 'disk.device.write.bytes',
                    'disk.device.read.requests',
                    'disk.device.write.requests'}
        for m in deltas:
            pair = found[m.name]
            self.assertEqual(m.source, pair.counter)
            self.assertIn(pair.cumulative, set(meters.BY_NAME) | upstream)

    def test_read_and_write_bytes_and_requests_pair_with_upstream(self):
        found = {p.delta: p.cumulative for p in pairs.pairs()}
        self.assertEqual('disk.device.read.bytes',
                         found['disk.device.read.bytes.delta'])
        self.assertEqual('disk.device.write.requests',
                         found['disk.device.write.requests.delta'])
        self.assertEqual('disk.device.flush.requests',
                         found['disk.device.flush.requests.delta'])
        self.assertEqual('disk.device.read.total.time',
                         found['disk.device.read.total.time.delta'])

    def test_only_pairs_the_resources_file_maps(self):
        mapped = pairs.mapped_meters({'resources': [
            {'resource_type': 'instance', 'metrics': {
                'disk.device.flush.requests': None}},
            {'resource_type': 'instance_disk', 'metrics': {
                'disk.device.flush.requests': None,
                'disk.device.flush.requests.delta': None,
                'disk.device.read.bytes.delta': None}}]})
        self.assertEqual(
            [pairs.Pair('flush_operations',
                        'disk.device.flush.requests.delta',
                        'disk.device.flush.requests')],
            pairs.pairs(mapped))

    def test_refused_meter_per_quantity(self):
        self.assertEqual('disk.device.bytes.refused',
                         pairs.refused_meter(meters.BYTES))
        self.assertEqual('disk.device.requests.refused',
                         pairs.refused_meter(meters.REQUESTS))
        self.assertIsNone(pairs.refused_meter(meters.TIME))


class TestIncreases(testtools.TestCase):

    def test_first_unknown_then_growth_then_new_process_from_zero(self):
        self.assertEqual(
            [(0, 1, 0, False, True), (1, 1, 5, False, False),
             (2, 1, 0, False, False), (3, 1, 4, True, False)],
            balance_mod.increases([(0, 1, 10), (1, 1, 15), (2, 1, 15),
                                   (3, 1, 4)]))


# Pollster orders as Ceilometer runs them: the delta up to a quarter of a
# second before or after its counter; at .9 s, one in three straddles.
SKEWS = (0.25, -0.2, 0.1, 0.2, -0.25, 0.05, 0.15, -0.1, 0.0)


class TestWalk(testtools.TestCase):

    def walk(self, buckets, start=T0 + 4, end=END):
        return balance_mod.walk(buckets, start, end, settle=10)

    def test_split_polls_are_no_difference(self):
        for skew in (0.3, -0.3, list(SKEWS)):
            for phase in (0.5, 0.9, 0.05):
                history = polls(STEADY, start=T0 + 1 + phase, skew=skew)
                balance = self.walk(gnocchi_buckets(history))
                self.assertEqual(0, balance.net, (skew, phase))
                self.assertIsNotNone(balance.exact)
                # NOTE: when most polls straddle, the settled level is
                # one poll off while they do: offsetting windows.
                self.assertIn(balance.status,
                              (balance_mod.OK, balance_mod.OFFSET))
                self.assertEqual(0, sum(w.difference
                                        for w in balance.windows))
        for skew in (0.3, -0.3, list(SKEWS)):
            history = polls(STEADY, start=T0 + 1.5, skew=skew)
            balance = self.walk(gnocchi_buckets(history))
            self.assertEqual((0, (), balance_mod.OK),
                             (balance.net, balance.windows, balance.status))

    def test_range_totals_are_what_grew_and_what_was_billed(self):
        history = polls(IDLE + list(range(100)) + IDLE * 2, skew=0.2)
        balance = self.walk(gnocchi_buckets(history), start=T0 + 30.0)
        # From the last moment before T0 + 30 when no poll was on its
        # way (the idle polls are at T0 + 1.5 ... T0 + 8.5).
        # NOTE: ... up to the end of the last bucket (T0 + 124.5).
        self.assertEqual((T0 + 9, T0 + 125), balance.exact)
        want = sum(inc for t, _v, _td, inc in history if t >= T0 + 9)
        self.assertEqual((want, want, 0),
                         (balance.truth, balance.billed, balance.net))

    def test_a_lost_delta_is_one_settled_window_of_its_amount(self):
        history = polls(STEADY, start=T0 + 1.5, skew=list(SKEWS))
        balance = self.walk(gnocchi_buckets(history, drop_deltas={40}))
        self.assertEqual((7, 7, balance_mod.MISSING),
                         (balance.net, balance.settled_net, balance.status))
        [window] = balance.windows
        self.assertEqual((7, True, False),
                         (window.difference, window.settled, window.reset))
        # The window holds the poll that lost its delta.
        self.assertLessEqual(window.start, history[40][0])
        self.assertGreater(window.end, history[40][0])

    def test_a_loss_in_the_range_s_first_bucket_is_the_range_s(self):
        history = polls(IDLE + [7] * 40, start=T0 + 1.9,
                        skew=[0.2, -0.2, 0.05])
        # Poll 8 is stamped at T0 + 9.9, before the range that starts at
        # T0 + 10; poll 9 at T0 + 10.9.  The audit starts at the last
        # moment no poll was on its way, T0 + 8: both are the range's.

        def walk(lost):
            return balance_mod.walk(
                gnocchi_buckets(history, drop_deltas=lost), T0 + 10, END, 10)
        self.assertEqual((14, T0 + 8), (walk({8, 9}).net,
                                        walk({8, 9}).start))
        self.assertEqual(7, walk({9}).net)
        self.assertEqual(7, walk({8}).net)
        history = polls(IDLE * 2 + [7] * 40, start=T0 + 1.9,
                        skew=[0.2, -0.2, 0.05])
        # Idle until T0 + 17.9: poll 8 is the range's no more.
        self.assertEqual(0, walk({8}).net)

    def test_a_crash_loss_heals_at_the_next_counter_value(self):
        # The agent commits poll 40 and dies before sending either of its
        # samples; restarted, its next poll (5 s later) bills from poll
        # 40's baseline and the counter's next value heals the gap.
        before = polls(STEADY[:40])
        value = before[-1][1] + 7 + 30
        after = polls(STEADY[40:90] + IDLE, start=T0 + 46.5,
                      first=value - 7)
        after[0] = after[0][:3] + (30,)
        balance = self.walk(gnocchi_buckets(before + after))
        self.assertEqual((7, 7, balance_mod.MISSING),
                         (balance.net, balance.settled_net, balance.status))
        [window] = balance.windows
        self.assertEqual((T0 + 46, T0 + 47, 37, 30),
                         (window.start, window.end, window.truth,
                          window.billed))

    def test_billed_twice_is_a_surplus_never_repaired(self):
        history = polls(STEADY)
        balance = self.walk(gnocchi_buckets(
            history, extra=[(history[50][2] + 0.01, 7)]))
        self.assertEqual((-7, balance_mod.SURPLUS),
                         (balance.net, balance.status))
        self.assertEqual(([], []), repair.plan_repairs(balance))

    def test_a_new_process_counts_from_zero(self):
        # Save/restore: the counter starts again at 0; the agent bills the
        # new process's whole counter.
        old = polls(STEADY[:50])
        new = polls(STEADY[:40] + IDLE, start=T0 + 60.5, first=0)
        balance = self.walk(gnocchi_buckets(old + new), start=T0 + 10)
        # From T0 + 8 (the last idle poll) on: 42 busy polls of the old
        # process, 32 of the new.
        self.assertEqual((0, (), T0 + 8, 7 * 74, 7 * 74),
                         (balance.net, balance.windows, balance.start,
                          balance.truth, balance.billed))

    def test_a_new_disk_s_first_reading_is_not_a_difference(self):
        # Its first delta is its whole counter: the counter's first value
        # is where the comparison starts.
        for skew in (-0.4, list(SKEWS)):
            history = polls([7] * 60 + IDLE, start=T0 + 30.9, skew=skew,
                            first=0)
            balance = self.walk(gnocchi_buckets(history))
            self.assertEqual((0, ()), (balance.net, balance.windows), skew)
        # Every poll straddling: its first delta shows only when the disk
        # idles, as an offset window; the range adds up.
        history = polls([7] * 60 + IDLE, start=T0 + 30.9, skew=0.3, first=0)
        balance = self.walk(gnocchi_buckets(history))
        self.assertEqual((0, balance_mod.OFFSET),
                         (balance.net, balance.status))

    def test_moving_at_the_end_is_unsettled_and_not_counted(self):
        history = polls(STEADY)
        end = history[-1][0] + 0.1     # the last delta is not in yet
        balance = self.walk(gnocchi_buckets(history[:-1]) + [
            balance_mod.Bucket(math.floor(history[-1][0]), 1, 7, 0)], end=end)
        self.assertEqual(0, balance.net)
        self.assertEqual([balance_mod.UNSETTLED],
                         [w.status for w in balance.windows])

    def test_no_counter_value_nothing_to_compare(self):
        self.assertIsNone(self.walk([balance_mod.Bucket(T0 + 20, 1, 0, 5)]))


class TestRepairs(testtools.TestCase):

    def walk(self, buckets, end=END):
        return balance_mod.walk(buckets, T0 + 4, end, settle=10)

    def test_repair_then_the_next_run_finds_nothing(self):
        history = polls(IDLE + list(range(1, 91)) + IDLE * 3,
                        start=T0 + 1.9, skew=list(SKEWS))
        balance = self.walk(gnocchi_buckets(history, drop_deltas={40, 70}))
        repairs, notes = repair.plan_repairs(balance)
        self.assertEqual([], notes)
        self.assertEqual([63, 33], [r.amount for r in repairs])
        posted = [(r.ts + 0.5, r.amount) for r in repairs]
        again = self.walk(gnocchi_buckets(history, drop_deltas={40, 70},
                                          extra=posted))
        self.assertEqual((0, 0, (), balance_mod.OK),
                         (again.net, again.settled_net, again.windows,
                          again.status))
        self.assertEqual(([], []), repair.plan_repairs(again))

    def test_a_late_repair_offsets_the_loss(self):
        # Posted at the time of the run, after the window: the range adds
        # up and nothing is posted again.
        history = polls(STEADY)
        balance = self.walk(gnocchi_buckets(
            history, drop_deltas={30}, extra=[(history[100][0], 7)]))
        self.assertEqual((0, balance_mod.OFFSET),
                         (balance.net, balance.status))
        self.assertEqual([7, -7], [w.difference for w in balance.windows])
        self.assertEqual(([], []), repair.plan_repairs(balance))

    def test_a_later_surplus_offsets_part_of_a_loss(self):
        history = polls(IDLE + list(range(1, 91)) + IDLE * 3)
        balance = self.walk(gnocchi_buckets(
            history, drop_deltas={30}, extra=[(history[100][0], 10)]))
        self.assertEqual(13, balance.net)
        repairs, _notes = repair.plan_repairs(balance)
        self.assertEqual([13], [r.amount for r in repairs])

    def test_nothing_while_the_disk_is_busy_at_every_poll(self):
        # No moment without a poll on its way after the loss: the audit
        # says what the settled level says, the repair waits.
        history = polls([7] * 120, start=T0 + 1.5, skew=list(SKEWS))
        balance = self.walk(gnocchi_buckets(history, drop_deltas={60}))
        self.assertEqual((7, None, balance_mod.MISSING),
                         (balance.net, balance.exact, balance.status))
        repairs, notes = repair.plan_repairs(balance)
        self.assertEqual([], repairs)
        self.assertIn('no moment without a poll on its way', notes[0])

    def test_never_repairs_a_straddle_that_looks_settled(self):
        # A steady workload whose every poll straddles two buckets from
        # some time on (the cycle drifted): the balance sits one poll
        # higher for good -- just as if a delta had been lost.  Nothing
        # tells them apart until the disk idles, so nothing is repaired.
        early = polls([0] * 8 + [7] * 40, start=T0 + 1.5, skew=0.1)
        late = polls([7] * 60, start=T0 + 49.9, skew=0.2,
                     first=early[-1][1])
        balance = self.walk(gnocchi_buckets(early + late), end=T0 + 105)
        self.assertEqual((7, None), (balance.net, balance.exact))
        self.assertEqual(([], ['no moment without a poll on its way at '
                               'both ends of the range (a disk busy at '
                               'every poll): not repaired']),
                         repair.plan_repairs(balance))
        # Once it idles, it adds up.
        idle = polls(IDLE * 2, start=T0 + 109.9, skew=0.2,
                     first=late[-1][1])
        balance = self.walk(gnocchi_buckets(early + late + idle))
        self.assertEqual(0, balance.net)
        self.assertEqual([7, -7], [w.difference for w in balance.windows])

    def test_no_repair_where_the_counter_went_down(self):
        old = polls(STEADY[:50])
        # The new process's first delta (its whole counter) is lost.
        new = polls([7] * 40 + IDLE, start=T0 + 60.5, first=0)
        balance = self.walk(gnocchi_buckets(old + new, drop_deltas={50}))
        self.assertEqual(7, balance.net)
        [window] = balance.windows
        self.assertTrue(window.reset)
        repairs, notes = repair.plan_repairs(balance)
        self.assertEqual([], repairs)
        self.assertIn('the counter went down', notes[0])

    def test_no_repair_near_what_the_agent_refused(self):
        history = polls(STEADY)
        balance = self.walk(gnocchi_buckets(history, drop_deltas={40}))
        [window] = balance.windows
        repairs, notes = repair.plan_repairs(
            balance, refused=[(window.start + 1, 7)], settle=10)
        self.assertEqual([], repairs)
        self.assertIn('refused', notes[0])
        repairs, notes = repair.plan_repairs(
            balance, refused=[(window.start - 60, 7)], settle=10)
        self.assertEqual([7], [r.amount for r in repairs])


class TestGnocchiTime(testtools.TestCase):

    POLICY = {'name': 'blockacct-delta', 'back_window': 1, 'definition': [
        {'granularity': '0:00:01', 'timespan': '1:00:00'},
        {'granularity': '0:01:00', 'timespan': '7 days, 0:00:00'},
        {'granularity': '1:00:00', 'timespan': '400 days, 0:00:00'}]}

    def test_pieces_read_the_finest_granularity_still_kept(self):
        now = 1_800_003_630.5
        self.assertEqual([(1.0, now - 600, now)], timeline.pieces(
            [self.POLICY], now - 600, now, now))
        self.assertEqual(
            [(60.0, now - 7200, 1_800_000_060.0),
             (1.0, 1_800_000_060.0, now)],
            timeline.pieces([self.POLICY], now - 7200, now, now))

    def test_pieces_only_granularities_both_policies_have(self):
        coarse = {'definition': [{'granularity': 60, 'points': 100}]}
        now = 1_800_000_000.0
        self.assertEqual([(60.0, now - 600, now)], timeline.pieces(
            [self.POLICY, coarse], now - 600, now, now))
        self.assertEqual([], timeline.pieces(
            [{'definition': [{'granularity': 5, 'points': 9}]}, coarse],
            now - 600, now, now))

    def test_earliest_accepted_is_back_window_coarsest_periods(self):
        self.assertEqual(1_799_996_400.0, repair.earliest_accepted(
            self.POLICY, 1_800_003_599.0))
        self.assertEqual(1_800_000_000.0, repair.earliest_accepted(
            self.POLICY, 1_800_003_600.0))

    def test_stamp_stays_in_its_bucket_and_off_every_microsecond(self):
        for now_ns in (0, 1000, 123_456_789_000, 999_999_999):
            ns = repair.stamp(T0 + 0.75, 1.0, now_ns)
            self.assertEqual(int(T0), ns // 10 ** 9)
            self.assertNotEqual(0, ns % 1000)
        self.assertEqual('2027-01-15T08:00:00.000000001+00:00',
                         timeline.iso_ns(int(T0) * 10 ** 9 + 1))

    def test_repairs_of_one_bucket_never_share_a_timestamp(self):
        # Gnocchi keeps one value per timestamp: the second would replace
        # the first (posted, but not billed).
        repairs = [repair.Repair(None, 7, T0 + 0.2),
                   repair.Repair(None, 5, T0 + 0.7),
                   repair.Repair(None, 3, T0 - 7200)]
        for now_ns in (1_800_003_600 * 10 ** 9, 1_800_003_600 * 10 ** 9 - 2,
                       1_800_003_600 * 10 ** 9 + 999):
            times = repair.timestamps(repairs, T0 - 3600, 1.0,
                                      repair.AT_WINDOW, now_ns)
            self.assertEqual([False, False, True], [t[1] for t in times])
            self.assertEqual(3, len({t[0] for t in times}))
            self.assertEqual([int(T0), int(T0)],
                             [t[0] // 10 ** 9 for t in times[:2]])
            self.assertEqual([], [t for t, _l in times if t % 1000 == 0])
        now = repair.timestamps(repairs, T0 - 3600, 1.0, repair.AT_NOW,
                                1_800_003_600 * 10 ** 9)
        self.assertEqual([True] * 3, [t[1] for t in now])
        self.assertEqual(3, len({t[0] for t in now}))


class TestCommand(testtools.TestCase):
    """The command's pure parts: times and rows."""

    def test_times(self):
        now = T0
        self.assertEqual(now, cmd_audit.parse_time('now', now))
        self.assertEqual(now - 5400, cmd_audit.parse_time('-90m', now))
        self.assertEqual(now - 2 * 86400, cmd_audit.parse_time('-2d', now))
        self.assertEqual(1_800_000_000.0, cmd_audit.parse_time(
            '2027-01-15T08:00:00', now))
        self.assertEqual(1_800_000_000.0, cmd_audit.parse_time(
            '2027-01-15T10:00:00+02:00', now))
        for bad in ('yesterday', '-2w', '2027-13-01'):
            self.assertRaises(argparse.ArgumentTypeError,
                              cmd_audit.parse_time, bad, now)

    def test_rows_a_total_its_windows_then_its_repairs(self):
        history = polls(STEADY, start=T0 + 1.5)
        balance = balance_mod.walk(
            gnocchi_buckets(history, drop_deltas={40}), T0 + 4, END,
            settle=10)
        pair = pairs.pairs()[0]
        result = auditor.Result('uuid-vda', pair, balance)
        [window] = balance.windows
        [segment] = balance.segments
        result.repairs.append(repair.Repair(segment, 7, END, late=True))
        total, row, posted = cmd_audit.rows([result], END)
        self.assertEqual(
            ('uuid-vda', pair.delta, pair.cumulative, timeline.iso(T0 + 4),
             timeline.iso(balance.end), balance.truth, balance.billed, 7,
             'repaired', 7),
            total[:10])
        self.assertIn('billed late', total[10])
        self.assertEqual(('uuid-vda', pair.delta, pair.cumulative,
                          timeline.iso(window.start), timeline.iso(window.end),
                          window.truth, window.billed, 7, 'missing', 0, ''),
                         row)
        self.assertEqual(('uuid-vda', pair.delta, pair.cumulative,
                          timeline.iso(segment.start),
                          timeline.iso(segment.end), segment.truth,
                          segment.billed, 7, 'repaired', 7,
                          'posted at %s' % timeline.iso(END)), posted)
        self.assertEqual(0, result.left)
        unaudited = auditor.Result('uuid-vdb', pair, notes=['no last'])
        self.assertEqual(
            [('uuid-vdb', pair.delta, pair.cumulative, '', timeline.iso(END),
              None, None, None, 'unaudited', 0, 'no last')],
            cmd_audit.rows([unaudited], END))


def read_apart(lag=0.25, rate=10, busy=(T0 + 20, T0 + 80), interval=2.0):
    """Polls whose counter is upstream's reading, ``lag`` s after ours.

    The disk counts ``rate`` a second while ``busy``: the cumulative meter
    (upstream's pollster) is ahead of our delta by what it did in ``lag``.
    """
    def counter(x):
        return 1000 + int(rate * min(max(x - busy[0], 0), busy[1] - busy[0]))
    out, t, ours = [], T0 + 1.5, None
    while t < END - 2:
        now = counter(t)
        delta = 0 if ours is None else now - ours
        ours = now
        out.append((t + lag, counter(t + lag), t + 0.1, delta))
        t += interval
    return out


class TestReadApart(testtools.TestCase):
    """Upstream's cumulative meters are read apart from our deltas."""

    def walk(self, buckets, end, idle_only):
        return balance_mod.walk(buckets, T0 + 4, end, settle=10,
                                idle_only=idle_only)

    def test_the_pairs_read_apart_are_upstreams(self):
        apart = {p.cumulative for p in pairs.pairs() if p.read_apart}
        self.assertEqual(set(pairs.UPSTREAM_CUMULATIVE.values()), apart)

    def test_busy_disk_is_no_loss_to_repair(self):
        # Nothing lost: while busy the counter is 2 ahead of the deltas.
        buckets = gnocchi_buckets(read_apart())
        hazard = self.walk(buckets, T0 + 70, idle_only=False)
        # Taken for exact, the gap would be "repaired": billed twice.
        self.assertEqual([2], [r.amount for r in
                               repair.plan_repairs(hazard)[0]])
        balance = self.walk(buckets, T0 + 70, idle_only=True)
        self.assertIsNone(balance.exact)
        self.assertEqual([], repair.plan_repairs(balance)[0])
        # Once the disk idles, the range adds up.
        self.assertEqual(0, self.walk(buckets, END, idle_only=True).net)

    def test_a_loss_is_repaired_once_the_disk_idles(self):
        history = read_apart()
        lost = history[20][3]
        balance = self.walk(gnocchi_buckets(history, drop_deltas={20}), END,
                            idle_only=True)
        self.assertEqual(20, lost)
        self.assertEqual(lost, balance.net)
        self.assertIsNotNone(balance.exact)
        self.assertEqual([lost], [r.amount for r in
                                  repair.plan_repairs(balance)[0]])

    def test_a_repair_stays_in_the_stretch_that_lost_it(self):
        # Two busy stretches with an idle one between them (the fault
        # runs: a fault, the guest paused, the next fault).  Upstream's
        # reading jitters around ours, so both stretches have windows;
        # the second loses a poll.  The agent's repair audits from before
        # the first: its amount must land in the second stretch, or an
        # audit of the second stretch alone posts it again (billed twice;
        # seen in the fault run).
        history = rounds_read_apart([(T0 + 100, T0 + 160),
                                     (T0 + 200, T0 + 260)], LAGS)
        lost = next(k for k, p in enumerate(history) if p[0] > T0 + 230)
        buckets = gnocchi_buckets(history, drop_deltas={lost})
        agent = balance_mod.walk(buckets, T0 + 30, T0 + 398, settle=10,
                                 idle_only=True)
        # The windows say so too: the first stretch's jitter adds up to 0
        # (a window found late is placed where its level began, not at
        # the first time the balance had that value).
        self.assertEqual((0, history[lost][3]), (
            sum(w.difference for w in agent.windows if w.start < T0 + 180),
            sum(w.difference for w in agent.windows if w.start > T0 + 180)))
        repairs, notes = repair.plan_repairs(agent)
        self.assertEqual(([], history[lost][3]),
                         (notes, sum(r.amount for r in repairs)))
        self.assertEqual([], [r.ts for r in repairs if r.ts < T0 + 200])
        posted = [(r.ts + 0.5, r.amount) for r in repairs]
        for start in (T0 + 30, T0 + 180):
            again = balance_mod.walk(
                gnocchi_buckets(history, drop_deltas={lost}, extra=posted),
                start, T0 + 398, settle=10, idle_only=True)
            self.assertEqual((0, []), (again.net, repair.plan_repairs(
                again)[0]))


# Upstream's reading, seconds after (> 0) or before ours, poll after poll.
LAGS = [-0.33, 0.55, -0.45, 0.25, -0.5, -0.3, 0.6, -0.35, 0.17, -0.05,
        -0.06, -0.01, -0.37, 0.4, -0.49, -0.32, -0.58, -0.28, -0.11, 0.48,
        -0.15, -0.46, -0.29, 0.59, -0.52, 0.14, -0.15, 0.19, -0.19, 0.23,
        0.0, 0.18, 0.48, 0.1, -0.43, -0.52, 0.54, -0.01, -0.37, 0.54, 0.09,
        0.27, 0.46, -0.26, -0.17, 0.45, -0.44, 0.32, -0.48, 0.23]


def rounds_read_apart(busy, lags, interval=2.0, per_round=8):
    """Polls of a disk doing a round of I/O each whole second while busy.

    Our delta is stamped 50 ms after our reading; the cumulative meter is
    upstream's reading, ``lags[k]`` s from ours.
    """
    def counter(x):
        return 1000 + per_round * sum(
            max(0, min(math.floor(x), b) - a) for a, b in busy if x > a)
    out, t, ours, k = [], T0 + 1.3, None, 0
    while t < T0 + 398:
        now = counter(t)
        delta = 0 if ours is None else now - ours
        ours = now
        lag = lags[k % len(lags)]
        out.append((t + lag, counter(t + lag), t + 0.05, delta))
        t += interval
        k += 1
    return out
