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
"""The chain benchmark's arithmetic: pure functions, unit-tested.

Nothing here measures; :mod:`.chain` hands it numbers.
"""

import re

# Components of the chain, in the order a sample crosses them.
COMPONENTS = ('polling', 'notification', 'rabbitmq', 'gnocchi-api',
              'metricd', 'postgresql')
# Gnocchi's carbonara stores an uncompressed point as a 1-byte "has a
# value" flag and an 8-byte float; its timestamp is the position.
BYTES_PER_POINT = 9
DAY = 86400


def per_1000(cpu, samples):
    """{component: CPU seconds per 1000 samples} (None without samples)."""
    if not samples:
        return {name: None for name in cpu}
    return {name: seconds * 1000.0 / samples for name, seconds in cpu.items()}


def keeps_up(backlog, tolerance):
    """Whether Gnocchi's backlog did not grow over a window.

    :param backlog: [(seconds, measures waiting)] sampled over the window.
    :param tolerance: measures the floor may rise without counting as
        growth (one poll's samples: a metricd pass that straddles).

    metricd empties the backlog once per pass, so it is a sawtooth; what
    must not rise is its floor: the lowest value of the last third of the
    window against the lowest of the first third.
    """
    if len(backlog) < 3:
        return None
    values = [v for _t, v in sorted(backlog)]
    third = max(1, len(values) // 3)
    return min(values[-third:]) <= min(values[:third]) + tolerance


def points_kept(granularity, timespan, interval, days=1):
    """Points one aggregate keeps after ``days`` of polling."""
    held = min(days * DAY, timespan)
    return int(held // max(granularity, interval))


def storage_bytes(policies, interval, days=1):
    """Bytes Gnocchi keeps for one disk after ``days`` of polling.

    :param policies: one ``(definition, methods)`` per metric of the disk,
        definition = [(granularity s, timespan s)], methods = the number
        of aggregation methods of its archive policy.
    """
    return sum(points_kept(g, t, interval, days) * methods * BYTES_PER_POINT
               for definition, methods in policies for g, t in definition)


def capacity(steps):
    """(largest N that kept up, smallest N that did not) of a step series.

    :param steps: [(N, kept up?)] in the order measured.
    """
    ok = [n for n, up in steps if up]
    failed = [n for n, up in steps if up is False]
    return (max(ok) if ok else None), (min(failed) if failed else None)


def projected_disks(cpu_per_1000, samples_per_disk_s, cores=2.0):
    """Disks ``cores`` carry if CPU alone were the limit (no other load)."""
    total = sum(v for v in cpu_per_1000.values() if v is not None)
    if not total or not samples_per_disk_s:
        return None
    return cores / (total / 1000.0 * samples_per_disk_s)


def bottleneck(cpu_per_1000):
    """The component that costs most per sample."""
    known = {k: v for k, v in cpu_per_1000.items() if v is not None}
    return max(known, key=known.get) if known else None


def summarise(point):
    """Add the derived numbers to one measured point (returns it)."""
    cpu = point['cpu']
    point['cpu_per_1000'] = per_1000(cpu, point['samples'])
    point['cpu_per_1000_total'] = (
        sum(point['cpu_per_1000'].values()) if point['samples'] else None)
    per_disk_s = (point['samples'] / point['window'] / point['disks']
                  if point['window'] and point['disks'] else None)
    point['samples_per_disk_s'] = per_disk_s
    point['keeps_up'] = keeps_up(point['backlog'], point['per_poll'])
    point['projected_disks'] = projected_disks(point['cpu_per_1000'],
                                               per_disk_s)
    point['bottleneck'] = bottleneck(point['cpu_per_1000'])
    return point


def rows(points):
    """One row per (side, interval): its largest point and its capacity."""
    series = {}
    for p in points:
        series.setdefault((p['side'], p['interval']), []).append(p)
    found = []
    for (side, interval), steps in series.items():
        largest_ok, failed = capacity([(p['disks'], p['keeps_up'])
                                       for p in steps])
        # The capacity point: the largest N kept up with (else the first).
        measured = [p for p in steps if p['samples']]
        ok = [p for p in measured if p['keeps_up']]
        best = (max(ok, key=lambda p: p['disks']) if ok
                else measured[0] if measured else None)
        found.append({
            'side': side, 'interval': interval,
            'max_disks_ok': largest_ok, 'first_disks_failed': failed,
            'point': best,
            'synthetic': any(p['synthetic_vms'] for p in steps
                             if largest_ok is not None
                             and p['disks'] <= largest_ok),
        })
    return found


def _by_n(points):
    """{(side, interval): {disks: point}} of the points with samples."""
    found = {}
    for p in points:
        if p['samples']:
            found.setdefault((p['side'], p['interval']), {})[p['disks']] = p
    return found


def _compare(after, before):
    """Whole-chain and gnocchi-api CPU, after / before, at one N."""
    api_a = after['cpu_per_1000'].get('gnocchi-api')
    api_b = before['cpu_per_1000'].get('gnocchi-api')
    return {
        'disks': after['disks'],
        'per_sample': (after['cpu_per_1000_total']
                       / before['cpu_per_1000_total']),
        'per_disk': (after['cpu_per_1000_total']
                     * after['samples_per_disk_s'])
        / (before['cpu_per_1000_total'] * before['samples_per_disk_s']),
        'api': api_a / api_b if api_a is not None and api_b else None,
    }


def _pairs(points, match):
    """Each side against the side ``match`` names, same interval and N."""
    series = _by_n(points)
    out = {}
    for (side, interval), steps in series.items():
        other = match(side)
        base = series.get((other, interval)) if other else None
        common = sorted(set(steps) & set(base or ()))
        if not common:
            continue
        n = common[-1]
        if steps[n]['cpu_per_1000_total'] and base[n]['cpu_per_1000_total']:
            out[(side, interval)] = _compare(steps[n], base[n])
    return out


def ratios(points, reference='upstream'):
    """Each side against ``reference`` at the same interval and N.

    ``per_sample``: CPU per 1000 samples, side / reference; ``per_disk``:
    CPU per disk-second (what a host pays per disk), side / reference;
    ``api``: gnocchi-api's per sample alone.
    """
    return _pairs(points, lambda side: None if side == reference
                  else reference)


def before_after(points, suffix='/meters'):
    """Each profile's one pollster against ``<profile>/meters``, same N."""
    return _pairs(points, lambda side: None if side.endswith(suffix)
                  else side + suffix)


# One uwsgi request line of gnocchi-api's log.
_REQUEST = re.compile(r'\] (GET|POST|PATCH|PUT|DELETE) (\S+) => generated '
                      r'\d+ bytes in (\d+) msecs \(HTTP/[\d.]+ (\d+)\)')
_ID = re.compile(r'/[0-9a-f]{8}-[0-9a-f-]{27}[^/?]*')


def api_requests(lines):
    """gnocchi-api's requests by kind: {kind: [count, wall ms]}.

    A kind is method, path without query and ids, and status, e.g.
    ``POST /v1/batch/resources/metrics/measures 202``.  uwsgi logs wall
    time, which includes waiting for the CPU on a loaded machine.
    """
    found = {}
    for line in lines:
        match = _REQUEST.search(line)
        if not match:
            continue
        method, path, ms, status = match.groups()
        kind = '%s %s %s' % (method, _ID.sub('/ID', path.split('?')[0]),
                             status)
        entry = found.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += int(ms)
    return found
