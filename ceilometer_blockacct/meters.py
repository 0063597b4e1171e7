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
"""The meter table: the single source of truth of every meter we emit.

Pollster classes, entry points (checked by a test), the Gnocchi resources
definition, the CloudKitty metrics.yml and the docs table all derive from
:data:`METERS`.  Each row names its own source fields, so nothing is paired
by position.
"""

import dataclasses
import fractions

# Sample types, spelled as Ceilometer spells them (ceilometer.sample.TYPE_*);
# kept here so the table can be read without importing Ceilometer.
CUMULATIVE = 'cumulative'
GAUGE = 'gauge'
DELTA = 'delta'

# How a meter's value is obtained from counter records.
KIND_COUNTER = 'counter'    # the raw cumulative counter
KIND_GAUGE = 'gauge'        # a raw instantaneous value
KIND_DELTA = 'delta'        # reset-safe increase since the last poll
KIND_LATENCY = 'latency'    # delta(time) / delta(completed ops), in ms
KIND_QUEUE = 'queue'        # delta(time) / delta(wall time) (Little's law)
# Increases refused as implausible since the last poll, summed over the
# disk's counters of one quantity.
KIND_REFUSED = 'refused'

# Archive policies (defined in ceilometer_blockacct.gnocchi).
POLICY_RATE = 'blockacct-rate'
POLICY_GAUGE = 'blockacct-gauge'
POLICY_DELTA = 'blockacct-delta'

# The resource type every meter is attached to, as upstream's disk.device.*.
RESOURCE_TYPE = 'instance_disk'

# Profiles: the meter sets an operator polls (``ceilometer-blockacct
# gen-polling --profile``).  A row names the profiles it belongs to besides
# ALL, which has every row.
BILLING = 'billing'
MONITORING = 'monitoring'
ALL = 'all'
PROFILES = {
    BILLING: 'the billable deltas, what CloudKitty rates',
    MONITORING: "what a customer's panel charts: requests, bytes, time "
                '(latency and queue depth as ratios of sums), idle time, '
                'failed and invalid requests; read, write and flush',
    ALL: 'every meter of the table',
}


def resource_id(instance_id, dev):
    """The ``instance_disk`` resource id of a disk, as upstream's."""
    return '%s-%s' % (instance_id, dev)


# -- the counter vocabulary ---------------------------------------------------

# What a counter counts; it decides its unit and its plausibility bound.
BYTES = 'bytes'
REQUESTS = 'requests'
TIME = 'time'
IDLE = 'idle'
_UNITS = {BYTES: 'B', REQUESTS: 'request', TIME: 'ns', IDLE: 'ns'}


@dataclasses.dataclass(frozen=True)
class Counter:
    """One counter of a virtual disk, named as QMP query-blockstats names it.

    Every source maps its own keys onto these names (``bulk`` is the key
    suffix in libvirt bulk stats, when libvirt has the counter there).
    """

    name: str
    op: str
    quantity: str
    bulk: str = None
    # A short column header (ceilometer-blockacct show).
    header: str = None

    @property
    def unit(self):
        return _UNITS[self.quantity]


# QEMU's names per operation: rd, wr, flush, unmap (a discard).
OPS = {'read': 'rd', 'write': 'wr', 'flush': 'flush', 'discard': 'unmap'}
_BULK_OPS = {'read': 'rd', 'write': 'wr', 'flush': 'fl'}


def _counters():
    found = []
    for op, q in OPS.items():
        bulk = _BULK_OPS.get(op)
        short = {'read': 'rd', 'write': 'wr', 'flush': 'fl',
                 'discard': 'dc'}[op]
        found += [
            Counter('%s_operations' % q, op, REQUESTS,
                    bulk and '%s.reqs' % bulk, short + '_ops'),
            Counter('%s_total_time_ns' % q, op, TIME,
                    bulk and '%s.times' % bulk, short + '_time_ns'),
            Counter('failed_%s_operations' % q, op, REQUESTS, None,
                    short + '_failed'),
            Counter('invalid_%s_operations' % q, op, REQUESTS, None,
                    short + '_invalid'),
        ]
        if op != 'flush':
            found.append(Counter('%s_bytes' % q, op, BYTES,
                                 bulk and '%s.bytes' % bulk,
                                 short + '_bytes'))
    found.append(Counter('idle_time_ns', None, IDLE, None, 'idle_ns'))
    return {c.name: c for c in found}


# Every counter, in display order: field name -> Counter.
COUNTERS = _counters()


def _ops(op):
    return '%s_operations' % OPS[op]


def _time(op):
    return '%s_total_time_ns' % OPS[op]


def _failed(op):
    return 'failed_%s_operations' % OPS[op]


def _invalid(op):
    return 'invalid_%s_operations' % OPS[op]


def _bytes(op):
    return '%s_bytes' % OPS[op]


# -- CloudKitty: the unit and factor each billable meter is rated in ---------

GIB = 1024 ** 3
MILLION = 10 ** 6
RATE_GIB = ('GiB', fractions.Fraction(1, GIB))
RATE_MILLION = ('million requests', fractions.Fraction(1, MILLION))
RATE_EACH = ('request', 1)


@dataclasses.dataclass(frozen=True)
class Meter:
    """One row of the meter table."""

    name: str
    type: str
    kind: str
    source: str
    archive_policy: str
    description: str
    billable: bool = False
    # For KIND_LATENCY: the completed-operations counter, and the failed
    # counter that QEMU also charges time for when account_failed is on.
    # For a bytes delta: the operations counter that bounds bytes per
    # request.
    ops_source: str = None
    failed_source: str = None
    # (unit shown by CloudKitty, factor applied to the Gnocchi sum).
    rating: tuple = None
    # For KIND_REFUSED: which counters' refused increases it sums.
    refused_of: str = None
    # The profiles besides ALL that poll this meter (see PROFILES).
    profiles: frozenset = frozenset()

    @property
    def unit(self):
        if self.kind == KIND_LATENCY:
            return 'ms'
        if self.kind == KIND_QUEUE:
            return 'request'
        return COUNTERS[self.source].unit

    @property
    def class_name(self):
        """Name of the generated pollster class, e.g. ReadBytesDelta..."""
        short = self.name[len('disk.device.'):]
        return ''.join(p.capitalize() for p in short.split('.')) + 'Pollster'

    @property
    def sources(self):
        """Every counter field this meter reads."""
        return tuple(f for f in (self.source, self.ops_source,
                                 self.failed_source) if f)


def _build():
    rows = []

    def add(profiles=(), **kwargs):
        rows.append(Meter(profiles=frozenset(profiles), **kwargs))

    # NOTE: a panel's latency and queue depth over any period are ratios of
    # sums of the total.time deltas (exact, across QEMU restarts), so the
    # monitoring profile needs no per-poll gauge.
    def panel(op):
        return (MONITORING,) if op in ('read', 'write', 'flush') else ()

    add(name='disk.device.flush.requests', type=CUMULATIVE,
        kind=KIND_COUNTER, source=_ops('flush'), archive_policy=POLICY_RATE,
        description='Flush requests completed by the virtual disk '
                    '(cumulative).')
    for op in OPS:
        add(name='disk.device.%s.total.time' % op, type=CUMULATIVE,
            kind=KIND_COUNTER, source=_time(op), archive_policy=POLICY_RATE,
            description='Total time spent on %s requests (cumulative%s).' % (
                op, '' if op in ('flush', 'discard') else
                '; upstream calls this disk.device.%s.latency' % op))
    for op in OPS:
        add(name='disk.device.%s.requests.failed' % op, type=CUMULATIVE,
            kind=KIND_COUNTER, source=_failed(op),
            archive_policy=POLICY_RATE,
            description='Failed %s requests (I/O error; cumulative).' % op)
    for op in OPS:
        add(name='disk.device.%s.requests.invalid' % op, type=CUMULATIVE,
            kind=KIND_COUNTER, source=_invalid(op),
            archive_policy=POLICY_RATE,
            description='Invalid %s requests rejected by the device model '
                        '(cumulative).' % op)
    # Upstream has no discard meters: the cumulative pair of its deltas.
    add(name='disk.device.discard.requests', type=CUMULATIVE,
        kind=KIND_COUNTER, source=_ops('discard'),
        archive_policy=POLICY_RATE,
        description='Discard (unmap, TRIM) requests completed by the '
                    'virtual disk (cumulative).')
    add(name='disk.device.discard.bytes', type=CUMULATIVE, kind=KIND_COUNTER,
        source=_bytes('discard'), archive_policy=POLICY_RATE,
        description='Bytes discarded (unmapped) by the guest (cumulative).')
    add(name='disk.device.idle.time', type=GAUGE, kind=KIND_GAUGE,
        source='idle_time_ns', archive_policy=POLICY_GAUGE,
        profiles=(MONITORING,),
        description='Time since the disk was last used (absent before its '
                    'first I/O).')
    for op in OPS:
        add(name='disk.device.%s.latency.avg' % op, type=GAUGE,
            kind=KIND_LATENCY, source=_time(op), archive_policy=POLICY_GAUGE,
            ops_source=_ops(op), failed_source=_failed(op),
            description='Average %s latency over the poll interval: '
                        'delta(time) / delta(completed requests); no sample '
                        'when no request completed.' % op)
    for op in OPS:
        add(name='disk.device.%s.queue.depth' % op, type=GAUGE,
            kind=KIND_QUEUE, source=_time(op), archive_policy=POLICY_GAUGE,
            description='Average number of %s requests in flight over the '
                        'poll interval: delta(time) / delta(wall time).' % op)
    for op in ('read', 'write', 'discard'):
        add(name='disk.device.%s.bytes.delta' % op, type=DELTA,
            kind=KIND_DELTA, source=_bytes(op), archive_policy=POLICY_DELTA,
            billable=True, rating=RATE_GIB,
            profiles=(BILLING,) + (() if op == 'discard' else panel(op)),
            ops_source=None if op == 'discard' else _ops(op),
            description='Bytes %s since the last poll (reset-safe).' % {
                'read': 'read', 'write': 'written',
                'discard': 'discarded'}[op])
    for op in OPS:
        add(name='disk.device.%s.requests.delta' % op, type=DELTA,
            kind=KIND_DELTA, source=_ops(op), archive_policy=POLICY_DELTA,
            billable=True, rating=RATE_MILLION,
            profiles=(BILLING,) + panel(op),
            description='%s requests completed since the last poll '
                        '(reset-safe).' % op.capitalize())
    for op in OPS:
        add(name='disk.device.%s.requests.failed.delta' % op, type=DELTA,
            kind=KIND_DELTA, source=_failed(op), archive_policy=POLICY_DELTA,
            billable=True, rating=RATE_EACH,
            profiles=(BILLING,) + panel(op),
            description='Failed %s requests since the last poll '
                        '(reset-safe).' % op)
    for op in OPS:
        add(name='disk.device.%s.requests.invalid.delta' % op, type=DELTA,
            kind=KIND_DELTA, source=_invalid(op),
            archive_policy=POLICY_DELTA, billable=True, rating=RATE_EACH,
            profiles=(BILLING,) + panel(op),
            description='Invalid %s requests since the last poll '
                        '(reset-safe).' % op)
    for op in OPS:
        add(name='disk.device.%s.total.time.delta' % op, type=DELTA,
            kind=KIND_DELTA, source=_time(op), archive_policy=POLICY_DELTA,
            profiles=panel(op),
            description='Time spent on %s requests since the last poll '
                        '(reset-safe): sum(this) / sum(requests.delta) is '
                        'the average latency of any period, across QEMU '
                        'restarts.' % op)
    add(name='disk.device.bytes.refused', type=DELTA, kind=KIND_REFUSED,
        source=_bytes('read'), refused_of=BYTES, archive_policy=POLICY_DELTA,
        description='Increases of the byte counters refused as implausible '
                    'since the last poll (not billed; see [blockacct] '
                    'implausible_policy).')
    add(name='disk.device.requests.refused', type=DELTA, kind=KIND_REFUSED,
        source=_ops('read'), refused_of=REQUESTS,
        archive_policy=POLICY_DELTA,
        description='Increases of the request counters (completed, failed '
                    'and invalid) refused as implausible since the last '
                    'poll (not billed).')
    return tuple(rows)


METERS = _build()
BY_NAME = {m.name: m for m in METERS}


def profile(name):
    """The rows of profile ``name``, in table order.

    :raises KeyError: for a name not in :data:`PROFILES`.
    """
    if name not in PROFILES:
        raise KeyError('unknown profile %r: one of %s'
                       % (name, ', '.join(PROFILES)))
    return tuple(m for m in METERS if name == ALL or name in m.profiles)


def profile_pollster(name):
    """Entry point name of the pollster of profile ``name``.

    NOTE: not under ``disk.``, so that a ``disk.*`` pattern in polling.yaml
    does not poll a profile on top of its meters.
    """
    return 'blockacct.%s' % name


# THE average latency over a period, in ms, as Gnocchi's aggregates API
# computes it: a ratio of sums of reset-safe deltas over the same window
# (sum of total.time.delta in ns / sum of requests.delta, / 1e6), exact
# across QEMU restarts; never a mean of per-poll latency.avg gauges.  Every
# doc, the all-in-one and the functional test use this one text.
LATENCY_QUERY = ('(/ (metric disk.device.%(op)s.total.time.delta sum) '
                 '(* 1000000 (metric disk.device.%(op)s.requests.delta '
                 'sum)))')


def latency_query(op):
    """Gnocchi aggregates operation: ``op``'s average latency in ms."""
    if op not in OPS:
        raise KeyError('unknown operation %r: one of %s'
                       % (op, ', '.join(OPS)))
    return LATENCY_QUERY % {'op': op}


# Every counter field any meter reads: what a source should try to provide.
COUNTER_FIELDS = tuple(sorted({f for m in METERS for f in m.sources}))

# Upstream Ceilometer already registers these; registering them again would
# double every sum in Gnocchi, so the table must never contain them.
UPSTREAM_DISK_METERS = frozenset([
    'disk.device.read.bytes', 'disk.device.write.bytes',
    'disk.device.read.requests', 'disk.device.write.requests',
    'disk.device.read.latency', 'disk.device.write.latency',
    'disk.device.capacity', 'disk.device.allocation', 'disk.device.usage',
])
