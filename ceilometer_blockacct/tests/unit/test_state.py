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
"""Durable state: restarts, corruption, atomicity, locking, permissions."""

import json
import os
import sqlite3
import stat
from unittest import mock

import fixtures
import testtools

from ceilometer_blockacct import derive
from ceilometer_blockacct import registry
from ceilometer_blockacct.sources import records
from ceilometer_blockacct import state

E1 = records.Epoch('boot', 1, 5)


def bl(value, mono_ns=1000, epoch=E1):
    return derive.Baseline(epoch, 'virtio-disk0/n1', mono_ns, [value])


def corrupt_error():
    e = sqlite3.DatabaseError('database disk image is malformed')
    e.sqlite_errorcode = 11     # SQLITE_CORRUPT
    return e


class TestStateStore(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                'state')
        self.logger = self.useFixture(fixtures.FakeLogger())

    def open(self):
        store = state.StateStore(self.dir)
        self.addCleanup(store.close)
        return store

    def test_first_run_has_no_state_then_has(self):
        store = self.open()
        self.assertFalse(store.state_existed)
        self.assertIn('No agent state', self.logger.output)
        m = store.meter('m1')
        m.commit({'u-vda': bl(100)})
        created, mark = store.created, m.mark
        store.close()
        again = self.open()
        self.assertTrue(again.state_existed)
        self.assertEqual(created, again.created)
        m = again.meter('m1')
        self.assertEqual(mark, m.mark)
        self.assertEqual(bl(100), m.get('u-vda'))

    def test_marks_are_boottime_of_this_boot(self):
        with mock.patch.object(state, 'boottime_ns', return_value=777):
            store = self.open()
            self.assertEqual((state.boot_id(), 777), store.meter('m').mark)

    def test_meters_are_independent(self):
        store = self.open()
        store.meter('a').commit({'u-vda': bl(1)})
        store.meter('b').commit({'u-vda': bl(2)})
        store.close()
        again = self.open()
        self.assertEqual([1], again.meter('a').get('u-vda').values)
        self.assertEqual([2], again.meter('b').get('u-vda').values)

    def test_an_older_reading_never_overwrites_a_newer_baseline(self):
        store = self.open()
        store.save('m', {'u-vda': bl(500, mono_ns=2000)})
        store.save('m', {'u-vda': bl(100, mono_ns=1000)})
        store.close()
        self.assertEqual([500], self.open().meter('m').get('u-vda').values)

    def test_permissions(self):
        store = self.open()
        store.meter('m').commit({'u-vda': bl(1)})
        self.assertEqual(0o700, stat.S_IMODE(os.stat(self.dir).st_mode))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(store.path).st_mode))

    def test_unsafe_state_dirs_are_refused_naming_the_option(self):
        os.makedirs(self.dir, mode=0o700)
        os.chmod(self.dir, 0o770)
        e = self.assertRaises(state.StateError, state.StateStore, self.dir)
        self.assertIn('[blockacct] state_dir', str(e))
        self.assertIn('group or others', str(e))
        os.chmod(self.dir, 0o700)
        os.chown(self.dir, 4242, -1)
        e = self.assertRaises(state.StateError, state.StateStore, self.dir)
        self.assertIn('owned by', str(e))
        os.chown(self.dir, os.geteuid(), -1)
        link = self.dir + '-link'
        os.symlink(self.dir, link)
        e = self.assertRaises(state.StateError, state.StateStore, link)
        self.assertIn('symlink', str(e))

    def test_unusable_directory_is_a_clear_error(self):
        path = os.path.join(self.dir, 'file')
        os.makedirs(self.dir)
        with open(path, 'w'):
            pass
        e = self.assertRaises(state.StateError, state.StateStore,
                              os.path.join(path, 'sub'))
        self.assertIn('[blockacct] state_dir', str(e))

    def test_second_agent_on_the_same_state_dir_is_refused(self):
        # Scenario 5: two agents on one state_dir would both bill.
        first = self.open()
        e = self.assertRaises(state.StateError, state.StateStore, self.dir)
        self.assertIn('in use by another agent (pid %d)' % os.getpid(),
                      str(e))
        first.close()
        self.open()

    def test_corrupt_header_at_start_is_moved_aside(self):
        store = self.open()
        store.meter('m').commit({'u-vda': bl(1)})
        store.close()
        with open(store.path, 'r+b') as f:
            f.write(b'garbage' * 20)
        again = self.open()
        self.assertFalse(again.state_existed)
        self.assertTrue(os.path.exists(store.path + '.corrupt'))
        self.assertIsNone(again.meter('m').get('u-vda'))
        self.assertIn('moved aside', self.logger.output)

    def test_corrupt_page_at_start_is_moved_aside(self):
        # Scenario 10: damage past the header used to fail every cycle.
        store = self.open()
        store.meter('m').commit({'u-%04d' % i: bl(i) for i in range(2000)})
        store._db.conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        store.close()
        size = os.path.getsize(store.path)
        self.assertGreater(size, 8 * 4096)
        with open(store.path, 'r+b') as f:
            f.seek(4 * 4096)
            f.write(os.urandom(4096))
        again = self.open()
        self.assertFalse(again.state_existed)
        self.assertTrue(os.path.exists(store.path + '.corrupt'))
        again.meter('m').commit({'u-vda': bl(3)})

    def test_corruption_while_running_keeps_the_baselines_in_memory(self):
        store = self.open()
        m = store.meter('m')
        m.commit({'u-vda': bl(1), 'u-vdb': bl(2)})
        real = store._db.transaction
        calls = []

        def once_corrupt(body):
            if not calls:
                calls.append(1)
                raise corrupt_error()
            return real(body)
        with mock.patch.object(store._db, 'transaction', once_corrupt):
            m.commit({'u-vda': bl(10, mono_ns=2000)})
        self.assertIn('corrupt', self.logger.output)
        self.assertTrue(os.path.exists(store.path + '.corrupt'))
        store.close()
        again = self.open()
        self.assertTrue(again.state_existed)
        m = again.meter('m')
        self.assertEqual([10], m.get('u-vda').values)
        self.assertEqual([2], m.get('u-vdb').values)

    def test_malformed_row_makes_the_meter_start_anew_with_a_later_mark(
            self):
        store = self.open()
        store.meter('m').commit({'u-vda': bl(1)})
        old_mark = store.meter('m').mark
        store._db.conn.execute("UPDATE baselines2 SET data = '[1, 2]'")
        store.close()
        with mock.patch.object(state, 'boottime_ns',
                               return_value=old_mark[1] + 10):
            again = self.open()
            m = again.meter('m')
        self.assertIsNone(m.get('u-vda'))
        self.assertEqual(old_mark[1] + 10, m.mark[1])
        self.assertIn('malformed', self.logger.output)

    def test_failed_write_keeps_old_baselines(self):
        store = self.open()
        m = store.meter('m')
        m.commit({'u-vda': bl(1)})
        with mock.patch.object(store, '_upsert',
                               side_effect=sqlite3.OperationalError('full')):
            self.assertRaises(state.StateError, m.commit,
                              {'u-vda': bl(2, mono_ns=5000)})
        self.assertEqual([1], m.get('u-vda').values)
        store.close()
        self.assertEqual([1], self.open().meter('m').get('u-vda').values)

    def test_non_sqlite_errors_are_state_errors(self):
        store = self.open()
        bad = derive.Baseline(E1, None, 1, [object()])
        self.assertRaises(state.StateError, store.meter('m').commit,
                          {'u-vda': bad})

    def test_forget_drops_only_the_gone_process(self):
        e2 = records.Epoch('boot', 2, 9)
        store = self.open()
        m = store.meter('m')
        m.commit({'u-vda': bl(1), 'v-vda': bl(2, epoch=e2),
                  'u-vdb': bl(3, epoch=e2)})
        store.forget_processes([registry.Process('u', 'boot', 1)])
        self.assertEqual({'v-vda', 'u-vdb'}, set(m.baselines))
        store.close()
        self.assertEqual({'v-vda', 'u-vdb'},
                         set(self.open().meter('m').baselines))

    def test_baselines_are_never_dropped_by_age(self):
        # Scenario 3: a VM not read for days keeps its baselines.
        store = self.open()
        store.meter('m').commit({'u-vda': bl(1)})
        store.close()
        with mock.patch('time.time', return_value=10 ** 12):
            again = self.open()
            again.meter('m').commit({'v-vda': bl(2)})
        self.assertEqual([1], again.meter('m').get('u-vda').values)

    def test_registry_persists(self):
        store = self.open()
        listing = records.Listing('boot', {'u': 1}, 0)
        store.registry.observe_listing(listing, 10)
        store.save_registry()
        store.close()
        again = self.open()
        self.assertEqual(('boot', 10), again.registry.listing)
        self.assertEqual('u', again.registry.processes[('boot', 1)].uuid)

    def test_schema_1_baselines_are_migrated(self):
        os.makedirs(self.dir, mode=0o700)
        conn = sqlite3.connect(os.path.join(self.dir, state.FILENAME))
        conn.execute('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)')
        conn.execute("INSERT INTO meta VALUES ('created', '1.0'), "
                     "('schema', '1')")
        conn.execute('CREATE TABLE baselines (meter TEXT NOT NULL, disk TEXT '
                     'NOT NULL, epoch TEXT NOT NULL, mono_ns INTEGER NOT '
                     'NULL, seen REAL NOT NULL, vals TEXT NOT NULL, PRIMARY '
                     'KEY (meter, disk)) WITHOUT ROWID')
        conn.execute("INSERT INTO baselines VALUES ('m', 'u-vda', 'boot:7', "
                     "42, 1.0, ?)", (json.dumps([99]),))
        conn.commit()
        conn.close()
        store = self.open()
        self.assertTrue(store.state_existed)
        b = store.meter('m').get('u-vda')
        self.assertEqual((records.Epoch('boot', 7, None), None, 42, [99]),
                         (b.epoch, b.device_id, b.mono_ns, b.values))
        self.assertIn('migrated', self.logger.output)

    def test_undecodable_registry_text_at_start_is_moved_aside(self):
        store = self.open()
        store.registry.observe_listing(records.Listing('boot', {'u': 1}, 0),
                                       10)
        store.save_registry()
        store._db.conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        store.close()
        with open(store.path, 'rb') as f:
            data = f.read()
        self.assertIn(b'"uuid": "u"', data)
        with open(store.path, 'wb') as f:
            f.write(data.replace(b'"uuid": "u"', b'"uuid": "\xb4"'))
        again = self.open()
        self.assertFalse(again.state_existed)
        self.assertEqual({}, again.registry.processes)
