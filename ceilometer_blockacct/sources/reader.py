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
"""Read every VM's counters once per polling cycle, with deadlines.

QMP query-blockstats (read-write connection) is read per VM, concurrently
and bounded; VMs it cannot serve fall back to one libvirt bulk-stats call on
the read-only connection.  A VM that does not answer within the deadline
costs its own samples for the cycle, never the cycle.
"""

from concurrent import futures
import threading
import time

import libvirt
import libvirt_qemu
from oslo_log import log

from ceilometer_blockacct.sources import bulk
from ceilometer_blockacct.sources import qmp
from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

# What Ceilometer's libvirt inspector would use for these libvirt types.
_URI_PER_TYPE = {'parallels': 'parallels:///system', 'lxc': 'lxc:///'}

_GONE_CODES = frozenset([libvirt.VIR_ERR_NO_DOMAIN,
                         libvirt.VIR_ERR_OPERATION_INVALID])
_DENIED_CODES = frozenset([libvirt.VIR_ERR_OPERATION_DENIED,
                           libvirt.VIR_ERR_AUTH_FAILED,
                           libvirt.VIR_ERR_ACCESS_DENIED])


def libvirt_uri(conf):
    """The URI of both connections: ours, else Ceilometer's own."""
    uri = conf.blockacct.libvirt_uri
    if uri:
        return uri
    uri = getattr(conf, 'libvirt_uri', None)
    if uri:
        return uri
    return _URI_PER_TYPE.get(getattr(conf, 'libvirt_type', None),
                             'qemu:///system')


def boot_id():
    """This host's boot id: epochs of two boots never collide."""
    try:
        with open('/proc/sys/kernel/random/boot_id') as f:
            return f.read().strip()
    except OSError as e:
        LOG.warning('Cannot read the boot id (%s): epochs rely on libvirt '
                    'domain ids and counters going backwards only', e)
        return 'unknown-boot'


def is_disconnection(exc):
    """True when a libvirtError means the connection itself is gone."""
    return (exc.get_error_domain() in (libvirt.VIR_FROM_REMOTE,
                                       libvirt.VIR_FROM_RPC)
            and exc.get_error_code() in (libvirt.VIR_ERR_SYSTEM_ERROR,
                                         libvirt.VIR_ERR_INTERNAL_ERROR,
                                         libvirt.VIR_ERR_RPC))


class _Connection:
    """One lazily (re)opened libvirt connection."""

    def __init__(self, uri, read_only):
        self.uri = uri
        self.read_only = read_only
        self._conn = None
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._conn is not None:
                try:
                    alive = self._conn.isAlive()
                except libvirt.libvirtError:
                    alive = False
                if alive:
                    return self._conn
                self._conn = None
                LOG.warning('libvirt connection to %s was lost; reconnecting',
                            self.uri)
            opener = libvirt.openReadOnly if self.read_only else libvirt.open
            self._conn = opener(self.uri)
            return self._conn

    def drop(self):
        with self._lock:
            self._conn = None


class Reader:
    """Reads counter records for a list of Ceilometer instances."""

    def __init__(self, conf):
        opts = conf.blockacct
        self.uri = libvirt_uri(conf)
        self.enable_qmp = opts.enable_qmp
        self.timeout = opts.read_timeout
        self.max_workers = opts.max_concurrent_reads
        self._ro = _Connection(self.uri, read_only=True)
        self._rw = _Connection(self.uri, read_only=False)
        self._boot_id = boot_id()
        self._executor = self._new_executor()
        self._lock = threading.Lock()
        # (uuid, domain id) -> {alias: dev}: live XML is read once per QEMU
        # process, or again when an unknown device shows up (hotplug).
        self._aliases = {}
        # uuid -> future of a read that missed its deadline and still runs.
        self._hung = {}
        self._bulk_hung = None
        # uuids whose QMP read was refused (logged once each).
        self._qmp_refused = set()
        self._qmp_conn_refused = False

    def _new_executor(self):
        return futures.ThreadPoolExecutor(
            max_workers=self.max_workers,
            thread_name_prefix='blockacct-read')

    def epoch(self, dom_id):
        """Epoch key of a running domain's current QEMU process."""
        return '%s:%d' % (self._boot_id, dom_id)

    def read(self, instance_ids):
        """Read the counters of the given instance uuids.

        :returns: ``{instance_id: VMReading}``; instances that are gone,
            hung or unreadable are absent (and logged).
        """
        wanted = set(instance_ids)
        with self._lock:
            readings, rest = {}, wanted
            if self.enable_qmp and not self._qmp_conn_refused:
                readings, rest = self._read_qmp(wanted)
            if rest:
                readings.update(self._read_bulk(rest))
        return readings

    # -- QMP ---------------------------------------------------------------

    def _read_qmp(self, wanted):
        """Read ``wanted`` over QMP; return (readings, uuids for bulk)."""
        try:
            conn = self._rw.get()
            doms = conn.listAllDomains(
                libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        except libvirt.libvirtError as e:
            if e.get_error_code() in _DENIED_CODES or (
                    e.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR
                    and 'ermission denied' in str(e)):
                self._qmp_conn_refused = True
                LOG.error('Read-write libvirt connection to %(uri)s refused '
                          '(%(err)s): failed/invalid/idle meters are off; '
                          'falling back to bulk stats on a read-only '
                          'connection. See the docs on permissions.',
                          {'uri': self.uri, 'err': e})
            else:
                self._rw.drop()
                LOG.warning('Cannot list domains on %(uri)s: %(err)s',
                            {'uri': self.uri, 'err': e})
            return {}, wanted
        by_uuid = {}
        for dom in doms:
            try:
                by_uuid[dom.UUIDString()] = dom
            except libvirt.libvirtError as e:
                LOG.debug('Domain vanished while listing: %s', e)
        self._forget_gone(by_uuid)
        jobs = {}
        for uuid in wanted:
            dom = by_uuid.get(uuid)
            if dom is None:
                LOG.debug('Instance %s has no running domain', uuid)
                continue
            if uuid in self._qmp_refused:
                continue
            hung = self._hung.get(uuid)
            if hung is not None:
                LOG.warning('Instance %s: the read started %.0f s ago still '
                            'has not returned; skipped this cycle', uuid,
                            time.monotonic() - hung[1])
                continue
            jobs[self._executor.submit(self._read_one, uuid, dom)] = uuid
        done, late = futures.wait(jobs, timeout=self.timeout)
        readings = {}
        for fut in late:
            uuid = jobs[fut]
            self._hung[uuid] = (fut, time.monotonic() - self.timeout)
            fut.add_done_callback(
                lambda f, u=uuid: self._hung.pop(u, None))
            LOG.warning('Instance %(uuid)s did not answer query-blockstats '
                        'within %(t).1f s (hung monitor or held job lock): '
                        'no samples for it this cycle',
                        {'uuid': uuid, 't': self.timeout})
        if len(self._hung) >= self.max_workers // 2 + 1:
            # NOTE: hung calls pin their worker threads; give the healthy
            # VMs a fresh pool rather than queueing them behind the hung.
            self._executor.shutdown(wait=False)
            self._executor = self._new_executor()
        for fut in done:
            uuid = jobs[fut]
            try:
                reading = fut.result()
            except _Refused as e:
                self._refused(uuid, e.args[0])
                continue
            except Exception as e:  # noqa: one VM never stops the cycle
                LOG.exception('Unexpected error reading instance %(uuid)s: '
                              '%(err)s', {'uuid': uuid, 'err': e})
                continue
            if reading is not None:
                readings[uuid] = reading
        if self._qmp_conn_refused:
            return readings, wanted - set(readings)
        rest = {u for u in wanted if u in self._qmp_refused}
        return readings, rest

    def _refused(self, uuid, err):
        """Log a QMP refusal once: per connection, else per instance."""
        if 'read only access' in str(err):
            if not self._qmp_conn_refused:
                self._qmp_conn_refused = True
                LOG.error('QMP query-blockstats refused: %(uri)s gives a '
                          'read-only connection (%(err)s). The failed, '
                          'invalid and idle meters are off; basic counters '
                          'come from bulk stats. See the docs on '
                          'permissions.', {'uri': self.uri, 'err': err})
            return
        self._qmp_refused.add(uuid)
        LOG.error('QMP query-blockstats refused for instance %(uuid)s '
                  '(%(err)s): reading it from bulk stats instead (no '
                  'failed/invalid/idle meters). This is logged once per '
                  'instance.', {'uuid': uuid, 'err': err})

    def _forget_gone(self, by_uuid):
        for key in [k for k in self._aliases if k[0] not in by_uuid]:
            del self._aliases[key]

    def _read_one(self, uuid, dom):
        """Read one VM over QMP (runs in a worker thread)."""
        try:
            dom_id = dom.ID()
            key = (uuid, dom_id)
            aliases = self._aliases.get(key)
            fresh = aliases is None
            if fresh:
                aliases = qmp.aliases_from_xml(dom.XMLDesc(0))
            reply = libvirt_qemu.qemuMonitorCommand(dom, qmp.QUERY, 0)
            mono_ns = time.monotonic_ns()
            disks, unknown = qmp.parse_blockstats(reply, aliases, uuid)
            if unknown and not fresh:
                aliases = qmp.aliases_from_xml(dom.XMLDesc(0))
                disks, unknown = qmp.parse_blockstats(reply, aliases, uuid)
            if unknown:
                LOG.debug('Instance %(uuid)s: devices %(unknown)s are not '
                          'disks of its live XML', {'uuid': uuid,
                                                    'unknown': unknown})
            self._aliases[key] = aliases
        except libvirt.libvirtError as e:
            code = e.get_error_code()
            if code in _GONE_CODES:
                LOG.debug('Instance %(uuid)s vanished while being read: '
                          '%(err)s', {'uuid': uuid, 'err': e})
                return None
            if code in _DENIED_CODES:
                raise _Refused(e)
            if is_disconnection(e):
                self._rw.drop()
            LOG.warning('Cannot read instance %(uuid)s over QMP: %(err)s',
                        {'uuid': uuid, 'err': e})
            return None
        except qmp.ReplyError as e:
            LOG.warning('Unusable query-blockstats reply for instance '
                        '%(uuid)s: %(err)s', {'uuid': uuid, 'err': e})
            return None
        except Exception as e:  # noqa: one VM never stops the cycle
            LOG.exception('Unexpected error reading instance %(uuid)s: '
                          '%(err)s', {'uuid': uuid, 'err': e})
            return None
        return records.VMReading(instance_id=uuid, epoch=self.epoch(dom_id),
                                 mono_ns=mono_ns, source='qmp', disks=disks)

    # -- bulk stats --------------------------------------------------------

    def _read_bulk(self, wanted):
        if self._bulk_hung is not None and not self._bulk_hung.done():
            LOG.warning('The previous bulk-stats call has not returned; '
                        'skipping bulk reads this cycle')
            return {}
        fut = self._executor.submit(self._bulk_call)
        try:
            mono_ns, answer = fut.result(timeout=self.timeout)
        except futures.TimeoutError:
            self._bulk_hung = fut
            LOG.warning('libvirt bulk stats did not answer within %.1f s: '
                        'no samples for %d instances this cycle',
                        self.timeout, len(wanted))
            return {}
        except libvirt.libvirtError as e:
            if is_disconnection(e):
                self._ro.drop()
            LOG.warning('libvirt bulk stats failed on %(uri)s: %(err)s',
                        {'uri': self.uri, 'err': e})
            return {}
        readings = {}
        for uuid, dom_id, stats in answer:
            if uuid not in wanted:
                continue
            readings[uuid] = records.VMReading(
                instance_id=uuid, epoch=self.epoch(dom_id), mono_ns=mono_ns,
                source='bulk', disks=bulk.parse_block_stats(stats, uuid))
        return readings

    def _bulk_call(self):
        conn = self._ro.get()
        flags = (libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
                 | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
        answer = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_BLOCK, flags)
        mono_ns = time.monotonic_ns()
        return mono_ns, [(dom.UUIDString(), dom.ID(), stats)
                         for dom, stats in answer]


class _Refused(Exception):
    """QMP was refused for one domain."""
