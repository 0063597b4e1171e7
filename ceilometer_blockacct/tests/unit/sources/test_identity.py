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
"""Issue 9 scenario 7 (reader side): disk and process identity.

A disk plugged again, or a target reused by another device, gets a new
device_id, and the alias map is re-read when the device set changes; the
QEMU process start (Epoch.start) comes from /proc, once per process.
"""

import json

import libvirt

from ceilometer_blockacct import host
from ceilometer_blockacct.sources import records
from ceilometer_blockacct.tests.unit.sources import fakes

FakeDom = fakes.FakeDom
SCSI1 = 'scsi0-0-0-1'


def scsi_reply(node, rd_ops):
    return json.dumps({'return': [
        fakes.entry('/machine/peripheral/virtio-disk0/virtio-backend',
                    'libvirt-1-format', rd_operations=1),
        fakes.entry(SCSI1, node, rd_operations=rd_ops)]})


class TestDeviceIdentity(fakes.ReaderTestCase):

    def setUp(self):
        super().setUp()
        self.state = {'xml': fakes.disk_xml(('vda', 'virtio-disk0', 1),
                                            ('sdb', SCSI1, 2)),
                      'reply': scsi_reply('libvirt-2-format', 50)}
        self.dom = FakeDom('u1', xml=lambda: self.state['xml'],
                           qmp=lambda: self.state['reply'])
        self.r, _ = self.make([self.dom])

    def read(self):
        """``{dev: rd_operations}``, then the device ids."""
        got = self.r.read(['u1'])['u1'].disks
        got.pop('vda')
        self.ids = {dev: d.device_id for dev, d in got.items()}
        return {dev: d.counters['rd_operations'] for dev, d in got.items()}

    def test_alias_reused_for_another_target(self):
        """sdb unplugged, sdc plugged at the same SCSI unit (same alias).

        Before: the alias was known, so sdc's counters were reported as
        sdb's (the map was refreshed only on an unknown alias).
        """
        self.assertEqual({'sdb': 50}, self.read())
        self.state.update(xml=fakes.disk_xml(('vda', 'virtio-disk0', 1),
                                             ('sdc', SCSI1, 5)),
                          reply=scsi_reply('libvirt-5-format', 3))
        self.assertEqual({'sdc': 3}, self.read())
        self.assertEqual({'sdc': SCSI1 + '/libvirt-5-format'}, self.ids)
        self.assertEqual(2, self.dom.xml_reads)

    def test_replugged_disk_is_a_new_device(self):
        """The same target and alias, a new block node: a new device_id."""
        self.assertEqual({'sdb': 50}, self.read())
        self.assertEqual({'sdb': SCSI1 + '/libvirt-2-format'}, self.ids)
        self.state.update(xml=fakes.disk_xml(('vda', 'virtio-disk0', 1),
                                             ('sdb', SCSI1, 3)),
                          reply=scsi_reply('libvirt-3-format', 0))
        self.assertEqual({'sdb': 0}, self.read())
        self.assertEqual({'sdb': SCSI1 + '/libvirt-3-format'}, self.ids)

    def test_xml_older_than_the_reply_places_nothing(self):
        """A hotplug between the reply and the XML read: left out once.

        The node's index does not match the XML's source index, so the
        disk is not reported under the old target; the next read places it.
        """
        self.read()
        self.state['reply'] = scsi_reply('libvirt-5-format', 3)
        self.assertEqual({}, self.read())
        self.state['xml'] = fakes.disk_xml(('vda', 'virtio-disk0', 1),
                                           ('sdc', SCSI1, 5))
        self.assertEqual({'sdc': 3}, self.read())
        self.assertEqual({'sdc': SCSI1 + '/libvirt-5-format'}, self.ids)

    def test_same_devices_read_the_xml_once(self):
        for _ in range(3):
            self.read()
        self.assertEqual(1, self.dom.xml_reads)


class TestProcessStart(fakes.ReaderTestCase):

    def test_start_from_proc_once_per_process(self):
        self.proc.add('u1', pid=4242, tid=4343, ticks=987654)
        dom = FakeDom('u1', dom_id=3, cpus=lambda: fakes.cpus_reply(4343))
        r, _ = self.make([dom])
        want = records.Epoch(host.boot_id(), 3, fakes.ns_of_ticks(987654))
        for _ in range(3):
            self.assertEqual(want, r.read(['u1'])['u1'].epoch)
        self.assertEqual(1, dom.cpu_reads)

    def test_domain_id_reused_by_a_new_process(self):
        """A new QEMU with the old domain id (after a libvirtd restart).

        The process's (pid, start) no longer matches /proc, so the start
        is asked again instead of reusing the old one.
        """
        self.proc.add('u1', pid=4242, tid=4343, ticks=1000)
        dom = FakeDom('u1', dom_id=3, cpus=lambda: fakes.cpus_reply(4343))
        r, _ = self.make([dom])
        self.assertEqual(fakes.ns_of_ticks(1000),
                         r.read(['u1'])['u1'].epoch.start)
        self.proc.add('u1', pid=4242, tid=4343, ticks=2000)
        self.assertEqual(records.Epoch(host.boot_id(), 3,
                                       fakes.ns_of_ticks(2000)),
                         r.read(['u1'])['u1'].epoch)
        self.assertEqual(2, dom.cpu_reads)

    def test_process_of_another_domain_gives_no_start(self):
        """A remote libvirtd's thread ids name some local process."""
        self.proc.add('someone-else', pid=4242, tid=4343)
        dom = FakeDom('u1', cpus=lambda: fakes.cpus_reply(4343))
        r, _ = self.make([dom])
        self.assertIsNone(r.read(['u1'])['u1'].epoch.start)
        r.read(['u1'])
        self.assertEqual(1, dom.cpu_reads)

    def test_failed_cpu_query_is_asked_again(self):
        self.proc.add('u1', ticks=42)
        answers = ['{"error": {"class": "CommandNotFound"}}',
                   fakes.cpus_reply()]

        def cpus():
            return answers.pop(0)
        dom = FakeDom('u1', cpus=cpus)
        r, _ = self.make([dom])
        first = r.read(['u1'])['u1']
        self.assertIsNone(first.epoch.start)
        self.assertEqual('qmp', first.source)
        self.assertEqual(fakes.ns_of_ticks(42),
                         r.read(['u1'])['u1'].epoch.start)

    def test_gone_while_asking_is_gone(self):
        def gone():
            raise fakes.lv_error(libvirt.VIR_ERR_NO_DOMAIN)
        r, _ = self.make([FakeDom('u1', cpus=gone), FakeDom('u2')])
        self.assertEqual(['u2'], list(r.read(['u1', 'u2'])))
        self.assertNotIn('WARNING', self.logger.output)

    def test_forgotten_when_the_domain_is_gone(self):
        self.proc.add('u1', ticks=42)
        dom = FakeDom('u1')
        r, conn = self.make([dom])
        r.read(['u1'])
        conn.doms = []
        self.assertEqual({}, r.read(['u1']).listing.domains)
        conn.doms = [dom]
        r.read(['u1'])
        self.assertEqual((2, 2), (dom.cpu_reads, dom.xml_reads))
