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

Pure logic, no I/O: every function takes the current reading of one disk
and the meter's baseline for that disk, and returns the value to publish
(or None) with the new baseline (or None to keep the old one).

THE BILLING INVARIANT: for every disk identity (QEMU process + device) the
deltas billed for a counter add up to at most what that counter grew while
the agent watched it.  So a delta is only ever taken between two readings
of ONE identity, the later minus the earlier; the whole counter is billed
only for an identity whose counting provably began after this meter's
state began (``Point.is_new``, decided by :mod:`registry`).  Whatever
cannot be placed that way bills nothing:

==============================================  ========================
same identity, newer reading, plausible         value - baseline
same identity, reading not newer (stale)        nothing; ERROR
same identity, counter went backwards           nothing, keep the higher
                                                baseline; ERROR
same identity, implausible increase             nothing, keep baseline,
                                                remember the reading;
                                                ERROR
new identity that provably began after state    the whole counter
new identity otherwise (first run, state lost,  0, the reading becomes
meter newly enabled, disk of unknown age)       the baseline; WARNING
reading that contradicts what was seen          nothing; ERROR
(``Point.conflict``)
==============================================  ========================

A refused (implausible) reading never becomes the baseline; when the next
readings grow plausibly from it (the counter really jumped), billing
resumes from it, never from before it: the jump itself is never billed.
"""

import dataclasses
import logging

from oslo_log import log

from ceilometer_blockacct import baseline as baseline_mod
from ceilometer_blockacct import meters
from ceilometer_blockacct import plausibility
from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

NS_PER_S = plausibility.NS_PER_S
NS_PER_MS = 1e6

# The baseline, policy and bounds, where callers of derive look for them.
Baseline = baseline_mod.Baseline
_counter_or_none = baseline_mod.counter_or_none
Limits = plausibility.Limits
REFUSE, CAP, BILL = plausibility.REFUSE, plausibility.CAP, plausibility.BILL


@dataclasses.dataclass
class Point:
    """One reading of one disk, as the derivations see it."""

    key: str            # the disk's resource id, '<uuid>-<dev>'
    counters: dict
    epoch: records.Epoch
    mono_ns: int
    account_failed: bool = None
    device_id: str = None
    # Seconds this identity can have been counting (process or device
    # age, else time since boot): bounds a whole counter.
    lifetime_s: float = None
    # The identity provably began counting after this meter's state began
    # and nothing of it was billed: its whole counter may be billed.
    is_new: bool = False
    # Why this reading cannot be placed (contradicts what was seen).
    conflict: str = None
    # Called with (meter, amount) for each increase not billed as
    # implausible: the refused meters count them.
    on_refused: object = None


def _new_baseline(point, values):
    return Baseline(point.epoch, point.device_id, point.mono_ns, values)


def _lifetime(point):
    if point.lifetime_s is not None:
        return max(point.lifetime_s, 1.0)
    # NOTE: CLOCK_MONOTONIC starts at boot, so it bounds how long any QEMU
    # process on this host can have been counting.
    return max(point.mono_ns / NS_PER_S, 1.0)


def _show(value):
    """A value for a log line, however large.

    Python refuses to print an int of more than 4300 digits.
    """
    if isinstance(value, int) and value.bit_length() > 128:
        return '<a %d-bit integer>' % value.bit_length()
    if isinstance(value, (list, tuple)):
        return '[%s]' % ', '.join(_show(v) for v in value)
    return '%s' % (value,)


def _log(level, point, meter, what, **extra):
    args = {'key': point.key, 'meter': meter.name, 'what': what,
            'epoch': point.epoch.key, 'device': point.device_id}
    detail = ''.join(', %s %s' % (k, _show(extra[k])) for k in sorted(extra))
    LOG.log(level, '%(key)s %(meter)s: %(what)s (process %(epoch)s, '
            'device %(device)s' + detail.replace('%', '%%') + ')', args)


def _err(point, meter, what, **extra):
    _log(logging.ERROR, point, meter, what, **extra)


def _warn(point, meter, what, **extra):
    _log(logging.WARNING, point, meter, what, **extra)


def _counter(point, meter, field):
    """The counter ``field`` of ``point`` if it is one, else None.

    Sources drop what is not an int in [0, 2^64); this keeps derivations
    safe from any other producer of records.
    """
    value = point.counters.get(field)
    if value is None or _counter_or_none(value):
        return value
    _err(point, meter, 'not a counter: ignored', field=field,
         reading=value if isinstance(value, int) else type(value).__name__)
    return None


def _window(point, baseline):
    return '%.1f s' % ((point.mono_ns - baseline.mono_ns) / NS_PER_S)


def _unplaced(point, meter, baseline, values):
    """The reading cannot be placed: say why; None to bill nothing.

    Only for readings of the baseline's own identity or of a conflict.
    """
    if point.conflict:
        _err(point, meter, 'reading not placed, not billed: %s'
             % point.conflict, reading=values)
        return True
    if baseline is None or not baseline.same_identity(point):
        # NOTE: a reading of another identity that is not newer than the
        # baseline (same boot) is a stale reading of an older process.
        if (baseline is not None
                and baseline.epoch.boot_id == point.epoch.boot_id
                and point.mono_ns <= baseline.mono_ns):
            _err(point, meter, 'reading older than the baseline of '
                 'process %s: stale, not billed' % baseline.epoch.key,
                 reading=values, baseline=baseline.values,
                 window=_window(point, baseline))
            return True
        return False
    if point.mono_ns <= baseline.mono_ns:
        _err(point, meter, 'reading not newer than the baseline: stale '
             'or out of order, not billed', reading=values,
             baseline=baseline.values, window=_window(point, baseline))
        return True
    return False


def _values(meter, point, value):
    """The values a delta meter keeps.

    The counter, and for bytes the operations that bound them.
    """
    if meter.ops_source:
        return [value, _counter(point, meter, meter.ops_source)]
    return [value]


def _implausible(meter, point, limits, increase, bound, what, new, kept):
    """Apply ``[blockacct] implausible_policy`` to an implausible increase.

    :returns: (volume, baseline) as :func:`delta` does.
    """
    policy = limits.policy
    refused = increase if policy == REFUSE else (
        increase - bound if policy == CAP else 0)
    billed = {REFUSE: None, CAP: bound, BILL: increase}[policy]
    _err(point, meter, '%s: %s; the counter may have been tampered with'
         % (what, {REFUSE: 'refused, not billed',
                   CAP: 'capped to the bound',
                   BILL: 'billed all the same (implausible_policy=bill)'}[
                       policy]),
         increase=increase, bound=bound)
    if refused and point.on_refused is not None:
        point.on_refused(meter, refused)
    if policy == REFUSE:
        return None, kept
    return billed, new


def delta(meter, point, baseline, limits):
    """Reset-safe increase of ``meter.source`` since the baseline.

    :returns: (volume or None, new baseline or None to keep the old one)
    """
    value = _counter(point, meter, meter.source)
    if value is None:
        return None, None
    values = _values(meter, point, value)
    if _unplaced(point, meter, baseline, values):
        return None, None
    if baseline is not None and baseline.same_identity(point):
        return _same_identity_delta(meter, point, baseline, values, limits)
    # A new identity: its counters started at 0 when it began.
    new = _new_baseline(point, values)
    lifetime = _lifetime(point)
    if not point.is_new:
        bound = plausibility.bound(
            meter, lifetime, values[-1] if meter.ops_source else None,
            limits)
        if value > bound:
            # NOTE: never a baseline: the next plausible reading is.
            _err(point, meter, 'implausible counter for its age: refused '
                 'as a baseline', reading=value, bound=bound)
            return None, None
        if value:
            _warn(point, meter, 'first reading of a disk whose counting may '
                  'have begun before this meter was billed (first run, '
                  'state lost, meter newly enabled): it becomes the '
                  'baseline, not billed', amount=value)
        return 0, new
    bound = plausibility.bound(
        meter, lifetime, values[-1] if meter.ops_source else None, limits)
    if value > bound:
        return _implausible(meter, point, limits, value, bound,
                            'implausible counter for its age (%.0f s)'
                            % lifetime, new, None)
    if baseline is not None:
        LOG.debug('%(key)s %(meter)s: new identity %(epoch)s/%(dev)s, the '
                  'whole counter is new', {
                      'key': point.key, 'meter': meter.name,
                      'epoch': point.epoch.key, 'dev': point.device_id})
    return value, new


def _d_ops(values, old):
    if len(values) < 2 or values[1] is None or old[1] is None:
        return None
    return values[1] - old[1] if values[1] >= old[1] else None


def _same_identity_delta(meter, point, baseline, values, limits):
    value, base = values[0], baseline.values[0]
    if base is None or value < base:
        if base is not None:
            _err(point, meter, 'counter went backwards within one device of '
                 'one QEMU process: not billed, the higher baseline is '
                 'kept', reading=value, baseline=base,
                 window=_window(point, baseline))
        return None, None
    seconds = max((point.mono_ns - baseline.mono_ns) / NS_PER_S, 1e-3)
    increase = value - base
    new = _new_baseline(point, values)
    bound = plausibility.bound(meter, seconds,
                               _d_ops(values, baseline.values), limits)
    if increase <= bound:
        return increase, new
    refused = baseline.refused
    if refused is not None and refused[1][0] is not None:
        r_mono, r_values = refused
        r_seconds = max((point.mono_ns - r_mono) / NS_PER_S, 1e-3)
        r_bound = plausibility.bound(meter, r_seconds,
                                     _d_ops(values, r_values), limits)
        if (r_values[0] <= value and point.mono_ns > r_mono
                and value - r_values[0] <= r_bound):
            # The counter really jumped and goes on from there: bill from
            # the jump on; the jump itself (logged when refused) is not.
            _warn(point, meter, 'counter goes on from the refused '
                  'reading: billing resumes from it, the jump stays '
                  'unbilled', jump=r_values[0] - base)
            return value - r_values[0], new
    kept = dataclasses.replace(baseline, refused=[point.mono_ns, values])
    return _implausible(meter, point, limits, increase, bound,
                        'implausible increase in %.1f s' % seconds, new, kept)


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
        _err(point, meter, 'implausible increase: no value',
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
    t = _counter(point, meter, meter.source)
    ops = _counter(point, meter, meter.ops_source)
    if t is None or ops is None:
        return None, None
    values = [t, ops, _counter(point, meter, meter.failed_source)]
    if _unplaced(point, meter, baseline, values):
        return None, None
    if baseline is None or not baseline.same_identity(point):
        if not point.is_new:
            return None, _new_baseline(point, values)
        # All of a new identity's requests completed since it began.
        baseline = Baseline(point.epoch, point.device_id,
                            point.mono_ns - int(_lifetime(point) * NS_PER_S),
                            [0, 0, 0])
    diffs = _op_deltas(meter, point, baseline, values, limits)
    if diffs is None:
        # Backwards or implausible: the old baseline stays the better one.
        return None, None
    d_t, d_ops, d_failed = diffs
    if point.account_failed:
        d_ops += d_failed
    new = _new_baseline(point, values)
    if d_ops == 0:
        return None, new
    return d_t / d_ops / NS_PER_MS, new


def queue_depth(meter, point, baseline, limits):
    """Average requests in flight since the baseline (Little's law)."""
    t = _counter(point, meter, meter.source)
    if t is None:
        return None, None
    if _unplaced(point, meter, baseline, [t]):
        return None, None
    new = _new_baseline(point, [t])
    if baseline is None or not baseline.same_identity(point):
        return None, new
    diffs = _op_deltas(meter, point, baseline, [t], limits)
    if diffs is None:
        return None, None
    depth = diffs[0] / (point.mono_ns - baseline.mono_ns)
    if depth > limits.queue_depth:
        _err(point, meter, 'implausible queue depth: refused',
             depth='%.1f' % depth, bound=limits.queue_depth)
        return None, None
    return depth, new


def raw(meter, point, limits):
    """The counter or gauge itself, when it is plausible.

    A cumulative counter cannot exceed what its process could count in its
    lifetime, and an idle time cannot exceed that lifetime.
    """
    value = _counter(point, meter, meter.source)
    if value is None or point.conflict:
        return None
    lifetime = _lifetime(point)
    if meter.kind == meters.KIND_GAUGE:
        ok = value <= lifetime * NS_PER_S
    else:
        ok = plausibility.plausible(meter.source, value, lifetime, limits)
    if not ok:
        _err(point, meter, 'implausible value for a process of this '
             'age: not published', reading=value,
             lifetime='%.0f s' % lifetime)
        return None
    return value


def compute(meter, point, baseline, limits):
    """Dispatch on the meter's kind; see the functions above."""
    if meter.kind in (meters.KIND_COUNTER, meters.KIND_GAUGE):
        return raw(meter, point, limits), None
    if meter.kind == meters.KIND_DELTA:
        return delta(meter, point, baseline, limits)
    if meter.kind == meters.KIND_LATENCY:
        return latency(meter, point, baseline, limits)
    if meter.kind == meters.KIND_QUEUE:
        return queue_depth(meter, point, baseline, limits)
    raise ValueError('unknown meter kind %r' % meter.kind)
