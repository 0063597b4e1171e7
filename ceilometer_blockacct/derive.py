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

from oslo_log import log

from ceilometer_blockacct import baseline as baseline_mod
from ceilometer_blockacct import meters
from ceilometer_blockacct import monitoring
from ceilometer_blockacct import plausibility
from ceilometer_blockacct import pointcheck
from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

NS_PER_S = plausibility.NS_PER_S

# The baseline, policy and bounds, where callers of derive look for them.
Baseline = baseline_mod.Baseline
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


def _values(meter, point, value):
    """The values a delta meter keeps.

    The counter, and for bytes the operations that bound them.
    """
    if meter.ops_source:
        return [value, pointcheck.counter(point, meter, meter.ops_source)]
    return [value]


def _implausible(meter, point, limits, increase, bound, what, new, kept):
    """Apply ``[blockacct] implausible_policy`` to an implausible increase.

    :returns: (volume, baseline) as :func:`delta` does.
    """
    policy = limits.policy
    refused = increase if policy == REFUSE else (
        increase - bound if policy == CAP else 0)
    billed = {REFUSE: None, CAP: bound, BILL: increase}[policy]
    done = {REFUSE: 'refused, not billed',
            CAP: 'capped to the bound',
            BILL: 'billed all the same (implausible_policy=bill)'}[policy]
    pointcheck.err(point, meter, '%s: %s; the counter may have been '
                   'tampered with' % (what, done),
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
    value = pointcheck.counter(point, meter, meter.source)
    if value is None:
        return None, None
    values = _values(meter, point, value)
    if pointcheck.unplaced(point, meter, baseline, values):
        return None, None
    if baseline is not None and baseline.same_identity(point):
        return _same_identity_delta(meter, point, baseline, values, limits)
    # A new identity: its counters started at 0 when it began.
    new = pointcheck.new_baseline(point, values)
    lifetime = pointcheck.lifetime(point)
    if not point.is_new:
        bound = plausibility.bound(
            meter, lifetime, values[-1] if meter.ops_source else None,
            limits)
        if value > bound:
            # NOTE: never a baseline: the next plausible reading is.
            pointcheck.err(point, meter, 'implausible counter for its age: '
                           'refused as a baseline', reading=value,
                           bound=bound)
            return None, None
        if value:
            pointcheck.warn(point, meter, 'first reading of a disk whose '
                            'counting may have begun before this meter was '
                            'billed (first run, state lost, meter newly '
                            'enabled): it becomes the baseline, not billed',
                            amount=value)
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
            pointcheck.err(point, meter, 'counter went backwards within one '
                           'device of one QEMU process: not billed, the '
                           'higher baseline is kept', reading=value,
                           baseline=base,
                           window=pointcheck.window(point, baseline))
        return None, None
    seconds = max((point.mono_ns - baseline.mono_ns) / NS_PER_S, 1e-3)
    increase = value - base
    new = pointcheck.new_baseline(point, values)
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
            pointcheck.warn(point, meter, 'counter goes on from the refused '
                            'reading: billing resumes from it, the jump stays '
                            'unbilled', jump=r_values[0] - base)
            return value - r_values[0], new
    kept = dataclasses.replace(baseline, refused=[point.mono_ns, values])
    return _implausible(meter, point, limits, increase, bound,
                        'implausible increase in %.1f s' % seconds, new, kept)


def compute(meter, point, baseline, limits):
    """Dispatch on the meter's kind; see the functions above."""
    if meter.kind in (meters.KIND_COUNTER, meters.KIND_GAUGE):
        return monitoring.raw(meter, point, limits), None
    if meter.kind == meters.KIND_DELTA:
        return delta(meter, point, baseline, limits)
    if meter.kind == meters.KIND_LATENCY:
        return monitoring.latency(meter, point, baseline, limits)
    if meter.kind == meters.KIND_QUEUE:
        return monitoring.queue_depth(meter, point, baseline, limits)
    raise ValueError('unknown meter kind %r' % meter.kind)
