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
"""Derive per-interval values and reset-safe deltas from counter records.

Pure logic, no I/O: every function takes the current record, the meter's
previous baseline for the disk and returns the value to publish (or None)
with the new baseline.  The formulas are those of the design contract:

* delta     = value - baseline within one epoch (one QEMU process);
* latency   = delta(time) / delta(completed requests) / 1e6 ms;
* queue     = delta(time) / delta(monotonic wall time).

First delta after a reading (design.md section 3):

==================================================  =====================
known (disk, meter), same epoch                     value - baseline
known (disk, meter), new epoch                      the whole counter
unknown (disk, meter), agent state exists           the whole counter
no agent state at all (first run, state lost)       0 (logged, not billed)
==================================================  =====================
"""

import dataclasses
import time

from oslo_log import log

from ceilometer_blockacct import meters

LOG = log.getLogger(__name__)

NS_PER_S = 1e9
NS_PER_MS = 1e6


@dataclasses.dataclass
class Baseline:
    """What one (disk, meter) remembers of its previous reading."""

    epoch: str
    mono_ns: int
    # Wall-clock time of the reading, for pruning disks no longer seen.
    seen: float
    values: list

    def to_json(self):
        return [self.epoch, self.mono_ns, self.seen, self.values]

    @classmethod
    def from_json(cls, data):
        epoch, mono_ns, seen, values = data
        if not (isinstance(epoch, str) and isinstance(mono_ns, int)
                and isinstance(seen, (int, float))
                and isinstance(values, list)
                and all(v is None or isinstance(v, int) for v in values)):
            raise ValueError('malformed baseline %r' % (data,))
        return cls(epoch, mono_ns, seen, values)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Plausibility bounds (see the [blockacct] max_* options)."""

    bytes_per_second: int
    requests_per_second: int
    queue_depth: int

    @classmethod
    def from_conf(cls, conf):
        o = conf.blockacct
        return cls(o.max_bytes_per_second, o.max_requests_per_second,
                   o.max_queue_depth)


@dataclasses.dataclass
class Point:
    """One reading of one disk, as the derivations see it."""

    key: str            # the disk's resource id, '<uuid>-<dev>'
    counters: dict
    epoch: str
    mono_ns: int
    account_failed: bool = None


def _new_baseline(point, values):
    return Baseline(point.epoch, point.mono_ns, time.time(), values)


def _seconds_since_boot(point):
    # NOTE: CLOCK_MONOTONIC starts at boot, so it bounds how long any QEMU
    # process on this host can have been counting.
    return max(point.mono_ns / NS_PER_S, 1.0)


def _rate_limit(meter, limits):
    """The most a counter of ``meter``'s unit can grow in one second."""
    if meter.unit == 'B':
        return limits.bytes_per_second
    if meter.unit == 'ns':
        # Request time accrues at most queue_depth ns per ns of wall time.
        return limits.queue_depth * NS_PER_S
    return limits.requests_per_second


def delta(meter, point, baseline, state_known, limits):
    """Reset-safe increase of ``meter.source`` since the baseline.

    :returns: (volume or None, new baseline or None to keep the old one)
    """
    value = point.counters.get(meter.source)
    if value is None:
        return None, None
    new = _new_baseline(point, [value])
    if baseline is None:
        if not state_known:
            LOG.warning('%(key)s %(meter)s: no agent state; the counter '
                        '(%(value)d) becomes the baseline and is not billed',
                        {'key': point.key, 'meter': meter.name,
                         'value': value})
            return 0, new
        volume, seconds = value, _seconds_since_boot(point)
    elif baseline.epoch != point.epoch:
        LOG.debug('%(key)s %(meter)s: new epoch %(old)s -> %(new)s, the '
                  'whole counter is new', {'key': point.key,
                                           'meter': meter.name,
                                           'old': baseline.epoch,
                                           'new': point.epoch})
        volume, seconds = value, _seconds_since_boot(point)
    elif value < baseline.values[0]:
        LOG.warning('%(key)s %(meter)s went backwards (%(old)d -> %(new)d) '
                    'in one QEMU process: counted as a reset (device '
                    're-plugged?)', {'key': point.key, 'meter': meter.name,
                                     'old': baseline.values[0],
                                     'new': value})
        volume = value
        seconds = max((point.mono_ns - baseline.mono_ns) / NS_PER_S, 1e-3)
    else:
        volume = value - baseline.values[0]
        seconds = max((point.mono_ns - baseline.mono_ns) / NS_PER_S, 1e-3)
    bound = _rate_limit(meter, limits) * seconds
    if volume > bound:
        LOG.error('%(key)s %(meter)s: implausible increase %(volume)d in '
                  '%(seconds).1f s (bound %(bound).0f): refused, not billed; '
                  'the counter may have been tampered with',
                  {'key': point.key, 'meter': meter.name, 'volume': volume,
                   'seconds': seconds, 'bound': bound})
        return None, new
    return volume, new


def latency(meter, point, baseline, limits):
    """Average latency (ms) of the requests completed since the baseline.

    QEMU charges the time of failed requests to the total when its
    ``account_failed`` flag is on (its default), without counting them as
    operations; so they are counted in the denominator then, and the result
    is the mean time of every request that completed, failed or not.
    """
    t = point.counters.get(meter.source)
    ops = point.counters.get(meter.ops_source)
    if t is None or ops is None:
        return None, None
    failed = point.counters.get(meter.failed_source)
    new = _new_baseline(point, [t, ops, failed])
    if baseline is None:
        return None, new
    if baseline.epoch != point.epoch:
        # All of the new process's requests completed since the last poll.
        old_t, old_ops, old_failed = 0, 0, 0
    else:
        old_t, old_ops, old_failed = baseline.values
    d_t, d_ops = t - old_t, ops - old_ops
    if point.account_failed and failed is not None:
        d_ops += failed - (old_failed or 0)
    if d_t < 0 or d_ops < 0:
        return None, new
    if d_ops == 0:
        return None, new
    return d_t / d_ops / NS_PER_MS, new


def queue_depth(meter, point, baseline, limits):
    """Average requests in flight since the baseline (Little's law)."""
    t = point.counters.get(meter.source)
    if t is None:
        return None, None
    new = _new_baseline(point, [t])
    if baseline is None or baseline.epoch != point.epoch:
        return None, new
    d_t = t - baseline.values[0]
    d_wall = point.mono_ns - baseline.mono_ns
    if d_t < 0 or d_wall <= 0:
        return None, new
    depth = d_t / d_wall
    if depth > limits.queue_depth:
        LOG.error('%(key)s %(meter)s: implausible queue depth %(depth).1f '
                  '(bound %(bound)d): refused', {'key': point.key,
                                                 'meter': meter.name,
                                                 'depth': depth,
                                                 'bound': limits.queue_depth})
        return None, new
    return depth, new


def raw(meter, point):
    """The counter or gauge itself."""
    return point.counters.get(meter.source)


def compute(meter, point, baseline, state_known, limits):
    """Dispatch on the meter's kind; see the functions above."""
    if meter.kind in (meters.KIND_COUNTER, meters.KIND_GAUGE):
        return raw(meter, point), None
    if meter.kind == meters.KIND_DELTA:
        return delta(meter, point, baseline, state_known, limits)
    if meter.kind == meters.KIND_LATENCY:
        return latency(meter, point, baseline, limits)
    if meter.kind == meters.KIND_QUEUE:
        return queue_depth(meter, point, baseline, limits)
    raise ValueError('unknown meter kind %r' % meter.kind)
