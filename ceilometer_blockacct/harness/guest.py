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
"""Kernel-less guests whose block I/O is known in advance.

The guest is a 512-byte boot sector (``bootsector.asm``, assembled with
nasm) that runs the :class:`Workload` of each :class:`Disk` through
SeaBIOS int 13h (AH=42h extended read, AH=43h extended write; works on
virtio-blk and IDE) and ATA FLUSH CACHE (0xE7) by port I/O on IDE disks
(SeaBIOS has no int 13h flush and virtio-blk gets none), prints one "."
per round and "DONE" on COM1, and halts.  QMP ``query-blockstats`` then
equals :func:`expected_blockstats`: the program's constants plus what
SeaBIOS itself does (:data:`BIOS_READS_ON_BOOT_DISK`).

What the guest sees on purpose-made errors (printed as one "x" on the
serial port per failing int 13h call or ATA command):

- invalid I/O: 2 sectors starting at the disk's last LBA.  SeaBIOS only
  checks the first LBA, so the request reaches QEMU, which rejects it:
  virtio-blk fails the whole request (1 invalid, nothing transferred);
  IDE transfers PIO one sector at a time, so the last sector is read or
  written (1 operation of 512 B) and the second is rejected (1 invalid).
- failed I/O: a blkdebug node (see ``qemu-blkdebug-wrapper``) under the
  disk's image fails with EIO every read or write that covers the
  failing LBA, and every flush that reaches it; with
  error_policy/rerror_policy='report' the guest gets an int 13h error (or
  ATA ERR) and QEMU counts 1 failed operation per request.

Usage::

    host = get_shared_host()
    guest = self.useFixture(Guest(host, [
        Disk('vda', 'virtio'),
        Disk('vdb', 'virtio', Workload(reads=10, writes=5, sectors=8)),
        Disk('hda', 'ide', Workload(writes=2, flushes=3)),
    ]))
    guest.wait_done()
    stats = guest.blockstats()          # {'vdb': {...QMP stats...}, ...}
    want = expected_blockstats(guest.disks[1])   # boot=True for disks[0]
    assert {k: stats['vdb'][k] for k in want} == want
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import uuid as uuidlib
from xml.etree import ElementTree
from xml.sax import saxutils

import fixtures
import libvirt
import libvirt_qemu

from ceilometer_blockacct.harness import libvirt_host

HERE = os.path.dirname(os.path.abspath(__file__))
ASM_SOURCE = os.path.join(HERE, 'bootsector.asm')
WRAPPER_SOURCE = os.path.join(HERE, 'qemu-blkdebug-wrapper')
QEMU = '/usr/bin/qemu-system-x86_64'
SECTOR = 512

# NOTE: measured with an empty workload (see test_harness): SeaBIOS reads
# the boot sector, one 512 B read on the boot disk, and touches no other
# disk (no read, write or flush, on virtio or IDE).
BIOS_READS_ON_BOOT_DISK = 1
BIOS_READ_BYTES_ON_BOOT_DISK = SECTOR
BIOS_OPS_ON_OTHER_DISKS = 0

# Room left in the boot sector for the workload table.
MAX_DISKS = 5

# The ATA command block base and drive select of each IDE target on the
# i440fx ('pc') machine's PIIX IDE controller.
_IDE_PORTS = {
    'hda': (0x1f0, 0xa0), 'hdb': (0x1f0, 0xb0),
    'hdc': (0x170, 0xa0), 'hdd': (0x170, 0xb0),
}

NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'


def _overlaps(lba_a, count_a, lba_b, count_b):
    return lba_a < lba_b + count_b and lba_b < lba_a + count_a


@dataclasses.dataclass(frozen=True)
class Workload:
    """The I/O one round of the guest program does on one disk.

    Requests are issued in this order: reads from ``read_lba`` on (the LBA
    advances by ``sectors`` per request), writes from ``write_lba`` on,
    invalid reads, invalid writes, failing reads, failing writes (each
    ``sectors`` long at ``fail_lba``), then flushes and failing flushes.
    """

    reads: int = 0
    writes: int = 0
    sectors: int = 8
    read_lba: int = 64
    write_lba: int = 2048
    invalid_reads: int = 0
    invalid_writes: int = 0
    flushes: int = 0
    failed_reads: int = 0
    failed_writes: int = 0
    failed_flushes: int = 0
    fail_lba: int = 6144

    @property
    def injects_errors(self):
        return bool(self.failed_reads or self.failed_writes
                    or self.failed_flushes)

    def check(self, disk):
        """Raise ValueError if the program cannot do this on ``disk``."""
        last = disk.sectors - 1
        if not 1 <= self.sectors <= 127:
            raise ValueError('sectors must be 1..127 (one int 13h call)')
        for lba, count in ((self.read_lba, self.reads * self.sectors),
                           (self.write_lba, self.writes * self.sectors),
                           (self.fail_lba, self.sectors)):
            if lba + count - 1 > last:
                raise ValueError('I/O beyond the disk (last LBA %d)' % last)
        if self.injects_errors:
            # NOTE: blkdebug fails every request covering the failing LBA,
            # whoever sends it.
            for lba, count in ((self.read_lba, self.reads * self.sectors),
                               (self.write_lba, self.writes * self.sectors),
                               (last, 2)):
                if count and _overlaps(lba, count, self.fail_lba,
                                       self.sectors):
                    raise ValueError('I/O at %d overlaps the failing LBA '
                                     '%d' % (lba, self.fail_lba))
        if (self.flushes or self.failed_flushes) and disk.bus != 'ide':
            raise ValueError('flushes need an IDE disk (no int 13h flush)')
        if self.failed_flushes and self.flushes:
            raise ValueError('blkdebug fails every flush of a disk: use '
                             'flushes or failed_flushes, not both')
        if self.failed_flushes and not (self.writes or self.failed_writes):
            # NOTE: QEMU completes a flush with no write since the last
            # one without reaching blkdebug: it would not fail.
            raise ValueError('failed_flushes needs a write before them')


@dataclasses.dataclass(frozen=True)
class Disk:
    """One raw disk of a guest; the first disk of a guest is its boot disk.

    :param target: libvirt target dev ('vda', 'hda', ...).
    :param bus: 'virtio' or 'ide'.
    :param alias: libvirt user alias ('ua-...'), also the QMP qdev id.
    :param iotune: libvirt <iotune> elements, e.g. {'total_iops_sec': 50}.
    """

    target: str
    bus: str = 'virtio'
    workload: Workload = Workload()
    size_mib: int = 4
    alias: str = None
    iotune: dict = None

    @property
    def sectors(self):
        return self.size_mib * 1024 * 1024 // SECTOR

    @property
    def last_lba(self):
        return self.sectors - 1


def expected_blockstats(disk, rounds=1, boot=False):
    """QMP query-blockstats counters after ``rounds`` rounds on ``disk``.

    ``boot``: the disk is the guest's boot disk (adds SeaBIOS's read).
    Keys are QMP's own; timing fields are not predictable and absent.
    """
    w = disk.workload
    if disk.bus == 'ide':
        # NOTE: IDE PIO moves one sector per QEMU request; the invalid
        # request's first sector is the (valid) last LBA.
        rd_ops = w.reads * w.sectors + w.invalid_reads
        wr_ops = w.writes * w.sectors + w.invalid_writes
        rd_bytes, wr_bytes = rd_ops * SECTOR, wr_ops * SECTOR
    else:
        rd_ops, wr_ops = w.reads, w.writes
        rd_bytes = w.reads * w.sectors * SECTOR
        wr_bytes = w.writes * w.sectors * SECTOR
    stats = {
        'rd_operations': rd_ops * rounds,
        'rd_bytes': rd_bytes * rounds,
        'wr_operations': wr_ops * rounds,
        'wr_bytes': wr_bytes * rounds,
        'flush_operations': w.flushes * rounds,
        'invalid_rd_operations': w.invalid_reads * rounds,
        'invalid_wr_operations': w.invalid_writes * rounds,
        'invalid_flush_operations': 0,
        'failed_rd_operations': w.failed_reads * rounds,
        'failed_wr_operations': w.failed_writes * rounds,
        'failed_flush_operations': w.failed_flushes * rounds,
    }
    if boot:
        stats['rd_operations'] += BIOS_READS_ON_BOOT_DISK
        stats['rd_bytes'] += BIOS_READ_BYTES_ON_BOOT_DISK
    return stats


# -- the boot sector ------------------------------------------------------

_HEADER = struct.Struct('<HIB')
_DISK = struct.Struct('<BBHHHIHIHHIHHHI')


def _table(disks, rounds, pace_us):
    table = [_HEADER.pack(rounds, pace_us, len(disks))]
    for index, disk in enumerate(disks):
        w = disk.workload
        base, select = _IDE_PORTS.get(disk.target, (0, 0))
        if disk.bus != 'ide':
            base, select = 0, 0
        table.append(_DISK.pack(
            # NOTE: SeaBIOS numbers hard disks in boot order from 0x80.
            0x80 + index, select, base, w.sectors,
            w.reads, w.read_lba, w.writes, w.write_lba,
            w.invalid_reads, w.invalid_writes, disk.last_lba,
            w.flushes + w.failed_flushes,
            w.failed_reads, w.failed_writes, w.fail_lba))
    return b''.join(table)


def boot_sector(disks, rounds=1, pace_us=0):
    """The 512-byte program for ``disks`` (assembled with nasm)."""
    if not 1 <= len(disks) <= MAX_DISKS:
        raise ValueError('1..%d disks' % MAX_DISKS)
    for disk in disks:
        disk.workload.check(disk)
    code = _assemble()
    sector = code + _table(disks, rounds, pace_us)
    if len(sector) > 510:
        raise ValueError('program + table is %d bytes > 510' % len(sector))
    return sector.ljust(510, b'\0') + b'\x55\xaa'


def _assemble():
    if not shutil.which('nasm'):
        raise RuntimeError('nasm not found: install it (see bindep.txt)')
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'boot.bin')
        subprocess.run(['nasm', '-f', 'bin', '-o', out, ASM_SOURCE],
                       check=True, capture_output=True)
        with open(out, 'rb') as f:
            return f.read()


def blkdebug_rules(workload):
    """blkdebug inject-error rules that make the failing I/O fail (EIO)."""
    sector = workload.fail_lba
    rules = []
    if workload.failed_reads:
        rules.append({'event': 'read_aio', 'iotype': 'read',
                      'sector': sector})
    if workload.failed_writes:
        rules.append({'event': 'write_aio', 'iotype': 'write',
                      'sector': sector})
    if workload.failed_flushes:
        rules.append({'event': 'flush_to_os', 'iotype': 'flush'})
    return rules


def blkdebug_emulator():
    """Path of the blkdebug <emulator> wrapper, at a stable place.

    NOTE: libvirt caches capabilities per emulator path and re-probes when
    its ctime changes, so the copy is only rewritten when it differs.
    """
    path = os.path.join(libvirt_host.CACHE_DIR, 'qemu-blkdebug-wrapper')
    with open(WRAPPER_SOURCE, 'rb') as f:
        wanted = f.read()
    try:
        with open(path, 'rb') as f:
            current = f.read()
    except OSError:
        current = None
    if current != wanted:
        tmp = path + '.%d' % os.getpid()
        with open(tmp, 'wb') as f:
            f.write(wanted)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    return path


# -- domain XML -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NovaMeta:
    """What Ceilometer's libvirt_metadata discovery reads."""

    name: str = 'blockacct-test'
    flavor_name: str = 'm1.blockacct'
    flavor_id: str = 'blockacct-flavor-1'
    user_id: str = '0c5c8ea6-9c2d-4d9b-9a2b-0d7c4a0f0001'
    project_id: str = '0c5c8ea6-9c2d-4d9b-9a2b-0d7c4a0f0002'
    image_id: str = '0c5c8ea6-9c2d-4d9b-9a2b-0d7c4a0f0003'


def _e(text):
    return saxutils.escape(str(text), {"'": '&apos;', '"': '&quot;'})


def _nova_xml(nova, memory_mib, disk_gb):
    return f"""
  <metadata>
    <nova:instance xmlns:nova="{NOVA_NS}">
      <nova:package version="27.0.0"/>
      <nova:name>{_e(nova.name)}</nova:name>
      <nova:creationTime>2025-01-01 00:00:00</nova:creationTime>
      <nova:flavor name="{_e(nova.flavor_name)}" id="{_e(nova.flavor_id)}">
        <nova:memory>{memory_mib}</nova:memory>
        <nova:disk>{disk_gb}</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>1</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="{_e(nova.user_id)}">blockacct</nova:user>
        <nova:project uuid="{_e(nova.project_id)}">blockacct</nova:project>
      </nova:owner>
      <nova:root type="image" uuid="{_e(nova.image_id)}"/>
    </nova:instance>
  </metadata>"""


def _disk_xml(disk, path, boot_order):
    iotune = ''
    if disk.iotune:
        iotune = '<iotune>%s</iotune>' % ''.join(
            '<%s>%s</%s>' % (k, _e(v), k) for k, v in disk.iotune.items())
    alias = "<alias name='%s'/>" % _e(disk.alias) if disk.alias else ''
    # NOTE: every disk needs a boot order or SeaBIOS (strict boot) gives
    # it no BIOS drive number; 'report' hands I/O errors to the guest
    # instead of pausing the VM, so failed requests are counted and done.
    return f"""
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' error_policy='report'
              rerror_policy='report'/>
      <source file='{_e(path)}'/>
      <target dev='{_e(disk.target)}' bus='{_e(disk.bus)}'/>
      {iotune}
      <boot order='{boot_order}'/>
      {alias}
    </disk>"""


def domain_xml(name, uuid, disks, image_paths, serial_path,
               memory_mib=32, emulator=QEMU, nova=None):
    """libvirt XML of a TCG guest booting from ``disks[0]``."""
    nova = nova or NovaMeta(name=name)
    disk_gb = max(1, sum(d.size_mib for d in disks) // 1024)
    disks_xml = ''.join(_disk_xml(d, p, i + 1) for i, (d, p) in
                        enumerate(zip(disks, image_paths)))
    return f"""<domain type='qemu'>
  <name>{_e(name)}</name>
  <uuid>{_e(uuid)}</uuid>{_nova_xml(nova, memory_mib, disk_gb)}
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{_e(emulator)}</emulator>{disks_xml}
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='{_e(serial_path)}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


# -- the fixture ------------------------------------------------------------

class GuestError(Exception):
    """The guest did not do what it was told; the message says why."""


class Guest(fixtures.Fixture):
    """Defines and starts a kernel-less guest on a :class:`LibvirtHost`.

    :param host: a started LibvirtHost.
    :param disks: list of :class:`Disk`; disks[0] is the boot disk.
    :param rounds: rounds of the workload (0 = forever, e.g. benchmark).
    :param pace_us: pause between rounds (int 15h/86h), microseconds.
    :param paused: start with the vCPUs stopped (counters at 0).
    """

    def __init__(self, host, disks, name=None, uuid=None, rounds=1,
                 pace_us=0, memory_mib=32, nova=None, paused=False):
        super().__init__()
        self.paused = paused
        self.host = host
        self.disks = list(disks)
        self.uuid = uuid or str(uuidlib.uuid4())
        self.name = name or 'blockacct-%s' % self.uuid[:8]
        self.rounds = rounds
        self.pace_us = pace_us
        self.memory_mib = memory_mib
        self.nova = nova or NovaMeta(name=self.name)
        self.domain = None
        self.boot_seconds = None

    def _setUp(self):
        self.dir = os.path.join(self.host.images_dir, self.name)
        os.makedirs(self.dir)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.serial_path = os.path.join(self.dir, 'serial.log')
        self.image_paths = self._make_images()
        emulator = QEMU
        if any(d.workload.injects_errors for d in self.disks):
            emulator = blkdebug_emulator()
        self.xml = domain_xml(self.name, self.uuid, self.disks,
                              self.image_paths, self.serial_path,
                              self.memory_mib, emulator, self.nova)
        conn = self.host.connect()
        self.domain = conn.defineXML(self.xml)
        self.addCleanup(self._undefine)
        self.start()

    def _make_images(self):
        program = boot_sector(self.disks, self.rounds, self.pace_us)
        paths = []
        for index, disk in enumerate(self.disks):
            path = os.path.join(self.dir, '%s.img' % disk.target)
            with open(path, 'wb') as f:
                if index == 0:
                    f.write(program)
                f.truncate(disk.size_mib * 1024 * 1024)
            rules = blkdebug_rules(disk.workload)
            if rules:
                with open(path + '.blkdebug.json', 'w') as f:
                    json.dump(rules, f)
            paths.append(path)
        return paths

    def _undefine(self):
        # NOTE: the host may already be gone (process exit).
        with contextlib.suppress(libvirt.libvirtError):
            self.destroy()
            self.domain.undefine()

    # -- lifecycle --------------------------------------------------------

    def start(self):
        """Start the domain with an empty serial file.

        With ``paused``, QEMU starts with its vCPUs stopped: every counter
        is 0 until ``domain.resume()``.
        """
        # NOTE: libvirt 9.0 opens file serials with append=on.
        open(self.serial_path, 'wb').close()
        self._started = time.monotonic()
        self.boot_seconds = None
        self.domain.createWithFlags(
            libvirt.VIR_DOMAIN_START_PAUSED if self.paused else 0)

    def destroy(self):
        """Power off at once (QEMU exits; its counters are gone)."""
        if self.domain.isActive():
            self.domain.destroy()

    def restart(self):
        """destroy() + start(): a new QEMU process, counters from zero."""
        self.destroy()
        self.start()

    @property
    def pid(self):
        """PID of the running QEMU process."""
        path = os.path.join(self.host.qemu_pid_dir, '%s.pid' % self.name)
        with open(path) as f:
            return int(f.read().strip())

    def serial(self):
        """What the guest printed so far."""
        try:
            with open(self.serial_path, 'rb') as f:
                return f.read().decode('ascii', 'replace')
        except FileNotFoundError:
            return ''

    def rounds_done(self):
        """Rounds completed so far (the guest prints one "." per round).

        NOTE: a round may be under way: read counters between two calls
        that agree, or use a finite ``rounds`` for exact totals.
        """
        return self.serial().count('.')

    def wait_done(self, timeout=60.0):
        """Wait for DONE on the serial port; returns the serial output."""
        return self.wait_for('DONE', timeout)

    def wait_for(self, marker, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.serial()
            if marker in out:
                if self.boot_seconds is None:
                    self.boot_seconds = time.monotonic() - self._started
                return out
            if not self.domain.isActive():
                break
            time.sleep(0.02)
        raise GuestError('%s: no %r within %ss (active=%s) serial=%r' % (
            self.name, marker, timeout, self.domain.isActive(),
            self.serial()[-200:]))

    # -- reading counters -------------------------------------------------

    def qmp(self, command, **arguments):
        """Run a QMP command through libvirt; returns the parsed reply."""
        cmd = {'execute': command}
        if arguments:
            cmd['arguments'] = arguments
        return json.loads(self.qmp_text(json.dumps(cmd)))

    def qmp_text(self, command_json):
        """Raw QMP reply text, as libvirt returns it."""
        return libvirt_qemu.qemuMonitorCommand(self.domain, command_json, 0)

    def blockstats(self):
        """QMP query-blockstats 'stats' of each disk, keyed by target."""
        reply = self.qmp('query-blockstats')['return']
        aliases = self.aliases()
        stats = {}
        for entry in reply:
            qdev = entry.get('qdev', '')
            for target, alias in aliases.items():
                # NOTE: virtio qdev is /machine/peripheral/ALIAS/virtio-
                # backend, IDE's is ALIAS (libvirt 9.0, -blockdev).
                if alias in qdev.split('/'):
                    stats[target] = entry['stats']
        return stats

    def aliases(self):
        """{target dev: device alias} from the live XML."""
        root = ElementTree.fromstring(self.domain.XMLDesc(0))
        result = {}
        for disk in root.findall('./devices/disk'):
            target = disk.find('target').get('dev')
            alias = disk.find('alias')
            if alias is not None:
                result[target] = alias.get('name')
        return result


def workload_digest(disks, rounds, pace_us):
    """A short stable id of a guest program (for recorded file names)."""
    return hashlib.sha1(boot_sector(disks, rounds, pace_us)).hexdigest()[:8]
