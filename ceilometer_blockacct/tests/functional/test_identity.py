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
"""Disk and process identity read from a real libvirtd and QEMU (TCG).

The reader's Epoch (boot id, domain id, QEMU process start) and each
disk's device_id (qdev alias + block node name) against what the test
makes happen: the QEMU process's own /proc entry, a destroy + start, and
disks detached and attached live as Nova does
(virDomainAttachDeviceFlags / DetachDeviceFlags with AFFECT_LIVE).
Counters come from the guest program's constants.
"""

import os
from xml.etree import ElementTree

import fixtures
import libvirt
from oslo_config import cfg
import testtools

from ceilometer_blockacct import opts
from ceilometer_blockacct.sources import reader as reader_mod
from ceilometer_blockacct.sources import records
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host

Disk = guest_mod.Disk
Workload = guest_mod.Workload
# sdb sits on the SCSI controller libvirt adds (LSI): SeaBIOS boots from
# it, so the guest program does I/O on it, and QEMU unplugs a SCSI disk at
# once, with no guest driver (a virtio-blk unplug waits for the guest).
SDB = Disk('sdb', 'scsi', Workload(reads=3, writes=2, sectors=4))
DISKS = [Disk('vda'), SDB]
COUNTERS = ('rd_operations', 'rd_bytes', 'wr_operations', 'wr_bytes')


def proc_start_ns(pid):
    """QEMU's start from its /proc stat (field 22, clock ticks)."""
    with open('/proc/%d/stat' % pid) as f:
        ticks = int(f.read().rsplit(')', 1)[1].split()[22 - 3])
    return ticks * 10 ** 9 // os.sysconf('SC_CLK_TCK')


def this_boot():
    with open('/proc/sys/kernel/random/boot_id') as f:
        return f.read().strip()


class IdentityTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.host = libvirt_host.get_shared_host()
        self.logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(name)s %(message)s'))
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf([], project='ceilometer')
        conf.set_override('libvirt_uri', self.host.uri, opts.GROUP)
        # NOTE: TCG guests on a shared 2-core machine answer slowly at
        # times; the deadline is not what these tests are about.
        conf.set_override('read_timeout', 20.0, opts.GROUP)
        self.reader = reader_mod.Reader(conf)
        self.addCleanup(self.reader.close)

    def guest(self, disks=DISKS):
        guest = self.useFixture(guest_mod.Guest(self.host, disks))
        guest.wait_done()
        return guest

    def read(self, guest):
        got = self.reader.read([guest.uuid])
        self.assertIn(guest.uuid, got, self.logger.output)
        reading = got[guest.uuid]
        self.assertEqual('qmp', reading.source)
        return reading


class TestProcessIdentity(IdentityTestCase):

    def test_start_is_the_qemu_process_start(self):
        guest = self.guest([Disk('vda')])
        want = records.Epoch(this_boot(), guest.domain.ID(),
                             proc_start_ns(guest.pid))
        for _ in range(3):
            self.assertEqual(want, self.read(guest).epoch)

    def test_new_qemu_process_is_a_new_epoch(self):
        guest = self.guest([Disk('vda')])
        first = self.read(guest).epoch
        old_pid = guest.pid
        guest.restart()
        guest.wait_done()
        self.assertNotEqual(old_pid, guest.pid)
        second = self.read(guest).epoch
        self.assertEqual(records.Epoch(this_boot(), guest.domain.ID(),
                                       proc_start_ns(guest.pid)), second)
        self.assertFalse(first.same_process(second))
        # The guest program ran again in the new process: its counters
        # are the new process's, from zero.
        want = guest_mod.expected_blockstats(guest.disks[0], boot=True)
        got = self.read(guest).disks['vda'].counters
        self.assertEqual({k: want[k] for k in COUNTERS},
                         {k: got[k] for k in COUNTERS})

    def test_listing_lists_every_active_domain(self):
        wanted, other = self.guest([Disk('vda')]), self.guest([Disk('vda')])
        got = self.reader.read([wanted.uuid])
        self.assertEqual([wanted.uuid], list(got))
        conn = self.host.connect()
        active = {d.UUIDString(): d.ID() for d in conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        self.assertEqual(active, got.listing.domains)
        self.assertEqual(wanted.domain.ID(),
                         got.listing.domains[wanted.uuid])
        self.assertEqual(other.domain.ID(), got.listing.domains[other.uuid])
        self.assertEqual(this_boot(), got.listing.boot_id)
        # A stopped domain is gone from the next listing.
        other.destroy()
        self.assertNotIn(other.uuid,
                         self.reader.read([wanted.uuid]).listing.domains)


class TestDeviceIdentity(IdentityTestCase):

    def live_disk(self, guest, target):
        """The live XML element of ``target``, or None."""
        root = ElementTree.fromstring(guest.domain.XMLDesc(0))
        for disk in root.findall('./devices/disk'):
            if disk.find('target').get('dev') == target:
                return disk
        return None

    def detach(self, guest, target):
        disk = self.live_disk(guest, target)
        guest.domain.detachDeviceFlags(ElementTree.tostring(disk).decode(),
                                       libvirt.VIR_DOMAIN_AFFECT_LIVE)
        self.assertIsNone(self.live_disk(guest, target))
        return disk

    def attach(self, guest, target, path, address):
        """Attach ``path`` at ``target`` and the same SCSI ``address``."""
        xml = ("<disk type='file' device='disk'>"
               "<driver name='qemu' type='raw'/><source file='%s'/>"
               "<target dev='%s' bus='scsi'/>%s</disk>" % (
                   path, target, ElementTree.tostring(address).decode()))
        guest.domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def test_replugged_and_reused_targets_are_new_devices(self):
        guest = self.guest()
        first = self.read(guest)
        sdb = first.disks['sdb']
        want = guest_mod.expected_blockstats(SDB)
        self.assertEqual({k: want[k] for k in COUNTERS},
                         {k: sdb.counters[k] for k in COUNTERS})
        alias = self.live_disk(guest, 'sdb').find('alias').get('name')
        self.assertTrue(sdb.device_id.startswith(alias + '/'),
                        sdb.device_id)
        vda_id = first.disks['vda'].device_id

        # Unplugged: the disk is gone from the reading.
        old = self.detach(guest, 'sdb')
        self.assertEqual(['vda'], sorted(self.read(guest).disks))

        # The same image plugged again: the same target and alias, a new
        # block node, so a new device whose counters start at zero.
        path = old.find('source').get('file')
        self.attach(guest, 'sdb', path, old.find('address'))
        replugged = self.read(guest).disks['sdb']
        self.assertEqual(alias,
                         self.live_disk(guest, 'sdb').find('alias').get(
                             'name'))
        self.assertNotEqual(sdb.device_id, replugged.device_id)
        self.assertEqual({k: 0 for k in COUNTERS},
                         {k: replugged.counters[k] for k in COUNTERS})

        # The target reused by another image: that device's counters,
        # under yet another device_id.
        self.detach(guest, 'sdb')
        other = os.path.join(guest.dir, 'other.img')
        with open(other, 'wb') as f:
            f.truncate(4 * 1024 * 1024)
        self.attach(guest, 'sdb', other, old.find('address'))
        reused = self.read(guest)
        self.assertEqual(other, self.live_disk(guest, 'sdb').find(
            'source').get('file'))
        self.assertNotIn(reused.disks['sdb'].device_id,
                         (sdb.device_id, replugged.device_id))
        self.assertEqual({k: 0 for k in COUNTERS},
                         {k: reused.disks['sdb'].counters[k]
                          for k in COUNTERS})
        # The other disk and the process are untouched.
        self.assertEqual(vda_id, reused.disks['vda'].device_id)
        self.assertEqual(first.epoch, reused.epoch)
