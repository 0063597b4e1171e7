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
"""The reader against fake libvirt objects: its everyday behaviour.

The numbered scenarios of issue 9 have their own modules
(test_deadlines, test_identity, test_refusal, test_race, test_bulk_reads).
"""

import json
import logging
from unittest import mock

import fixtures
import libvirt
from oslo_config import cfg

from ceilometer_blockacct import host
from ceilometer_blockacct.sources import connection
from ceilometer_blockacct.sources import records
from ceilometer_blockacct.tests.unit.sources import fakes

FakeDom = fakes.FakeDom
lv_error = fakes.lv_error


class TestReader(fakes.ReaderTestCase):

    def test_qmp_maps_qdev_to_target_dev(self):
        dom = FakeDom('u1')
        self.proc.add('u1', ticks=5000)
        r, _ = self.make([dom])
        got = r.read(['u1'])['u1']
        self.assertEqual('qmp', got.source)
        self.assertEqual({'rd_operations': 1, 'rd_bytes': 512},
                         got.disks['vda'].counters)
        self.assertTrue(got.disks['vda'].account_failed)
        self.assertEqual('virtio-disk0/libvirt-2-format',
                         got.disks['vda'].device_id)
        self.assertEqual({'flush_operations': 3}, got.disks['hdc'].counters)
        self.assertEqual('ide0-1-0/libvirt-1-format',
                         got.disks['hdc'].device_id)
        self.assertEqual(records.Epoch(host.boot_id(), 7,
                                       fakes.ns_of_ticks(5000)), got.epoch)
        # The live XML and the vCPU threads are read once per QEMU
        # process, not every cycle.
        r.read(['u1'])
        self.assertEqual((1, 1, 2), (dom.xml_reads, dom.cpu_reads,
                                     dom.qmp_reads))
        dom.dom_id = 8
        self.proc.add('u1', ticks=7000)
        self.assertEqual(records.Epoch(host.boot_id(), 8,
                                       fakes.ns_of_ticks(7000)),
                         r.read(['u1'])['u1'].epoch)
        self.assertEqual((2, 2), (dom.xml_reads, dom.cpu_reads))

    def test_uri_defaults_to_ceilometers(self):
        self.conf.register_opt(cfg.StrOpt('libvirt_uri'))
        self.conf.register_opt(cfg.StrOpt('libvirt_type'))
        self.conf.set_override('libvirt_type', 'lxc')
        self.assertEqual('lxc:///', connection.libvirt_uri(self.conf))
        self.conf.set_override('libvirt_uri', 'qemu+unix:///x')
        self.assertEqual('qemu+unix:///x', connection.libvirt_uri(self.conf))
        self.conf.set_override('libvirt_uri', 'test:///y', 'blockacct')
        self.assertEqual('test:///y', connection.libvirt_uri(self.conf))

    def test_listing_covers_every_active_domain(self):
        doms = [FakeDom('u1', 3), FakeDom('u2', 4), FakeDom('other', 9)]
        r, _ = self.make(doms)
        got = r.read(['u1', 'u2'])
        self.assertEqual({'u1', 'u2'}, set(got))
        self.assertEqual({'u1': 3, 'u2': 4, 'other': 9},
                         got.listing.domains)
        self.assertEqual(host.boot_id(), got.listing.boot_id)
        self.assertLessEqual(got.listing.mono_ns, got['u1'].mono_ns)

    def test_vanished_domain_is_not_an_error(self):
        def gone():
            raise lv_error(libvirt.VIR_ERR_NO_DOMAIN)

        def stopped():
            raise lv_error(libvirt.VIR_ERR_OPERATION_INVALID,
                           msg='domain is not running')
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        r, _ = self.make([FakeDom('u1', qmp=gone), FakeDom('u2'),
                          FakeDom('u4', qmp=stopped)])
        got = r.read(['u1', 'u2', 'u3', 'u4'])
        self.assertEqual(['u2'], list(got))
        self.assertIn('u1: domain is gone', logger.output)
        self.assertIn('u4: domain is gone', logger.output)
        self.assertIn('u3 has no running domain', logger.output)
        self.assertNotIn('WARNING', logger.output)
        self.assertNotIn('ERROR', logger.output)

    def test_bad_replies_cost_only_their_vm(self):
        bad = {'u1': lambda: 'not json', 'u2': lambda: '{"return": [',
               'u3': lambda: '{"error": {"class": "GenericError"}}',
               'u4': lambda: '[]', 'u5': lambda: '{"return": {}}',
               'u6': lambda: '1' * 5000, 'u7': lambda: None}
        doms = [FakeDom(u, qmp=f) for u, f in bad.items()]
        doms.append(FakeDom('bad-xml', xml='<domain><devices'))
        doms.append(FakeDom('ok'))
        r, _ = self.make(doms)
        self.assertEqual(['ok'], list(r.read(list(bad) + ['ok',
                                                          'bad-xml'])))
        self.assertEqual(8, self.logger.output.count('unusable answer'))
        self.assertNotIn('Traceback', self.logger.output)

    def test_bad_values_are_dropped_with_a_warning(self):
        def odd():
            return json.dumps({'return': [{'qdev': 'ide0-1-0', 'stats': {
                'flush_operations': -1, 'rd_operations': 'x',
                'wr_operations': True, 'rd_bytes': 1.5,
                'rd_total_time_ns': 2 ** 64, 'wr_total_time_ns': 2 ** 64 - 1,
                'wr_bytes': 4}}]})
        r, _ = self.make([FakeDom('u1', qmp=odd)])
        self.assertEqual({'wr_bytes': 4, 'wr_total_time_ns': 2 ** 64 - 1},
                         r.read(['u1'])['u1'].disks['hdc'].counters)
        self.assertEqual(5, self.logger.output.count('Implausible value'))
        self.assertIn('for rd_total_time_ns of u1/ide0-1-0',
                      self.logger.output)

    def test_hung_vm_costs_only_its_samples(self):
        stuck = FakeDom('stuck', qmp=self.hang())
        r, _ = self.make([stuck, FakeDom('ok')])
        got = r.read(['stuck', 'ok'])
        self.assertEqual(['ok'], list(got))
        self.assertIn('stuck: did not answer query-blockstats within 0.5 s',
                      self.logger.output)
        # Next cycle: not queued again behind itself.
        self.assertEqual(['ok'], list(r.read(['stuck', 'ok'])))
        self.assertIn('still has not returned', self.logger.output)
        self.assertEqual(1, stuck.qmp_reads)
        self.release.set()
        for _ in range(100):
            got = r.read(['stuck', 'ok'])
            if 'stuck' in got:
                break
        self.assertEqual({'stuck', 'ok'}, set(got))
        self.assertIn('QMP read of stuck works again', self.logger.output)

    def test_read_only_connection_falls_back_to_bulk_logged_once(self):
        def denied():
            raise lv_error(libvirt.VIR_ERR_OPERATION_DENIED,
                           msg='read only access prevents '
                               'virDomainQemuMonitorCommand')
        r, _ = self.make([FakeDom('u1', qmp=denied),
                          FakeDom('u2', qmp=denied)])
        for _ in range(3):
            got = r.read(['u1', 'u2'])
            self.assertEqual({'bulk'}, {g.source for g in got.values()})
            self.assertEqual({'rd_operations': 9},
                             got['u1'].disks['vda'].counters)
            self.assertIsNone(got['u1'].disks['vda'].device_id)
            self.assertEqual({'u1': 7, 'u2': 7}, got.listing.domains)
        self.assertEqual(1, self.logger.output.count(
            'libvirt refused the connection'))
        self.assertEqual(1, self.logger.output.count('ERROR'))
        self.assertIn('basic counters come from bulk stats; QMP retried in '
                      '60 s', self.logger.output)

    def test_acl_refusing_one_domain_is_logged_once_for_it(self):
        def denied():
            raise lv_error(libvirt.VIR_ERR_ACCESS_DENIED,
                           msg='access denied: qemu monitor command')
        r, _ = self.make([FakeDom('u1', qmp=denied), FakeDom('u2')])
        for _ in range(3):
            got = r.read(['u1', 'u2'])
            self.assertEqual('bulk', got['u1'].source)
            self.assertEqual(records.Epoch(host.boot_id(), 7),
                             got['u1'].epoch)
            self.assertEqual('qmp', got['u2'].source)
        self.assertEqual(1, self.logger.output.count(
            'u1: QMP query refused for this domain'))
        self.assertIn('read from bulk stats (no failed/invalid/idle meters); '
                      'QMP retried in 60 s', self.logger.output)

    def test_qmp_disabled_uses_bulk(self):
        self.conf.set_override('enable_qmp', False, 'blockacct')
        r, conn = self.make([FakeDom('u1', 5), FakeDom('u2', 6)])
        with mock.patch('libvirt_qemu.qemuMonitorCommand') as q:
            got = r.read(['u1'])
            q.assert_not_called()
        self.assertEqual('bulk', got['u1'].source)
        self.assertEqual(['u1'], list(got))
        # The bulk answer lists every active domain.
        self.assertEqual({'u1': 5, 'u2': 6}, got.listing.domains)
        self.assertEqual(0, conn.listings)

    def test_lost_connection(self):
        lost = lv_error(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC,
                        'End of file while reading data')
        r, conn = self.make([FakeDom('u1')], list_error=lost, bulk=lost)
        got = r.read(['u1'])
        self.assertEqual({}, got)
        self.assertIsNone(got.listing)
        self.assertIn('listing of %s: libvirt connection lost' % r.uri,
                      self.logger.output)
        self.assertIn('bulk stats of %s: libvirt connection lost' % r.uri,
                      self.logger.output)
        # The next cycle reconnects and reads.
        conn.list_error, conn.bulk = None, None
        self.assertEqual(['u1'], list(r.read(['u1'])))
        self.assertEqual(2, libvirt.open.call_count)

    def test_lost_connection_during_reads_is_one_episode(self):
        def lost():
            raise lv_error(libvirt.VIR_ERR_INTERNAL_ERROR,
                           libvirt.VIR_FROM_REMOTE, 'client socket closed')
        doms = [FakeDom('u%d' % i, qmp=lost) for i in range(5)]
        r, conn = self.make(doms)
        r.read([d.uuid for d in doms])
        self.assertEqual(1, self.logger.output.count('connection lost'))
        for d in doms:
            d.qmp = fakes.reply
        self.assertEqual(5, len(r.read([d.uuid for d in doms])))
        self.assertEqual(2, libvirt.open.call_count)
        self.assertIn('QMP on %s works again' % r.uri, self.logger.output)

    def test_unexpected_error_is_logged_with_its_traceback(self):
        def bug():
            raise KeyError('surprise')
        r, _ = self.make([FakeDom('u1', qmp=bug), FakeDom('u2')])
        self.assertEqual(['u2'], list(r.read(['u1', 'u2'])))
        self.assertIn("u1: unexpected error (KeyError: 'surprise')",
                      self.logger.output)
        self.assertIn('Traceback', self.logger.output)
