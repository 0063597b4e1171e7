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

import threading

from ceilometer.compute.pollsters import util
from oslo_log import log

from ceilometer_blockacct import derive
from ceilometer_blockacct import opts
from ceilometer_blockacct.sources import reader as reader_mod
from ceilometer_blockacct import state as state_mod

LOG = log.getLogger(__name__)

CACHE_KEY = 'ceilometer_blockacct.cycle'

_lock = threading.Lock()
_agents = {}


class Agent:
    """Process-wide objects, one set per configuration object."""

    def __init__(self, conf, reader=None, store=None):
        opts.register_opts(conf)
        self.conf = conf
        self.reader = reader or reader_mod.Reader(conf)
        self.store = store or state_mod.StateStore(
            conf.blockacct.state_dir, conf.blockacct.state_prune_after)
        self.limits = derive.Limits.from_conf(conf)
        # instance id -> (epoch, mono_ns) of its last reading, to say once
        # per VM when a new QEMU process started and what could not be seen.
        self._last = {}

    def note_epochs(self, readings):
        """Log, once per VM, a new QEMU process and the unseen window."""
        for uuid, reading in readings.items():
            last = self._last.get(uuid)
            self._last[uuid] = (reading.epoch, reading.mono_ns)
            if last is not None and last[0] != reading.epoch:
                LOG.warning(
                    'Instance %(uuid)s runs in a new QEMU process (%(old)s -> '
                    '%(new)s): its counters restart from zero and are counted '
                    'whole; I/O of the old process after its last poll '
                    '%(ago).1f s ago was not seen (at most that window)',
                    {'uuid': uuid, 'old': last[0], 'new': reading.epoch,
                     'ago': (reading.mono_ns - last[1]) / derive.NS_PER_S})


def agent(conf):
    """The :class:`Agent` of ``conf``, created on first use."""
    with _lock:
        found = _agents.get(id(conf))
        if found is None or found.conf is not conf:
            found = Agent(conf)
            _agents[id(conf)] = found
        return found


class Cycle:
    """Readings and sample metadata shared by the pollsters of one cycle."""

    def __init__(self, agent):
        self.agent = agent
        self._lock = threading.Lock()
        self._tried = set()
        self.readings = {}
        self._metadata = {}

    def read(self, instances):
        """Read (once per cycle) and return ``{instance id: VMReading}``."""
        with self._lock:
            missing = [i.id for i in instances if i.id not in self._tried]
            if missing:
                self._tried.update(missing)
                fresh = self.agent.reader.read(missing)
                self.agent.note_epochs(fresh)
                self.readings.update(fresh)
        return self.readings

    def metadata(self, conf, instance, dev):
        """Resource metadata of one disk, built once per cycle.

        Ceilometer's helper derives it from the instance (~47 us a call);
        every meter of the disk shares the result.
        """
        key = (instance.id, dev)
        found = self._metadata.get(key)
        if found is None:
            found = util.make_sample_from_instance(
                conf, instance, name='', type='gauge', unit='', volume=0,
                additional_metadata={'disk_name': dev,
                                     'instance_id': instance.id},
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
