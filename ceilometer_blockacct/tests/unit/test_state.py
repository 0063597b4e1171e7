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
"""Durable state: restarts, corruption, atomicity, pruning, permissions."""

import os
import sqlite3
import stat
import time

import fixtures
import testtools

from ceilometer_blockacct import derive
from ceilometer_blockacct import state


def bl(value, seen=None):
    return derive.Baseline('e1', 1, time.time() if seen is None else seen,
                           [value])


class TestStateStore(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                'state')
        self.logger = self.useFixture(fixtures.FakeLogger())

    def test_first_run_has_no_state_then_has(self):
        store = state.StateStore(self.dir, 3600)
        self.assertFalse(store.state_existed)
        self.assertIn('No agent state', self.logger.output)
        m = store.meter('disk.device.read.bytes.delta')
        self.assertFalse(m.known)
        m.commit({'u-vda': bl(5)})
        self.assertTrue(m.known)
        # A second process finds the state of the first.
        again = state.StateStore(self.dir, 3600)
        self.assertTrue(again.state_existed)
        m2 = again.meter('disk.device.read.bytes.delta')
        self.assertTrue(m2.known)
        self.assertEqual([5], m2.get('u-vda').values)
        self.assertIs(m2, again.meter('disk.device.read.bytes.delta'))

    def test_meters_are_independent(self):
        store = state.StateStore(self.dir, 3600)
        store.meter('a').commit({'k': bl(1)})
        store.meter('b').commit({'k': bl(2)})
        again = state.StateStore(self.dir, 3600)
        self.assertEqual([1], again.meter('a').get('k').values)
        self.assertEqual([2], again.meter('b').get('k').values)

    def test_new_meter_on_existing_agent_is_known(self):
        state.StateStore(self.dir, 3600)
        store = state.StateStore(self.dir, 3600)
        self.assertTrue(store.meter('disk.device.write.bytes.delta').known)

    def test_permissions(self):
        store = state.StateStore(self.dir, 3600)
        store.meter('x').commit({'k': bl(1)})
        self.assertEqual(0o700, stat.S_IMODE(os.stat(self.dir).st_mode))
        for name in os.listdir(self.dir):
            mode = stat.S_IMODE(os.stat(os.path.join(self.dir, name)).st_mode)
            self.assertEqual(0o600, mode, name)

    def test_corrupt_database_warns_and_starts_without_state(self):
        state.StateStore(self.dir, 3600).meter('x').commit({'k': bl(1)})
        path = os.path.join(self.dir, state.FILENAME)
        for suffix in ('-wal', '-shm'):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        with open(path, 'wb') as f:
            f.write(b'this is not a database' * 100)
        store = state.StateStore(self.dir, 3600)
        self.assertFalse(store.state_existed)
        m = store.meter('x')
        self.assertFalse(m.known)
        self.assertIsNone(m.get('k'))
        self.assertIn('is unreadable', self.logger.output)
        self.assertTrue(os.path.exists(path + '.corrupt'))

    def test_malformed_row_makes_the_meter_unknown(self):
        store = state.StateStore(self.dir, 3600)
        store.meter('x').commit({'k': bl(1)})
        conn = sqlite3.connect(os.path.join(self.dir, state.FILENAME))
        conn.execute("UPDATE baselines SET vals = '[\"1\"]'")
        conn.commit()
        conn.close()
        m = state.StateStore(self.dir, 3600).meter('x')
        self.assertFalse(m.known)
        self.assertIn('malformed', self.logger.output)

    def test_unopenable_directory_is_a_clear_error(self):
        os.makedirs(self.dir)
        os.mkdir(os.path.join(self.dir, state.FILENAME))
        e = self.assertRaises(state.StateError, state.StateStore, self.dir,
                              3600)
        self.assertIn('state_dir', str(e))

    def test_failed_write_keeps_old_baselines(self):
        store = state.StateStore(self.dir, 3600)
        m = store.meter('x')
        m.commit({'k': bl(1)})
        # A row that violates the schema makes the transaction fail whole.
        bad = derive.Baseline(None, 1, time.time(), [2])
        self.assertRaises(state.StateError, m.commit,
                          {'j': bl(3), 'k': bad})
        self.assertEqual([1], m.get('k').values)
        self.assertIsNone(m.get('j'))
        again = state.StateStore(self.dir, 3600).meter('x')
        self.assertEqual([1], again.get('k').values)
        self.assertIsNone(again.get('j'))

    def test_prunes_disks_not_seen(self):
        store = state.StateStore(self.dir, 60)
        m = store.meter('x')
        m.commit({'old': bl(1, seen=time.time() - 120), 'new': bl(2)})
        self.assertIsNone(m.get('old'))
        self.assertEqual([2], m.get('new').values)
        again = state.StateStore(self.dir, 60).meter('x')
        self.assertEqual(['new'], list(again.baselines))
