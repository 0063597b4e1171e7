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
"""Issue 9 scenario 9: one VM's malformed bulk stats cost only that VM.

Before: stats that were not a dict, a ``block.count`` of inf, or non-text
disk names raised out of the read and cost every VM of the host; a huge
``block.count`` spun the polling thread for minutes to forever.
"""

import time

import fixtures

from ceilometer_blockacct.sources import bulk
from ceilometer_blockacct.tests.unit.sources import fakes

FakeDom = fakes.FakeDom
GOOD = {'block.count': 1, 'block.0.name': 'vda', 'block.0.rd.reqs': 9}

MALFORMED = {
    'not-a-dict': ['block.count', 1],
    'none': None,
    'inf-count': {'block.count': float('inf'), 'block.0.name': 'vda'},
    'nan-count': {'block.count': float('nan')},
    'float-count': {'block.count': 1.0, 'block.0.name': 'vda'},
    'huge-count': {'block.count': 2 ** 62},
    'giant-count': {'block.count': 10 ** 5000},
    'negative-count': {'block.count': -1},
    'bool-count': {'block.count': True, 'block.0.name': 'vda'},
    'count-text': {'block.count': '1', 'block.0.name': 'vda'},
}

ODD_NAMES = {
    'int-name': 7,
    'bytes-name': b'vda',
    'surrogate-name': 'vd\udcff',
    'control-name': 'vd\x00a',
    'long-name': 'v' * 10000,
    'list-name': ['vda'],
}


class TestBulkStats(fakes.ReaderTestCase):

    def setUp(self):
        super().setUp()
        self.conf.set_override('enable_qmp', False, 'blockacct')
        self.useFixture(fixtures.Timeout(30, gentle=True))

    def read_all(self, answers):
        doms = [FakeDom(uuid) for uuid in answers]
        doms.append(FakeDom('good'))
        answers = dict(answers, good=GOOD)

        def bulk_answer(doms):
            return [(d, answers[d.uuid]) for d in doms]
        r, _ = self.make(doms, bulk=bulk_answer)
        started = time.monotonic()
        got = r.read([d.uuid for d in doms])
        self.assertLess(time.monotonic() - started, 1.0)
        return got

    def test_malformed_stats_cost_only_their_vm(self):
        got = self.read_all(MALFORMED)
        self.assertEqual({'rd_operations': 9},
                         got['good'].disks['vda'].counters)
        for uuid in MALFORMED:
            self.assertEqual({}, got[uuid].disks, uuid)
        self.assertEqual(len(MALFORMED), self.logger.output.count(
            'WARNING'))
        self.assertIn('<5000-bit integer>'.replace('5000', str(
            (10 ** 5000).bit_length())), self.logger.output)

    def test_names_that_are_not_text_cost_only_their_disk(self):
        answers = {}
        for uuid, name in ODD_NAMES.items():
            answers[uuid] = {'block.count': 2, 'block.0.name': name,
                             'block.0.rd.reqs': 5, 'block.1.name': 'vdb',
                             'block.1.wr.reqs': 6}
        got = self.read_all(answers)
        for uuid in ODD_NAMES:
            self.assertEqual({'vdb': {'wr_operations': 6}},
                             {d: c.counters for d, c in
                              got[uuid].disks.items()}, uuid)
        self.assertEqual(len(ODD_NAMES), self.logger.output.count(
            'is not a disk name'))

    def test_values_out_of_range_are_dropped(self):
        got = self.read_all({'u1': {
            'block.count': 1, 'block.0.name': 'vda',
            'block.0.rd.reqs': 2 ** 64, 'block.0.rd.bytes': 2 ** 64 - 1,
            'block.0.wr.reqs': float('inf'), 'block.0.wr.bytes': -1,
            'block.0.fl.reqs': 3}})
        self.assertEqual({'rd_bytes': 2 ** 64 - 1, 'flush_operations': 3},
                         got['u1'].disks['vda'].counters)
        self.assertEqual(3, self.logger.output.count('Implausible value'))
        self.assertIn('block.0.rd.reqs of u1/vda', self.logger.output)


class TestParser(fakes.ReaderTestCase):

    def test_bound_is_inclusive(self):
        stats = {'block.count': bulk.MAX_DISKS,
                 'block.%d.name' % (bulk.MAX_DISKS - 1): 'vdz',
                 'block.%d.rd.reqs' % (bulk.MAX_DISKS - 1): 1}
        self.assertEqual({'rd_operations': 1},
                         bulk.parse_block_stats(stats)['vdz'].counters)
        stats['block.count'] += 1
        self.assertEqual({}, bulk.parse_block_stats(stats))
