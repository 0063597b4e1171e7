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
"""Real pollsters -> Ceilometer's gnocchi publisher -> a real Gnocchi.

One run, shared by the tests of :class:`TestRoundTrip`: ``gnocchi-setup``
creates our archive policies; a guest started *paused* (its counters are
all zero, SeaBIOS has not run) is polled once by a fresh agent (no state:
the zero reading becomes the baseline), then resumed and polled about once
a second until its finite workload is done and a minute boundary has been
crossed; every poll's samples go through :mod:`.publish` (Ceilometer's own
``GnocchiPublisher``).  The guest is paused during each poll, so the QMP
``query-blockstats`` the test reads next is exactly what the pollsters
read: the independent reference for the average latency.

Polls start at ``X.3`` s of a second and each pollster stamps its samples
(``polling_timestamp``) within ~0.25 s, so all points of one poll share a
1 s bucket.  Once, the test skips a second: that 1 s bucket stays empty.

Expected values come from the guest program's constants
(:func:`fixtures.guest.expected_blockstats`) or from QMP, never from
Gnocchi or the code under test; Gnocchi is read with the ``gnocchi`` CLI
as an operator types it (``--refresh``: no sleeps).

Set ``BLOCKACCT_CAPTURE=FILE`` to append the CLI commands and their table
output to FILE (doc/gnocchi.rst shows such a capture).
"""

import datetime
import itertools
import json
import logging
import math
import os
import shlex
import sys
import time

import fixtures
import libvirt
import testtools
from testtools import content

from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional import agent as agent_mod
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host
from ceilometer_blockacct.tests.functional.fixtures import services
from ceilometer_blockacct.tests.functional import publish

BIN = os.path.dirname(os.path.abspath(sys.executable))
Disk = guest_mod.Disk
Workload = guest_mod.Workload

DISKS = [
    Disk('vda', 'virtio', Workload(reads=4, writes=2, invalid_reads=1,
                                   invalid_writes=1)),
    Disk('vdb', 'virtio', Workload(reads=2, writes=2, failed_reads=1,
                                   failed_writes=1)),
    Disk('hda', 'ide', Workload(writes=1, sectors=1, flushes=2)),
]
PACE_US = 300000
# Seconds past the second at which a poll starts (see the module doc).
SLOT_OFFSET = 0.3
# Poll at least this long, and until this many seconds past a minute.
MIN_SECONDS = 15
# Polls at least this many times: a loaded machine makes polls late and
# skips slots; the run then goes on (idle) until it has them.
MIN_POLLS = MIN_SECONDS // 2
PAST_MINUTE = 6
GAP_AFTER_POLL = 5   # skip one 1 s bucket after this poll
EXTRA_SECONDS = 90   # the guest may take this much longer than planned
# NOTE: the guest is paused while each poll runs (longer on a loaded
# machine): plan its rounds for a slower pace than PACE_US.
PACE_SLOWDOWN = 1.3

BYTE_DELTAS = [(d.target, 'disk.device.%s.bytes.delta' % op)
               for d in DISKS for op in ('read', 'write')]
COUNTERS = [('hda', 'disk.device.flush.requests'),
            ('vdb', 'disk.device.read.requests.failed'),
            ('vdb', 'disk.device.write.requests.failed'),
            ('vda', 'disk.device.read.requests.invalid'),
            ('vda', 'disk.device.write.requests.invalid')]
# Counters whose 1 s rate:sum the test predicts: every poll is processed
# by metricd on its own (refreshed right after publishing).
COUNTERS_1S = [('hda', 'disk.device.flush.requests'),
               ('vda', 'disk.device.read.requests.invalid')]
# What the CLI reads (the rest goes through gnocchiclient's API).
CLI_DELTA = ('vda', 'disk.device.write.bytes.delta')
CLI_COUNTER = ('vda', 'disk.device.read.requests.invalid')
CLI_GAUGES = ('disk.device.read.latency.avg', 'disk.device.read.queue.depth')
# THE query of every doc (meters.LATENCY_QUERY): two reset-safe deltas, ms...
LATENCY = meters.LATENCY_QUERY
# ...and the same ratio on the cumulative counter, exact only in buckets
# without a QEMU restart or a disk's first point (this test has neither).
LATENCY_RATE = LATENCY.replace('total.time.delta sum', 'total.time rate:sum')


def _utc(timestamp):
    """A sample's timestamp (naive UTC isoformat) as epoch seconds."""
    parsed = datetime.datetime.fromisoformat(timestamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def _bucket(seconds, granularity):
    return math.floor(seconds / granularity) * granularity


def _rows_epoch(rows):
    """CLI json rows -> [(bucket start epoch, granularity, value)]."""
    return [(_utc(r['timestamp']), r['granularity'], r['value'])
            for r in rows]


class Poll:
    """What one poll published, and QMP's counters at that moment."""

    def __init__(self, samples, qmp, done):
        self.samples = samples
        self.qmp = qmp
        self.done = done
        self.stamps = {}
        self.values = {}
        for s in samples:
            key = (s['resource_id'], s['counter_name'])
            self.stamps[key] = _utc(s['timestamp'])
            self.values[key] = s['counter_volume']


class RoundTrip(fixtures.Fixture):
    """The shared run: set-up, polls, publishing.  See the module doc."""

    def _setUp(self):
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.WARNING,
            format='%(levelname)s %(name)s %(message)s'))
        self.stack = gnocchi_stack.get_shared_stack()
        self.host = libvirt_host.get_shared_host()
        self.client = self.stack.client()
        self.setup_output = _run([os.path.join(BIN, 'ceilometer-blockacct'),
                                  'gnocchi-setup', '--config-file',
                                  self.stack.ceilometer_config_file])
        self.publisher = self.useFixture(publish.GnocchiPublisher(
            self.stack.ceilometer_config_file))
        state = self.useFixture(fixtures.TempDir()).join('state')
        os.mkdir(state)
        self.agent = self.useFixture(agent_mod.PollingAgent(self.host,
                                                            state))
        now = time.time()
        self.seconds = max(MIN_SECONDS, 60 + PAST_MINUTE - now % 60)
        # NOTE: a round lasts the pace plus a few ms of I/O; the guest
        # should still be busy when the minute turns.
        self.rounds = max(5, int((self.seconds - 2) * 1e6
                                 / (PACE_US * PACE_SLOWDOWN)))
        self.guest = self.useFixture(guest_mod.Guest(
            self.host, DISKS, rounds=self.rounds, pace_us=PACE_US,
            paused=True))
        self.polls = []
        self.gap = None
        self._poll_all(time.time() + self.seconds)

    def rid(self, target):
        return '%s-%s' % (self.guest.uuid, target)

    def unusable(self):
        """Why this run cannot test the 1 s model (None: it can).

        Each poll must fall in one 1 s bucket, and the guest must still
        do I/O across the planned gap: a loaded machine can delay polls
        beyond both.
        """
        for n, poll in enumerate(self.polls):
            if len({int(t) for t in poll.stamps.values()}) != 1:
                return 'poll %d straddles two 1 s buckets' % n
        if self.gap is None or len(self.polls) <= self.gap:
            return 'no poll after the gap'
        for target, name in COUNTERS_1S:
            key = (self.rid(target), name)
            if (self.polls[self.gap].values[key]
                    == self.polls[self.gap - 1].values[key]):
                return 'no I/O of %s on %s in the gap' % (name, target)
        return None

    def _poll_all(self, end):
        slot = math.ceil(time.time()) + SLOT_OFFSET
        deadline = end + EXTRA_SECONDS
        done_polls = 0
        while (done_polls < 1 or time.time() < end
               or len(self.polls) < MIN_POLLS):
            now = time.time()
            if now > deadline:
                raise AssertionError('guest not done after %d polls: %r'
                                     % (len(self.polls),
                                        self.guest.serial()[-80:]))
            while slot < now:
                slot += 1   # late: this bucket stays empty (modelled)
            time.sleep(slot - now)
            poll = self._poll_once()
            self.polls.append(poll)
            done_polls += poll.done
            slot += 1
            if len(self.polls) == GAP_AFTER_POLL:
                self.gap = len(self.polls)
                slot += 1

    def _poll_once(self):
        dom = self.guest.domain
        if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            dom.suspend()
        try:
            # NOTE: DONE read while paused: no I/O can follow this poll.
            done = 'DONE' in self.guest.serial()
            samples = self.agent.poll()
            qmp = self.guest.blockstats()
        finally:
            dom.resume()
        self.publisher.publish(samples)
        # NOTE: have metricd's work done for these metrics now, so the
        # next point is processed on its own (see test_rate_sum_1s).
        for target, name in COUNTERS_1S:
            self.client.metric.get_measures(
                name, resource_id=self.rid(target), refresh=True,
                granularity=1, aggregation='rate:sum')
        return Poll(samples, qmp, done)

    def expected(self, target, name):
        """Final counter of ``name`` on ``target`` from the constants."""
        disk = {d.target: d for d in DISKS}[target]
        want = guest_mod.expected_blockstats(disk, self.rounds,
                                             boot=disk is DISKS[0])
        return want[meters.BY_NAME[name].source]


_run = services.run_checked


class TestRoundTrip(testtools.TestCase):
    """Checks on the shared run.

    What an operator would type is run with the ``gnocchi`` CLI (one disk:
    vda); the other disks and meters are read through gnocchiclient's
    API, the same ``GET .../measures?refresh=true``: the CLI costs ~1 s of
    CPU per call.
    """

    trip = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # NOTE: one more run when a loaded machine made polls too late for
        # the 1 s model (RoundTrip.unusable); the tests still check it.
        for attempt in (1, 2):
            cls.trip = RoundTrip()
            cls.trip.setUp()
            why = cls.trip.unusable()
            if why is None or attempt == 2:
                break
            cls.trip.cleanUp()

    @classmethod
    def tearDownClass(cls):
        cls.trip.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.addDetail('run-log', content.text_content(
            self.trip.logger.output))

    def gnocchi(self, *args):
        """Run the ``gnocchi`` CLI with the stack's environment."""
        env = dict(os.environ, PYTHONWARNINGS='ignore', **self.trip.stack.env)
        argv = [os.path.join(BIN, 'gnocchi')] + list(args)
        out = _run(argv + ['-f', 'json'], env)
        capture = os.environ.get('BLOCKACCT_CAPTURE')
        if capture:
            table = _run(argv, env)
            with open(capture, 'a') as f:
                f.write('$ gnocchi %s\n%s\n' % (
                    ' '.join(shlex.quote(a) for a in args), table))
        return json.loads(out)

    def measures(self, target, name, aggregation, granularity, cli=False):
        """[(bucket epoch, granularity, value)], metricd's work done."""
        if cli:
            rows = _rows_epoch(self.gnocchi(
                'measures', 'show', '--resource-id', self.trip.rid(target),
                '--aggregation', aggregation,
                '--granularity', str(granularity), '--refresh', name))
        else:
            rows = [(t.timestamp(), g, v)
                    for t, g, v in self.trip.client.metric.get_measures(
                        name, resource_id=self.trip.rid(target),
                        aggregation=aggregation, granularity=granularity,
                        refresh=True)]
        return rows

    def test_setup_created_or_kept_our_policies(self):
        lines = self.trip.setup_output.splitlines()
        for policy in ('blockacct-rate', 'blockacct-gauge',
                       'blockacct-delta'):
            self.assertTrue(any(line.startswith('archive policy %s: '
                                                % policy)
                                for line in lines), lines)
        self.assertIn('resource type instance_disk: ok', lines)
        self.assertEqual([], self.trip.publisher.warnings)

    def test_the_run_filled_several_buckets(self):
        trip = self.trip
        # NOTE: a poll that starts late leaves its second out.
        self.assertGreaterEqual(len(trip.polls), MIN_POLLS)
        for poll in trip.polls:
            self.assertEqual(1, len({int(t) for t in poll.stamps.values()}),
                             'one poll, one 1 s bucket')
        minutes = {_bucket(p.stamps[(trip.rid('vda'),
                                     'disk.device.read.total.time')], 60)
                   for p in trip.polls}
        self.assertGreaterEqual(len(minutes), 2)

    def test_byte_deltas_sum_to_the_workload(self):
        for target, name in BYTE_DELTAS:
            want = self.trip.expected(target, name)
            for granularity in (1, 60, 3600):
                rows = self.measures(target, name, 'sum', granularity,
                                     cli=(target, name) == CLI_DELTA)
                self.assertEqual(want, sum(v for _t, _g, v in rows),
                                 (target, name, granularity))
        self.assertGreater(self.trip.expected(*CLI_DELTA), 0)

    def test_rate_sum_is_the_counter_increase(self):
        # The first point is 0 (the guest started paused), so the
        # increase is the whole counter.
        for target, name in COUNTERS:
            first = self.trip.polls[0].values[(self.trip.rid(target), name)]
            self.assertEqual(0, first)
            want = self.trip.expected(target, name)
            self.assertGreater(want, 0, name)
            for granularity in (60, 3600):
                rows = self.measures(target, name, 'rate:sum', granularity,
                                     cli=(target, name) == CLI_COUNTER)
                self.assertEqual(want, sum(v for _t, _g, v in rows),
                                 (target, name, granularity))
                last = self.measures(target, name, 'last', granularity)
                self.assertEqual(want, last[-1][2])

    def test_rate_sum_1s_drops_the_increase_across_an_empty_bucket(self):
        # Gnocchi's rate:* differences a point with the points from the
        # previous bucket on (carbonara.GroupedTimeSeries.derived) when
        # metricd processes it: across an empty 1 s bucket, the increase
        # is dropped, and the bucket after the gap has no rate:sum at all.
        trip = self.trip
        for target, name in COUNTERS_1S:
            key = (trip.rid(target), name)
            points = [(p.stamps[key], p.values[key]) for p in trip.polls]
            kept, dropped, buckets = 0, 0, set()
            for (t0, v0), (t1, v1) in zip(points, points[1:]):
                if _bucket(t1, 1) - _bucket(t0, 1) <= 1:
                    kept += v1 - v0
                    buckets.add(_bucket(t1, 1))
                else:
                    dropped += v1 - v0
            gap_t0, gap_v0 = points[trip.gap - 1]
            gap_t1, gap_v1 = points[trip.gap]
            self.assertGreaterEqual(_bucket(gap_t1, 1) - _bucket(gap_t0, 1),
                                    2)
            self.assertGreater(gap_v1 - gap_v0, 0, 'no I/O in the gap')
            rows = self.measures(target, name, 'rate:sum', 1,
                                 cli=(target, name) == CLI_COUNTER)
            self.assertEqual(kept, sum(v for _t, _g, v in rows), name)
            self.assertEqual(trip.expected(target, name), kept + dropped)
            self.assertNotIn(_bucket(gap_t1, 1), {t for t, _g, _v in rows})
            self.assertEqual(buckets, {t for t, _g, _v in rows})
            # The reset-safe deltas lose nothing across the same gap.
            deltas = self.measures(target, name + '.delta', 'sum', 1)
            self.assertEqual(kept + dropped, sum(v for _t, _g, v in deltas))

    def test_latency_and_queue_depth_gauges(self):
        rid = self.trip.rid('vda')
        for name in ('disk.device.read.latency.avg',
                     'disk.device.write.latency.avg',
                     'disk.device.read.queue.depth',
                     'disk.device.write.queue.depth'):
            for granularity in (1, 60, 3600):
                rows = self.measures(
                    'vda', name, 'mean', granularity,
                    cli=granularity == 60 and name in CLI_GAUGES)
                self.assertNotEqual([], rows, (name, granularity))
                self.assertGreater(max(v for _t, _g, v in rows), 0, name)
            polled = [p.values[(rid, name)] for p in self.trip.polls
                      if (rid, name) in p.values]
            count = self.measures('vda', name, 'count', 3600)
            self.assertEqual(len(polled), sum(v for _t, _g, v in count))

    def _expected_latency(self, op, granularity):
        """{bucket: Δtime/Δops in ms} from QMP at the poll times."""
        trip = self.trip
        prefix = {'read': 'rd', 'write': 'wr'}[op]
        time_key = (trip.rid('vda'), 'disk.device.%s.total.time' % op)
        ops_key = (trip.rid('vda'), 'disk.device.%s.requests.delta' % op)
        by_bucket = {}
        for poll in trip.polls:
            bucket = _bucket(poll.stamps[time_key], granularity)
            self.assertEqual(bucket, _bucket(poll.stamps[ops_key],
                                             granularity))
            by_bucket[bucket] = poll.qmp['vda']
        previous = trip.polls[0].qmp['vda']   # all zero: started paused
        want = {}
        for bucket in sorted(by_bucket):
            last = by_bucket[bucket]
            ops = (last['%s_operations' % prefix]
                   - previous['%s_operations' % prefix])
            if ops:
                want[bucket] = ((last['%s_total_time_ns' % prefix]
                                 - previous['%s_total_time_ns' % prefix])
                                / ops / 1e6)
            previous = last
        return want

    def test_average_latency_from_aggregates(self):
        rid = self.trip.rid('vda')
        for op in ('read', 'write'):
            # Have metricd's work done (the aggregates API cannot refresh).
            self.measures('vda', 'disk.device.%s.total.time' % op,
                          'rate:sum', 60)
            self.measures('vda', 'disk.device.%s.total.time.delta' % op,
                          'sum', 60)
            self.measures('vda', 'disk.device.%s.requests.delta' % op,
                          'sum', 60)
            for granularity, query in itertools.product(
                    (60, 3600), (LATENCY, LATENCY_RATE)):
                want = self._expected_latency(op, granularity)
                self.assertNotEqual({}, want)
                got = self.trip.client.aggregates.fetch(
                    query % {'op': op}, resource_type='instance_disk',
                    search={'=': {'original_resource_id': rid}},
                    granularity=granularity)
                series = got['measures']['aggregated']
                got = {t.timestamp(): v for t, _g, v in series}
                self.assertEqual(sorted(want), sorted(
                    t for t, v in got.items() if not math.isnan(v)))
                for bucket, value in want.items():
                    self.assertLess(abs(got[bucket] - value), value * 0.01,
                                    (op, granularity, bucket, query))
        # The same through the CLI, as doc/gnocchi.rst shows it.
        rows = self.gnocchi('aggregates', '--resource-type', 'instance_disk',
                            '--granularity', '60', LATENCY % {'op': 'read'},
                            'original_resource_id="%s"' % rid)
        self.assertEqual(
            sorted(self._expected_latency('read', 60)),
            sorted(_utc(r['timestamp']) for r in rows
                   if r['value'] is not None
                   and not math.isnan(r['value'])))
