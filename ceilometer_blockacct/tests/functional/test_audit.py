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
"""``ceilometer-blockacct audit`` against a real Gnocchi, losses injected.

Each test writes the measures a polling agent would have published for
one disk -- the counter (cumulative meter) and its delta meter, one poll
a second (or a minute), each poll's two samples stamped up to 0.25 s
apart -- leaving out on purpose the delta measures a crash loses, then
runs the real command with the publisher's credentials
(``--config-file``).  What is missing, where, and what the repair posts
come from the history the test wrote, not from the code under test.
(The fault runs of the real chain are audited in :mod:`.test_faults`.)
"""

import datetime
import json
import os
import random
import subprocess
import sys
import time
import uuid

from gnocchiclient import exceptions as g_exc
import testtools

from ceilometer_blockacct.cmd import gnocchi_setup
from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack

CLI = os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                   'ceilometer-blockacct')

BYTES = ('disk.device.write.bytes.delta', 'disk.device.write.bytes')
FLUSHES = ('disk.device.flush.requests.delta', 'disk.device.flush.requests')


def iso(ts):
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).isoformat()


class History:
    """What the agent published for one disk, poll by poll."""

    def __init__(self, start, polls, interval=1.0, seed=0, first=10 ** 6,
                 idle=10):
        rng = random.Random(seed)
        self.polls = []
        value = first
        for k in range(polls):
            t = start + k * interval
            # Idle at both ends: moments when no poll is on its way.
            busy = idle <= k < polls - idle
            inc = rng.randrange(1, 50000) if busy else 0
            value += inc
            # One pollster each, in a random order: up to 0.25 s apart.
            self.polls.append((t, value, t + rng.uniform(-0.25, 0.25), inc))

    def cumulative(self):
        return [{'timestamp': iso(t), 'value': v}
                for t, v, _td, _d in self.polls]

    def deltas(self, lost=()):
        return [{'timestamp': iso(td), 'value': d}
                for k, (_t, _v, td, d) in enumerate(self.polls)
                if k not in lost]

    def total(self):
        """What every delta adds up to: nothing lost, nothing twice."""
        return sum(p[3] for p in self.polls)

    def grew(self, since):
        """The counter's increase in the 1 s buckets from ``since`` on."""
        return sum(p[3] for p in self.polls if int(p[0]) >= since)

    def billed(self, since, lost=()):
        """The deltas stamped in the 1 s buckets from ``since`` on."""
        return sum(p[3] for k, p in enumerate(self.polls)
                   if int(p[2]) >= since and k not in lost)


class TestAudit(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.stack = gnocchi_stack.get_shared_stack()
        self.client = self.stack.client()
        gnocchi_setup.setup(self.client)
        self.project = str(uuid.uuid4())
        self.now = time.time()

    def disk(self, *pairs, policy=None):
        """A new instance_disk with the meters of ``pairs``."""
        instance = str(uuid.uuid4())
        names = [name for pair in pairs for name in pair]
        metrics = {name: {'archive_policy_name': policy or (
            meters.BY_NAME[name].archive_policy if name in meters.BY_NAME
            # Upstream's cumulative meters: on our rate policy, as the
            # reliability guide asks for auditing them.
            else meters.POLICY_RATE)} for name in names}
        resource = self.client.resource.create(meters.RESOURCE_TYPE, {
            'id': meters.resource_id(instance, 'vda'),
            'project_id': self.project, 'user_id': str(uuid.uuid4()),
            'instance_id': instance, 'name': 'vda', 'metrics': metrics})
        return resource

    def publish(self, resource, pair, history, lost=(), extra=()):
        delta, cumulative = pair
        ids = resource['metrics']
        self.client.metric.add_measures(ids[cumulative],
                                        history.cumulative())
        self.client.metric.add_measures(
            ids[delta], history.deltas(lost) + [
                {'timestamp': iso(t), 'value': v} for t, v in extra])

    def billed(self, resource, meter, granularity=1):
        rows = self.client.metric.get_measures(
            resource['metrics'][meter], aggregation='sum',
            granularity=granularity, refresh=True)
        return int(sum(v for _t, _g, v in rows))

    def audit(self, *args, resource=None):
        argv = [CLI, 'audit', '--config-file',
                self.stack.ceilometer_config_file, '-f', 'json']
        argv += ['--project', self.project] if resource is None else [
            '--resource-id', resource['original_resource_id']]
        result = subprocess.run(argv + list(args), capture_output=True,
                                text=True, timeout=300)
        rows = json.loads(result.stdout) if result.stdout.strip() else []
        return result.returncode, rows, result.stderr

    def test_lost_deltas_found_repaired_once(self):
        disk = self.disk(BYTES, FLUSHES)
        # Polls at .9 s: about half of them straddle two 1 s buckets.
        begin = int(self.now) - 300 + 0.9
        history = History(begin, 240, seed=1, idle=30)
        flushes = History(begin, 240, seed=2, first=0, idle=30)
        lost = {60, 61, 150}
        self.publish(disk, BYTES, history, lost=lost)
        self.publish(disk, FLUSHES, flushes)
        missing = sum(history.polls[k][3] for k in lost)
        # While the disk idles (poll 15).
        since = int(self.now) - 285
        start = '--start=%s' % iso(since)

        code, rows, err = self.audit(start, resource=disk)
        self.assertEqual(1, code, err)
        total = self._total(rows, BYTES[0])
        self.assertEqual(
            (history.grew(since), history.billed(since, lost), missing,
             'missing', 0),
            (total['Truth'], total['Billed'], total['Difference'],
             total['Status'], total['Repaired']))
        windows = self._windows(rows, BYTES[0])
        # Polls 60 and 61 lost together, 150 alone: two windows, each
        # holding the polls it lost.
        self.assertEqual(
            [history.polls[60][3] + history.polls[61][3],
             history.polls[150][3]],
            [w['Difference'] for w in windows])
        for w, k in zip(windows, (60, 150)):
            self.assertLessEqual(abs(self._ts(w['From'])
                                     - int(history.polls[k][0])), 1)
            self.assertEqual('missing', w['Status'])
        flush = self._total(rows, FLUSHES[0])
        self.assertEqual((0, 'ok', flushes.billed(since)),
                         (flush['Difference'], flush['Status'],
                          flush['Billed']))

        code, rows, err = self.audit(start, '--repair', resource=disk)
        self.assertEqual(0, code, err)
        total = self._total(rows, BYTES[0])
        self.assertEqual((missing, 'repaired', missing),
                         (total['Difference'], total['Status'],
                          total['Repaired']))
        self.assertEqual(history.total(), self.billed(disk, BYTES[0]))

        code, rows, err = self.audit(start, '--repair', resource=disk)
        self.assertEqual(0, code, err)
        total = self._total(rows, BYTES[0])
        # In place: the windows that lost them add up now.
        self.assertEqual((0, 'ok', 0, history.billed(since)),
                         (total['Difference'], total['Status'],
                          total['Repaired'], total['Billed']))
        self.assertEqual([], self._windows(rows, BYTES[0]))
        self.assertEqual(history.total(), self.billed(disk, BYTES[0]))

    def test_older_than_the_back_window_is_billed_now(self):
        # Polled once a minute for 3 hours; the delta lost 150 minutes
        # ago is older than blockacct-delta's back window (1 hour period
        # + the current one): the repair is posted at the time of the
        # run, and the next run sees the two offset.
        start = (self.now // 60 - 180) * 60 + 20
        disk = self.disk(BYTES)
        history = History(start, 180, interval=60, seed=3, idle=3)
        lost = {30}
        self.publish(disk, BYTES, history, lost=lost)
        missing = history.polls[30][3]
        code, rows, err = self.audit('--start=-175m', '--repair',
                                     resource=disk)
        self.assertEqual(0, code, err)
        total = self._total(rows, BYTES[0])
        self.assertEqual((missing, 'repaired', missing),
                         (total['Difference'], total['Status'],
                          total['Repaired']))
        self.assertIn('billed late', total['Note'])
        self.assertEqual(history.total(), self.billed(disk, BYTES[0], 60))
        # The late repair must have held for --settle before a run can
        # tell it from a poll still on its way.
        time.sleep(11)
        code, rows, err = self.audit('--start=-175m', '--repair',
                                     resource=disk)
        self.assertEqual(0, code, err)
        total = self._total(rows, BYTES[0])
        self.assertEqual((0, 'offset', 0), (total['Difference'],
                                            total['Status'],
                                            total['Repaired']))
        self.assertEqual([missing, -missing], [
            w['Difference'] for w in self._windows(rows, BYTES[0])])
        self.assertEqual(history.total(), self.billed(disk, BYTES[0], 60))

    def test_billed_twice_is_reported_never_repaired(self):
        disk = self.disk(FLUSHES)
        history = History(self.now - 200, 180, seed=4, first=0)
        twice = history.polls[100]
        self.publish(disk, FLUSHES, history,
                     extra=[(twice[2] + 0.0005, twice[3])])
        code, rows, err = self.audit('--start=-3m', '--repair',
                                     resource=disk)
        self.assertEqual(1, code, err)
        total = self._total(rows, FLUSHES[0])
        self.assertEqual((-twice[3], 'surplus', 0),
                         (total['Difference'], total['Status'],
                          total['Repaired']))
        self.assertEqual(history.total() + twice[3],
                         self.billed(disk, FLUSHES[0]))

    def test_a_cumulative_meter_without_last_is_not_audited(self):
        # As upstream's own policy of its disk meters (ceilometer-low-rate:
        # mean and rate:mean): no 'last', no 'sum'.
        name = 'blockacct-test-mean'
        try:
            self.client.archive_policy.create({
                'name': name, 'aggregation_methods': ['mean', 'rate:mean'],
                'definition': [{'granularity': '5 minutes',
                                'timespan': '30 days'}]})
        except g_exc.ArchivePolicyAlreadyExists:
            pass
        disk = self.disk(BYTES, policy=name)
        code, rows, err = self.audit('--start=-5m', resource=disk)
        self.assertEqual(0, code, err)
        [row] = rows
        self.assertEqual('unaudited', row['Status'])
        self.assertEqual(
            "disk.device.write.bytes.delta: its archive policy %s has no "
            "'sum'; disk.device.write.bytes: its archive policy %s has no "
            "'last'" % (name, name), row['Note'])

    def test_errors_are_one_line_exit_2(self):
        result = subprocess.run([CLI, 'audit', '--start=-1h'],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(
            (2, 'audit: give exactly one of --gnocchi-url and '
                '--config-file\n'), (result.returncode, result.stderr))
        result = subprocess.run(
            [CLI, 'audit', '--start=-1h', '--timeout', '3',
             '--gnocchi-url', 'http://u:secret@127.0.0.1:9'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(2, result.returncode)
        self.assertTrue(result.stderr.startswith(
            'audit: cannot reach Gnocchi at http://127.0.0.1:9'),
            result.stderr)
        self.assertNotIn('secret', result.stderr)
        result = subprocess.run(
            [CLI, 'audit', '--start=-1h', '--repair', '--end=now',
             '--config-file', self.stack.ceilometer_config_file],
            capture_output=True, text=True, timeout=60)
        self.assertEqual((2, 'audit: --repair audits up to now: no --end '
                             '(an earlier repair posted late must be '
                             'seen)\n'),
                         (result.returncode, result.stderr))

    # -- helpers --------------------------------------------------------

    @staticmethod
    def _rows(rows, meter):
        return [r for r in rows if r['Meter'] == meter]

    def _total(self, rows, meter):
        return self._rows(rows, meter)[0]

    def _windows(self, rows, meter):
        return self._rows(rows, meter)[1:]

    @staticmethod
    def _ts(text):
        return datetime.datetime.fromisoformat(text).timestamp()
