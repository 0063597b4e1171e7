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
"""Parsers against real answers recorded on libvirt 9.0 / QEMU 7.2.

The data files were written by ``tools/record-answers.py``; their
``expected`` member is the guest program's constants (plus SeaBIOS's boot
read), computed by the harness, not by the code under test.
"""

import glob
import json
import os

import testtools

from ceilometer_blockacct.sources import bulk
from ceilometer_blockacct.sources import errors
from ceilometer_blockacct.sources import qmp

DATA = os.path.join(os.path.dirname(__file__), '..', 'data')
CASES = ('mixed', 'errors', 'rounds')
BASIC = ('rd_operations', 'rd_bytes', 'wr_operations', 'wr_bytes',
         'flush_operations')


def load(case, kind):
    (path,) = glob.glob(os.path.join(DATA, '%s.%s.*.json' % (case, kind)))
    with open(path) as f:
        return json.load(f)


class TestRecordedQMP(testtools.TestCase):

    def test_counters_equal_the_guest_program(self):
        for case in CASES:
            reply = load(case, 'qmp-query-blockstats')
            self.assertEqual('9.0.0', reply['libvirt'])
            aliases = qmp.aliases_from_xml(load(case, 'xmldesc')['answer'])
            disks, unknown = qmp.parse_blockstats(reply['answer'], aliases)
            self.assertEqual([], unknown, case)
            self.assertEqual(set(reply['expected']), set(disks), case)
            for dev, want in reply['expected'].items():
                got = disks[dev].counters
                self.assertEqual(want, {k: got[k] for k in want},
                                 (case, dev))
                self.assertTrue(disks[dev].account_failed)

    def test_idle_time_absent_before_first_io(self):
        reply = load('mixed', 'qmp-query-blockstats')
        aliases = qmp.aliases_from_xml(load('mixed', 'xmldesc')['answer'])
        disks, _ = qmp.parse_blockstats(reply['answer'], aliases)
        self.assertNotIn('idle_time_ns', disks['vdc'].counters)
        self.assertIn('idle_time_ns', disks['vdb'].counters)

    def test_user_alias_and_ide_qdev(self):
        aliases = qmp.aliases_from_xml(load('mixed', 'xmldesc')['answer'])
        self.assertEqual('vdb', aliases['ua-data'])
        self.assertEqual('hda', aliases['ide0-0-0'])
        self.assertEqual('ua-data', qmp.qdev_alias(
            '/machine/peripheral/ua-data/virtio-backend'))

    def test_unknown_device_is_reported(self):
        reply = load('mixed', 'qmp-query-blockstats')
        disks, unknown = qmp.parse_blockstats(reply['answer'], {})
        self.assertEqual({}, disks)
        self.assertIn('ua-data', unknown)

    def test_truncated_reply(self):
        text = load('mixed', 'qmp-query-blockstats')['answer']
        self.assertRaises(errors.ReplyMalformed, qmp.parse_blockstats,
                          text[:len(text) // 2], {})

    def test_device_id_is_alias_and_node_name(self):
        # The recorded reply's qdev and node-name of each disk, as the
        # recorded live XML places them (<source index='N'/>).
        reply = load('mixed', 'qmp-query-blockstats')['answer']
        dmap = qmp.disk_map(load('mixed', 'xmldesc')['answer'])
        self.assertEqual({'virtio-disk0': 4, 'ua-data': 3,
                          'virtio-disk2': 2, 'ide0-0-0': 1}, dmap.indexes)
        disks, stale = qmp.parse_blockstats(reply, dmap)
        self.assertEqual([], stale)
        self.assertEqual({'vda': 'virtio-disk0/libvirt-4-format',
                          'vdb': 'ua-data/libvirt-3-format',
                          'vdc': 'virtio-disk2/libvirt-2-format',
                          'hda': 'ide0-0-0/libvirt-1-format'},
                         {d: c.device_id for d, c in disks.items()})

    def test_map_older_than_the_reply_is_stale(self):
        reply = load('mixed', 'qmp-query-blockstats')['answer']
        dmap = qmp.disk_map(load('mixed', 'xmldesc')['answer'])
        dmap.indexes['ua-data'] = 9
        disks, stale = qmp.parse_blockstats(reply, dmap)
        self.assertEqual(['ua-data'], stale)
        self.assertNotIn('vdb', disks)
        # Two devices on one target: neither is placed.
        dmap = qmp.DiskMap({'virtio-disk0': 'vda', 'ua-data': 'vda'}, {})
        disks, stale = qmp.parse_blockstats(reply, dmap)
        self.assertEqual({}, disks)
        self.assertEqual({'virtio-disk0', 'ua-data', 'virtio-disk2',
                          'ide0-0-0'}, set(stale))


class TestQMPAnswers(testtools.TestCase):
    """Entries a compromised QEMU might send: each costs only itself."""

    def test_entries_that_are_not_devices_are_skipped(self):
        good = {'qdev': 'ide0-0-0', 'node-name': 'n1',
                'stats': {'rd_operations': 1}}
        reply = json.dumps({'return': [
            good, 'text', None, [], {'qdev': 5, 'stats': {}},
            {'qdev': 'ide0-0-1', 'node-name': 7, 'stats': {}},
            {'qdev': 'ide0-0-2', 'node-name': 'vd\udcff', 'stats': {}},
            {'qdev': 'ide0-0-3', 'stats': 'none'},
            {'qdev': '/machine/peripheral/', 'stats': {}},
            {'qdev': '', 'stats': {'rd_operations': 3}}]})
        devices = qmp.parse_devices(reply, 'u1')
        self.assertEqual([('ide0-0-0', 'n1', {'rd_operations': 1},
                           'ide0-0-0/n1')],
                         [(d.alias, d.node_name, d.counters, d.device_id)
                          for d in devices])

    def test_too_many_entries(self):
        reply = json.dumps({'return': [{}] * (qmp.MAX_ENTRIES + 1)})
        self.assertRaises(errors.ReplyMalformed, qmp.parse_devices, reply)

    def test_thread_ids(self):
        reply = json.dumps({'return': [
            {'cpu-index': 0, 'thread-id': 101}, {'thread-id': True},
            {'thread-id': -1}, {'thread-id': 2 ** 40}, 'x',
            {'cpu-index': 1, 'thread-id': 102}]})
        self.assertEqual([101, 102], qmp.thread_ids(reply))
        self.assertRaises(errors.ReplyMalformed, qmp.thread_ids,
                          '{"error": {"class": "CommandNotFound"}}')


class TestRecordedBulk(testtools.TestCase):

    def test_basic_counters_equal_the_guest_program(self):
        for case in CASES:
            rec = load(case, 'bulk-stats-block')
            disks = bulk.parse_block_stats(rec['answer'])
            self.assertEqual(set(rec['expected']), set(disks), case)
            for dev, want in rec['expected'].items():
                got = disks[dev].counters
                self.assertEqual({k: want[k] for k in BASIC},
                                 {k: got[k] for k in BASIC}, (case, dev))
                self.assertNotIn('failed_rd_operations', got)

    def test_backing_chain_entries_do_not_replace_the_device(self):
        stats = {'block.count': 2, 'block.0.name': 'vda',
                 'block.0.backingIndex': 2, 'block.0.rd.reqs': 5,
                 'block.1.name': 'vda', 'block.1.backingIndex': 1,
                 'block.1.rd.reqs': 99}
        self.assertEqual({'rd_operations': 5},
                         bulk.parse_block_stats(stats)['vda'].counters)

    def test_missing_and_bad_keys(self):
        self.assertEqual({}, bulk.parse_block_stats({}))
        self.assertEqual({}, bulk.parse_block_stats({'block.count': 'x'}))
        disks = bulk.parse_block_stats({'block.count': 1,
                                        'block.0.name': 'vda',
                                        'block.0.rd.reqs': -3,
                                        'block.0.wr.reqs': 2})
        self.assertEqual({'wr_operations': 2}, disks['vda'].counters)
