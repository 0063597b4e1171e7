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
"""The billing audit: what the delta meters billed against what grew.

Every delta meter has a cumulative meter of the same counter (ours, or
upstream's ``disk.device.{read,write}.{bytes,requests}``): :func:`pairs`.
Per disk and pair, the audit reads from Gnocchi the ``sum`` of the delta
meter and the ``last`` of the cumulative one per bucket (the finest
granularity that still holds each part of the range), turns the latter
into increases (a counter that went down is a new QEMU process counting
from 0) and follows the running balance ``increase - billed``
(:func:`walk`).

One poll's two samples are stamped apart (each pollster has its own time)
and may fall into two buckets, so the balance moves for a bucket and comes
back; a delta lost on its way (a crash between the agent's commit and
Ceilometer's send) moves it for good, since the cumulative meter heals at
its next point.  The balance is exact only at moments when no poll is on
its way (an empty bucket, or an idle disk, after them): the difference of
a range is its change between such moments.  The windows where it moved
come from its settled level (the value it held longest over ``settle``
seconds).  A ``lead_in`` before the range is read so that a disk's
previous counter value is known.

The repair (:func:`plan_repairs`) posts, once, what is missing: no more
than the exact difference and the settled one both say, never a surplus,
and never in a window where the counter went down (the audit cannot tell
a new process from a glitch there) or where the disk's refused meter of
that quantity counted something (the agent refused it on purpose).  A
repair lands in the window that lost it, at a nanosecond no poll uses
(samples are stamped to the microsecond and Gnocchi keeps one value per
timestamp), or -- when Gnocchi's ``back_window`` no longer accepts that
time -- at the current time, billed late: the next audit sees the two as
offsetting windows.  Run one repair at a time: two at once can both post.
"""

import dataclasses
import datetime
import math
import time
import uuid

from ceilometer_blockacct import gnocchi
from ceilometer_blockacct import meters

# A change of the balance is a difference once it has held this long.
DEFAULT_SETTLE = 10.0
# Read this much before the range: the counters' values before it.  It
# must exceed the polling interval.
DEFAULT_LEAD_IN = 3600.0

# Where a repair is posted.
AT_WINDOW = 'window'
AT_NOW = 'now'

# Upstream's cumulative meters of the counters we have no cumulative
# meter of our own for (we never register upstream's names again).
UPSTREAM_CUMULATIVE = {
    'rd_bytes': 'disk.device.read.bytes',
    'wr_bytes': 'disk.device.write.bytes',
    'rd_operations': 'disk.device.read.requests',
    'wr_operations': 'disk.device.write.requests',
}

# Status of a disk's pair over the range, and of a window.
OK = 'ok'                  # no difference
MISSING = 'missing'        # billed less than the counter grew
SURPLUS = 'surplus'        # billed more than the counter grew
OFFSET = 'offset'          # windows differ, the range adds up
REPAIRED = 'repaired'      # what was missing has been posted
UNSETTLED = 'unsettled'    # moving at the end of the range: not counted
UNAUDITED = 'unaudited'    # no data or no usable aggregation
NO_REPAIR = 'not repaired'  # missing, but see the note

NS_PER_S = 10 ** 9


@dataclasses.dataclass(frozen=True)
class Pair:
    """A delta meter and the cumulative meter of the same counter."""

    counter: str
    delta: str
    cumulative: str

    @property
    def quantity(self):
        return meters.COUNTERS[self.counter].quantity


def pairs(mapped=None):
    """Every (delta, cumulative) pair of the meter table.

    :param mapped: meter names the resources file maps for
        ``instance_disk`` (see :func:`mapped_meters`); pairs with a meter
        outside it are left out.  None: every pair.
    """
    cumulative_of = dict(UPSTREAM_CUMULATIVE)
    cumulative_of.update((m.source, m.name) for m in meters.METERS
                         if m.kind == meters.KIND_COUNTER)
    found = []
    for m in meters.METERS:
        cumulative = cumulative_of.get(m.source)
        if m.kind != meters.KIND_DELTA or cumulative is None:
            continue
        if mapped is None or {m.name, cumulative} <= set(mapped):
            found.append(Pair(m.source, m.name, cumulative))
    return found


def refused_meter(quantity):
    """Name of the meter counting refused increases of ``quantity``."""
    for m in meters.METERS:
        if m.kind == meters.KIND_REFUSED and m.refused_of == quantity:
            return m.name
    return None


def mapped_meters(definition):
    """Meters a parsed resources definition maps for ``instance_disk``."""
    names = set()
    for resource in definition.get('resources') or ():
        if resource.get('resource_type') == meters.RESOURCE_TYPE:
            names.update(resource.get('metrics') or ())
    return names


# -- pure logic: buckets, the balance, the repairs --------------------------

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

    def exact(self):
        """``[(moment, balance)]`` where no poll was on its way.

        A poll's two samples are stamped less than a bucket apart, so at
        the end of a bucket followed by an empty one, or by one where
        neither meter moved, no poll can have one sample on each side.
        """
        out = []
        for i, b in enumerate(self.buckets):
            nxt = self.buckets[i + 1] if i + 1 < len(self.buckets) else None
            if nxt is None or nxt.ts > b.end or (
                    nxt.truth == 0 and nxt.billed == 0):
                out.append((b.end, self.after[i]))
        return out


def walk(buckets, start, end, settle=DEFAULT_SETTLE):
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
        value = lv.mode(t - lv.span(k, settle), t, keep=current)
        if value == current:
            continue
        j = next(i for i in range(since, k + 1) if segs[i][1] == value)
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
    exact = [(t, v) for t, v in lv.exact() if t <= end - settle]
    # NOTE: from a disk's first value on only (its first delta has no
    # increase to match); else the last exact moment before the range.
    before = [m for m in exact if m[0] <= begin and not inside]
    after = [m for m in exact if m[0] >= (around[1] if inside else begin)]
    low = before[-1] if before else (after[0] if after else None)
    high = exact[-1] if exact else None
    settled_net = current - baseline
    changed = max((w.end for w in windows if w.settled), default=begin)
    if low is not None and high[0] > low[0] and high[0] >= changed:
        net, moments = high[1] - low[1], (low[0], high[0])
        begin, end = moments
    else:
        # NOTE: no exact moment after the last change: an estimate.
        net, moments = settled_net, None
    in_range = [b for b in buckets if begin <= b.ts < end]
    return Balance(begin, end, sum(b.truth for b in in_range),
                   sum(b.billed for b in in_range), tuple(windows), net,
                   moments, settled_net)


def _window(buckets, start, end, difference, settled):
    inside = [b for b in buckets if start <= b.ts < end]
    return Window(start, end, sum(b.truth for b in inside),
                  sum(b.billed for b in inside), difference, settled,
                  any(b.reset for b in inside))


@dataclasses.dataclass(frozen=True)
class Repair:
    """An amount to post to a delta meter, for one window."""

    window: Window
    amount: int
    # Where it goes (epoch seconds, ns): in the window, or later.
    ts: float
    late: bool = False


def plan_repairs(balance, refused=(), settle=DEFAULT_SETTLE):
    """What to post so that the range adds up, and why not more.

    Never more than the exact balance says is missing, nor more than the
    settled level says (both must agree), nor more than the settled
    windows between the exact moments add up to.

    :param balance: :func:`walk`'s result.
    :param refused: ``[(ts, amount)]`` of the disk's refused meter of the
        pair's quantity: a window near a refusal is not repaired.
    :returns: ``(repairs, notes)``: :class:`Repair` objects whose ``ts``
        is still the window's start, latest window first; ``notes`` says
        why a missing amount is not (all) repaired.
    """
    notes = []
    if balance.net <= 0 and balance.settled_net <= 0:
        return [], notes
    if balance.exact is None:
        notes.append('no moment without a poll on its way at both ends of '
                     'the range (a disk busy at every poll): not repaired')
        return [], notes
    budget = min(balance.net, balance.settled_net)
    if budget < balance.net:
        notes.append('%d of it does not show in the settled level yet: '
                     'left for a later run' % (balance.net - max(budget, 0)))
    low, high = balance.exact
    repairs = []
    for w in reversed(balance.windows):
        if budget <= 0:
            break
        if not w.settled or w.difference <= 0:
            continue
        if not low <= w.start < high:
            continue
        if w.reset:
            notes.append('%s: the counter went down in this window (a new '
                         'process or a glitch): not repaired' % _span(w))
            continue
        if any(w.start - settle <= ts < w.end + settle and amount
               for ts, amount in refused):
            notes.append('%s: the agent refused increases of this disk '
                         'here: not repaired' % _span(w))
            continue
        amount = min(w.difference, budget)
        repairs.append(Repair(w, amount, w.start))
        budget -= amount
    return repairs, notes


def earliest_accepted(policy, now):
    """The oldest timestamp Gnocchi still accepts for a metric, now.

    Gnocchi drops, silently, a measure older than the start of the
    coarsest period holding the metric's newest measure minus
    ``back_window`` such periods; ``now`` stands for the newest measure
    (measures keep arriving).
    """
    coarsest = max(g for g, _span_ in granularities(policy))
    return (math.floor(now / coarsest) - policy.get('back_window', 0)) * (
        coarsest)


def stamp(ts, granularity, now_ns):
    """A timestamp in ``ts``'s bucket that no poll can have used.

    Ceilometer stamps samples to the microsecond and Gnocchi keeps one
    value per timestamp, so a repair at a poll's time would replace it:
    the nanoseconds below the microsecond are never 0 here.  They come
    from the clock, so two repairs of one window do not collide either.
    """
    bucket_ns = int(round(granularity * NS_PER_S))
    offset = now_ns % bucket_ns
    if offset % 1000 == 0:
        offset += 1
    return int(round(ts * NS_PER_S)) // bucket_ns * bucket_ns + offset


def iso_ns(ns):
    """ISO 8601 UTC text of epoch nanoseconds, nanoseconds kept."""
    seconds, rest = divmod(ns, NS_PER_S)
    return '%s.%09d+00:00' % (time.strftime('%Y-%m-%dT%H:%M:%S',
                                            time.gmtime(seconds)), rest)


def iso(ts):
    """ISO 8601 UTC text of epoch seconds, to the microsecond."""
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).isoformat()


def _span(w):
    return '%s..%s' % (iso(w.start), iso(w.end))


def granularities(policy):
    """``[(granularity, timespan)]`` in seconds of an archive policy."""
    out = []
    for d in policy['definition']:
        g = gnocchi.to_seconds(d['granularity'])
        if d.get('timespan') is not None:
            span = gnocchi.to_seconds(d['timespan'])
        else:
            span = g * d['points']
        out.append((g, span))
    return sorted(out)


def pieces(policies, start, end, now):
    """``[(granularity, piece start, piece end)]`` covering the range.

    Each part of ``[start, end)`` is read at the finest granularity every
    policy of ``policies`` has and still holds there (its timespan back
    from ``now``); a piece ends on a bucket of the next coarser one.
    """
    common = None
    for policy in policies:
        spans = dict(granularities(policy))
        common = spans if common is None else {
            g: min(t, spans[g]) for g, t in common.items() if g in spans}
    grans = sorted(common or ())
    out, stop = [], end
    for i, g in enumerate(grans):
        if stop <= start:
            break
        oldest = now - common[g] + g
        if i + 1 < len(grans):
            coarser = grans[i + 1]
            oldest = math.ceil(oldest / coarser) * coarser
        begin = max(start, oldest)
        if begin < stop:
            out.append((g, begin, stop))
            stop = begin
    return out[::-1]


# -- Gnocchi ------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    """One disk's pair: the balance, and what was done about it."""

    resource_id: str
    pair: Pair
    balance: Balance = None
    repairs: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    @property
    def repaired(self):
        return sum(r.amount for r in self.repairs)

    @property
    def status(self):
        if self.balance is None:
            return UNAUDITED
        status = self.balance.status
        if status == MISSING and self.repaired:
            return REPAIRED if self.repaired == self.balance.net else (
                NO_REPAIR)
        if status == MISSING and self.notes:
            return NO_REPAIR
        return status

    @property
    def left(self):
        """What is still missing (> 0) or billed twice (< 0)."""
        if self.balance is None:
            return 0
        return self.balance.net - self.repaired


class Auditor:
    """Audits (and repairs) disks in Gnocchi through gnocchiclient.

    :param client: a gnocchiclient v1 Client (the publisher's
        credentials, or an admin).
    :param mapped: meter names the resources file maps (default: every
        pair of the table).
    """

    def __init__(self, client, mapped=None, settle=DEFAULT_SETTLE,
                 lead_in=DEFAULT_LEAD_IN, clock_ns=time.time_ns):
        self.client = client
        self.pairs = pairs(mapped)
        self.settle = settle
        self.lead_in = lead_in
        self.clock_ns = clock_ns
        self._policies = {}

    # -- resources -------------------------------------------------------

    def find(self, project=None, resource_ids=(), start=None):
        """``instance_disk`` resources to audit.

        :param resource_ids: Ceilometer's ids (``<instance>-<dev>``) or
            Gnocchi's; given, only these.
        :param project: else, every disk of this project (of every project
            when None) that had not ended by ``start``.
        """
        if resource_ids:
            # NOTE: by query, not GET: Gnocchi's own id of a resource
            # whose id is no UUID depends on who created it.
            found = []
            for rid in resource_ids:
                field = 'id' if _is_uuid(rid) else 'original_resource_id'
                found.extend(self._search({'=': {field: rid}}))
            return found
        query = []
        if project:
            query.append({'=': {'project_id': project}})
        if start is not None:
            query.append({'or': [{'=': {'ended_at': None}},
                                 {'>=': {'ended_at': iso(start)}}]})
        return self._search({'and': query} if query else None)

    def _search(self, query, page_size=500):
        found, marker = [], None
        while True:
            page = self.client.resource.search(
                resource_type=meters.RESOURCE_TYPE, query=query,
                limit=page_size, marker=marker, sorts=['id:asc'])
            found.extend(page)
            if len(page) < page_size:
                return found
            marker = page[-1]['id']

    # -- audit -----------------------------------------------------------

    def audit(self, resources, start, end=None, repair=False,
              repair_at=AT_WINDOW):
        """Audit ``resources`` (Gnocchi resource dicts) over a range.

        :param start: epoch seconds.
        :param end: epoch seconds (default: now).
        :param repair: post what is missing (see the module docstring).
        :param repair_at: :data:`AT_WINDOW` or :data:`AT_NOW` (every repair
            at the current time: billed late, but in a period CloudKitty
            has not rated yet).
        :returns: one :class:`Result` per disk and pair the disk has both
            meters of.
        """
        now = self.clock_ns() / NS_PER_S
        end = now if end is None else min(end, now)
        results = []
        for resource in resources:
            metrics = resource.get('metrics') or {}
            rid = resource.get('original_resource_id') or resource['id']
            for pair in self.pairs:
                if pair.delta not in metrics or (
                        pair.cumulative not in metrics):
                    continue
                result = Result(rid, pair)
                results.append(result)
                self._audit_pair(result, metrics, start, end, now)
                if repair and result.balance is not None:
                    self._repair(result, metrics, repair_at)
        return results

    def _audit_pair(self, result, metrics, start, end, now):
        pair = result.pair
        delta = self._policy(metrics[pair.delta])
        cumulative = self._policy(metrics[pair.cumulative])
        for policy, method, name in ((delta, 'sum', pair.delta),
                                     (cumulative, 'last', pair.cumulative)):
            if method not in policy['aggregation_methods']:
                result.notes.append(
                    '%s: its archive policy %s has no %r' % (
                        name, policy['name'], method))
        if result.notes:
            return
        plan = pieces([delta, cumulative], start - self.lead_in, end, now)
        if not plan:
            result.notes.append('no granularity common to %s and %s' % (
                delta['name'], cumulative['name']))
            return
        lasts = self._series(metrics[pair.cumulative], 'last', plan)
        sums = self._series(metrics[pair.delta], 'sum', plan)
        result.balance = walk(merge(lasts, sums), start, end, self.settle)
        if result.balance is None:
            result.notes.append('no value of %s before the end'
                                % pair.cumulative)

    def _repair(self, result, metrics, repair_at):
        balance = result.balance
        refused = []
        name = refused_meter(result.pair.quantity)
        if name in metrics:
            since = min([balance.start] + [w.start for w in balance.windows])
            plan = pieces([self._policy(metrics[name])], since - self.settle,
                          balance.end, self.clock_ns() / NS_PER_S)
            refused = [(ts, v) for ts, _g, v in
                       self._series(metrics[name], 'sum', plan)]
        repairs, notes = plan_repairs(balance, refused, self.settle)
        result.notes.extend(notes)
        metric = metrics[result.pair.delta]
        policy = self._policy(metric)
        now_ns = self.clock_ns()
        oldest = earliest_accepted(policy, now_ns / NS_PER_S)
        finest = granularities(policy)[0][0]
        for i, r in enumerate(repairs):
            late = repair_at == AT_NOW or r.ts < oldest
            if late:
                # NOTE: one nanosecond each, none on a microsecond.
                ns = now_ns // 1000 * 1000 + 1 + i
            else:
                ns = stamp(r.ts, finest, now_ns)
            self.client.metric.add_measures(
                metric, [{'timestamp': iso_ns(ns), 'value': r.amount}])
            result.repairs.append(dataclasses.replace(
                r, ts=ns / NS_PER_S, late=late))

    def _policy(self, metric_id):
        if metric_id not in self._policies:
            self._policies[metric_id] = self.client.metric.get(
                metric_id)['archive_policy']
        return self._policies[metric_id]

    def _series(self, metric_id, aggregation, plan):
        out = []
        for g, begin, stop in plan:
            rows = self.client.metric.get_measures(
                metric_id, start=iso(begin), stop=iso(stop),
                aggregation=aggregation, granularity=g, refresh=True)
            for when, granularity, value in rows:
                ts = _epoch(when)
                if begin <= ts < stop and granularity == g:
                    out.append((ts, g, int(round(value))))
        return out


def _is_uuid(text):
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _epoch(when):
    if isinstance(when, str):
        when = datetime.datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def repair_disks(client, resource_ids, since, mapped=None):
    """Post what the delta meters of these disks miss since ``since``.

    For an agent that restarts after a crash: its own disks, from a
    little before its last committed poll.  Idempotent; see
    :class:`Auditor` and the module docstring.

    :returns: the :class:`Result` list.
    """
    auditor = Auditor(client, mapped)
    return auditor.audit(auditor.find(resource_ids=resource_ids), since,
                         repair=True)
