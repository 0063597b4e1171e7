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
"""The reader against fake libvirt objects: faults no real part produces.

Real libvirt/QEMU answers are covered by the parser tests (recorded data)
and the functional tests; here we inject hangs, refusals and lost
connections.
"""

import json
import logging
import threading
from unittest import mock

import fixtures
import libvirt
from oslo_config import cfg
import testtools

from ceilometer_blockacct import opts
from ceilometer_blockacct.sources import reader

XML = """<domain><devices>
<disk><target dev='vda'/><alias name='virtio-disk0'/></disk>
<disk><target dev='hdc'/><alias name='ide0-1-0'/></disk>
</devices></domain>"""


def reply(rd_ops=1):
    return json.dumps({'return': [
        {'device': '', 'qdev': '/machine/peripheral/virtio-disk0/'
                               'virtio-backend',
         'stats': {'rd_operations': rd_ops, 'rd_bytes': 512 * rd_ops,
                   'account_failed': True}},
        {'device': '', 'qdev': 'ide0-1-0', 'stats': {'flush_operations': 3}},
    ], 'id': 'libvirt-1'})


def lv_error(code, domain=libvirt.VIR_FROM_QEMU, msg='boom'):
    e = libvirt.libvirtError(msg)
    e.err = (code, domain, msg, 2, None, None, None, 0, 0)
    return e


class FakeDom:
    def __init__(self, uuid, dom_id=7, qmp=None):
        self.uuid, self.dom_id = uuid, dom_id
        self.qmp = qmp or (lambda: reply())
        self.xml_reads = 0

    def UUIDString(self):
        return self.uuid

    def ID(self):
        return self.dom_id

    def XMLDesc(self, flags=0):
        self.xml_reads += 1
        return XML


class FakeConn:
    def __init__(self, doms, bulk=None, list_error=None):
        self.doms, self.bulk, self.list_error = doms, bulk, list_error
        self.alive = True

    def isAlive(self):
        return self.alive

    def listAllDomains(self, flags=0):
        if self.list_error:
            raise self.list_error
        return list(self.doms)

    def getAllDomainStats(self, stats, flags):
        if isinstance(self.bulk, Exception):
            raise self.bulk
        return [(d, self.bulk or {'block.count': 1, 'block.0.name': 'vda',
                                  'block.0.rd.reqs': 9})
                for d in self.doms]


class TestReader(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        opts.register_opts(self.conf)
        self.conf([], project='ceilometer')
        self.conf.set_override('read_timeout', 0.5, 'blockacct')
        self.logger = self.useFixture(fixtures.FakeLogger())

    def make(self, doms, **kwargs):
        conn = FakeConn(doms, **kwargs)
        self.useFixture(fixtures.MockPatch('libvirt.open',
                                           return_value=conn))
        self.useFixture(fixtures.MockPatch('libvirt.openReadOnly',
                                           return_value=conn))

        def qmp(dom, cmd, flags):
            self.assertEqual('{"execute": "query-blockstats"}', cmd)
            return dom.qmp()
        self.useFixture(fixtures.MockPatch(
            'libvirt_qemu.qemuMonitorCommand', side_effect=qmp))
        r = reader.Reader(self.conf)
        self.addCleanup(r._executor.shutdown, wait=False)
        return r, conn

    def test_qmp_maps_qdev_to_target_dev(self):
        dom = FakeDom('u1')
        r, _ = self.make([dom])
        got = r.read(['u1'])['u1']
        self.assertEqual('qmp', got.source)
        self.assertEqual({'rd_operations': 1, 'rd_bytes': 512},
                         got.disks['vda'].counters)
        self.assertTrue(got.disks['vda'].account_failed)
        self.assertEqual({'flush_operations': 3}, got.disks['hdc'].counters)
        self.assertTrue(got.epoch.endswith(':7'))
        # The live XML is read once per QEMU process, not every cycle.
        r.read(['u1'])
        self.assertEqual(1, dom.xml_reads)
        dom.dom_id = 8
        self.assertTrue(r.read(['u1'])['u1'].epoch.endswith(':8'))
        self.assertEqual(2, dom.xml_reads)

    def test_uri_defaults_to_ceilometers(self):
        self.conf.register_opt(cfg.StrOpt('libvirt_uri'))
        self.conf.set_override('libvirt_uri', 'qemu+unix:///x')
        self.assertEqual('qemu+unix:///x', reader.libvirt_uri(self.conf))
        self.conf.set_override('libvirt_uri', 'test:///y', 'blockacct')
        self.assertEqual('test:///y', reader.libvirt_uri(self.conf))

    def test_vanished_domain_is_not_an_error(self):
        def gone():
            raise lv_error(libvirt.VIR_ERR_NO_DOMAIN)
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        r, _ = self.make([FakeDom('u1', qmp=gone), FakeDom('u2')])
        got = r.read(['u1', 'u2', 'u3'])
        self.assertEqual(['u2'], list(got))
        self.assertIn('u1 vanished while being read', logger.output)
        self.assertIn('u3 has no running domain', logger.output)
        self.assertNotIn('WARNING', logger.output)

    def test_bad_replies_cost_only_their_vm(self):
        bad = {'u1': lambda: 'not json', 'u2': lambda: '{"return": [',
               'u3': lambda: '{"error": {"class": "GenericError"}}',
               'u4': lambda: '[]'}
        doms = [FakeDom(u, qmp=f) for u, f in bad.items()]
        doms.append(FakeDom('ok'))
        r, _ = self.make(doms)
        self.assertEqual(['ok'], list(r.read(list(bad) + ['ok'])))
        self.assertEqual(4, self.logger.output.count(
            'Unusable query-blockstats reply'))

    def test_bad_values_are_dropped_with_a_warning(self):
        def odd():
            return json.dumps({'return': [{'qdev': 'ide0-1-0', 'stats': {
                'flush_operations': -1, 'rd_operations': 'x',
                'wr_operations': True, 'rd_bytes': 1.5,
                'wr_bytes': 4}}]})
        r, _ = self.make([FakeDom('u1', qmp=odd)])
        self.assertEqual({'wr_bytes': 4},
                         r.read(['u1'])['u1'].disks['hdc'].counters)
        self.assertEqual(4, self.logger.output.count('Implausible value'))

    def test_hung_vm_costs_only_its_samples(self):
        release = threading.Event()
        self.addCleanup(release.set)

        def hang():
            release.wait(30)
            return reply()
        r, _ = self.make([FakeDom('stuck', qmp=hang), FakeDom('ok')])
        got = r.read(['stuck', 'ok'])
        self.assertEqual(['ok'], list(got))
        self.assertIn('did not answer query-blockstats', self.logger.output)
        # Next cycle: not queued again behind itself.
        self.assertEqual(['ok'], list(r.read(['stuck', 'ok'])))
        self.assertIn('still has not returned', self.logger.output)
        release.set()
        for _ in range(50):
            if not r._hung:
                break
            threading.Event().wait(0.02)
        self.assertEqual({'stuck', 'ok'}, set(r.read(['stuck', 'ok'])))

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
        self.assertEqual(1, self.logger.output.count('QMP query-blockstats '
                                                     'refused'))
        self.assertIn('read-only connection', self.logger.output)

    def test_acl_refusing_one_domain_is_logged_once_for_it(self):
        def denied():
            raise lv_error(libvirt.VIR_ERR_ACCESS_DENIED,
                           msg='access denied: qemu monitor command')
        r, _ = self.make([FakeDom('u1', qmp=denied), FakeDom('u2')])
        for _ in range(3):
            got = r.read(['u1', 'u2'])
            self.assertEqual('bulk', got['u1'].source)
            self.assertEqual('qmp', got['u2'].source)
        self.assertEqual(1, self.logger.output.count('refused for instance '
                                                     'u1'))

    def test_qmp_disabled_uses_bulk(self):
        self.conf.set_override('enable_qmp', False, 'blockacct')
        r, _ = self.make([FakeDom('u1')])
        with mock.patch('libvirt_qemu.qemuMonitorCommand') as q:
            self.assertEqual('bulk', r.read(['u1'])['u1'].source)
            q.assert_not_called()

    def test_lost_connection(self):
        lost = lv_error(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC,
                        'End of file while reading data')
        r, conn = self.make([FakeDom('u1')], list_error=lost, bulk=lost)
        self.assertEqual({}, r.read(['u1']))
        self.assertIn('Cannot list domains', self.logger.output)
        self.assertIn('bulk stats failed', self.logger.output)
        # The next cycle reconnects and reads.
        conn.list_error, conn.bulk = None, None
        self.assertEqual(['u1'], list(r.read(['u1'])))
