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
"""The chain benchmark's arithmetic, /proc parsing and replay reader.

Speed itself is never asserted here: the benchmark prints it.
"""

import json
import os

import testtools

from benchmarks.bench_chain import analyse
from benchmarks.bench_chain import apiprofile
from benchmarks.bench_chain import procs
from benchmarks.bench_chain import replay
from ceilometer_blockacct.sources import records

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def _recorded(kind):
    with open(os.path.join(
            DATA, 'errors.%s.libvirt-9.0.0.qemu-7.2.22.json' % kind)) as f:
        return json.load(f)


class TestAnalyse(testtools.TestCase):

    def test_per_1000(self):
        self.assertEqual({'a': 2.0, 'b': 0.5},
                         analyse.per_1000({'a': 4.0, 'b': 1.0}, 2000))
        self.assertEqual({'a': None}, analyse.per_1000({'a': 4.0}, 0))

    def test_a_sawtooth_keeps_up(self):
        # metricd empties the backlog every pass: the floor stays at 0.
        saw = [(t, (t % 5) * 100) for t in range(0, 60, 2)]
        self.assertTrue(analyse.keeps_up(saw, tolerance=50))

    def test_a_rising_floor_does_not(self):
        rising = [(t, 100 * t + (t % 5) * 10) for t in range(0, 60, 2)]
        self.assertFalse(analyse.keeps_up(rising, tolerance=50))

    def test_floor_within_one_poll_keeps_up(self):
        series = [(0, 0), (5, 30), (10, 0), (15, 40), (20, 40), (25, 40)]
        self.assertTrue(analyse.keeps_up(series, tolerance=40))
        self.assertFalse(analyse.keeps_up(series, tolerance=39))

    def test_too_few_reads_say_nothing(self):
        self.assertIsNone(analyse.keeps_up([(0, 1), (5, 9)], 0))

    def test_points_kept(self):
        # 1 s for 1 h at 60 s polling: one point a minute, an hour kept.
        self.assertEqual(60, analyse.points_kept(1, 3600, 60))
        self.assertEqual(3600, analyse.points_kept(1, 3600, 1))
        self.assertEqual(1440, analyse.points_kept(60, 7 * 86400, 10))
        self.assertEqual(24, analyse.points_kept(3600, 400 * 86400, 1))
        self.assertEqual(288, analyse.points_kept(300, 30 * 86400, 60))

    def test_storage_bytes(self):
        ours = ([(1, 3600), (60, 7 * 86400), (3600, 400 * 86400)], 2)
        upstream = ([(300, 30 * 86400)], 2)
        # (60 + 1440 + 24) points x 2 methods x 9 B, twice.
        self.assertEqual(2 * (60 + 1440 + 24) * 2 * 9,
                         analyse.storage_bytes([ours, ours], 60))
        self.assertEqual(288 * 2 * 9, analyse.storage_bytes([upstream], 60))

    def test_capacity(self):
        self.assertEqual((30, 60), analyse.capacity(
            [(2, True), (8, True), (30, True), (60, False)]))
        self.assertEqual((None, 2), analyse.capacity([(2, False)]))
        self.assertEqual((8, None), analyse.capacity([(2, True), (8, True)]))

    def test_projected_disks(self):
        # 4 CPU s per 1000 samples, 1 sample per disk per second: 2 cores
        # carry 500 disks.
        self.assertEqual(500.0, analyse.projected_disks(
            {'a': 3.0, 'b': 1.0, 'c': None}, 1.0))
        self.assertIsNone(analyse.projected_disks({'a': None}, 1.0))

    def _point(self, side, interval, disks, cpu, samples, up=True):
        return analyse.summarise({
            'side': side, 'interval': interval, 'vms': disks // 2,
            'disks': disks, 'synthetic_vms': max(0, disks // 2 - 4),
            'cpu': cpu, 'samples': samples, 'window': 100.0,
            'per_poll': 10,
            'backlog': [(0, 0), (50, 0 if up else 500), (100, 0 if up
                                                         else 1000)]})

    def test_rows_and_ratios(self):
        points = [
            self._point('upstream', 10, 2, {'gnocchi-api': 1.0,
                                            'metricd': 1.0}, 1000),
            self._point('upstream', 10, 8, {'gnocchi-api': 3.0,
                                            'metricd': 1.0}, 2000),
            self._point('billing', 10, 2, {'gnocchi-api': 1.0,
                                           'metricd': 2.0}, 1000),
            self._point('billing', 10, 8, {'gnocchi-api': 9.0,
                                           'metricd': 3.0}, 4000, up=False),
        ]
        rows = {r['side']: r for r in analyse.rows(points)}
        self.assertEqual((8, None), (rows['upstream']['max_disks_ok'],
                                     rows['upstream']['first_disks_failed']))
        self.assertEqual((2, 8), (rows['billing']['max_disks_ok'],
                                  rows['billing']['first_disks_failed']))
        self.assertFalse(rows['billing']['synthetic'])
        self.assertEqual('metricd', rows['billing']['point']['bottleneck'])
        # The row shows the capacity point.
        self.assertEqual(2, rows['billing']['point']['disks'])
        self.assertEqual(8, rows['upstream']['point']['disks'])
        # Compared at the largest N both measured: 8 disks.  3.0 against
        # 2.0 CPU s per 1000 samples; billing's 4000 samples over 8 disks
        # against upstream's 2000 over 8; gnocchi-api 2.25 against 1.5.
        self.assertEqual({('billing', 10): {
            'disks': 8, 'per_sample': 1.5, 'per_disk': 3.0, 'api': 1.5}},
            analyse.ratios(points))

    def test_before_after(self):
        points = [
            self._point('all/meters', 1, 4, {'gnocchi-api': 3.0,
                                             'metricd': 1.0}, 1000),
            self._point('all', 1, 4, {'gnocchi-api': 0.5, 'metricd': 1.5},
                        1000),
            self._point('billing', 1, 4, {'gnocchi-api': 1.0}, 1000),
        ]
        self.assertEqual({('all', 1): {'disks': 4, 'per_sample': 0.5,
                                       'per_disk': 0.5, 'api': 0.5 / 3}},
                         analyse.before_after(points))

    def test_api_requests(self):
        lines = [
            '[pid: 1|app: 0|req: 1/1] 127.0.0.1 () {38 vars in 809 bytes} '
            '[Sat Nov 28 06:09:29 2026] POST /v1/batch/resources/metrics/'
            'measures?create_metrics=True => generated 0 bytes in 27 msecs '
            '(HTTP/1.1 202) 3 headers in 105 bytes (1 switches on core 1)',
            '[pid: 1|app: 0|req: 2/2] 127.0.0.1 () {38 vars in 809 bytes} '
            '[Sat Nov 28 06:09:30 2026] POST /v1/batch/resources/metrics/'
            'measures?create_metrics=True => generated 0 bytes in 13 msecs '
            '(HTTP/1.1 202) 3 headers in 105 bytes (1 switches on core 1)',
            '[pid: 2|app: 0|req: 1/3] 127.0.0.1 () {34 vars in 929 bytes} '
            '[Sat Nov 28 06:13:51 2026] PATCH /v1/resource/instance_disk/'
            '98db5cce-2f11-40c1-9a50-6b725781de38-hda => generated 3228 '
            'bytes in 39 msecs (HTTP/1.1 200) 3 headers in 97 bytes',
            'Sat Nov 28 06:13:51 2026 - some uwsgi line',
        ]
        self.assertEqual({
            'POST /v1/batch/resources/metrics/measures 202': [2, 40],
            'PATCH /v1/resource/instance_disk/ID 200': [1, 39],
        }, analyse.api_requests(lines))


class TestApiProfileBodies(testtools.TestCase):

    ROWS = [('m.%d' % i, 'blockacct-delta', 'B') for i in range(30)]

    def test_per_meter_is_one_request_per_meter(self):
        got = [json.loads(b) for b in apiprofile.bodies(
            ['r1', 'r2'], self.ROWS, 'per-meter', 'T')]
        self.assertEqual(30, len(got))
        self.assertEqual({'r1': {'m.0': {
            'archive_policy_name': 'blockacct-delta', 'unit': 'B',
            'measures': [{'timestamp': 'T', 'value': 1.0}]}},
            'r2': {'m.0': {
                'archive_policy_name': 'blockacct-delta', 'unit': 'B',
                'measures': [{'timestamp': 'T', 'value': 1.0}]}}}, got[0])

    def test_per_profile_is_one_request_per_50_samples(self):
        got = [json.loads(b) for b in apiprofile.bodies(
            ['r1', 'r2'], self.ROWS, 'per-profile', 'T')]
        self.assertEqual([50, 10], [sum(len(v) for v in body.values())
                                    for body in got])

    def test_category(self):
        self.assertEqual('indexer (SQL)', apiprofile.category(
            '/venv/lib/python3.11/site-packages/sqlalchemy/orm/query.py'))
        self.assertEqual('policy checks', apiprofile.category(
            '/venv/site-packages/oslo_policy/_checks.py'))
        self.assertEqual('other', apiprofile.category('~'))


class TestProcs(testtools.TestCase):

    def test_parse_stat_name_with_parentheses(self):
        line = ('42 (uwsgi (worker) 1) S 7 42 42 0 -1 4194560 1 2 3 4 '
                '150 50 10 5 20 0 1 0 100 1000 10')
        self.assertEqual((42, 7, 42, 215), procs.parse_stat(line))

    def test_members_follow_children(self):
        snap = {
            10: (1, 10, 5, 'uwsgi master'),
            11: (10, 10, 7, 'uwsgi worker'),
            12: (11, 99, 3, 'helper in another session'),
            20: (1, 20, 9, '/usr/lib/erlang/beam.smp -sname bench-1'),
            21: (20, 20, 1, 'erl_child_setup'),
            30: (1, 30, 4, 'unrelated'),
        }
        self.assertEqual({10, 11, 12}, procs.members(snap, session=10))
        self.assertEqual({20, 21}, procs.members(
            snap, cmdline_has='-sname bench-1'))

    def test_components_sum_ticks(self):
        comps = procs.Components({'me': procs.by_session(os.getsid(0))})
        self.assertGreaterEqual(comps.cpu()['me'], 0.0)


class FakeReader:

    def __init__(self, readings):
        self.readings = readings
        self.asked = []

    def read(self, ids):
        self.asked.append(sorted(ids))
        found = records.Readings(self.readings)
        found.listing = records.Listing('boot', {'real-1': 3}, 5)
        return found

    def close(self):
        pass


class TestReplay(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.spec = {
            'synthetic': 2,
            'template': {
                'uuid': 'real-1',
                'reply': _recorded('qmp-query-blockstats')['answer'],
                'xml': _recorded('xmldesc')['answer']}}

    def test_synthetic_ids_are_stable_and_distinct(self):
        ids = replay.synthetic_ids(3)
        self.assertEqual(ids, replay.synthetic_ids(3))
        self.assertEqual(3, len({u for u, _n in ids}))
        self.assertEqual('bench-chain-syn-0002', ids[2][1])

    def test_advance_multiplies_counters_only(self):
        reply = json.loads(self.spec['template']['reply'])
        stats = replay.advance(reply, 3)['return'][1]['stats']
        self.assertEqual(3 * 4, stats['rd_operations'])
        self.assertEqual(3 * 16384, stats['rd_bytes'])
        self.assertEqual(3 * 2, stats['failed_rd_operations'])
        self.assertEqual(29027094, stats['idle_time_ns'])
        self.assertIs(True, stats['account_failed'])
        # The recorded reply itself is left as it was.
        self.assertEqual(4, reply['return'][1]['stats']['rd_operations'])

    def test_reader_replays_clones_and_lists_them(self):
        real = FakeReader({'real-1': 'a real reading'})
        reader = replay.ReplayReader(real, self.spec)
        (u0, _), (u1, _) = replay.synthetic_ids(2)
        first = reader.read(['real-1', u0, u1])
        second = reader.read([u0])
        self.assertEqual([['real-1'], []], real.asked)
        self.assertEqual('a real reading', first['real-1'])
        self.assertEqual({'real-1': 3, u0: replay.DOM_ID_BASE,
                          u1: replay.DOM_ID_BASE + 1},
                         first.listing.domains)
        reading = first[u0]
        self.assertEqual(u0, reading.instance_id)
        self.assertEqual(replay.DOM_ID_BASE, reading.epoch.dom_id)
        self.assertEqual(['hda', 'vda', 'vdb'], sorted(reading.disks))
        # The recorded counters, then twice them: a steady delta.
        self.assertEqual(4, reading.disks['vdb'].counters['rd_operations'])
        self.assertEqual(8, second[u0].disks['vdb'].counters[
            'rd_operations'])
        self.assertEqual(reading.epoch, second[u0].epoch)
