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
"""What a real Linux guest sees, next to QEMU, the plugin and upstream.

One Debian kernel guest per test class (:mod:`.fixtures.linux_guest`),
with a disk of every kind: a file on virtio-blk (vda), a file on
virtio-scsi (sda), a file on the i440fx's IDE (hda; the guest's ata_piix
names it sdX), and a network disk, an NBD export of qemu-nbd on loopback,
on virtio-blk (vdb); hotplugged disks come and go during a test.  Every
workload is run by the guest's own tools (busybox dd with O_DIRECT, sync,
blkdiscard) and observed four ways over the same window:

* the guest's /proc/diskstats (what iostat shows the customer);
* QEMU's query-blockstats (what the plugin reads);
* the plugin's reset-safe deltas, polled by Ceilometer's own polling
  manager (:mod:`.agent`) right before and right after;
* upstream Ceilometer's disk pollsters (``disk.device.read.bytes``...,
  cumulative) polled in the same cycles: the growth between the polls.

Expected values come from what each test makes the guest do.  The known
differences, each asserted with its kernel-side reason:

* an fsync() of a block device is one cache flush for QEMU, but the guest
  also counts the empty write that carries the flush (blkdev_issue_flush
  submits a 0-sector REQ_OP_WRITE | REQ_PREFLUSH bio, accounted as a
  write when the flush sequence completes): guest writes = QEMU writes +
  fsyncs, guest sectors written = QEMU bytes / 512;
* SeaBIOS reads 512 B of vda and hda before the kernel runs (QEMU counts
  them, the guest cannot);
* QEMU 7.2's virtio-blk does not account discards (unmap_* stay 0 while
  the guest's discards reach the image: holes are punched); virtio-scsi
  (UNMAP) and IDE (TRIM) do;
* upstream has no flush and no discard meter.

Set ``BLOCKACCT_DISK_TABLE=FILE`` to append each comparison as a table
(doc/disks.rst shows one).
"""

import dataclasses
import os

import fixtures
import testtools
from testtools import content

from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional import agent as agent_mod
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host
from ceilometer_blockacct.tests.functional.fixtures import linux_guest as lg
from ceilometer_blockacct.tests.functional.fixtures import nbd

LinuxDisk = lg.LinuxDisk
KIB = 1024
MIB = 1024 * KIB
BLOCK = 64 * KIB
SECTOR = 512

UPSTREAM = ('disk.device.read.requests', 'disk.device.read.bytes',
            'disk.device.write.requests', 'disk.device.write.bytes')
# The quantities compared, and where each side keeps them.
QUANTITIES = ('read_requests', 'read_bytes', 'write_requests', 'write_bytes',
              'flush_requests', 'discard_requests', 'discard_bytes')
GUEST = {'read_requests': ('reads', 1), 'read_bytes': ('sectors_read', SECTOR),
         'write_requests': ('writes', 1),
         'write_bytes': ('sectors_written', SECTOR),
         'flush_requests': ('flushes', 1),
         'discard_requests': ('discards', 1),
         'discard_bytes': ('sectors_discarded', SECTOR)}
QEMU = {'read_requests': 'rd_operations', 'read_bytes': 'rd_bytes',
        'write_requests': 'wr_operations', 'write_bytes': 'wr_bytes',
        'flush_requests': 'flush_operations',
        'discard_requests': 'unmap_operations',
        'discard_bytes': 'unmap_bytes'}
PLUGIN = {'read_requests': 'disk.device.read.requests.delta',
          'read_bytes': 'disk.device.read.bytes.delta',
          'write_requests': 'disk.device.write.requests.delta',
          'write_bytes': 'disk.device.write.bytes.delta',
          'flush_requests': 'disk.device.flush.requests.delta',
          'discard_requests': 'disk.device.discard.requests.delta',
          'discard_bytes': 'disk.device.discard.bytes.delta'}
UPSTREAM_OF = {'read_requests': 'disk.device.read.requests',
               'read_bytes': 'disk.device.read.bytes',
               'write_requests': 'disk.device.write.requests',
               'write_bytes': 'disk.device.write.bytes'}

# SeaBIOS reads one 512 B sector of these before the kernel runs.
FIRMWARE_READ = {'vda', 'hda'}
# The cache flush of an fsync() comes with an empty write in the guest.
EMPTY_WRITES_PER_FSYNC = 1
# The kernel reads the partition table of a new disk: one 4 KiB read.
PARTITION_SCAN = {'read_requests': 1, 'read_bytes': 4 * KIB}

VOLUME_NBD = 'a1c0b7e2-3f4d-4c5b-8e9f-0a1b2c3d4e01'
VOLUME_1 = 'a1c0b7e2-3f4d-4c5b-8e9f-0a1b2c3d4e02'
VOLUME_2 = 'a1c0b7e2-3f4d-4c5b-8e9f-0a1b2c3d4e03'


def zero(**values):
    """A row of every quantity, 0 unless given."""
    row = dict.fromkeys(QUANTITIES, 0)
    row.update(values)
    return row


def upstream_row(row):
    """What upstream's four meters can show of ``row``."""
    return {q: row[q] for q in UPSTREAM_OF}


@dataclasses.dataclass
class Window:
    """One disk seen four ways over one window."""

    target: str
    guest: dict
    qemu: dict
    plugin: dict
    upstream: dict

    def table(self, title):
        lines = ['%s (%s)' % (title, self.target),
                 '%-17s %10s %10s %10s %10s' % ('', 'guest', 'QEMU',
                                                'plugin', 'upstream')]
        for q in QUANTITIES:
            lines.append('%-17s %10s %10s %10s %10s' % (
                q, self.guest.get(q), self.qemu.get(q), self.plugin.get(q),
                self.upstream.get(q, '-')))
        return '\n'.join(lines) + '\n'


class Run(fixtures.Fixture):
    """The shared guest, its NBD export and the polling agent."""

    def _setUp(self):
        self.host = libvirt_host.get_shared_host()
        self.export = self.useFixture(nbd.NbdExport(size_mib=12))
        self.disks = [
            LinuxDisk('vda', 'virtio', 8, discard=True),
            LinuxDisk('sda', 'scsi', 9, discard=True),
            LinuxDisk('hda', 'ide', 10, discard=True),
            LinuxDisk('vdb', 'virtio', 12, serial=VOLUME_NBD, discard=True,
                      nbd=self.export),
        ]
        state = self.useFixture(fixtures.TempDir()).join('state')
        os.mkdir(state)
        self.agent = self.useFixture(agent_mod.PollingAgent(
            self.host, state,
            meter_names=sorted(meters.BY_NAME) + list(UPSTREAM)))
        # NOTE: an agent that has polled some VM has state, so the new
        # Linux guest's first poll bills whole counters (as for any VM
        # started under a running agent).
        with guest_mod.Guest(self.host, [guest_mod.Disk('vda')]) as witness:
            witness.wait_done()
            self.agent.poll()
        self.guest = self.useFixture(lg.LinuxGuest(self.host, self.disks))
        self.first = self.agent.poll()
        self.last = self.first
        self.boot_guest = self.guest.diskstats()
        self.boot_qemu = self.guest.blockstats()

    def rid(self, target):
        return '%s-%s' % (self.guest.uuid, target)

    def samples(self, samples, target):
        return agent_mod.by_meter(samples, self.rid(target))

    def window(self, action, targets):
        """Run ``action()``; returns ``{target: Window}`` of its effect."""
        names = {t: self.guest.names.get(t) for t in targets}
        g0, q0, p0 = self.guest.diskstats(), self.guest.blockstats(), \
            self.last
        action()
        g1, q1 = self.guest.diskstats(), self.guest.blockstats()
        self.last = p1 = self.agent.poll()
        out = {}
        for target in targets:
            name = self.guest.names.get(target) or names[target]
            out[target] = Window(
                target,
                # NOTE: a disk detached in the window is gone from both.
                guest=(guest_row(g1[name], g0.get(name)) if name in g1
                       else {}),
                qemu=qemu_row(q1.get(target), q0.get(target)),
                plugin=plugin_row(self.samples(p1, target)),
                upstream=upstream_growth(self.samples(p1, target),
                                         self.samples(p0, target)))
        return out


def guest_row(after, before=None):
    row = {}
    for q, (field, unit) in GUEST.items():
        row[q] = (after[field] - (before[field] if before else 0)) * unit
    return row


def qemu_row(after, before=None):
    if after is None:
        return {}
    return {q: after.get(f, 0) - (before.get(f, 0) if before else 0)
            for q, f in QEMU.items()}


def plugin_row(samples):
    return {q: samples.get(m) for q, m in PLUGIN.items()}


def upstream_growth(after, before):
    return {q: (after[m] - before.get(m, 0)) if m in after else None
            for q, m in UPSTREAM_OF.items()}


class LinuxGuestTestCase(testtools.TestCase):

    shared = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared = Run()
        try:
            cls.shared.setUp()
        except Exception:
            cls.shared.cleanUp()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.shared.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(name)s %(message)s'))
        self.guest = self.shared.guest

    def show(self, title, window):
        """Attach the four-way table to the test (and to the capture)."""
        text = window.table(title)
        self.addDetail('%s-%s' % (title, window.target),
                       content.text_content(text))
        path = os.environ.get('BLOCKACCT_DISK_TABLE')
        if path:
            with open(path, 'a') as f:
                f.write(text + '\n')

    def assert_window(self, window, guest, qemu, title):
        """Guest and QEMU as given; the plugin = QEMU; upstream likewise."""
        self.show(title, window)
        self.assertEqual(guest, window.guest, 'guest /proc/diskstats')
        self.assertEqual(qemu, window.qemu, 'QEMU query-blockstats')
        self.assertEqual(qemu, window.plugin, 'plugin deltas')
        self.assertEqual(upstream_row(qemu), window.upstream,
                         "upstream's pollsters")

    def node_name(self, target):
        """The block node QEMU has under ``target`` now (from QMP)."""
        alias = self.guest.aliases()[target]
        for entry in self.guest.qmp('query-blockstats')['return']:
            if alias in entry.get('qdev', '').split('/'):
                return entry['node-name']
        raise AssertionError('%s (%s) not in query-blockstats'
                             % (target, alias))

    def volume_id(self, target, upstream=False):
        """volume_id of ``target``'s samples in the last poll.

        ``upstream``: of upstream's samples instead of the plugin's.
        """
        ids = {s['resource_metadata'].get('volume_id')
               for s in self.shared.last
               if s['resource_id'] == self.shared.rid(target)
               and (s['counter_name'] in meters.BY_NAME) != upstream}
        self.assertEqual(1, len(ids), ids)
        return ids.pop()


class TestDiskKinds(LinuxGuestTestCase):
    """The same workload on each kind of disk: reads, writes, one fsync."""

    READS, WRITES = 10, 5

    def workload(self, target):
        def action():
            self.guest.read(target, self.READS, BLOCK)
            self.guest.write(target, self.WRITES, BLOCK, seek=16)
            self.guest.fsync(target)
        return self.shared.window(action, [target])[target]

    def expected(self):
        qemu = zero(read_requests=self.READS,
                    read_bytes=self.READS * BLOCK,
                    write_requests=self.WRITES,
                    write_bytes=self.WRITES * BLOCK, flush_requests=1)
        guest = dict(qemu, write_requests=self.WRITES
                     + EMPTY_WRITES_PER_FSYNC)
        return guest, qemu

    def test_file_on_virtio_blk(self):
        guest, qemu = self.expected()
        self.assert_window(self.workload('vda'), guest, qemu,
                           'file, virtio-blk')

    def test_file_on_virtio_scsi(self):
        guest, qemu = self.expected()
        self.assert_window(self.workload('sda'), guest, qemu,
                           'file, virtio-scsi')

    def test_file_on_ide(self):
        guest, qemu = self.expected()
        self.assertTrue(self.guest.names['hda'].startswith('sd'))
        self.assert_window(self.workload('hda'), guest, qemu, 'file, IDE')

    def test_nbd_network_disk_on_virtio_blk(self):
        guest, qemu = self.expected()
        self.assert_window(self.workload('vdb'), guest, qemu,
                           'network (NBD), virtio-blk')
        self.assertEqual(VOLUME_NBD, self.volume_id('vdb'))
        self.assertIsNone(self.volume_id('vda'))
        # NOTE: upstream's samples of the same resource carry none; the
        # publisher only sends attributes a sample has, so Gnocchi keeps
        # the plugin's (see test_volumes).
        self.assertIsNone(self.volume_id('vdb', upstream=True))

    def test_boot_counters(self):
        """The first poll of the new VM bills what each disk did so far."""
        first = self.shared.first
        for disk in self.shared.disks:
            target = disk.target
            name = self.guest.names[target]
            guest = guest_row(self.shared.boot_guest[name])
            # The kernel's partition-table read, nothing else.
            self.assertEqual(zero(**PARTITION_SCAN), guest, target)
            qemu = zero(**PARTITION_SCAN)
            if target in FIRMWARE_READ:
                qemu['read_requests'] += 1
                qemu['read_bytes'] += SECTOR
            window = Window(target, guest,
                            qemu_row(self.shared.boot_qemu[target]),
                            plugin_row(self.shared.samples(first, target)),
                            upstream_growth(self.shared.samples(first, target),
                                            {}))
            self.assert_window(window, guest, qemu, 'boot')


class TestDiscard(LinuxGuestTestCase):
    """blkdiscard in the guest on disks with discard='unmap'."""

    OFFSET, LENGTH = 1 * MIB, 2 * MIB

    def discard(self, target):
        return self.shared.window(
            lambda: self.guest.discard(target, self.OFFSET, self.LENGTH),
            [target])[target]

    def test_virtio_scsi_unmap_is_billed_exactly(self):
        row = zero(discard_requests=1, discard_bytes=self.LENGTH)
        self.assert_window(self.discard('sda'), row, row,
                           'discard, file, virtio-scsi')

    def test_ide_trim_is_billed_exactly(self):
        row = zero(discard_requests=1, discard_bytes=self.LENGTH)
        self.assert_window(self.discard('hda'), row, row,
                           'discard, file, IDE')

    def test_virtio_blk_discard_reaches_the_image_uncounted(self):
        # NOTE: QEMU 7.2's virtio-blk hands discards to the block layer
        # without accounting them: unmap_* stay 0, so do the meters.
        path = self.guest.image(self.shared.disks[0])
        self.shared.window(
            lambda: self.guest.write('vda', 48, BLOCK, seek=16), ['vda'])
        allocated = os.stat(path).st_blocks * SECTOR
        window = self.discard('vda')
        self.assert_window(
            window, zero(discard_requests=1, discard_bytes=self.LENGTH),
            zero(), 'discard, file, virtio-blk')
        self.assertEqual(allocated - self.LENGTH,
                         os.stat(path).st_blocks * SECTOR)

    def test_nbd_discard_reaches_the_export_uncounted(self):
        export = self.shared.export
        self.shared.window(
            lambda: self.guest.write('vdb', 48, BLOCK, seek=16), ['vdb'])
        allocated = export.allocated_bytes()
        window = self.discard('vdb')
        self.assert_window(
            window, zero(discard_requests=1, discard_bytes=self.LENGTH),
            zero(), 'discard, network (NBD), virtio-blk')
        self.assertEqual(allocated - self.LENGTH, export.allocated_bytes())


class TestHotplug(LinuxGuestTestCase):
    """Volumes attached and detached live, as Nova does."""

    def attach(self, disk):
        """Attach ``disk``; the window covers the guest noticing it."""
        return self.shared.window(
            lambda: self.guest.attach(disk), [disk.target])[disk.target]

    def test_attach_detach_reattach(self):
        vol1 = LinuxDisk('vdc', 'virtio', 11, serial=VOLUME_1)
        vol1_again = LinuxDisk('vdc', 'virtio', 11, serial=VOLUME_1)
        vol2 = LinuxDisk('vdc', 'virtio', 13, serial=VOLUME_2)
        vol1_elsewhere = LinuxDisk('vdd', 'virtio', 11, serial=VOLUME_1)
        scan = zero(**PARTITION_SCAN)

        # A new disk: its whole counter (the kernel's partition scan).
        self.assert_window(self.attach(vol1), scan, scan, 'attached')
        first_id = self.node_name('vdc')
        self.assertEqual(VOLUME_1, self.volume_id('vdc'))

        writes = zero(write_requests=4, write_bytes=4 * BLOCK,
                      flush_requests=1)

        def work():
            self.guest.write('vdc', 4, BLOCK)
            self.guest.fsync('vdc')
        self.assert_window(self.shared.window(work, ['vdc'])['vdc'],
                           dict(writes, write_requests=5), writes,
                           'hotplugged, virtio-blk')

        # I/O after the last poll, then the detach: nobody reads it.
        def late_io_and_detach():
            self.guest.write('vdc', 3, BLOCK, seek=64)
            self.late = self.guest.blockstats()['vdc']
            self.late_guest = self.guest.stats_of('vdc')
            self.guest.detach('vdc')
        window = self.shared.window(late_io_and_detach, ['vdc'])['vdc']
        self.assertEqual({}, window.guest)
        self.assertEqual({}, window.qemu)
        self.assertEqual(dict.fromkeys(QUANTITIES), window.plugin)
        self.assertEqual(dict.fromkeys(UPSTREAM_OF), window.upstream)
        lost = {'write_requests': 3, 'write_bytes': 3 * BLOCK}
        seen = {'write_requests': 4, 'write_bytes': 4 * BLOCK}
        self.assertEqual(
            {q: seen[q] + lost[q] for q in lost},
            {q: self.late[QEMU[q]] for q in lost})
        # The guest saw them too (and the empty write of the one fsync).
        self.assertEqual(
            {'write_requests': seen['write_requests'] + 1
             + lost['write_requests'],
             'write_bytes': seen['write_bytes'] + lost['write_bytes']},
            {q: guest_row(self.late_guest)[q] for q in lost})
        self.addDetail('lost-at-detach', content.text_content(
            'I/O between the last poll and the detach, never billed: %s'
            % lost))

        # The same volume again at the same target: a new disk, never a
        # continuation of the first (its counters start again).
        self.assert_window(self.attach(vol1_again), scan, scan,
                           're-attached, same target')
        second_id = self.node_name('vdc')
        self.assertNotEqual(first_id, second_id)
        self.guest.detach('vdc')
        self.shared.window(lambda: None, [])

        # Another volume at the reused target: a new disk, its own id.
        self.assert_window(self.attach(vol2), scan, scan,
                           'another volume, same target')
        self.assertEqual(VOLUME_2, self.volume_id('vdc'))
        self.assertNotIn(self.node_name('vdc'), (first_id, second_id))

        # The first volume at another target, next to it.
        self.assert_window(self.attach(vol1_elsewhere), scan, scan,
                           'attached, another target')
        self.assertEqual(VOLUME_1, self.volume_id('vdd'))
        for target in ('vdc', 'vdd'):
            self.guest.detach(target)

    def test_virtio_scsi_hotplug(self):
        disk = LinuxDisk('sdc', 'scsi', 14, serial=VOLUME_2)
        scan = zero(**PARTITION_SCAN)
        self.assert_window(self.attach(disk), scan, scan,
                           'attached, virtio-scsi')
        row = zero(read_requests=2, read_bytes=2 * BLOCK)
        self.assert_window(
            self.shared.window(
                lambda: self.guest.read('sdc', 2, BLOCK), ['sdc'])['sdc'],
            row, row,
            'hotplugged, virtio-scsi')
        self.guest.detach('sdc')
