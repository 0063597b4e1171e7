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
"""The libvirt calls of a read, each run in a worker thread.

They only compute: each takes what it needs and returns what it learnt,
and none writes anything the polling thread reads (:mod:`.reader` keeps
the caches and decides what a failure means).
"""

import dataclasses
import time

import libvirt
import libvirt_qemu
from oslo_log import log

from ceilometer_blockacct.sources import errors
from ceilometer_blockacct.sources import process
from ceilometer_blockacct.sources import qmp
from ceilometer_blockacct.sources import records

# NOTE: the reader's lines keep the logger name operators filter on.
LOG = log.getLogger('ceilometer_blockacct.sources.reader')


@dataclasses.dataclass(frozen=True)
class Known:
    """What a QMP read learnt about one QEMU process, for the next read."""

    devices: frozenset
    dmap: qmp.DiskMap
    # (pid, start ns) of the QEMU process, None when unknown.
    process: tuple = None
    # False while the start could not be asked (asked again next read).
    asked: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    """What :func:`read_vm` read, and what it learnt for the next read."""

    reading: records.VMReading
    known: Known


def list_domains(conn):
    """The active domains, from one listAllDomains call.

    :returns: ``(mono_ns, complete, [(uuid, domain id, dom)])``.
    """
    # NOTE: taken before the call: a domain missing from the listing
    # was gone, or started after this instant.
    mono_ns = time.monotonic_ns()
    doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    return (mono_ns,) + _identify(doms)


def domain_stats(conn):
    """The block stats of the active domains, from one getAllDomainStats.

    :returns: ``(mono_ns before, mono_ns after, complete, [(uuid, domain
        id, stats)])``.
    """
    flags = (libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
             | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
    mono_before = time.monotonic_ns()
    answer = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_BLOCK, flags)
    mono_ns = time.monotonic_ns()
    complete, identified = _identify_stats(answer)
    return mono_before, mono_ns, complete, identified


def read_vm(uuid, dom, dom_id, known, boot_id, proc):
    """Read one VM over QMP; returns a :class:`Result`.

    Uses ``known`` (what the last read learnt, or None) and returns what
    this one learnt.
    """
    reply = libvirt_qemu.qemuMonitorCommand(dom, qmp.QUERY, 0)
    mono_ns = time.monotonic_ns()
    devices = qmp.parse_devices(reply, uuid)
    devset = qmp.device_set(devices)
    fresh = known is None or known.devices != devset
    dmap = (qmp.disk_map(dom.XMLDesc(0), uuid) if fresh
            else known.dmap)
    disks, stale = qmp.map_disks(devices, dmap, uuid)
    if stale and not fresh:
        # NOTE: same devices, yet the map does not fit them (e.g. an
        # earlier XML read raced a hotplug): read it again once.
        dmap = qmp.disk_map(dom.XMLDesc(0), uuid)
        disks, stale = qmp.map_disks(devices, dmap, uuid)
    if stale:
        LOG.debug('Instance %(uuid)s: devices %(stale)s are not placed '
                  'on a disk of its live XML (not a disk, or a hotplug '
                  'under way): not read', {'uuid': uuid,
                                           'stale': sorted(set(stale))})
    if known is not None and known.asked:
        found, asked = known.process, True
    else:
        found, asked = _process(uuid, dom, proc)
    return Result(
        reading=records.VMReading(
            instance_id=uuid,
            epoch=records.Epoch(boot_id, dom_id,
                                found[1] if found else None),
            mono_ns=mono_ns, source='qmp', disks=disks),
        known=Known(devset, dmap, found, asked))


def _process(uuid, dom, proc):
    """((pid, start) or None, whether it is an answer)."""
    try:
        reply = libvirt_qemu.qemuMonitorCommand(dom, qmp.QUERY_CPUS, 0)
        tids = qmp.thread_ids(reply, uuid)
    except (libvirt.libvirtError, errors.ReplyMalformed) as e:
        err = errors.classify(e, uuid)
        if isinstance(err, errors.DomainGone):
            raise
        LOG.debug('Instance %(uuid)s: query-cpus-fast failed (%(err)s): '
                  'QEMU process start unknown, asked again next read',
                  {'uuid': uuid, 'err': err})
        return None, False
    return process.find(tids, uuid, proc), True


def _identify(doms):
    """(complete, [(uuid, domain id, dom)]) of a listAllDomains answer."""
    out, complete = [], True
    for dom in doms:
        try:
            out.append((dom.UUIDString(), dom.ID(), dom))
        except libvirt.libvirtError as e:
            LOG.debug('A domain vanished while listing: %s', e)
            complete = False
    return complete, out


def _identify_stats(answer):
    """(complete, [(uuid, domain id, stats)]) of getAllDomainStats."""
    out, complete = [], True
    for item in answer:
        try:
            dom, stats = item
            out.append((dom.UUIDString(), dom.ID(), stats))
        except (libvirt.libvirtError, TypeError, ValueError) as e:
            LOG.debug('A bulk-stats record cannot be placed: %s', e)
            complete = False
    return complete, out
