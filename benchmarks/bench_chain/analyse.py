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
        measured = [p for p in steps if p['samples']]
        best = max(measured, key=lambda p: p['disks']) if measured else None
        found.append({
            'side': side, 'interval': interval,
            'max_disks_ok': largest_ok, 'first_disks_failed': failed,
            'point': best,
            'synthetic': any(p['synthetic_vms'] for p in steps
                             if largest_ok is not None
                             and p['disks'] <= largest_ok),
        })
    return found


def ratios(table, reference='upstream'):
    """Each side against ``reference`` at the same interval.

    ``per_sample``: CPU per 1000 samples, side / reference; ``per_disk``:
    CPU per disk-second (what a host pays per disk), side / reference.
    """
    ref = {r['interval']: r['point'] for r in table
           if r['side'] == reference and r['point']}
    out = {}
    for r in table:
        base, p = ref.get(r['interval']), r['point']
        if not base or not p or r['side'] == reference:
            continue
        a, b = p['cpu_per_1000_total'], base['cpu_per_1000_total']
        if not a or not b:
            continue
        out[(r['side'], r['interval'])] = {
            'per_sample': a / b,
            'per_disk': (a * p['samples_per_disk_s'])
            / (b * base['samples_per_disk_s']),
        }
    return out


def before_after(table, suffix='/meters'):
    """Each profile's one pollster against ``<profile>/meters``.

    ``per_sample``: whole-chain CPU per sample, after / before; ``api``:
    gnocchi-api's alone.
    """
    points = {(r['side'], r['interval']): r['point'] for r in table
              if r['point']}
    out = {}
    for (side, interval), before in points.items():
        if not side.endswith(suffix):
            continue
        after = points.get((side[:-len(suffix)], interval))
        if not after or not before['cpu_per_1000_total']:
            continue
        api_b = before['cpu_per_1000'].get('gnocchi-api')
        api_a = after['cpu_per_1000'].get('gnocchi-api')
        out[(side[:-len(suffix)], interval)] = {
            'per_sample': (after['cpu_per_1000_total']
                           / before['cpu_per_1000_total']),
            'api': api_a / api_b if api_a is not None and api_b else None,
        }
    return out
