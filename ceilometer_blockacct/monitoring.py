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
"""Monitoring values: average latency and queue depth, raw counters.

Pure logic like :mod:`ceilometer_blockacct.derive` (which dispatches to
these by the meter's kind): the current reading of one disk and the
meter's baseline in, the value to publish (or None) and the new baseline
(or None to keep the old one) out.  None of these is billed.
"""

from ceilometer_blockacct import baseline as baseline_mod
from ceilometer_blockacct import meters
from ceilometer_blockacct import plausibility
from ceilometer_blockacct import pointcheck

NS_PER_S = plausibility.NS_PER_S
NS_PER_MS = 1e6


def _op_deltas(meter, point, baseline, values, limits):
    """(Δtime, Δops) of a latency/queue meter within one identity."""
    if baseline.values[0] is None:
        return None
    diffs = []
    for new, old in zip(values, baseline.values):
        if new is None or old is None:
            diffs.append(0)
        elif new < old:
            return None
        else:
            diffs.append(new - old)
    seconds = (point.mono_ns - baseline.mono_ns) / NS_PER_S
    fields = meter.sources
    if not all(plausibility.plausible(f, d, seconds, limits)
               for f, d in zip(fields, diffs)):
        pointcheck.err(point, meter, 'implausible increase: no value',
                       increase=diffs, window='%.1f s' % seconds)
        return None
    return diffs


def latency(meter, point, baseline, limits):
    """Average latency (ms) of the requests completed since the baseline.

    QEMU charges the time of failed requests to the total when its
    ``account_failed`` flag is on (its default), without counting them as
    operations; so they are counted in the denominator then, and the result
    is the mean time of every request that completed, failed or not.
    """
    t = pointcheck.counter(point, meter, meter.source)
    ops = pointcheck.counter(point, meter, meter.ops_source)
    if t is None or ops is None:
        return None, None
    values = [t, ops, pointcheck.counter(point, meter, meter.failed_source)]
    if pointcheck.unplaced(point, meter, baseline, values):
        return None, None
    if baseline is None or not baseline.same_identity(point):
        if not point.is_new:
            return None, pointcheck.new_baseline(point, values)
        # All of a new identity's requests completed since it began.
        began_ns = point.mono_ns - int(pointcheck.lifetime(point) * NS_PER_S)
        baseline = baseline_mod.Baseline(point.epoch, point.device_id,
                                         began_ns, [0, 0, 0])
    diffs = _op_deltas(meter, point, baseline, values, limits)
    if diffs is None:
        # Backwards or implausible: the old baseline stays the better one.
        return None, None
    d_t, d_ops, d_failed = diffs
    if point.account_failed:
        d_ops += d_failed
    new = pointcheck.new_baseline(point, values)
    if d_ops == 0:
        return None, new
    return d_t / d_ops / NS_PER_MS, new


def queue_depth(meter, point, baseline, limits):
    """Average requests in flight since the baseline (Little's law)."""
    t = pointcheck.counter(point, meter, meter.source)
    if t is None:
        return None, None
    if pointcheck.unplaced(point, meter, baseline, [t]):
        return None, None
    new = pointcheck.new_baseline(point, [t])
    if baseline is None or not baseline.same_identity(point):
        return None, new
    diffs = _op_deltas(meter, point, baseline, [t], limits)
    if diffs is None:
        return None, None
    depth = diffs[0] / (point.mono_ns - baseline.mono_ns)
    if depth > limits.queue_depth:
        pointcheck.err(point, meter, 'implausible queue depth: refused',
                       depth='%.1f' % depth, bound=limits.queue_depth)
        return None, None
    return depth, new


def raw(meter, point, limits):
    """The counter or gauge itself, when it is plausible.

    A cumulative counter cannot exceed what its process could count in its
    lifetime, and an idle time cannot exceed that lifetime.
    """
    value = pointcheck.counter(point, meter, meter.source)
    if value is None or point.conflict:
        return None
    lifetime = pointcheck.lifetime(point)
    if meter.kind == meters.KIND_GAUGE:
        ok = value <= lifetime * NS_PER_S
    else:
        ok = plausibility.plausible(meter.source, value, lifetime, limits)
    if not ok:
        pointcheck.err(point, meter, 'implausible value for a process of this '
                       'age: not published', reading=value,
                       lifetime='%.0f s' % lifetime)
        return None
    return value
