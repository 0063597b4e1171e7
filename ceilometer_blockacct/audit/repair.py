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
"""What to post so that a range adds up, and where in time to post it."""

import dataclasses
import math

from ceilometer_blockacct.audit import balance as balance_mod
from ceilometer_blockacct.audit import timeline

# Where a repair is posted.
AT_WINDOW = 'window'
AT_NOW = 'now'


@dataclasses.dataclass(frozen=True)
class Repair:
    """An amount to post to a delta meter, for one segment of the range."""

    segment: balance_mod.Segment
    amount: int
    # Where it goes (epoch seconds, ns): in the segment, or later.
    ts: float
    late: bool = False


def plan_repairs(balance, refused=(), settle=balance_mod.DEFAULT_SETTLE):
    """What to post so that the range adds up, and why not more.

    Never more than the exact balance says is missing, nor more than the
    settled level says (both must agree).  Each amount goes inside the
    :class:`.balance.Segment` (between two consecutive exact moments) that
    lost it, no more than that segment's change, latest segment first:
    afterwards every segment adds up, so an audit between any two exact
    moments finds nothing to post again.  (Placed by the settled windows,
    a loss could land in another busy stretch whose windows only jittered:
    the whole range added up, the stretch that lost it did not, and an
    audit of that stretch posted it again.)

    :param balance: :func:`.balance.walk`'s result.
    :param refused: ``[(ts, amount)]`` of the disk's refused meter of the
        pair's quantity: a segment near a refusal is not repaired.
    :returns: ``(repairs, notes)``: :class:`Repair` objects whose ``ts``
        is still a time in the segment (the start of a settled window
        that lost something, else of the bucket where billed trailed
        most), latest first; ``notes`` says why a missing amount is not
        (all) repaired.
    """
    notes = []
    if balance.net <= 0 and balance.settled_net <= 0:
        return [], notes
    if balance.exact is None:
        why = ('no poll with the disk idle: upstream\'s cumulative meter '
               'is read apart from ours' if balance.idle_only
               else 'a disk busy at every poll')
        notes.append('no moment without a poll on its way at both ends of '
                     'the range (%s): not repaired' % why)
        return [], notes
    budget = min(balance.net, balance.settled_net)
    if budget < balance.net:
        notes.append('%d of it does not show in the settled level yet: '
                     'left for a later run' % (balance.net - max(budget, 0)))
    repairs = []
    for seg in reversed(balance.segments):
        if budget <= 0:
            break
        if seg.change <= 0:
            continue
        if seg.reset:
            notes.append('%s: the counter went down in this span (a new '
                         'process or a glitch): not repaired' % _span(seg))
            continue
        if any(seg.start - settle <= ts < seg.end + settle and amount
               for ts, amount in refused):
            notes.append('%s: the agent refused increases of this disk '
                         'here: not repaired' % _span(seg))
            continue
        left = min(seg.change, budget)
        budget -= left
        # NOTE: inside the segment, in its settled windows that lost
        # something (latest first), the rest in its widest bucket.
        for w in reversed(balance.windows):
            if left <= 0:
                break
            if (w.settled and w.difference > 0 and not w.reset
                    and seg.start <= w.start < seg.end):
                amount = min(w.difference, left)
                repairs.append(Repair(seg, amount, w.start))
                left -= amount
        if left > 0:
            repairs.append(Repair(seg, left, seg.widest))
    return repairs, notes


def earliest_accepted(policy, now):
    """The oldest timestamp Gnocchi still accepts for a metric, now.

    Gnocchi drops, silently, a measure older than the start of the
    coarsest period holding the metric's newest measure minus
    ``back_window`` such periods; ``now`` stands for the newest measure
    (measures keep arriving).
    """
    coarsest = max(g for g, _span_ in timeline.granularities(policy))
    return (math.floor(now / coarsest) - policy.get('back_window', 0)) * (
        coarsest)


def timestamps(repairs, oldest, granularity, repair_at, now_ns):
    """Where each repair is posted: ``[(ns, late)]``, all distinct.

    In its bucket (:func:`stamp`) unless ``repair_at`` is
    :data:`AT_NOW` or Gnocchi no longer accepts that time (``oldest``):
    then at the current time, billed late.  Gnocchi keeps one value per
    timestamp, so two repairs of one bucket, or of one run, never share
    one.
    """
    out = []
    for i, r in enumerate(repairs):
        late = repair_at == AT_NOW or r.ts < oldest
        if late:
            # NOTE: one nanosecond each, none on a microsecond.
            ns = now_ns // 1000 * 1000 + 1 + i
        else:
            # NOTE: 2 ns apart: stamp() moves one off a microsecond by 1.
            ns = stamp(r.ts, granularity, now_ns + 2 * i)
        out.append((ns, late))
    return out


def stamp(ts, granularity, now_ns):
    """A timestamp in ``ts``'s bucket that no poll can have used.

    Ceilometer stamps samples to the microsecond and Gnocchi keeps one
    value per timestamp, so a repair at a poll's time would replace it:
    the nanoseconds below the microsecond are never 0 here.  They come
    from the clock, so two repairs of one window do not collide either.
    """
    ns_per_s = timeline.NS_PER_S
    bucket_ns = int(round(granularity * ns_per_s))
    offset = now_ns % bucket_ns
    if offset % 1000 == 0:
        offset += 1
    return int(round(ts * ns_per_s)) // bucket_ns * bucket_ns + offset


def _span(w):
    return '%s..%s' % (timeline.iso(w.start), timeline.iso(w.end))
