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
"""Shared fakes of the billing tests: a host's truth, a reader, an oracle.

:class:`Host` is the truth: boots, QEMU processes, devices and their true
counters, which only grow.  :meth:`Host.snapshot` is what a correct reader
would answer; the ``glitch_*`` helpers turn a snapshot into an answer that
is not the truth.  :class:`Driver` runs the real pollsters (loaded by
stevedore, as Ceilometer loads them) over a :class:`FakeReader`, and
:class:`Ledger` checks what they billed against the truth: for every disk
identity (VM, QEMU process, device) and delta meter, the billed volumes add
up to at most the growth of the counter since the agent's state was created.
"""

import collections
import copy
import dataclasses
import itertools
import os

from ceilometer.compute import discovery
from ceilometer import service
from stevedore import named

from ceilometer_blockacct import cycle
from ceilometer_blockacct import meters
from ceilometer_blockacct import opts
from ceilometer_blockacct.sources import records

S = 10 ** 9
GIB = 2 ** 30
IDLE = 'idle_time_ns'
# The true counters: cumulative, they only grow.
FIELDS = tuple(f for f in meters.COUNTER_FIELDS if f != IDLE)
DELTAS = tuple(m for m in meters.METERS if m.kind == meters.KIND_DELTA)
DELTA_NAMES = frozenset(m.name for m in DELTAS)

# Growth of one counter in one step of the truth model: at most a sixth of
# what the default [blockacct] max_* bounds allow in one second, so real
# I/O is always plausible when every step takes at least a second.
STEP_MAX = {'B': GIB, 'request': 10 ** 5, 'ns': 10 ** 13}
# The size of a guest's request when a test names bytes only.
REQUEST_SIZE = 64 * 1024


def unit_of(field):
    """The meter unit of a counter field ('B', 'request' or 'ns')."""
    if field.endswith('_bytes'):
        return 'B'
    if field.endswith('_ns'):
        return 'ns'
    return 'request'


def uuid_of(n):
    """A stable instance uuid for VM number ``n``."""
    return '%08x-0000-4000-8000-%012x' % (n + 1, n + 1)


@dataclasses.dataclass(frozen=True)
class Identity:
    """One disk identity: a device of one QEMU process of one VM."""

    uuid: str
    boot_id: str
    dom_id: int
    start: int
    device_id: str

    @property
    def process(self):
        return (self.uuid, self.boot_id, self.dom_id, self.start)

    def __str__(self):
        return '%s/%s:%d:%d/%s' % (self.uuid[:8], self.boot_id, self.dom_id,
                                   self.start // S, self.device_id)


class Device:
    """A block device of one QEMU process, with its true counters."""

    def __init__(self, dev, device_id, plugged_ns):
        self.dev = dev
        self.device_id = device_id
        self.plugged_ns = plugged_ns
        self.counters = dict.fromkeys(FIELDS, 0)


class Process:
    """One QEMU process of a VM."""

    def __init__(self, uuid, boot_id, dom_id, start_ns):
        self.uuid = uuid
        self.boot_id = boot_id
        self.dom_id = dom_id
        self.start_ns = start_ns
        self.devices = {}
        # Device ids are never reused inside one process (QEMU's node names
        # count up), so a re-plugged disk is a new device.
        self._plugs = itertools.count(1)

    @property
    def epoch(self):
        return records.Epoch(self.boot_id, self.dom_id, self.start_ns)

    def identity(self, device):
        return Identity(self.uuid, self.boot_id, self.dom_id, self.start_ns,
                        device.device_id)

    def plug(self, dev, now_ns):
        device_id = 'virtio-%s/libvirt-%d-format' % (dev, next(self._plugs))
        self.devices[dev] = Device(dev, device_id, now_ns)
        return self.devices[dev]


@dataclasses.dataclass
class Served:
    """One answer of the reader and where each of its disks came from.

    ``origin`` maps a resource id ('<uuid>-<dev>' as the answer labels it)
    to the identity whose counters it carries and their true values when
    the answer was taken (a glitch may show other values).
    """

    readings: records.Readings
    instances: list
    origin: dict


class Host:
    """The truth of one compute host.

    One clock serves as CLOCK_BOOTTIME and CLOCK_MONOTONIC (no suspend);
    ``wall`` is the wall clock, which may step.
    """

    def __init__(self, uptime_s=1000):
        self.boot_no = 1
        self.boot_id = 'boot-1'
        self.now_ns = uptime_s * S
        self.wall = 1.8e9
        self.vms = {}
        self._dom_ids = itertools.count(1)

    def advance(self, seconds):
        self.now_ns += int(seconds * S)
        self.wall += seconds

    def boottime_ns(self):
        return self.now_ns

    def wall_time(self):
        return self.wall

    def start(self, uuid, devs=('vda',), started_ago_s=0):
        """Start a new QEMU process for ``uuid``; return it."""
        proc = Process(uuid, self.boot_id, next(self._dom_ids),
                       self.now_ns - int(started_ago_s * S))
        for dev in devs:
            proc.plug(dev, proc.start_ns)
        self.vms[uuid] = proc
        return proc

    def stop(self, uuid):
        self.vms.pop(uuid, None)

    def restart(self, uuid):
        """A new QEMU process for a running VM, with the same disks."""
        old = self.vms[uuid]
        return self.start(uuid, tuple(old.devices))

    def reboot(self, uptime_s=30):
        """A new boot: clocks restart, every VM runs in a new process."""
        running = {u: tuple(p.devices) for u, p in self.vms.items()}
        self.boot_no += 1
        self.boot_id = 'boot-%d' % self.boot_no
        self.now_ns = uptime_s * S
        self._dom_ids = itertools.count(1)
        self.vms = {}
        for uuid, devs in running.items():
            self.start(uuid, devs)

    def plug(self, uuid, dev):
        return self.vms[uuid].plug(dev, self.now_ns)

    def unplug(self, uuid, dev):
        self.vms[uuid].devices.pop(dev, None)

    def io(self, uuid, dev, field, amount):
        self.vms[uuid].devices[dev].counters[field] += amount

    def grow(self, uuid, dev, amount=None, **fields):
        """Grow every counter of a disk by ``amount``, or named ones.

        Bytes named without their requests come in requests of
        :data:`REQUEST_SIZE`, as a guest's I/O does.
        """
        for field, inc in list(fields.items()):
            ops = field.replace('_bytes', '_operations')
            if field.endswith('_bytes') and ops not in fields:
                fields[ops] = -(-inc // REQUEST_SIZE)
        for field in FIELDS:
            inc = fields.get(field, amount)
            if inc:
                self.io(uuid, dev, field, inc)

    def identity(self, uuid, dev):
        proc = self.vms[uuid]
        return proc.identity(proc.devices[dev])

    def truth(self):
        """``{identity: {field: value}}`` of every device now."""
        return {p.identity(d): dict(d.counters)
                for p in self.vms.values() for d in p.devices.values()}

    def snapshot(self):
        """What a correct reader answers now, as a :class:`Served`."""
        readings = records.Readings()
        origin = {}
        for uuid, proc in sorted(self.vms.items()):
            disks = {}
            for dev, d in proc.devices.items():
                counters = dict(d.counters)
                counters[IDLE] = min(5 * S, self.now_ns - proc.start_ns)
                disks[dev] = records.DiskCounters(
                    dev, counters, account_failed=True,
                    device_id=d.device_id)
                origin['%s-%s' % (uuid, dev)] = (proc.identity(d),
                                                 dict(d.counters))
            readings[uuid] = records.VMReading(
                instance_id=uuid, epoch=proc.epoch, mono_ns=self.now_ns,
                source='qmp', disks=disks)
        readings.listing = records.Listing(
            self.boot_id, {u: p.dom_id for u, p in self.vms.items()},
            self.now_ns)
        return Served(readings, sorted(self.vms), origin)


# -- glitches: answers that are not the truth -------------------------------

def copy_served(served):
    """A deep copy of an answer, to glitch without touching the original."""
    readings = records.Readings(copy.deepcopy(dict(served.readings)))
    readings.listing = served.readings.listing
    return Served(readings, list(served.instances), dict(served.origin))


def glitch_value(served, uuid, dev, field, value, missing=False):
    """Show ``value`` (anything: huge, negative, a str...) as one counter."""
    counters = served.readings[uuid].disks[dev].counters
    if missing:
        counters.pop(field, None)
    else:
        counters[field] = value


def glitch_swap_disks(served, uuid, dev_a, dev_b):
    """Two disks' counters (with their device ids) under each other's name.

    What a stale alias -> target map does.
    """
    disks = served.readings[uuid].disks
    disks[dev_a], disks[dev_b] = disks[dev_b], disks[dev_a]
    disks[dev_a].dev, disks[dev_b].dev = dev_a, dev_b
    ka, kb = '%s-%s' % (uuid, dev_a), '%s-%s' % (uuid, dev_b)
    served.origin[ka], served.origin[kb] = (served.origin[kb],
                                            served.origin[ka])


def glitch_swap_vms(served, uuid_a, uuid_b):
    """Two VMs' readings swapped (each keeps its instance id).

    What a lookup of the wrong domain (a reused domain id) gives.
    """
    ra, rb = served.readings[uuid_a], served.readings[uuid_b]
    for attr in ('epoch', 'mono_ns', 'disks'):
        va, vb = getattr(ra, attr), getattr(rb, attr)
        setattr(ra, attr, vb)
        setattr(rb, attr, va)
    origin = {}
    for key, value in served.origin.items():
        for mine, other in ((uuid_a, uuid_b), (uuid_b, uuid_a)):
            if key.startswith(mine + '-'):
                key = other + key[len(mine):]
                break
        origin[key] = value
    served.origin = origin


def glitch_device_id(served, uuid, dev, other_dev):
    """``dev`` shows its own counters with ``other_dev``'s device id."""
    disks = served.readings[uuid].disks
    disks[dev].device_id = disks[other_dev].device_id


def glitch_old(served, uuid, older):
    """``uuid`` answers as it did in the earlier answer ``older``."""
    served.readings[uuid] = copy.deepcopy(older.readings[uuid])
    prefix = uuid + '-'
    for key in [k for k in served.origin if k.startswith(prefix)]:
        del served.origin[key]
    served.origin.update((k, v) for k, v in older.origin.items()
                         if k.startswith(prefix))


# -- the real pollsters over a fake reader -----------------------------------

class FakeReader:
    """Serves the answer it is given (``serve``), or a scripted list."""

    def __init__(self, script=()):
        self.script = list(script)
        self.answer = None
        self.calls = 0

    def serve(self, readings):
        self.answer = readings

    def read(self, ids):
        self.calls += 1
        answer = self.script.pop(0) if self.script else self.answer
        out = records.Readings((i, r) for i, r in answer.items() if i in ids)
        out.listing = getattr(answer, 'listing', None)
        return out


def instance(uuid):
    """A Nova-like instance as Ceilometer's discovery gives it."""
    return discovery.NovaLikeServer(
        id=uuid, name='vm-' + uuid[:8],
        flavor={'id': 'f1', 'name': 'tiny', 'vcpus': 1, 'ram': 32,
                'disk': 1, 'ephemeral': 0, 'swap': 0},
        image=None, os_type='hvm', architecture='x86_64',
        **{'OS-EXT-SRV-ATTR:instance_name': 'instance-' + uuid[:8],
           'OS-EXT-SRV-ATTR:host': 'h', 'OS-EXT-STS:vm_state': 'running'},
        tenant_id='p1', user_id='u1', hostId='hid', status='active',
        metadata={})


def make_conf():
    """A Ceilometer configuration with the [blockacct] options."""
    conf = service.prepare_service([], [])
    opts.register_opts(conf)
    # NOTE: no Gnocchi here; test_recovery tests the repair.
    conf.set_override('repair_after_restart', False, 'blockacct')
    return conf


def load_extensions(conf, scratch_dir):
    """Every pollster, loaded by stevedore as Ceilometer loads them.

    Loading makes each pollster's process-wide agent; it gets a state_dir of
    its own (``scratch_dir``) so that it never holds the tests' one.
    """
    conf.set_override('state_dir', scratch_dir, 'blockacct')
    mgr = named.NamedExtensionManager(
        'ceilometer.poll.compute', names=list(meters.BY_NAME),
        invoke_on_load=True, invoke_args=(conf,))
    return list(mgr)


@dataclasses.dataclass
class Escape:
    """An exception that escaped a pollster or the agent's start."""

    where: str
    error: BaseException

    def __str__(self):
        return '%s: %s: %s' % (self.where, type(self.error).__name__,
                               self.error)


class Driver:
    """Ceilometer's side: agents, pollster objects and polling cycles."""

    def __init__(self, conf, exts, state_dir, reader):
        self.conf = conf
        self.exts = exts
        self.state_dir = state_dir
        self.reader = reader
        self.agent = None
        self.pollsters = []
        self._instances = {}

    def start_agent(self):
        """A new agent process on the state_dir (the old one stopped).

        :returns: None, or the :class:`Escape` when the agent cannot start.
        """
        self.stop_agent()
        self.conf.set_override('state_dir', self.state_dir, 'blockacct')
        try:
            self.agent = cycle.Agent(self.conf, reader=self.reader)
        except Exception as e:
            self.pollsters = []
            return Escape('Agent()', e)
        self.pollsters = []
        for ext in self.exts:
            obj = type(ext.obj)(self.conf)
            obj.agent = self.agent
            self.pollsters.append(obj)
        return None

    def stop_agent(self):
        """Stop the agent: close what it holds (its state lock, database)."""
        agent, self.agent = self.agent, None
        self.pollsters = []
        if agent is None:
            return
        for owner, name in ((agent, 'close'), (agent.store, 'close')):
            close = getattr(owner, name, None)
            if close is not None:
                close()
                return
        conn = getattr(agent.store, '_conn', None)
        if conn is not None:
            conn.close()

    def poll(self, uuids, meters_only=None, cache=None):
        """One polling cycle of one source over ``uuids``.

        :param meters_only: the meters of the source (default: all).
        :param cache: the source's cycle cache, to run one cycle in parts.
        :returns: (samples, escapes): samples as (meter, resource id,
            volume) tuples.
        """
        cache = {} if cache is None else cache
        samples, escapes = [], []
        resources = [self._instance(u) for u in uuids]
        for obj in self.pollsters:
            name = obj.meter.name
            if meters_only is not None and name not in meters_only:
                continue
            try:
                for s in obj.get_samples(None, cache, resources):
                    samples.append((s.name, s.resource_id, s.volume))
            except Exception as e:
                escapes.append(Escape(name, e))
        return samples, escapes

    def _instance(self, uuid):
        found = self._instances.get(uuid)
        if found is None:
            found = self._instances[uuid] = instance(uuid)
        return found


def corrupt(state_dir, offset, data):
    """Write ``data`` over the state database at ``offset`` (if it exists).

    :returns: whether a file was changed.
    """
    path = os.path.join(state_dir, 'baselines.sqlite')
    try:
        with open(path, 'r+b') as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return False
            f.seek(offset % size)
            f.write(data)
    except FileNotFoundError:
        return False
    return True


def lose_state(state_dir):
    """Remove every file of the state_dir (a lost or replaced disk)."""
    for name in os.listdir(state_dir):
        path = os.path.join(state_dir, name)
        if os.path.isfile(path) or os.path.islink(path):
            os.unlink(path)


# -- the oracle --------------------------------------------------------------

class Ledger:
    """What was shown to the plugin and what it billed, per identity.

    The invariant, per (identity, delta meter)::

        billed <= max true value shown - true value when the state was
                  first created (0 for a device that did not exist then)

    and, when nothing but the truth was shown and nothing failed, billing
    is exact: billed == max shown - first shown, or the whole counter for
    a process that started after the creation or a device plugged after
    its process had been read without it.
    """

    def __init__(self):
        self.created = None          # (boot_id, boottime_ns)
        self.at_creation = {}        # identity -> true counters
        self.shown_max = collections.defaultdict(int)
        self.first_shown = {}
        self.provably_new = set()
        self.first_seen = set()
        self.seen_devices = {}       # process -> device ids read in it
        self.billed = collections.defaultdict(int)
        self.violations = []

    def state_created(self, host):
        """The agent's state was created now.

        Only the first creation counts: a later loss can only lower what
        may be billed.
        """
        if self.created is None:
            self.created = (host.boot_id, host.now_ns)
            self.at_creation = host.truth()

    def shown(self, served):
        """The plugin was given the answer ``served``."""
        identities = [identity for identity, _ in served.origin.values()]
        for identity in identities:
            self._note_new(identity)
        for identity, truth in served.origin.values():
            self.seen_devices.setdefault(identity.process, set()).add(
                identity.device_id)
            for field, value in truth.items():
                key = (identity, field)
                self.shown_max[key] = max(self.shown_max[key], value)
                self.first_shown.setdefault(key, value)

    def _note_new(self, identity):
        # Provably new to a plugin that remembers what it read: a process
        # started after the state was created, or a device that an earlier
        # reading of its process did not have.
        if identity in self.provably_new or identity in self.first_seen:
            return
        self.first_seen.add(identity)
        boot, at = self.created
        devices = self.seen_devices.get(identity.process)
        if identity.boot_id != boot or identity.start > at:
            self.provably_new.add(identity)
        elif devices is not None and identity.device_id not in devices:
            self.provably_new.add(identity)

    def bill(self, served, samples, where=''):
        """Attribute the delta samples of a poll that was shown ``served``."""
        for name, resource, volume in samples:
            if name not in DELTA_NAMES:
                continue
            found = served.origin.get(resource)
            if found is None:
                self.violations.append(
                    '%s%s %s: billed %r for a disk that was not read'
                    % (where, resource, name, volume))
                continue
            if (not isinstance(volume, int) or isinstance(volume, bool)
                    or volume < 0):
                self.violations.append(
                    '%s%s %s: delta %r is not a non-negative int'
                    % (where, resource, name, volume))
                continue
            self.billed[(found[0], name)] += volume

    def bound(self, identity, field):
        return (self.shown_max.get((identity, field), 0)
                - self.at_creation.get(identity, {}).get(field, 0))

    def check(self, exact=False):
        """Violations of the invariant (and of exactness when asked)."""
        out = list(self.violations)
        for (identity, name), billed in sorted(self.billed.items(),
                                               key=str):
            field = meters.BY_NAME[name].source
            bound = self.bound(identity, field)
            if billed > bound:
                out.append('%s %s: billed %d > grew %d (over by %d)'
                           % (identity, name, billed, bound, billed - bound))
        if exact:
            for (identity, field), top in sorted(self.shown_max.items(),
                                                 key=str):
                base = (0 if identity in self.provably_new
                        else self.first_shown[(identity, field)])
                for m in DELTAS:
                    if m.source != field:
                        continue
                    got = self.billed.get((identity, m.name), 0)
                    if got != top - base:
                        out.append('%s %s: billed %d, exact is %d'
                                   % (identity, m.name, got, top - base))
        return out
