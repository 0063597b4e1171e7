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

import json
import os
import stat
import time
from unittest import mock

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

    def test_new_meter_on_existing_agent_is_known(self):
        state.StateStore(self.dir, 3600)
        store = state.StateStore(self.dir, 3600)
        self.assertTrue(store.meter('disk.device.write.bytes.delta').known)

    def test_permissions(self):
        store = state.StateStore(self.dir, 3600)
        m = store.meter('x')
        m.commit({'k': bl(1)})
        self.assertEqual(0o700, stat.S_IMODE(os.stat(self.dir).st_mode))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(m.path).st_mode))

    def test_corrupt_file_warns_and_is_unknown(self):
        state.StateStore(self.dir, 3600).meter('x').commit({'k': bl(1)})
        path = os.path.join(self.dir, 'x.json')
        with open(path, 'w') as f:
            f.write('{"version": 1, "baselines": {"k": [')
        m = state.StateStore(self.dir, 3600).meter('x')
        self.assertFalse(m.known)
        self.assertIsNone(m.get('k'))
        self.assertIn('is unreadable', self.logger.output)
        self.assertTrue(os.path.exists(path + '.corrupt'))

    def test_wrong_shape_is_corrupt(self):
        state.StateStore(self.dir, 3600)
        with open(os.path.join(self.dir, 'x.json'), 'w') as f:
            json.dump({'version': 1, 'baselines': {'k': ['e', 'no', 0, []]}},
                      f)
        self.assertFalse(state.StateStore(self.dir, 3600).meter('x').known)

    def test_failed_write_keeps_old_baselines(self):
        m = state.StateStore(self.dir, 3600).meter('x')
        m.commit({'k': bl(1)})
        with mock.patch('os.replace', side_effect=OSError('disk full')):
            self.assertRaises(OSError, m.commit, {'k': bl(2)})
        self.assertEqual([1], m.get('k').values)
        self.assertEqual([], [f for f in os.listdir(self.dir)
                              if f.startswith('.tmp-')])
        m2 = state.StateStore(self.dir, 3600).meter('x')
        self.assertEqual([1], m2.get('k').values)

    def test_prunes_disks_not_seen(self):
        m = state.StateStore(self.dir, 60).meter('x')
        m.commit({'old': bl(1, seen=time.time() - 120), 'new': bl(2)})
        self.assertIsNone(m.get('old'))
        self.assertEqual([2], m.get('new').values)
