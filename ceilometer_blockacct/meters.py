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

# Archive policies (defined in ceilometer_blockacct.gnocchi).
POLICY_RATE = 'blockacct-rate'
POLICY_GAUGE = 'blockacct-gauge'
POLICY_DELTA = 'blockacct-delta'

# The resource type every meter is attached to, as upstream's disk.device.*.
RESOURCE_TYPE = 'instance_disk'

# Counter record fields.  They are QMP query-blockstats' own names; the
# libvirt bulk-stats reader maps its keys onto them.
OPS = {'read': 'rd', 'write': 'wr', 'flush': 'flush'}


def _ops_field(op):
    return '%s_operations' % OPS[op]


def _time_field(op):
    return '%s_total_time_ns' % OPS[op]


def _failed_field(op):
    return 'failed_%s_operations' % OPS[op]


def _invalid_field(op):
    return 'invalid_%s_operations' % OPS[op]


def _bytes_field(op):
    return '%s_bytes' % OPS[op]


@dataclasses.dataclass(frozen=True)
class Meter:
    """One row of the meter table."""

    name: str
    type: str
    unit: str
    kind: str
    source: str
    archive_policy: str
    billable: bool
    description: str
    # For KIND_LATENCY: the completed-operations counter, and the failed
    # counter that QEMU also charges time for when account_failed is on.
    ops_source: str = None
    failed_source: str = None

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

    def add(*args, **kwargs):
        rows.append(Meter(*args, **kwargs))

    add('disk.device.flush.requests', CUMULATIVE, 'request', KIND_COUNTER,
        _ops_field('flush'), POLICY_RATE, False,
        'Flush requests completed by the virtual disk (cumulative).')
    for op in OPS:
        add('disk.device.%s.total.time' % op, CUMULATIVE, 'ns', KIND_COUNTER,
            _time_field(op), POLICY_RATE, False,
            'Total time spent on %s requests (cumulative; upstream calls '
            'this disk.device.%s.latency).' % (op, op))
    for op in OPS:
        add('disk.device.%s.requests.failed' % op, CUMULATIVE, 'request',
            KIND_COUNTER, _failed_field(op), POLICY_RATE, False,
            'Failed %s requests (I/O error; cumulative).' % op)
    for op in OPS:
        add('disk.device.%s.requests.invalid' % op, CUMULATIVE, 'request',
            KIND_COUNTER, _invalid_field(op), POLICY_RATE, False,
            'Invalid %s requests rejected by the device model '
            '(cumulative).' % op)
    add('disk.device.idle.time', GAUGE, 'ns', KIND_GAUGE, 'idle_time_ns',
        POLICY_GAUGE, False,
        'Time since the disk was last used (absent before its first I/O).')
    for op in OPS:
        add('disk.device.%s.latency.avg' % op, GAUGE, 'ms', KIND_LATENCY,
            _time_field(op), POLICY_GAUGE, False,
            'Average %s latency over the poll interval: delta(time) / '
            'delta(completed requests); no sample when no request '
            'completed.' % op,
            ops_source=_ops_field(op), failed_source=_failed_field(op))
    for op in OPS:
        add('disk.device.%s.queue.depth' % op, GAUGE, 'request', KIND_QUEUE,
            _time_field(op), POLICY_GAUGE, False,
            'Average number of %s requests in flight over the poll '
            'interval: delta(time) / delta(wall time).' % op)
    for op in ('read', 'write'):
        add('disk.device.%s.bytes.delta' % op, DELTA, 'B', KIND_DELTA,
            _bytes_field(op), POLICY_DELTA, True,
            'Bytes %s since the last poll (reset-safe).' % (
                'read' if op == 'read' else 'written'))
    for op in OPS:
        add('disk.device.%s.requests.delta' % op, DELTA, 'request',
            KIND_DELTA, _ops_field(op), POLICY_DELTA, True,
            '%s requests completed since the last poll '
            '(reset-safe).' % op.capitalize())
    for op in OPS:
        add('disk.device.%s.requests.failed.delta' % op, DELTA, 'request',
            KIND_DELTA, _failed_field(op), POLICY_DELTA, True,
            'Failed %s requests since the last poll (reset-safe).' % op)
    for op in OPS:
        add('disk.device.%s.requests.invalid.delta' % op, DELTA, 'request',
            KIND_DELTA, _invalid_field(op), POLICY_DELTA, True,
            'Invalid %s requests since the last poll (reset-safe).' % op)
    for op in OPS:
        add('disk.device.%s.total.time.delta' % op, DELTA, 'ns', KIND_DELTA,
            _time_field(op), POLICY_DELTA, False,
            'Time spent on %s requests since the last poll (reset-safe): '
            'sum(this) / sum(requests.delta) is the average latency of any '
            'period, across QEMU restarts.' % op)
    return tuple(rows)


METERS = _build()
BY_NAME = {m.name: m for m in METERS}

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
