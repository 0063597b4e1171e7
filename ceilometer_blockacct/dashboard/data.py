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
"""What the Disk I/O panel shows, read from Gnocchi (no Django here).

Every quantity of a period is a ratio of sums over that period, from the
reset-safe delta meters, never a mean of per-poll gauges:

- requests/s and bytes/s: sum(``*.delta``) / period;
- latency per operation (ms): sum(``total.time.delta``) /
  sum(``requests.delta``) / 1e6 (no value when no request completed; with
  QEMU's ``account_failed=on`` a failed request adds time but no
  completed request, as in :mod:`ceilometer_blockacct.meters`);
- queue depth: sum(``total.time.delta``) / period in ns (Little's law, as
  ``iostat``'s aqu-sz and the ``queue.depth`` gauges);
- failed and invalid requests: sum(``*.delta``) per period (counts);
- idle time: the mean of the ``idle.time`` gauge (time since the last
  I/O; not a quantity that sums).

Meter names come from :data:`ceilometer_blockacct.meters.BY_NAME`.
"""

import collections
from concurrent import futures
import dataclasses
import datetime

from ceilometer_blockacct import meters

OPS = ('read', 'write', 'flush')
BYTE_OPS = ('read', 'write')
NS_PER_MS = 10 ** 6
NS_PER_S = 10 ** 9


@dataclasses.dataclass(frozen=True)
class Range:
    """A choice of the panel: how far back, at which granularity."""

    key: str
    label: str
    granularity: int
    seconds: int


RANGES = collections.OrderedDict((r.key, r) for r in (
    Range('hour', 'Last hour (1 s)', 1, 3600),
    Range('day', 'Last day (1 min)', 60, 86400),
    Range('month', 'Last 30 days (1 h)', 3600, 30 * 86400),
))
DEFAULT_RANGE = 'hour'


def _meter(name):
    """``name``, checked against the meter table (KeyError if absent)."""
    return meters.BY_NAME[name].name


def requests_meter(op):
    return _meter('disk.device.%s.requests.delta' % op)


def bytes_meter(op):
    return _meter('disk.device.%s.bytes.delta' % op)


def time_meter(op):
    return _meter('disk.device.%s.total.time.delta' % op)


def failed_meter(op):
    return _meter('disk.device.%s.requests.failed.delta' % op)


def invalid_meter(op):
    return _meter('disk.device.%s.requests.invalid.delta' % op)


IDLE_METER = _meter('disk.device.idle.time')

# Every metric the panel reads, with the aggregation it reads.
SUMMED = tuple([requests_meter(op) for op in OPS]
               + [bytes_meter(op) for op in BYTE_OPS]
               + [time_meter(op) for op in OPS]
               + [failed_meter(op) for op in OPS]
               + [invalid_meter(op) for op in OPS])
AGGREGATION = dict({m: 'sum' for m in SUMMED}, **{IDLE_METER: 'mean'})

# The table's columns: (key, group, header, unit).  Counted columns carry
# the exact count of their period beside the rate shown.
COLUMNS = tuple(
    [('%s_rps' % op, 'Requests/s', op, 'req/s') for op in OPS]
    + [('%s_bps' % op, 'Bytes/s', op, 'B/s') for op in BYTE_OPS]
    + [('%s_latency' % op, 'Latency', op, 'ms') for op in OPS]
    + [('%s_queue' % op, 'Queue depth', op, 'requests') for op in OPS]
    + [('%s_failed' % op, 'Failed', op, 'requests') for op in OPS]
    + [('%s_invalid' % op, 'Invalid', op, 'requests') for op in OPS]
    + [('idle', 'Idle', 'mean', 's')])


class NoSuchDisk(Exception):
    """The disk is not one this view shows (another project's, unknown)."""


# -- the disks -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DiskRow:
    """One disk of the index: where it is and what it is."""

    id: str
    instance_id: str
    instance_name: str
    target: str
    volume_id: str
    project_id: str
    ended: bool


def _search_all(client, resource_type, query):
    """Every resource of ``resource_type`` matching ``query`` (paged)."""
    found, marker = [], None
    while True:
        page = client.resource.search(
            resource_type=resource_type, query=query, details=True,
            limit=1000, marker=marker, sorts=['id:asc'])
        found.extend(page)
        if len(page) < 1000:
            return found
        marker = page[-1]['id']


def list_disks(client, project_id=None):
    """The disks the user may read, sorted by instance name then target.

    :param project_id: only this project's disks (the project view); None
        lists every disk Gnocchi gives (the admin view).
    Instance names come from Gnocchi's ``instance`` resources
    (``display_name``); a disk whose instance has none is named by its
    instance id.
    """
    query = {'=': {'project_id': project_id}} if project_id else None
    disks = _search_all(client, meters.RESOURCE_TYPE, query)
    names = instance_names(client, query)
    rows = [DiskRow(
        id=d['id'], instance_id=d.get('instance_id') or '',
        instance_name=names.get(d.get('instance_id'))
        or d.get('instance_id') or '',
        target=d.get('name') or '', volume_id=d.get('volume_id') or '',
        project_id=d.get('project_id') or '',
        ended=bool(d.get('ended_at'))) for d in disks]
    return sorted(rows, key=lambda r: (r.instance_name, r.instance_id,
                                       r.target, r.id))


def instance_names(client, query):
    """{instance id: display name} of the ``instance`` resources."""
    try:
        found = _search_all(client, 'instance', query)
    except Exception:  # noqa: B902 -- names are a nicety, disks are not
        return {}
    return {r['id']: r.get('display_name') for r in found
            if r.get('display_name')}


def get_disk(client, disk_id, project_id=None):
    """The ``instance_disk`` resource ``disk_id`` (Gnocchi's UUID).

    :param project_id: the project view's project: another project's disk
        raises :class:`NoSuchDisk` even when Gnocchi would show it (a user
        with Gnocchi's admin role in this project).
    """
    resource = client.resource.get(meters.RESOURCE_TYPE, disk_id)
    if project_id and resource.get('project_id') != project_id:
        raise NoSuchDisk(disk_id)
    return resource


# -- the numbers of one disk ------------------------------------------------

# Metrics read at once for one page (Gnocchi answers each in its own
# request; a page reads up to 15).
READERS = 4


def fetch_measures(client, resource, rng, now):
    """{meter: {timestamp (aware datetime): value}} of one disk.

    Reads each metric of :data:`AGGREGATION` the resource has at the
    range's granularity, from ``now - rng.seconds``, :data:`READERS` at a
    time.  A metric the disk does not have (never polled) is absent; the
    first error raises.
    """
    start = now - datetime.timedelta(seconds=rng.seconds)
    metrics = resource.get('metrics') or {}
    wanted = [(name, metrics[name], aggregation)
              for name, aggregation in AGGREGATION.items() if name in metrics]

    def read(item):
        name, metric_id, aggregation = item
        points = client.metric.get_measures(
            metric_id, aggregation=aggregation, granularity=rng.granularity,
            start=start.isoformat())
        return name, {_when(t): v for t, _g, v in points}

    if not wanted:
        return {}
    with futures.ThreadPoolExecutor(min(READERS, len(wanted))) as pool:
        return dict(pool.map(read, wanted))


def _when(stamp):
    if isinstance(stamp, datetime.datetime):
        return stamp
    return datetime.datetime.fromisoformat(stamp)


def _ratio(numerator, denominator, scale=1):
    if numerator is None or not denominator:
        return None
    return numerator / denominator / scale


def _row(values, granularity):
    """The columns of one period from {meter: summed value or None}."""
    row = {}
    for op in OPS:
        reqs = values.get(requests_meter(op))
        time_ns = values.get(time_meter(op))
        row['%s_rps' % op] = (reqs, _ratio(reqs, granularity))
        row['%s_latency' % op] = (None, _ratio(time_ns, reqs, NS_PER_MS))
        row['%s_queue' % op] = (None, _ratio(
            time_ns, granularity * NS_PER_S))
        for kind, meter in (('failed', failed_meter(op)),
                            ('invalid', invalid_meter(op))):
            count = values.get(meter)
            row['%s_%s' % (op, kind)] = (count, count)
    for op in BYTE_OPS:
        count = values.get(bytes_meter(op))
        row['%s_bps' % op] = (count, _ratio(count, granularity))
    idle = values.get(IDLE_METER)
    row['idle'] = (None, None if idle is None else idle / NS_PER_S)
    return row


@dataclasses.dataclass
class Series:
    """A disk's numbers over a range, ready for the table and the charts.

    ``rows``: [(timestamp, {column: (count or None, value or None)})],
    oldest first; ``totals``: the same columns over the whole range (the
    counts summed, the rates and ratios of those sums over the periods
    with data); ``gaps``: periods between the first and the last with no
    data; ``periods``: periods with data.
    """

    rng: Range
    rows: list
    totals: dict
    gaps: int
    periods: int

    @property
    def empty(self):
        return not self.rows


def build_series(measures, rng):
    """:class:`Series` from :func:`fetch_measures`'s answer."""
    g = rng.granularity
    stamps = sorted({t for points in measures.values() for t in points})
    rows = [(t, _row({m: points.get(t) for m, points in measures.items()},
                     g)) for t in stamps]
    totals = {}
    if stamps:
        sums = {m: sum(points.values()) for m, points in measures.items()
                if m != IDLE_METER}
        span = len(stamps) * g
        totals = _row(sums, span)
        idle = list(measures.get(IDLE_METER, {}).values())
        totals['idle'] = (None, max(idle) / NS_PER_S if idle else None)
    gaps = 0
    if len(stamps) > 1:
        whole = (stamps[-1] - stamps[0]).total_seconds() // g + 1
        gaps = int(whole) - len(stamps)
    return Series(rng, rows, totals, gaps, len(stamps))


def chart_data(series):
    """The charts' JSON: one entry per chart, one line per operation.

    Each line has a point per period of the series, its value None when
    the period has none (no request completed: no latency).
    """
    charts = []
    for title, unit, keys in (
            ('Requests per second', 'req/s',
             ['%s_rps' % op for op in OPS]),
            ('Bytes per second', 'B/s', ['%s_bps' % op for op in BYTE_OPS]),
            ('Average latency per request', 'ms',
             ['%s_latency' % op for op in OPS]),
            ('Queue depth', 'requests', ['%s_queue' % op for op in OPS]),
            ('Failed requests', 'requests',
             ['%s_failed' % op for op in OPS]),
            ('Invalid requests', 'requests',
             ['%s_invalid' % op for op in OPS]),
            ('Idle time', 's', ['idle'])):
        lines = []
        for key in keys:
            # NOTE: None where the period has no value: the chart breaks
            # the line there instead of joining across a gap.
            points = [[int(t.timestamp()), row[key][1]]
                      for t, row in series.rows]
            lines.append({'name': key.split('_')[0] if key != 'idle'
                          else 'idle', 'points': points})
        charts.append({'title': title, 'unit': unit, 'lines': lines})
    return charts


def number(value):
    """A value as the table prints it: exact integers, else 6 digits."""
    if value is None:
        return ''
    if float(value).is_integer():
        return str(int(value))
    return '%.6g' % value


def table(series):
    """Rows of cells (column key, count text, value text) and the totals."""
    def cells(row):
        return [(key, number(row.get(key, (None, None))[0]),
                 number(row.get(key, (None, None))[1]))
                for key, _group, _op, _unit in COLUMNS]
    return ([(t, cells(row)) for t, row in series.rows],
            cells(series.totals) if series.totals else [])
