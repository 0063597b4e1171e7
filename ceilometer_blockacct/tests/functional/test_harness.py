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
"""The harness proves itself: QEMU counts exactly what the guest does.

Runs a real private libvirtd and TCG guests (root, see bindep.txt).  A
host that cannot start makes these tests fail with the reason.
"""

from ceilometer.compute.virt.libvirt import utils as libvirt_utils
from lxml import etree
import testtools

from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host

Disk = guest_mod.Disk
Workload = guest_mod.Workload

COUNTERS = tuple(sorted(guest_mod.expected_blockstats(Disk('vda'))))


class HarnessTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.host = libvirt_host.get_shared_host()

    def run_guest(self, disks, **kwargs):
        guest = self.useFixture(guest_mod.Guest(self.host, disks, **kwargs))
        guest.wait_done(timeout=60)
        return guest

    def assertCounts(self, guest, rounds=1):
        """Every disk's QMP counters equal the program's constants."""
        stats = guest.blockstats()
        for index, disk in enumerate(guest.disks):
            expected = guest_mod.expected_blockstats(
                disk, rounds=rounds, boot=(index == 0))
            got = {k: stats[disk.target][k] for k in COUNTERS}
            self.assertEqual(expected, got, disk.target)
        return stats


class TestHost(HarnessTestCase):

    def test_private_and_readonly(self):
        guest = self.run_guest([Disk('vda')])
        ro = self.host.connect_readonly()
        self.addCleanup(ro.close)
        uuids = [d.UUIDString() for d in ro.listAllDomains()]
        self.assertIn(guest.uuid, uuids)
        # Only guests of this process's private host are listed.
        self.assertTrue(all(d.name().startswith('blockacct-')
                            for d in ro.listAllDomains()))
        self.assertEqual(('9', '7'), tuple(
            v.split('.')[0] for v in self.host.versions()))

    def test_nova_metadata_for_discovery(self):
        guest = self.run_guest([Disk('vda')])
        meta = etree.fromstring(libvirt_utils.instance_metadata(
            guest.domain))
        self.assertEqual(guest.name, meta.find('./name').text)
        self.assertEqual(guest.nova.flavor_id,
                         meta.find('./flavor').get('id'))
        self.assertEqual(guest.nova.project_id,
                         meta.find('./owner/project').get('uuid'))


class TestCounts(HarnessTestCase):

    def test_bios_only(self):
        # An empty program: what remains is SeaBIOS's own I/O.
        guest = self.run_guest([Disk('vda'), Disk('vdb'), Disk('hda', 'ide')])
        stats = self.assertCounts(guest)
        self.assertEqual(guest_mod.BIOS_READS_ON_BOOT_DISK,
                         stats['vda']['rd_operations'])
        self.assertNotIn('idle_time_ns', stats['vdb'])

    def test_bios_only_ide_boot(self):
        guest = self.run_guest([Disk('hda', 'ide'), Disk('vda')])
        self.assertCounts(guest)

    def test_reads_writes_flushes_invalid(self):
        guest = self.run_guest([
            Disk('vda'),
            Disk('vdb', workload=Workload(
                reads=10, writes=5, sectors=8, invalid_reads=2,
                invalid_writes=3), alias='ua-data'),
            Disk('hda', 'ide', Workload(
                reads=3, writes=2, sectors=4, invalid_reads=1,
                invalid_writes=1, flushes=4)),
        ])
        stats = self.assertCounts(guest)
        self.assertIn('idle_time_ns', stats['vdb'])
        self.assertEqual('ua-data', guest.aliases()['vdb'])
        # One "x" per int 13h call the guest saw failing.
        self.assertEqual(2 + 3 + 1 + 1, guest.serial().count('x'))

    def test_failed(self):
        guest = self.run_guest([
            Disk('vda'),
            Disk('vdb', workload=Workload(
                reads=1, failed_reads=2, failed_writes=3)),
            Disk('hda', 'ide', Workload(
                writes=1, sectors=2, failed_reads=1, failed_writes=1,
                failed_flushes=2)),
        ])
        self.assertCounts(guest)
        self.assertEqual(2 + 3 + 1 + 1 + 2, guest.serial().count('x'))

    def test_rounds_and_pace(self):
        guest = self.run_guest(
            [Disk('vda', workload=Workload(reads=2, writes=1))],
            rounds=3, pace_us=20000)
        self.assertEqual('...DONE', guest.serial().strip())
        self.assertCounts(guest, rounds=3)

    def test_restart(self):
        guest = self.run_guest(
            [Disk('vda', workload=Workload(writes=3))])
        pid = guest.pid
        guest.restart()
        guest.wait_done()
        self.assertNotEqual(pid, guest.pid)
        # A new QEMU process: the counters start again from zero.
        self.assertCounts(guest)

    def test_iotune(self):
        guest = self.run_guest([
            Disk('vda'),
            Disk('vdb', workload=Workload(reads=20, sectors=1),
                 iotune={'total_iops_sec': 100}),
        ])
        self.assertIn('<total_iops_sec>100</total_iops_sec>',
                      guest.domain.XMLDesc(0))
        stats = self.assertCounts(guest)
        # 20 reads at 100 IOPS cannot take less than ~0.1 s in all.
        self.assertGreater(stats['vdb']['rd_total_time_ns'], 0)

    def test_steady_forever(self):
        # rounds=0: the benchmark's steady workload, one "." per round.
        guest = self.useFixture(guest_mod.Guest(
            self.host, [Disk('vda', workload=Workload(writes=1))],
            rounds=0, pace_us=20000))
        guest.wait_for('...')
        before = guest.rounds_done()
        writes = guest.blockstats()['vda']['wr_operations']
        after = guest.rounds_done()
        self.assertGreaterEqual(writes, before)
        self.assertLessEqual(writes, after + 1)
        self.assertNotIn('DONE', guest.serial())
