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
"""Parse QEMU ``query-blockstats`` replies (via virDomainQemuMonitorCommand).

QMP is the only place the failed, invalid and idle counters exist, and it
carries the basic ones too, so one query per VM gives everything.  Each
entry is one guest device (qdev alias) backed by one block node
(``node-name``): together they are the device's identity inside its QEMU
process (a disk plugged again gets a new node-name).  The live XML maps an
alias to its target dev and its ``<serial>`` (the Cinder volume id Nova
writes there); it is read again whenever the device set changes, so a
volume attached at a reused target brings its own serial.
"""

import dataclasses
import json
import re
import xml.etree.ElementTree as ETree

from oslo_log import log

from ceilometer_blockacct import meters
from ceilometer_blockacct.sources import errors
from ceilometer_blockacct.sources import records
from ceilometer_blockacct.sources import values

LOG = log.getLogger(__name__)

QUERY = json.dumps({'execute': 'query-blockstats'})
QUERY_CPUS = json.dumps({'execute': 'query-cpus-fast'})

# Bound on the entries of one reply (as bulk stats' block.count).
MAX_ENTRIES = 4096

_PERIPHERAL = '/machine/peripheral/'
_COUNTERS = {f: f for f in meters.COUNTER_FIELDS}
# libvirt names a disk's nodes libvirt-<source index>-{format,storage}.
_NODE_INDEX = re.compile(r'libvirt-(\d+)-')

# Kept for callers of the old name.
ReplyError = errors.ReplyMalformed


@dataclasses.dataclass(frozen=True)
class Device:
    """One query-blockstats entry: a guest device and its block node."""

    alias: str
    node_name: str
    counters: dict
    account_failed: bool = None

    @property
    def device_id(self):
        """``'<qdev alias>/<node-name>'`` ('virtio-disk1/libvirt-3-format').

        A device without a block node (an empty drive) ends with '/'.
        """
        return '%s/%s' % (self.alias, self.node_name or '')

    @property
    def index(self):
        """The libvirt source index in the node name, or None."""
        match = _NODE_INDEX.match(self.node_name or '')
        return int(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True)
class DiskMap:
    """What the live XML says about the disks: by device alias."""

    # alias -> target dev
    aliases: dict
    # alias -> libvirt source index (<source index='N'/>), when given
    indexes: dict
    # alias -> the disk's <serial> (Nova: the Cinder volume id), when given
    serials: dict = dataclasses.field(default_factory=dict)


def disk_map(xml_text, where='domain'):
    """Read a domain's live XML into a :class:`DiskMap`.

    :raises errors.ReplyMalformed: when the XML cannot be parsed.
    """
    try:
        root = ETree.fromstring(xml_text)
    except (ETree.ParseError, TypeError, ValueError) as e:
        raise errors.ReplyMalformed(where, 'live XML: %s' % e)
    aliases, indexes, serials = {}, {}, {}
    for disk in root.findall('./devices/disk'):
        target = disk.find('target')
        alias = disk.find('alias')
        if target is None or alias is None:
            continue
        dev, name = target.get('dev'), alias.get('name')
        if not (values.is_name(dev) and values.is_name(name)):
            continue
        aliases[name] = dev
        source = disk.find('source')
        index = source.get('index') if source is not None else None
        if index is not None and index.isdigit():
            indexes[name] = int(index)
        serial = _serial(disk, where, dev)
        if serial is not None:
            serials[name] = serial
    return DiskMap(aliases, indexes, serials)


def _serial(disk, where, dev):
    """The ``<serial>`` text of a disk element, or None.

    Whitespace around it is not part of it (libvirt keeps the text as
    given); a serial that is no usable name is logged and left out, so
    the disk is accounted with no volume id rather than not at all.
    """
    element = disk.find('serial')
    if element is None or element.text is None:
        return None
    serial = element.text.strip()
    if not serial:
        return None
    if not values.is_name(serial):
        LOG.warning('Disk %(dev)s of %(where)s has a <serial> that is no '
                    'volume id (%(serial)s): its samples carry none',
                    {'dev': dev, 'where': where,
                     'serial': values.show(serial)})
        return None
    return serial


def aliases_from_xml(xml_text):
    """Map each disk's device ``<alias>`` to its target dev, from live XML.

    libvirt 9.0 starts disks with -blockdev, so query-blockstats leaves
    ``device`` empty and only the ``qdev`` path names the disk.
    """
    return disk_map(xml_text).aliases


def qdev_alias(qdev):
    """Return the device alias a ``qdev`` path belongs to.

    virtio: ``/machine/peripheral/virtio-disk0/virtio-backend`` ->
    ``virtio-disk0``; IDE/SCSI give the id itself (``ide0-0-0``).
    """
    if qdev.startswith(_PERIPHERAL):
        return qdev[len(_PERIPHERAL):].split('/', 1)[0]
    return qdev


def _return(reply_text, what):
    """The ``return`` member of a QMP reply, or ReplyMalformed."""
    try:
        reply = json.loads(reply_text)
    except (TypeError, ValueError, RecursionError) as e:
        raise errors.ReplyMalformed(what, 'not JSON (%s): %s' % (
            e, values.show(reply_text)))
    if not isinstance(reply, dict):
        raise errors.ReplyMalformed(what, 'not a QMP object: %s' % (
            values.show(reply_text),))
    if 'error' in reply:
        raise errors.ReplyMalformed(what, 'QMP error: %s' % (
            values.show(reply['error']),))
    return reply.get('return')


def parse_devices(reply_text, where='domain'):
    """The devices of a query-blockstats reply, validated.

    Entries that are not objects, have no guest device, or name it with
    something that is not text are skipped (logged); counters that are
    not uint64 are dropped (logged with VM, device and field).

    :raises errors.ReplyMalformed: when the reply is not a usable answer.
    """
    entries = _return(reply_text, where)
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise errors.ReplyMalformed(where, 'query-blockstats "return" is '
                                    'not a list of at most %d entries: %s'
                                    % (MAX_ENTRIES, values.show(entries)))
    devices = []
    for entry in entries:
        if not isinstance(entry, dict):
            LOG.warning('Skipping a malformed query-blockstats entry of '
                        '%(where)s: %(entry)s',
                        {'where': where, 'entry': values.show(entry)})
            continue
        qdev = entry.get('qdev') or entry.get('device')
        if not qdev:
            # A backend with no guest device (e.g. an empty CD-ROM node).
            continue
        node = entry.get('node-name')
        if not values.is_name(qdev) or not (node is None
                                            or values.is_name(node)):
            LOG.warning('Skipping a query-blockstats entry of %(where)s '
                        'with a device name that is not text: qdev '
                        '%(qdev)s, node-name %(node)s',
                        {'where': where, 'qdev': values.show(qdev),
                         'node': values.show(node)})
            continue
        alias = qdev_alias(qdev)
        stats = entry.get('stats')
        if not isinstance(stats, dict) or not values.is_name(alias):
            LOG.warning('query-blockstats entry %(qdev)s of %(where)s has no '
                        'stats', {'qdev': qdev, 'where': where})
            continue
        account_failed = stats.get('account_failed')
        devices.append(Device(
            alias=alias, node_name=node,
            counters=values.counters(stats, _COUNTERS,
                                     '%s/%s' % (where, alias)),
            account_failed=(account_failed
                            if isinstance(account_failed, bool) else None)))
    return devices


def device_set(devices):
    """The identity of a reply's device set: the XML is re-read on change."""
    return frozenset((d.alias, d.node_name) for d in devices)


def map_disks(devices, dmap, where='domain'):
    """Turn devices into ``{dev: DiskCounters}`` with a :class:`DiskMap`.

    :returns: (disks, stale) where ``stale`` lists the aliases the map
        cannot place: unknown, of another source index than the node
        (the map predates a hotplug), or two devices on one target.
    """
    disks, stale, owners = {}, [], {}
    for device in devices:
        dev = dmap.aliases.get(device.alias)
        want = dmap.indexes.get(device.alias)
        if dev is None or (want is not None and device.index is not None
                           and want != device.index):
            stale.append(device.alias)
            continue
        if dev in owners:
            stale.extend([device.alias, owners[dev]])
            continue
        owners[dev] = device.alias
        disks[dev] = records.DiskCounters(
            dev=dev, counters=device.counters,
            account_failed=device.account_failed,
            device_id=device.device_id,
            serial=dmap.serials.get(device.alias))
    for alias in stale:
        dev = dmap.aliases.get(alias)
        if dev is not None and owners.get(dev) == alias:
            del disks[dev]
    return disks, stale


def parse_blockstats(reply_text, aliases, where='domain'):
    """Turn a query-blockstats reply into ``{dev: DiskCounters}``.

    :param reply_text: the JSON text libvirt returns for the command.
    :param aliases: a :class:`DiskMap`, or ``{alias: target dev}``.
    :param where: a label for log lines (instance id).
    :returns: (disks, stale): see :func:`map_disks`.
    :raises errors.ReplyMalformed: when the reply is not a usable answer.
    """
    if not isinstance(aliases, DiskMap):
        aliases = DiskMap(dict(aliases), {})
    return map_disks(parse_devices(reply_text, where), aliases, where)


def thread_ids(reply_text, where='domain'):
    """The vCPU thread ids of a ``query-cpus-fast`` reply.

    :raises errors.ReplyMalformed: when the reply is not a usable answer.
    """
    entries = _return(reply_text, where)
    if not isinstance(entries, list):
        raise errors.ReplyMalformed(where, 'query-cpus-fast "return" is '
                                    'not a list: %s' % values.show(entries))
    tids = []
    for entry in entries:
        tid = entry.get('thread-id') if isinstance(entry, dict) else None
        if isinstance(tid, int) and not isinstance(tid, bool) and (
                0 < tid < 2 ** 22 + 1):
            tids.append(tid)
    return tids
