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

One :meth:`Reader.read`:

1. connects and lists the active domains on the read-write connection
   (one call under the deadline): the :class:`records.Listing`;
2. reads each wanted VM over QMP (query-blockstats; the live XML when the
   device set moved; query-cpus-fast and /proc once per QEMU process),
   ``max_concurrent_reads`` at a time, each under its own deadline counted
   from when its read started (:mod:`.pool`);
3. reads the VMs QMP cannot serve (refused, or no listing) with one libvirt
   bulk-stats call on the read-only connection, under the deadline.

Bound: a read() takes at most ``read_timeout`` for step 1, ``(ceil(VMs /
max_concurrent_reads) + 1) * read_timeout`` for step 2 and ``read_timeout``
for step 3.  A call that overran is not started again while it runs.
Failures are typed (:mod:`.errors`) and :data:`errors.POLICY` alone says
how they are logged and what is read instead.  Worker threads only
compute (:mod:`.calls`): every cache below is read and written by the
thread in read().
"""

import threading
import time

from oslo_log import log

from ceilometer_blockacct import host
from ceilometer_blockacct.sources import backoff as backoff_mod
from ceilometer_blockacct.sources import bulk
from ceilometer_blockacct.sources import calls
from ceilometer_blockacct.sources import connection
from ceilometer_blockacct.sources import errors
from ceilometer_blockacct.sources import pool as pool_mod
from ceilometer_blockacct.sources import process
from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

# Keys of calls and episodes: (channel,) or (channel, instance uuid).
_LISTING = ('listing',)
_BULK = ('bulk',)
_QMP_CONNECTION = ('qmp-connection',)


class Reader:
    """Reads counter records for a list of Ceilometer instances.

    :param conf: the agent's configuration ([blockacct] registered).
    :param clock: monotonic seconds, for the QMP retry backoff.
    """

    def __init__(self, conf, clock=time.monotonic, proc=process.PROC):
        opts = conf.blockacct
        self.uri = connection.libvirt_uri(conf)
        self.enable_qmp = opts.enable_qmp
        self.timeout = opts.read_timeout
        self.max_workers = opts.max_concurrent_reads
        self._proc = proc
        self._rw = connection.Connection(self.uri, read_only=False)
        self._ro = connection.Connection(self.uri, read_only=True)
        self._boot_id = host.boot_id()
        self._pool = pool_mod.Pool(self.max_workers)
        self._lock = threading.Lock()
        self._report = errors.Reporter(LOG)
        self._backoff = backoff_mod.Backoff(clock=clock)
        # (uuid, domain id) -> calls.Known, per running QEMU process.
        self._known = {}
        # (channel, subject) -> pool.Task that overran and still runs.
        self._hung = {}

    def close(self):
        """Stop the idle worker threads."""
        self._pool.close()

    def read(self, instance_ids):
        """Read the counters of the given instance uuids.

        :returns: a :class:`records.Readings` of ``{uuid: VMReading}``;
            instances that are gone, hung or unreadable are absent (and
            logged).  Its ``listing`` covers every active domain, or is
            None when no complete listing was made.
        """
        wanted = set(instance_ids)
        with self._lock:
            readings = records.Readings()
            listing, rest = None, wanted
            if self.enable_qmp and self._backoff.allowed(_QMP_CONNECTION):
                listing, doms = self._list()
                if doms is not None:
                    got, rest = self._read_qmp(wanted, doms)
                    readings.update(got)
            if rest:
                bulk_listing, got = self._read_bulk(rest)
                readings.update(got)
                if listing is None:
                    listing = bulk_listing
            readings.listing = listing
            if listing is not None:
                self._forget_gone(listing)
        return readings

    # -- calls under the deadline -----------------------------------------

    def _call(self, key, label, call, func):
        """Run ``func`` (libvirt's ``call``) under the deadline.

        :returns: its value, or None when it failed or overran (logged).
        """
        previous = self._hung.get(key)
        if previous is not None:
            if not previous.done:
                self._report.failed(key, errors.StillHung(label))
                return None
            del self._hung[key]
        task = pool_mod.Task(key, func)
        _done, hung = self._pool.run([task], self.timeout)
        if hung:
            self._hung[key] = task
            self._report.failed(key, errors.ReadHung(
                label, call, self.timeout))
            return None
        if task.error is not None:
            err = errors.classify(task.error, label, errors.CONNECTION)
            self._failed(key, err)
            return None
        self._report.succeeded(key, label)
        return task.value

    def _failed(self, key, err):
        """Log ``err`` and apply the table's fallback; returns it."""
        fallback = errors.POLICY[type(err)].fallback
        extra = ''
        read_only = key == _BULK
        if fallback == errors.BULK_ALL and not read_only:
            extra = ('; failed/invalid/idle meters are off, basic counters '
                     'come from bulk stats; QMP retried in %.0f s'
                     % self._backoff.failed(_QMP_CONNECTION))
        elif fallback == errors.BULK:
            extra = ('; read from bulk stats (no failed/invalid/idle '
                     'meters); QMP retried in %.0f s'
                     % self._backoff.failed(key))
        elif fallback == errors.RECONNECT:
            (self._ro if read_only else self._rw).drop()
        self._report.failed(key, err, extra)
        return fallback

    # -- step 1: listing --------------------------------------------------

    def _list(self):
        """List the active domains over the read-write connection.

        :returns: (Listing or None, {uuid: virDomain} or None).
        """
        found = self._call(_LISTING, 'listing of %s' % self.uri,
                           'listAllDomains', self._list_call)
        if found is None:
            return None, None
        mono_ns, complete, doms = found
        listing = None
        if complete:
            listing = records.Listing(
                self._boot_id, {u: i for u, i, _d in doms}, mono_ns)
        return listing, {u: (i, d) for u, i, d in doms}

    def _list_call(self):
        """(pool thread) connect if needed, then listAllDomains."""
        return calls.list_domains(self._rw.get())

    # -- step 2: QMP ------------------------------------------------------

    def _read_qmp(self, wanted, doms):
        """Read ``wanted`` over QMP; return (readings, uuids for bulk)."""
        tasks, rest = [], set()
        for uuid in sorted(wanted):
            found = doms.get(uuid)
            if found is None:
                LOG.debug('Instance %s has no running domain', uuid)
                continue
            key = ('qmp', uuid)
            if not self._backoff.allowed(key):
                rest.add(uuid)
                continue
            previous = self._hung.get(key)
            if previous is not None:
                if not previous.done:
                    self._report.failed(key, errors.StillHung(uuid))
                    continue
                del self._hung[key]
            dom_id, dom = found
            tasks.append(pool_mod.Task(
                key, calls.read_vm, uuid, dom, dom_id,
                self._still_known(uuid, dom_id), self._boot_id, self._proc))
        finished, hung = self._pool.run(tasks, self.timeout)
        for task in hung:
            self._hung[task.key] = task
            self._report.failed(task.key, errors.ReadHung(
                task.key[1], 'query-blockstats', self.timeout))
        readings, shared = records.Readings(), None
        for task in finished:
            uuid = task.key[1]
            if task.error is not None:
                err = errors.classify(task.error, uuid)
                fallback = errors.POLICY[type(err)].fallback
                if fallback in (errors.BULK_ALL, errors.RECONNECT):
                    # The connection's failure, not this VM's: handled
                    # once below, whatever the number of VMs it hit.
                    if shared is None or fallback == errors.BULK_ALL:
                        shared = err
                elif self._failed(task.key, err) == errors.BULK:
                    rest.add(uuid)
                continue
            result = task.value
            self._known[(uuid, result.reading.epoch.dom_id)] = result.known
            readings[uuid] = result.reading
            self._report.succeeded(task.key, 'QMP read of %s' % uuid)
            self._backoff.succeeded(task.key)
        label = 'QMP on %s' % self.uri
        if shared is not None:
            shared = self._failed(_QMP_CONNECTION,
                                  type(shared)(label, shared.detail))
        elif readings:
            self._report.succeeded(_QMP_CONNECTION, label)
            self._backoff.succeeded(_QMP_CONNECTION)
        if shared == errors.BULK_ALL:
            # Every VM QMP could not serve, except those that overran.
            stuck = {t.key[1] for t in hung}
            rest.update(u for u in wanted if u in doms and u not in readings
                        and u not in stuck)
        return readings, rest

    def _still_known(self, uuid, dom_id):
        """What the last read learnt, if its QEMU process still runs.

        NOTE: a domain id can be reused (a libvirtd restart between two
        reads): a (pid, start) pair that no longer matches /proc means a
        new process, learnt afresh.
        """
        known = self._known.get((uuid, dom_id))
        if known is not None and known.process is not None:
            pid, start = known.process
            if process.start_of(pid, self._proc) != start:
                del self._known[(uuid, dom_id)]
                return None
        return known

    # -- step 3: bulk stats -----------------------------------------------

    def _read_bulk(self, wanted):
        """Read ``wanted`` from one bulk-stats call.

        :returns: (Listing or None, readings).
        """
        found = self._call(_BULK, 'bulk stats of %s' % self.uri,
                           'getAllDomainStats', self._bulk_call)
        readings = records.Readings()
        if found is None:
            return None, readings
        mono_before, mono_ns, complete, answer = found
        listing = None
        if complete:
            listing = records.Listing(
                self._boot_id, {u: i for u, i, _s in answer}, mono_before)
        for uuid, dom_id, stats in answer:
            if uuid not in wanted:
                continue
            try:
                disks = bulk.parse_block_stats(stats, uuid)
            except Exception as e:  # noqa: one VM never costs another
                self._report.failed(('bulk', uuid),
                                    errors.classify(e, uuid))
                continue
            readings[uuid] = records.VMReading(
                instance_id=uuid, epoch=records.Epoch(self._boot_id, dom_id),
                mono_ns=mono_ns, source='bulk', disks=disks)
        return listing, readings

    def _bulk_call(self):
        """(pool thread) connect if needed, then getAllDomainStats."""
        return calls.domain_stats(self._ro.get())

    # -- housekeeping -----------------------------------------------------

    def _forget_gone(self, listing):
        """Drop what was learnt about processes a complete listing lacks."""
        alive = listing.domains
        for key in [k for k in self._known if alive.get(k[0]) != k[1]]:
            del self._known[key]

        def keep(key):
            return len(key) < 2 or key[1] in alive
        self._backoff.forget(keep)
        self._report.forget(keep)
        for key in [k for k, t in self._hung.items()
                    if t.done and not keep(k)]:
            del self._hung[key]
