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
"""ceilometer-polling with synthetic VMs: recorded answers replayed.

``python -m benchmarks.bench_chain.replay SPEC.json --config-file ...
--polling-namespaces compute`` runs the real ``ceilometer-polling`` (its
real discovery, pollsters, batching and notifier) in this process after
four patches, all driven by the SPEC file:

- discovery keeps the real guests SPEC names (``keep``) and adds
  ``synthetic`` clones of the first one, each with an id and a name of its
  own (deterministic, so Gnocchi's resources are reused across steps);
- this plugin's reader (the class :mod:`ceilometer_blockacct.cycle`
  instantiates) reads the real guests as always and answers for a clone
  with the QMP ``query-blockstats`` reply recorded from the template
  guest (``template``), its counters multiplied by the clone's read count
  so deltas stay steady, through the real parser (``qmp.parse_devices``,
  ``qmp.map_disks`` with the recorded XML); the clones join the listing so
  their baselines are kept;
- upstream's libvirt inspector answers ``inspect_disks`` for a clone with
  the template's first answer, advanced the same way;
- every notification the polling agent sends appends ``<CLOCK_MONOTONIC
  seconds> <samples>`` to ``counts``: the benchmark's sample count.

Nothing of this is installed: it exists for the benchmark only.
"""

import copy
import json
import sys
import threading
import time
import uuid as uuidlib

NAMESPACE = uuidlib.UUID('6d1b7c2e-0000-4000-8000-00000000c4a1')
# Synthetic domain ids start here: far from libvirt's small counters.
DOM_ID_BASE = 100000


def synthetic_ids(count):
    """[(uuid, name)] of ``count`` clones, the same in every step."""
    return [(str(uuidlib.uuid5(NAMESPACE, 'bench-chain-%d' % i)),
             'bench-chain-syn-%04d' % i) for i in range(count)]


def advance(reply, factor):
    """A query-blockstats reply whose counters are ``factor`` times larger.

    ``idle_time_ns`` (a gauge), flags and nested objects stay as recorded.
    """
    data = copy.deepcopy(reply)
    for entry in data.get('return', ()):
        stats = entry.get('stats') or {}
        for key, value in stats.items():
            if (isinstance(value, int) and not isinstance(value, bool)
                    and key != 'idle_time_ns'):
                stats[key] = value * factor
    return data


class ReplayReader:
    """Our Reader for the real guests, recorded answers for the clones."""

    def __init__(self, real, spec):
        from ceilometer_blockacct import host
        from ceilometer_blockacct.sources import qmp

        self.real = real
        self.reply = json.loads(spec['template']['reply'])
        self.dmap = qmp.disk_map(spec['template']['xml'], 'template')
        self.boot_id = host.boot_id()
        self.start_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        self.clones = {u: DOM_ID_BASE + i for i, (u, _n) in enumerate(
            synthetic_ids(spec['synthetic']))}
        self.reads = {}

    def close(self):
        self.real.close()

    def read(self, instance_ids):
        from ceilometer_blockacct.sources import qmp
        from ceilometer_blockacct.sources import records

        wanted = list(instance_ids)
        readings = self.real.read([u for u in wanted
                                   if u not in self.clones])
        listing = readings.listing
        if listing is not None:
            listing.domains = dict(listing.domains)
            listing.domains.update(self.clones)
        for uuid in wanted:
            dom_id = self.clones.get(uuid)
            if dom_id is None:
                continue
            count = self.reads[uuid] = self.reads.get(uuid, 0) + 1
            text = json.dumps(advance(self.reply, count))
            devices = qmp.parse_devices(text, uuid)
            disks, _stale = qmp.map_disks(devices, self.dmap, uuid)
            readings[uuid] = records.VMReading(
                instance_id=uuid,
                epoch=records.Epoch(self.boot_id, dom_id, self.start_ns),
                mono_ns=time.monotonic_ns(), source='qmp', disks=disks)
        return readings


def _patch_discovery(spec):
    from ceilometer.compute import discovery

    keep = set(spec['keep'])
    clones = synthetic_ids(spec['synthetic'])
    original = discovery.InstanceDiscovery.discover

    def discover(self, manager, param=None):
        found = sorted((i for i in original(self, manager, param)
                        if i.id in keep), key=lambda i: i.id)
        if not found:
            return found
        extra = []
        for uuid, name in clones:
            clone = copy.copy(found[0])
            clone.id, clone.name = uuid, name
            extra.append(clone)
        return found + extra

    discovery.InstanceDiscovery.discover = discover


def _patch_reader(spec):
    from ceilometer_blockacct import cycle

    real = cycle.reader_mod.Reader
    cycle.reader_mod.Reader = lambda conf, **kw: ReplayReader(
        real(conf, **kw), spec)


def _patch_inspector(spec):
    from ceilometer.compute.virt.libvirt import inspector

    clones = {u for u, _n in synthetic_ids(spec['synthetic'])}
    original = inspector.LibvirtInspector.inspect_disks
    recorded = {}
    reads = {}
    lock = threading.Lock()

    def inspect_disks(self, instance, duration):
        if instance.id not in clones:
            return original(self, instance, duration)
        with lock:
            if 'stats' not in recorded:
                # NOTE: upstream looks the domain up by the instance id.
                template = copy.copy(instance)
                template.id = spec['template']['uuid']
                recorded['stats'] = list(original(self, template, duration))
            count = reads[instance.id] = reads.get(instance.id, 0) + 1
        return [s._replace(**{f: getattr(s, f) * count for f in s._fields
                              if f != 'device'})
                for s in recorded['stats']]

    inspector.LibvirtInspector.inspect_disks = inspect_disks


def _patch_counts(path):
    from ceilometer.polling import manager

    original = manager.PollingTask._send_notification
    lock = threading.Lock()

    def send(self, samples):
        with lock, open(path, 'a') as f:
            f.write('%.3f %d\n' % (time.monotonic(), len(samples)))
        return original(self, samples)

    manager.PollingTask._send_notification = send


def main():
    spec_path = sys.argv.pop(1)
    with open(spec_path) as f:
        spec = json.load(f)
    _patch_counts(spec['counts'])
    _patch_discovery(spec)
    if spec['synthetic']:
        _patch_reader(spec)
        _patch_inspector(spec)
    from ceilometer.cmd import polling

    sys.argv[0] = 'ceilometer-polling'
    return polling.main()


if __name__ == '__main__':
    sys.exit(main())
