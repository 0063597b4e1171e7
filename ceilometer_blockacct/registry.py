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
"""Which QEMU processes and devices this agent has seen, and since when.

The whole counter of a disk may be billed only when its counting provably
began after the meter's state began: a process absent from an earlier
complete listing (or started after the mark, by its own start time, or on
a later boot), or a device absent from an earlier reading of its process.
This module keeps that evidence and answers :meth:`Registry.began_after`;
it also says when a process is gone (absent from ``GONE_AFTER`` complete
listings in a row), the only time its baselines may be dropped, and which
readings contradict what was seen (:meth:`Registry.observe_reading`).

Times are CLOCK_BOOTTIME ns of the host (comparable within one boot id).
The state store persists it (:mod:`state`); it is pure logic otherwise.
"""

import dataclasses
import threading

from oslo_log import log

LOG = log.getLogger(__name__)

# Complete listings in a row without a process before it counts as gone.
GONE_AFTER = 2


@dataclasses.dataclass
class Process:
    """One QEMU process the agent has listed."""

    uuid: str
    boot_id: str
    dom_id: int
    start: int = None
    # The last complete listing (boottime ns) that did not list it; None
    # when it was already there at the first listing we have.
    appeared_after: int = None
    absent: int = 0
    # device_id -> [target dev, boottime ns of the last reading of this
    # process without it, or None]
    devices: dict = dataclasses.field(default_factory=dict)
    # Memory only: (mono_ns, boottime ns) of the last reading recorded.
    last_read: tuple = None
    # Boottime ns of the first reading recorded (saved): a device absent
    # from it was plugged after it, even across agent restarts.
    first_read: int = None

    def to_json(self):
        return {'uuid': self.uuid, 'boot': self.boot_id, 'dom': self.dom_id,
                'start': self.start, 'after': self.appeared_after,
                'absent': self.absent, 'devices': self.devices,
                'first_read': self.first_read}

    @classmethod
    def from_json(cls, d):
        """Inverse of :meth:`to_json`; :raises ValueError: if malformed."""
        try:
            p = cls(d['uuid'], d['boot'], d['dom'], d['start'], d['after'],
                    d['absent'], d['devices'],
                    first_read=d.get('first_read'))
        except (KeyError, TypeError) as e:
            raise ValueError('malformed process %r: %s' % (d, e))
        ok = (isinstance(p.uuid, str) and isinstance(p.boot_id, str)
              and isinstance(p.dom_id, int) and _opt_int(p.start)
              and _opt_int(p.appeared_after) and isinstance(p.absent, int)
              and _opt_int(p.first_read)
              and isinstance(p.devices, dict)
              and all(isinstance(v, list) and len(v) == 2
                      and isinstance(v[0], str) and _opt_int(v[1])
                      for v in p.devices.values()))
        if not ok:
            raise ValueError('malformed process %r' % (d,))
        return p


def _opt_int(v):
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


class Registry:
    """Processes and devices seen; thread-safe."""

    def __init__(self, processes=(), gone=None, listing=None):
        self._lock = threading.Lock()
        self.processes = {(p.boot_id, p.dom_id): p for p in processes}
        # (boot id, dom id) -> start of processes declared gone.
        self.gone = dict(gone or {})
        # (boot id, boottime ns) of the last complete listing recorded.
        self.listing = listing
        self.dirty = False

    def observe_listing(self, listing, at):
        """Record a complete listing made at boottime ``at``.

        :returns: the :class:`Process` objects now gone.
        """
        gone = []
        with self._lock:
            boot = listing.boot_id
            prev = None
            if self.listing is not None and self.listing[0] == boot:
                prev = self.listing[1]
            for key, p in list(self.processes.items()):
                if p.boot_id != boot:
                    gone.append(self.processes.pop(key))
            self.gone = {k: v for k, v in self.gone.items() if k[0] == boot}
            listed = set()
            for uuid, dom_id in listing.domains.items():
                key = (boot, dom_id)
                listed.add(key)
                p = self.processes.get(key)
                if p is not None and p.uuid != uuid:
                    LOG.error('Domain id %(dom)d now belongs to instance '
                              '%(new)s, not %(old)s: the old process is '
                              'gone', {'dom': dom_id, 'new': uuid,
                                       'old': p.uuid})
                    gone.append(self._retire(key))
                    p = None
                if p is None:
                    # NOTE: a process declared gone that is listed again
                    # proves nothing about when it began.
                    after = None if key in self.gone else prev
                    self.processes[key] = Process(uuid, boot, dom_id,
                                                  appeared_after=after)
                    self.dirty = True
                elif p.absent:
                    p.absent = 0
                    self.dirty = True
            for key, p in list(self.processes.items()):
                if key in listed:
                    continue
                p.absent += 1
                self.dirty = True
                if p.absent >= GONE_AFTER:
                    gone.append(self._retire(key))
            if gone or self.listing is None:
                self.dirty = True
            # NOTE: saved with the set it describes only when that set
            # changes: an older listing stays true evidence.
            self.listing = (boot, at)
        return gone

    def _retire(self, key):
        p = self.processes.pop(key)
        self.gone[key] = p.start
        return p

    def observe_reading(self, reading, at):
        """Record a VM reading made at boottime ``at``.

        :returns: ``{dev: reason}`` for disks whose reading contradicts
            what was seen (another VM's process, a device seen under
            another target): they cannot be placed.
        """
        epoch = reading.epoch
        key = (epoch.boot_id, epoch.dom_id)
        with self._lock:
            p = self.processes.get(key)
            if p is None:
                return {}
            if p.uuid != reading.instance_id:
                why = ('process %s is instance %s, not this one'
                       % (epoch.key, p.uuid))
                return {dev: why for dev in reading.disks}
            if epoch.start is not None and p.start != epoch.start:
                if p.start is not None:
                    LOG.error('Instance %(uuid)s: domain id %(dom)d runs a '
                              'new QEMU process (started %(new)d, not '
                              '%(old)d)', {'uuid': p.uuid,
                                           'dom': epoch.dom_id,
                                           'new': epoch.start,
                                           'old': p.start})
                    p.appeared_after, p.devices = None, {}
                    p.last_read = p.first_read = None
                p.start = epoch.start
                self.dirty = True
            if p.last_read is not None and reading.mono_ns <= p.last_read[0]:
                return {}
            conflicts = self._conflicts(p, reading)
            if conflicts:
                # NOTE: a reading that contradicts what was seen is no
                # evidence of anything: it records no device and is not a
                # reading "without" a device for the next one.
                return conflicts
            after = p.last_read[1] if p.last_read else p.first_read
            if p.first_read is None:
                p.first_read = at
                self.dirty = True
            for dev, disk in reading.disks.items():
                did = disk.device_id
                if did is not None and did not in p.devices:
                    p.devices[did] = [dev, after]
                    self.dirty = True
            p.last_read = (reading.mono_ns, at)
        return {}

    @staticmethod
    def _conflicts(p, reading):
        conflicts, seen = {}, {}
        for dev, disk in reading.disks.items():
            did = disk.device_id
            if did is None:
                continue
            if did in seen:
                why = 'device %s read for both %s and %s' % (
                    did, seen[did], dev)
                conflicts[dev] = conflicts[seen[did]] = why
                continue
            seen[did] = dev
            known = p.devices.get(did)
            if known is not None and known[0] != dev:
                conflicts[dev] = 'device %s was read as %s before' % (
                    did, known[0])
        return conflicts

    def began_after(self, uuid, epoch, device_id, mark):
        """Whether this disk's counting provably began after ``mark``.

        :param mark: (boot id, boottime ns) when a meter's state began.
        """
        mark_boot, mark_ns = mark
        key = (epoch.boot_id, epoch.dom_id)
        with self._lock:
            if key in self.gone and (epoch.start is None
                                     or self.gone[key] == epoch.start):
                return False
            # NOTE: only a process a complete listing showed as this VM's:
            # a reading of another VM's process (a swapped answer) must not
            # bill that VM's whole counter here too.
            p = self.processes.get(key)
            if p is None or p.uuid != uuid:
                return False
            if epoch.boot_id != mark_boot:
                # The mark was taken on an earlier boot: everything on
                # this boot began after it.
                return True
            if epoch.start is not None and epoch.start > mark_ns:
                return True
            if p.appeared_after is not None and p.appeared_after >= mark_ns:
                return True
            d = p.devices.get(device_id) if device_id else None
            return bool(d and d[1] is not None and d[1] >= mark_ns)

    def snapshot(self):
        """What to persist: (processes, gone, listing); clears dirty."""
        with self._lock:
            self.dirty = False
            return ([p.to_json() for p in self.processes.values()],
                    [[k[0], k[1], v] for k, v in self.gone.items()],
                    self.listing)
