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
"""Gnocchi's time as the audit reads it: granularities, pieces, texts."""

import datetime
import math
import time

from ceilometer_blockacct.gnocchi import values

NS_PER_S = 10 ** 9


def iso_ns(ns):
    """ISO 8601 UTC text of epoch nanoseconds, nanoseconds kept."""
    seconds, rest = divmod(ns, NS_PER_S)
    return '%s.%09d+00:00' % (time.strftime('%Y-%m-%dT%H:%M:%S',
                                            time.gmtime(seconds)), rest)


def iso(ts):
    """ISO 8601 UTC text of epoch seconds, to the microsecond."""
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).isoformat()


def epoch(when):
    """Epoch seconds of a time Gnocchi returned (UTC unless it says)."""
    if isinstance(when, str):
        when = datetime.datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def granularities(policy):
    """``[(granularity, timespan)]`` in seconds of an archive policy."""
    out = []
    for d in policy['definition']:
        g = values.to_seconds(d['granularity'])
        if d.get('timespan') is not None:
            span = values.to_seconds(d['timespan'])
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
