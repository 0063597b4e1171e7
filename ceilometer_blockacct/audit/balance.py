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
"""The balance of a pair: ``increase - billed`` over time, and its windows.

Pure logic on the buckets Gnocchi holds; the package's docstring
(:mod:`ceilometer_blockacct.audit`) says how the balance is read.
"""

import dataclasses

# A change of the balance is a difference once it has held this long.
DEFAULT_SETTLE = 10.0

# Status of a disk's pair over the range, and of a window.
OK = 'ok'                  # no difference
MISSING = 'missing'        # billed less than the counter grew
SURPLUS = 'surplus'        # billed more than the counter grew
OFFSET = 'offset'          # windows differ, the range adds up
REPAIRED = 'repaired'      # what was missing has been posted
UNSETTLED = 'unsettled'    # moving at the end of the range: not counted
UNAUDITED = 'unaudited'    # no data or no usable aggregation
NO_REPAIR = 'not repaired'  # missing, but see the note


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One time bucket of both meters of a pair.

    ``truth`` is the counter's increase attributed to the bucket (the
    last value in it minus the last value before it); ``billed`` the sum
    of the delta meter in it.
    """

    ts: float
    granularity: float
    truth: int = 0
    billed: int = 0
    # The counter went down: read as a new process counting from 0.
    reset: bool = False
    # The first counter value read: its increase is unknown (0 here).
    first: bool = False

    @property
    def end(self):
        return self.ts + self.granularity


def increases(lasts):
    """``[(ts, granularity, last value)]`` in time order -> increases.

    :returns: ``[(ts, granularity, increase, reset, first)]``.
    """
    out, prev = [], None
    for ts, granularity, value in lasts:
        if prev is None:
            out.append((ts, granularity, 0, False, True))
        elif value >= prev:
            out.append((ts, granularity, value - prev, False, False))
        else:
            out.append((ts, granularity, value, True, False))
        prev = value
    return out


def merge(lasts, sums):
    """Buckets of a pair from its two series, in time order.

    :param lasts: ``[(ts, granularity, last)]`` of the cumulative meter.
    :param sums: ``[(ts, granularity, sum)]`` of the delta meter.
    """
    by_ts = {}
    for ts, granularity, inc, reset, first in increases(lasts):
        by_ts[ts] = Bucket(ts, granularity, inc, 0, reset, first)
    for ts, granularity, value in sums:
        b = by_ts.get(ts) or Bucket(ts, granularity)
        by_ts[ts] = dataclasses.replace(b, billed=b.billed + value)
    return [by_ts[ts] for ts in sorted(by_ts)]


@dataclasses.dataclass(frozen=True)
class Window:
    """Where the balance moved from one settled level to another."""

    start: float
    end: float
    truth: int
    billed: int
    # The change of the balance: truth - billed over the window.
    difference: int
    settled: bool = True
    # The counter went down in it (a new process, or a glitch).
    reset: bool = False

    @property
    def status(self):
        if not self.settled:
            return UNSETTLED
        return MISSING if self.difference > 0 else SURPLUS


@dataclasses.dataclass(frozen=True)
class Segment:
    """The balance's change between two consecutive exact moments.

    The finest span an amount is known exactly for: a repair of it goes
    inside it (:func:`.repair.plan_repairs`), so that an audit between
    any two exact moments adds up afterwards.
    """

    start: float
    end: float
    truth: int
    billed: int
    # truth - billed over the segment: > 0 missing.
    change: int
    # The bucket where billed trailed the counter most (where a repair
    # goes): its start.
    widest: float
    # The counter went down in it (a new process, or a glitch).
    reset: bool = False


@dataclasses.dataclass(frozen=True)
class Balance:
    """One disk's pair over one range (see :func:`walk`)."""

    start: float
    end: float
    truth: int
    billed: int
    windows: tuple
    # Change of the balance over the range (> 0: missing): between the
    # exact moments, else of the settled level.
    net: int
    # The moments it is exact between, or None (then ``net`` is the
    # settled level's, an estimate).
    exact: tuple = None
    # Change of the settled level (see :func:`walk`).
    settled_net: int = 0
    # Exact moments were only those where the disk idled across a poll.
    idle_only: bool = False
    # Between the exact moments: the :class:`Segment` objects whose
    # change is not 0, in time order.
    segments: tuple = ()

    @property
    def status(self):
        if self.net > 0:
            return MISSING
        if self.net < 0:
            return SURPLUS
        if any(w.settled for w in self.windows):
            return OFFSET
        return OK


class _Levels:
    """The running balance ``truth - billed`` as a step function."""

    def __init__(self, buckets, end):
        self.buckets = buckets
        self.end = end
        # (from, value, bucket index) of each change.
        self.segs = []
        # Balance after each bucket.
        self.after = []
        level = 0
        for i, b in enumerate(buckets):
            level += b.truth - b.billed
            self.after.append(level)
            if not self.segs or level != self.segs[-1][1]:
                self.segs.append((b.ts, level, i))
        self.last = level

    def until(self, k):
        return self.segs[k + 1][0] if k + 1 < len(self.segs) else self.end

    def span(self, k, settle):
        """Seconds the level is looked at, at segment ``k``."""
        return max(settle, 3 * self.buckets[self.segs[k][2]].granularity)

    def at(self, t):
        """Index of the segment in force at ``t`` (0 before the first)."""
        found = 0
        for k, seg in enumerate(self.segs):
            if seg[0] > t:
                break
            found = k
        return found

    def durations(self, t0, t1):
        """``{value: seconds}`` the balance held within ``[t0, t1)``."""
        held = {}
        for k, (ts, value, _i) in enumerate(self.segs):
            lo, hi = max(ts, t0), min(self.until(k), t1)
            if hi > lo:
                held[value] = held.get(value, 0) + hi - lo
        return held

    def mode(self, t0, t1, keep=None):
        """The value held longest in ``[t0, t1)``; ``keep`` wins a tie."""
        held = self.durations(t0, t1)
        if not held:
            return keep
        most = max(held.values())
        if keep in held and held[keep] == most:
            return keep
        # NOTE: of values held as long, the latest.
        for k in range(len(self.segs) - 1, -1, -1):
            if held.get(self.segs[k][1]) == most:
                return self.segs[k][1]

    def exact(self, idle_only=False):
        """``[(moment, balance)]`` where no poll was on its way.

        A poll's two samples are stamped less than a bucket apart, so at
        the end of a bucket followed by an empty one, or by one where
        neither meter moved, no poll can have one sample on each side.

        :param idle_only: the two meters come from two readings a moment
            apart (:attr:`.pairs.Pair.read_apart`): while the disk is busy
            they differ by what it did in between, so only a moment
            followed by two buckets where neither meter moved (the disk
            idle across a whole poll) is exact.
        """
        out = []
        for i, b in enumerate(self.buckets):
            after = self.buckets[i + 1:i + 3]
            if idle_only:
                if len(after) == 2 and not any(
                        n.truth or n.billed for n in after):
                    out.append((b.end, self.after[i]))
                continue
            nxt = after[0] if after else None
            if nxt is None or nxt.ts > b.end or (
                    nxt.truth == 0 and nxt.billed == 0):
                out.append((b.end, self.after[i]))
        return out


def walk(buckets, start, end, settle=DEFAULT_SETTLE, idle_only=False):
    """What a pair billed against what its counter grew, in a range.

    The running balance ``increase - billed`` moves for a bucket or two
    when a poll's two samples fall into two buckets, and for good when a
    delta is lost.  It is exact only at moments when no poll is on its
    way (:meth:`_Levels.exact`): ``net`` is its change from the last such
    moment at or before the range's start to the last one ``settle``
    seconds or more before its end.  The windows where it differs come
    from its settled level: the value it held longest in the ``settle``
    seconds (at least 3 buckets) before each time.

    :param buckets: :func:`merge`'s buckets, from before ``start`` (the
        lead-in) to ``end``.
    :param idle_only: see :meth:`_Levels.exact`.
    :returns: a :class:`Balance`, or None when the counter has no value
        before ``end`` (nothing to compare with).
    """
    buckets = [b for b in buckets if b.ts < end]
    first = next((b for b in buckets if b.first), None)
    if first is None:
        return None
    lv = _Levels(buckets, end)
    segs = lv.segs
    # NOTE: the first counter value only tells where the counter was: the
    # range starts after it.
    begin = max(start, first.end)
    width = lv.span(lv.at(begin), settle)
    inside = first.end > start
    around = (begin, begin + width) if inside else (begin - width, begin)
    baseline = lv.mode(*around)
    current, since = baseline, lv.at(around[1])
    windows = []
    for k in range(since, len(segs)):
        t = lv.until(k)
        if t <= around[1]:
            continue
        lo = t - lv.span(k, settle)
        value = lv.mode(lo, t, keep=current)
        if value == current:
            continue
        # NOTE: where the level took the value it holds over [lo, t): a
        # jittering balance had that value long before too (read apart).
        at_value = [i for i in range(since, k + 1) if segs[i][1] == value]
        j = next((i for i in at_value if lv.until(i) > lo), at_value[0])
        left = next((i + 1 for i in range(j - 1, since - 1, -1)
                     if segs[i][1] == current), j)
        windows.append(_window(buckets, segs[left][0],
                               buckets[segs[j][2]].end, value - current,
                               True))
        current, since = value, j
    if lv.last != current:
        left = next((i + 1 for i in range(len(segs) - 1, since - 1, -1)
                     if segs[i][1] == current), since)
        windows.append(_window(buckets, segs[min(left, len(segs) - 1)][0],
                               end, lv.last - current, False))
    exact = [(t, v) for t, v in lv.exact(idle_only) if t <= end - settle]
    # NOTE: from a disk's first value on only (its first delta has no
    # increase to match); else the last exact moment before the range.
    before = [m for m in exact if m[0] <= begin and not inside]
    after = [m for m in exact if m[0] >= (around[1] if inside else begin)]
    low = before[-1] if before else (after[0] if after else None)
    high = exact[-1] if exact else None
    settled_net = current - baseline
    changed = max((w.end for w in windows if w.settled), default=begin)
    segments = ()
    if low is not None and high[0] > low[0] and high[0] >= changed:
        net, moments = high[1] - low[1], (low[0], high[0])
        begin, end = moments
        segments = _segments(buckets, [m for m in exact
                                       if begin <= m[0] <= end])
    else:
        # NOTE: no exact moment after the last change: an estimate.
        net, moments = settled_net, None
    truth, billed, _reset = _span(buckets, begin, end)[1:]
    return Balance(begin, end, truth, billed, tuple(windows), net,
                   moments, settled_net, idle_only, segments)


def _segments(buckets, moments):
    """:class:`Segment` objects between consecutive exact ``moments``."""
    out = []
    for (t0, v0), (t1, v1) in zip(moments, moments[1:]):
        if v1 == v0:
            continue
        inside, truth, billed, reset = _span(buckets, t0, t1)
        # NOTE: of buckets as wide, the latest (a loss shows where the
        # cumulative meter heals, after it).
        widest = max(inside, key=lambda b: (b.truth - b.billed, b.ts))
        out.append(Segment(t0, t1, truth, billed, v1 - v0, widest.ts,
                           reset))
    return tuple(out)


def _span(buckets, start, end):
    """``(buckets, truth, billed, reset)`` of ``[start, end)``."""
    inside = [b for b in buckets if start <= b.ts < end]
    return (inside, sum(b.truth for b in inside),
            sum(b.billed for b in inside), any(b.reset for b in inside))


def _window(buckets, start, end, difference, settled):
    _inside, truth, billed, reset = _span(buckets, start, end)
    return Window(start, end, truth, billed, difference, settled, reset)
