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
"""Neutral per-disk counter records, the output of every source.

A counter belongs to one disk identity: the QEMU process (:class:`Epoch`)
plus the device's own identity inside it (``DiskCounters.device_id``).
Billing compares readings only within one identity.
"""

import dataclasses

# QEMU's block counters are uint64: anything outside is not a counter.
COUNTER_MAX = 2 ** 64 - 1


@dataclasses.dataclass(frozen=True)
class Epoch:
    """Identity of one QEMU process.

    ``start`` is when the process started, in ns of CLOCK_BOOTTIME (from
    /proc/<pid>/stat), or None when the source could not tell (libvirt bulk
    stats, a remote libvirtd).  An unknown start matches any start: two
    readings are of different processes only when something known differs.
    """

    boot_id: str
    dom_id: int
    start: int = None

    @property
    def key(self):
        """Stable text form, e.g. ``'<boot id>:7:123456789'``."""
        return '%s:%d:%s' % (self.boot_id, self.dom_id,
                             '-' if self.start is None else self.start)

    @classmethod
    def from_key(cls, key):
        """Parse :attr:`key` (also state schema 1's ``'<boot>:<dom id>'``).

        :raises ValueError: when ``key`` is not an epoch key.
        """
        parts = key.split(':')
        if len(parts) == 2:
            boot, dom = parts
            start = None
        elif len(parts) == 3:
            boot, dom, start = parts
            start = None if start == '-' else int(start)
        else:
            raise ValueError('not an epoch key: %r' % (key,))
        return cls(boot, int(dom), start)

    def same_process(self, other):
        """Whether ``other`` may be the same QEMU process as this one."""
        if other is None:
            return False
        if (self.boot_id, self.dom_id) != (other.boot_id, other.dom_id):
            return False
        if self.start is None or other.start is None:
            return True
        return self.start == other.start


@dataclasses.dataclass
class DiskCounters:
    """Counters of one virtual disk, keyed by meters.COUNTER_FIELDS names.

    A counter the source does not give is absent from ``counters`` (never
    zero): meters that need it are simply not emitted.  Every value is an
    int in ``[0, COUNTER_MAX]``: sources drop anything else.
    """

    dev: str
    counters: dict
    # QEMU's account_failed flag (failed requests add to total time); None
    # when the source does not say (libvirt bulk stats).
    account_failed: bool = None
    # The device's own identity inside its QEMU process: QMP's qdev alias
    # and block node name ('virtio-disk1/libvirt-3-format').  A disk
    # unplugged and plugged again, or a target reused by another volume,
    # gets a new one.  None when the source cannot tell (bulk stats).
    device_id: str = None
    # The disk's <serial> in the domain XML: Nova writes the Cinder volume
    # id there.  None when the disk has none.
    serial: str = None


@dataclasses.dataclass
class VMReading:
    """One VM's counters, read once in a polling cycle."""

    instance_id: str
    # The QEMU process the counters belong to.
    epoch: Epoch
    # Host-wide monotonic clock (CLOCK_MONOTONIC, ns) when the read ended.
    mono_ns: int
    source: str
    disks: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Listing:
    """Every active domain of one complete libvirt listing.

    Which QEMU processes are alive: baselines of processes missing from
    complete listings are dropped, and a process missing from a listing
    started after it.  A failed or partial listing is no Listing at all.
    """

    boot_id: str
    # instance uuid -> libvirt domain id
    domains: dict
    # CLOCK_MONOTONIC ns when the listing was made.
    mono_ns: int


class Readings(dict):
    """``{instance id: VMReading}`` of one read, with its listing.

    ``listing`` is the :class:`Listing` made by that read, or None when the
    read could not list every active domain.
    """

    listing = None
