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
"""The agent's repair after a restart: when it runs, what it logs.

The audit's arithmetic is test_audit's; the real repair of a killed
agent's loss is test_faults' (functional).
"""

import os
from unittest import mock

import fixtures
import testtools

from ceilometer_blockacct.audit import auditor as auditor_mod
from ceilometer_blockacct.audit import balance as balance_mod
from ceilometer_blockacct.audit import pairs
from ceilometer_blockacct import derive
from ceilometer_blockacct import recovery
from ceilometer_blockacct.sources import records
from ceilometer_blockacct import state as state_mod
from ceilometer_blockacct.tests.unit import fakes

DELTA = 'disk.device.write.bytes.delta'
PAIR = pairs.Pair('wr_bytes', DELTA, 'disk.device.write.bytes')


def result(net, repaired=0, status=None):
    balance = mock.Mock(net=net, settled_net=net, status=status or (
        balance_mod.MISSING if net > 0 else balance_mod.OK), windows=[])
    r = auditor_mod.Result('i-1-vda', PAIR, balance)
    if repaired:
        r.repairs.append(mock.Mock(amount=repaired, ts=1000.5))
    return r


class TestAfterStart(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = fakes.make_conf()
        self.conf.set_override('repair_after_restart', True, 'blockacct')
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.store = state_mod.StateStore(self.dir)
        self.addCleanup(self.store.close)

    def save_baseline(self, key):
        self.store.meter(DELTA).commit({key: derive.Baseline(
            records.Epoch('boot', 7, 100), None, 1, [5])})

    def test_the_disks_with_delta_baselines_since_the_last_save(self):
        path = os.path.join(self.dir, state_mod.FILENAME)
        before = recovery.last_saved(path)
        self.save_baseline('i-1-vda')
        self.save_baseline('i-2-vdb')
        saved = recovery.last_saved(path)
        self.assertGreaterEqual(saved, before)
        found = recovery.Recovery.after_start(self.conf, self.store, saved)
        self.assertEqual(['i-1-vda', 'i-2-vdb'], found.disks)
        self.assertEqual(saved, found.since)

    def test_none_without_previous_state_disks_or_the_option(self):
        self.assertIsNone(recovery.Recovery.after_start(
            self.conf, self.store, 1000.0))        # no disk yet
        self.save_baseline('i-1-vda')
        self.assertIsNone(recovery.Recovery.after_start(
            self.conf, self.store, None))          # a first start
        self.conf.set_override('repair_after_restart', False, 'blockacct')
        self.assertIsNone(recovery.Recovery.after_start(
            self.conf, self.store, 1000.0))

    def test_no_state_file_no_time(self):
        self.assertIsNone(recovery.last_saved(os.path.join(self.dir, 'x')))


class TestRun(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = fakes.make_conf()
        self.conf.set_override('repair_delay', 42.0, 'blockacct')
        self.log = self.useFixture(fixtures.FakeLogger())
        self.slept = []
        self.rec = recovery.Recovery(self.conf, ['i-1-vda'], 5000.0,
                                     make_client=lambda conf: 'client',
                                     sleep=self.slept.append)

    def run_with(self, *attempts):
        with mock.patch.object(recovery.auditor, 'repair_disks',
                               side_effect=list(attempts)) as repair:
            self.rec.run()
        return repair

    def test_waits_audits_from_before_the_last_save_and_logs_posts(self):
        repair = self.run_with([result(300, repaired=300)])
        self.assertEqual([42.0], self.slept)
        repair.assert_called_once_with('client', ['i-1-vda'],
                                       5000.0 - recovery.MARGIN)
        self.assertIn('posted 300 to %s of i-1-vda' % DELTA,
                      self.log.output)
        self.assertNotIn('ERROR', self.log.output)
        self.assertTrue(self.rec.done.is_set())

    def test_tries_again_while_a_difference_moves(self):
        moving = result(7, status=balance_mod.UNSETTLED)
        self.run_with(*[[moving]] * recovery.ATTEMPTS)
        self.assertEqual([42.0] * recovery.ATTEMPTS, self.slept)
        self.assertIn('i-1-vda is 7 short (unsettled)', self.log.output)

    def test_tries_again_while_a_busy_disk_has_no_exact_end(self):
        busy = result(7, status=balance_mod.NO_REPAIR)
        busy.balance.exact = None
        placed = result(7, repaired=7)
        done = result(0)
        repair = self.run_with([busy], [placed], [done])
        self.assertEqual(2, repair.call_count)
        self.assertEqual([42.0, 42.0], self.slept)
        self.assertIn('posted 7 to %s of i-1-vda' % DELTA, self.log.output)
        self.assertNotIn('ERROR', self.log.output)
        self.assertIn('1 meter(s) repaired', self.log.output)

    def test_tries_again_while_the_settled_level_trails(self):
        # The settled level follows the balance settle seconds late: what
        # it does not show yet is left for the next attempt.
        trailing = result(7, repaired=4, status=balance_mod.NO_REPAIR)
        trailing.balance.settled_net = 4
        rest = result(3, repaired=3)
        repair = self.run_with([trailing], [rest])
        self.assertEqual(2, repair.call_count)
        self.assertNotIn('ERROR', self.log.output)
        self.assertIn('posted 4 to', self.log.output)
        self.assertIn('posted 3 to', self.log.output)

    def test_what_each_attempt_posted_is_logged(self):
        first = [result(5, repaired=5),
                 result(7, status=balance_mod.UNSETTLED)]
        second = [result(0), result(7, repaired=7)]
        self.run_with(first, second)
        self.assertIn('posted 5 to', self.log.output)
        self.assertIn('posted 7 to', self.log.output)
        self.assertIn('2 meter(s) repaired', self.log.output)

    def test_what_it_cannot_place_is_an_error_with_the_amount(self):
        self.run_with([result(-12)])
        self.assertIn('is 12 over from', self.log.output)
        self.assertIn('a repair posted late', self.log.output)

    def test_a_failure_is_one_error_naming_the_command(self):
        def broken(conf):
            raise RuntimeError('no endpoint')
        self.rec.make_client = broken
        self.rec.run()
        self.assertIn('Repair after restart failed (RuntimeError: no '
                      'endpoint)', self.log.output)
        self.assertIn('audit --repair --start=', self.log.output)
        self.assertTrue(self.rec.done.is_set())
