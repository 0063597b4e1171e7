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
"""What the pollsters of one agent share: per process and per cycle.

Per process: the libvirt reader (connections, alias cache, worker threads)
and the state store.  Per polling cycle: one :class:`Cycle`, kept in the
cache dict Ceilometer hands every pollster of a cycle, so each VM's counters
are read once and shared by every meter.
"""

import os
import threading

from ceilometer.compute.pollsters import util
from oslo_log import log

from ceilometer_blockacct import derive
from ceilometer_blockacct import meters
from ceilometer_blockacct import opts
from ceilometer_blockacct import recovery
from ceilometer_blockacct.sources import reader as reader_mod
from ceilometer_blockacct import state as state_mod

LOG = log.getLogger(__name__)

CACHE_KEY = 'ceilometer_blockacct.cycle'

# Meter kinds that keep baselines.
STATEFUL = frozenset([meters.KIND_DELTA, meters.KIND_LATENCY,
                      meters.KIND_QUEUE])

_lock = threading.Lock()
_agents = {}


class Agent:
    """Process-wide objects, one set per configuration object."""

    def __init__(self, conf, reader=None, store=None):
        opts.register_opts(conf)
        self.conf = conf
        previous_save = recovery.last_saved(os.path.join(
            conf.blockacct.state_dir, state_mod.FILENAME))
        self.store = store or state_mod.StateStore(conf.blockacct.state_dir)
        try:
            self.reader = reader or reader_mod.Reader(conf)
        except BaseException:
            # NOTE: never leave the state_dir locked by an agent that failed
            # to start: the next try in this process would be refused.
            if store is None:
                self.store.close()
            raise
        self.registry = self.store.registry
        try:
            self.store.ensure_marks(
                [m.name for m in meters.METERS if m.kind in STATEFUL])
        except state_mod.StateError as e:
            LOG.error('Cannot record when the meters\' state began (%s): '
                      'each meter records it when first polled', e)
        self.limits = derive.Limits.from_conf(conf)
        # (disk key, quantity) -> increases refused as implausible and not
        # yet published by the refused meters (memory only: an agent
        # crash loses at most one poll of them; each was logged).
        self.refused = {}
        self._refused_lock = threading.Lock()
        # instance id -> (epoch, mono_ns) of its last reading, to say once
        # per VM when a new QEMU process started and what could not be seen.
        self._last = {}
        self.recovery = None
        try:
            self.recovery = recovery.Recovery.after_start(
                conf, self.store, previous_save)
        except Exception:  # noqa: the repair never stops the agent
            LOG.exception('Cannot plan the repair after restart')
        if self.recovery is not None:
            self.recovery.start()

    def add_refused(self, key, meter, amount):
        """Count an increase of ``meter`` refused for disk ``key``."""
        quantity = meters.COUNTERS[meter.source].quantity
        with self._refused_lock:
            self.refused[key, quantity] = (
                self.refused.get((key, quantity), 0) + amount)

    def take_refused(self, key, quantity):
        """The refused amount of ``quantity`` for ``key``, now zeroed."""
        with self._refused_lock:
            return self.refused.pop((key, quantity), 0)

    def note_epochs(self, readings):
        """Log, once per VM, a new QEMU process and the unseen window."""
        for uuid, reading in readings.items():
            last = self._last.get(uuid)
            if last is not None and reading.mono_ns <= last[1]:
                continue
            self._last[uuid] = (reading.epoch, reading.mono_ns)
            if last is not None and not last[0].same_process(reading.epoch):
                LOG.warning(
                    'Instance %(uuid)s runs in a new QEMU process (%(old)s -> '
                    '%(new)s): I/O of the old process after its last poll '
                    '%(ago).1f s ago was not seen (at most that window)',
                    {'uuid': uuid, 'old': last[0].key,
                     'new': reading.epoch.key,
                     'ago': (reading.mono_ns - last[1]) / derive.NS_PER_S})


def agent(conf):
    """The :class:`Agent` of ``conf``, created on first use.

    :raises state.StateError: when the state cannot be used (logged once,
        naming the option; every pollster of ours is then disabled).
    """
    with _lock:
        found = _agents.get(id(conf))
        if isinstance(found, state_mod.StateError) and found.conf is conf:
            raise found
        if found is None or found.conf is not conf:
            try:
                found = Agent(conf)
            except state_mod.StateError as e:
                LOG.error('Block I/O accounting is OFF, none of its meters '
                          'is polled: %s', e)
                e.conf = conf
                _agents[id(conf)] = e
                raise
            _agents[id(conf)] = found
        return found


def release(conf):
    """Forget the :class:`Agent` of ``conf`` and release its state.

    What the end of an agent process does: the next agent on the same
    ``state_dir`` may take it.
    """
    with _lock:
        found = _agents.pop(id(conf), None)
    if isinstance(found, Agent):
        found.store.close()


class Cycle:
    """Readings and sample metadata shared by the pollsters of one cycle."""

    def __init__(self, agent):
        self.agent = agent
        self._lock = threading.Lock()
        self._tried = set()
        self.readings = {}
        self._metadata = {}
        # uuid -> {dev: why its reading cannot be placed}
        self._conflicts = {}
        # uuid -> seconds its QEMU process has run (None: unknown)
        self._lifetimes = {}

    def read(self, instances):
        """Read (once per cycle) and return ``{instance id: VMReading}``."""
        with self._lock:
            missing = [i.id for i in instances if i.id not in self._tried]
            if missing:
                self._tried.update(missing)
                at = state_mod.boottime_ns()
                fresh = self.agent.reader.read(missing)
                self._observe(fresh, at)
                self.readings.update(fresh)
        return self.readings

    def _observe(self, fresh, at):
        """Tell the registry what this read saw (never raises)."""
        agent = self.agent
        listing = getattr(fresh, 'listing', None)
        try:
            if listing is not None:
                gone = agent.registry.observe_listing(listing, at)
                agent.store.forget_processes(gone)
        except state_mod.StateError as e:
            LOG.error('Cannot drop the baselines of gone QEMU processes '
                      '(%s): retried when the state can be written', e)
        except Exception:  # noqa: a bad listing never stops the cycle
            LOG.exception('Cannot record the domain listing')
        now = state_mod.boottime_ns()
        for uuid, reading in list(fresh.items()):
            try:
                if reading.instance_id != uuid:
                    why = 'a reading of %s served for %s' % (
                        reading.instance_id, uuid)
                    self._conflicts[uuid] = {d: why for d in reading.disks}
                else:
                    self._conflicts[uuid] = agent.registry.observe_reading(
                        reading, at)
                start = reading.epoch.start
                self._lifetimes[uuid] = (None if start is None
                                         else (now - start) / 1e9)
            except Exception:  # noqa: one VM never costs another
                LOG.exception('Instance %s: unusable reading', uuid)
                del fresh[uuid]
        try:
            agent.store.save_registry()
        except state_mod.StateError as e:
            LOG.error('Cannot save the process registry (%s): whole '
                      'counters of new processes may go unbilled after a '
                      'restart, never billed twice', e)
        agent.note_epochs(fresh)

    def point(self, key, instance_id, reading, disk, mark):
        """The :class:`derive.Point` of one disk for a meter's ``mark``."""
        conflict = self._conflicts.get(instance_id, {}).get(disk.dev)
        is_new = (mark is not None and conflict is None
                  and self.agent.registry.began_after(
                      instance_id, reading.epoch, disk.device_id, mark))
        return derive.Point(
            key=key, counters=disk.counters, epoch=reading.epoch,
            mono_ns=reading.mono_ns, account_failed=disk.account_failed,
            device_id=disk.device_id,
            lifetime_s=self._lifetimes.get(instance_id),
            is_new=is_new, conflict=conflict,
            on_refused=lambda meter, amount: self.agent.add_refused(
                key, meter, amount))

    def metadata(self, conf, instance, disk):
        """Resource metadata of one disk, built once per cycle.

        ``disk`` is the disk's :class:`records.DiskCounters`.  Ceilometer's
        helper derives the metadata from the instance (~47 us a call);
        every meter of the disk shares the result.  A disk with a
        ``<serial>`` (Nova writes the Cinder volume id there) also gets
        ``volume_id``; a disk without one gets no such key.
        """
        key = (instance.id, disk.dev, disk.serial)
        found = self._metadata.get(key)
        if found is None:
            extra = {'disk_name': disk.dev, 'instance_id': instance.id}
            if disk.serial is not None:
                extra['volume_id'] = disk.serial
            found = util.make_sample_from_instance(
                conf, instance, name='', type='gauge', unit='', volume=0,
                additional_metadata=extra,
            ).resource_metadata
            self._metadata[key] = found
        return found


def cycle(cache, agent):
    """The :class:`Cycle` stored in Ceilometer's per-cycle ``cache``."""
    found = cache.get(CACHE_KEY)
    if found is None:
        with _lock:
            found = cache.setdefault(CACHE_KEY, Cycle(agent))
    return found
