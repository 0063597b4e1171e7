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
"""The Disk I/O panel's arithmetic and Gnocchi queries (no Django)."""

import datetime
import types

from gnocchiclient import exceptions as g_exc
from keystoneauth1 import exceptions as ksa_exc
import testtools

from ceilometer_blockacct.dashboard import client as gclient
from ceilometer_blockacct.dashboard import data
from ceilometer_blockacct import meters

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


class FakeGnocchi:
    """resource.search/get and metric.get_measures over given data."""

    def __init__(self, resources, measures=None, fail_instances=False):
        self.resources = resources
        self.measures = measures or {}
        self.fail_instances = fail_instances
        self.calls = []
        self.resource = types.SimpleNamespace(search=self.search,
                                              get=self.get)
        self.metric = types.SimpleNamespace(get_measures=self.get_measures)

    def search(self, resource_type, query, details, limit, marker, sorts):
        self.calls.append(('search', resource_type, query))
        if resource_type == 'instance' and self.fail_instances:
            raise g_exc.NotFound('no such resource type')
        found = [r for r in self.resources.get(resource_type, [])
                 if query is None or all(r.get(k) == v for k, v in
                                         query['='].items())]
        return found

    def get(self, resource_type, resource_id):
        for r in self.resources[resource_type]:
            if r['id'] == resource_id:
                return r
        raise g_exc.NotFound('no such resource')

    def get_measures(self, metric_id, aggregation, granularity, start):
        self.calls.append(('measures', metric_id, aggregation, granularity,
                           start))
        return self.measures.get(metric_id, [])


def disk(uuid, instance, target, project, volume=None, metrics=None):
    return {'id': uuid, 'instance_id': instance, 'name': target,
            'project_id': project, 'volume_id': volume, 'ended_at': None,
            'metrics': metrics or {}}


class TestMeterNames(testtools.TestCase):

    def test_every_name_is_in_the_meter_table(self):
        for name in data.AGGREGATION:
            self.assertIn(name, meters.BY_NAME)
        # Sums of deltas only, and the idle gauge's mean.
        self.assertEqual({'sum'}, {data.AGGREGATION[m]
                                   for m in data.SUMMED})
        self.assertEqual(meters.DELTA, {
            meters.BY_NAME[m].type for m in data.SUMMED}.pop())
        self.assertEqual('mean', data.AGGREGATION['disk.device.idle.time'])


class TestListDisks(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.gnocchi = FakeGnocchi({
            'instance_disk': [
                disk('d2', 'i1', 'vdb', 'pa', volume='vol-1'),
                disk('d1', 'i1', 'vda', 'pa'),
                disk('d3', 'i2', 'vda', 'pb'),
                disk('d4', 'i3', 'vda', 'pa'),
            ],
            'instance': [{'id': 'i1', 'display_name': 'web',
                          'project_id': 'pa'},
                         {'id': 'i2', 'display_name': 'db',
                          'project_id': 'pb'}]})

    def test_project_view_lists_its_own_project_only(self):
        rows = data.list_disks(self.gnocchi, 'pa')
        self.assertEqual([('i3', 'vda', ''), ('web', 'vda', ''),
                          ('web', 'vdb', 'vol-1')],
                         [(r.instance_name, r.target, r.volume_id)
                          for r in rows])
        self.assertIn(('search', 'instance_disk',
                       {'=': {'project_id': 'pa'}}), self.gnocchi.calls)

    def test_admin_view_lists_what_gnocchi_gives(self):
        rows = data.list_disks(self.gnocchi)
        self.assertEqual({'d1', 'd2', 'd3', 'd4'}, {r.id for r in rows})
        self.assertIn(('search', 'instance_disk', None), self.gnocchi.calls)

    def test_names_are_a_nicety(self):
        self.gnocchi.fail_instances = True
        rows = data.list_disks(self.gnocchi, 'pb')
        self.assertEqual(['i2'], [r.instance_name for r in rows])

    def test_another_projects_disk_is_no_disk(self):
        self.assertEqual('d3', data.get_disk(self.gnocchi, 'd3')['id'])
        self.assertRaises(data.NoSuchDisk, data.get_disk, self.gnocchi,
                          'd3', 'pa')


class TestSeries(testtools.TestCase):

    def measures(self):
        r, w = data.requests_meter('read'), data.requests_meter('write')
        return {
            r: {at(0): 4.0, at(60): 2.0, at(180): 0.0},
            w: {at(0): 1.0},
            data.time_meter('read'): {at(0): 8e6, at(60): 1e6,
                                      at(180): 0.0},
            data.bytes_meter('read'): {at(0): 16384.0, at(60): 8192.0},
            data.failed_meter('read'): {at(60): 1.0},
            data.IDLE_METER: {at(60): 2.5e9, at(180): 9e9},
        }

    def test_ratio_of_sums_per_period(self):
        series = data.build_series(self.measures(), data.RANGES['day'])
        self.assertEqual([at(0), at(60), at(180)],
                         [t for t, _ in series.rows])
        first = series.rows[0][1]
        self.assertEqual((4.0, 4 / 60), first['read_rps'])
        self.assertEqual((16384.0, 16384 / 60), first['read_bps'])
        self.assertEqual((None, 2.0), first['read_latency'])   # 8 ms / 4
        self.assertEqual((None, 8e6 / 60e9), first['read_queue'])
        self.assertEqual((None, None), first['write_latency'])  # no time
        second = series.rows[1][1]
        self.assertEqual((None, 0.5), second['read_latency'])
        self.assertEqual((1.0, 1.0), second['read_failed'])
        self.assertEqual((None, 2.5), second['idle'])
        # No request completed: no latency, not 0.
        self.assertEqual((None, None), series.rows[2][1]['read_latency'])

    def test_totals_are_sums_and_ratios_of_sums(self):
        series = data.build_series(self.measures(), data.RANGES['day'])
        self.assertEqual((6.0, 6 / 180), series.totals['read_rps'])
        self.assertEqual((None, 9e6 / 6 / 1e6), series.totals['read_latency'])
        self.assertEqual((24576.0, 24576 / 180), series.totals['read_bps'])
        self.assertEqual((None, 9.0), series.totals['idle'])  # the longest
        # 0, 60 and 180 have data, 120 has none.
        self.assertEqual((3, 1), (series.periods, series.gaps))

    def test_not_a_mean_of_latencies(self):
        # 1 request of 10 ms then 9 of 1 ms: 1.9 ms, not (10 + 1) / 2.
        m = {data.requests_meter('read'): {at(0): 1.0, at(1): 9.0},
             data.time_meter('read'): {at(0): 10e6, at(1): 9e6}}
        series = data.build_series(m, data.RANGES['hour'])
        self.assertEqual(1.9, series.totals['read_latency'][1])

    def test_empty(self):
        series = data.build_series({}, data.RANGES['hour'])
        self.assertTrue(series.empty)
        self.assertEqual(({}, 0), (series.totals, series.gaps))
        self.assertEqual(([], []), data.table(series))

    def test_table_cells(self):
        series = data.build_series(self.measures(), data.RANGES['day'])
        rows, totals = data.table(series)
        cells = dict((k, (c, v)) for k, c, v in rows[0][1])
        self.assertEqual(('4', '0.0666667'), cells['read_rps'])
        self.assertEqual(('', '2'), cells['read_latency'])
        self.assertEqual(('', ''), cells['flush_latency'])
        self.assertEqual(len(data.COLUMNS), len(totals))
        self.assertEqual(('6', '0.0333333'), dict(
            (k, (c, v)) for k, c, v in totals)['read_rps'])

    def test_chart_data(self):
        series = data.build_series(self.measures(), data.RANGES['day'])
        charts = {c['title']: c for c in data.chart_data(series)}
        latency = charts['Average latency per request']
        self.assertEqual('ms', latency['unit'])
        read = [line for line in latency['lines']
                if line['name'] == 'read'][0]
        t0 = int(T0.timestamp())
        self.assertEqual([[t0, 2.0], [t0 + 60, 0.5], [t0 + 180, None]],
                         read['points'])


class TestFetch(testtools.TestCase):

    def test_reads_each_metric_the_disk_has(self):
        resource = disk('d1', 'i1', 'vda', 'pa', metrics={
            data.requests_meter('read'): 'm-r',
            data.IDLE_METER: 'm-idle'})
        gnocchi = FakeGnocchi({}, {'m-r': [
            ['2026-11-28T08:00:00+00:00', 60.0, 3.0]]})
        got = data.fetch_measures(gnocchi, resource, data.RANGES['day'],
                                  at(86400))
        self.assertEqual({data.requests_meter('read'): {at(0): 3.0},
                          data.IDLE_METER: {}}, got)
        self.assertEqual(
            [('measures', 'm-idle', 'mean', 60, at(0).isoformat()),
             ('measures', 'm-r', 'sum', 60, at(0).isoformat())],
            sorted(c for c in gnocchi.calls if c[0] == 'measures'))

    def test_an_error_raises(self):
        resource = disk('d1', 'i1', 'vda', 'pa', metrics={
            data.requests_meter('read'): 'm-r',
            data.requests_meter('write'): 'm-w'})
        gnocchi = FakeGnocchi({})

        def refuse(metric_id, **kwargs):
            if metric_id == 'm-w':
                raise g_exc.Forbidden(403)
            return []
        gnocchi.metric.get_measures = refuse
        self.assertRaises(g_exc.Forbidden, data.fetch_measures, gnocchi,
                          resource, data.RANGES['hour'], at(3600))


class TestErrors(testtools.TestCase):

    def test_in_words(self):
        settings = types.SimpleNamespace(BLOCKACCT_GNOCCHI_REGION='r1')
        self.assertIsInstance(gclient.explain(g_exc.Forbidden(403)),
                              gclient.Refused)
        # gnocchiclient's own connection errors, and keystoneauth's.
        for exc in (g_exc.ConnectionFailure('refused'),
                    ksa_exc.ConnectFailure('refused')):
            unreachable = gclient.explain(exc)
            self.assertIsInstance(unreachable, gclient.Unavailable)
            self.assertEqual('Gnocchi is unreachable: the numbers cannot be '
                             'shown now; try again later.', str(unreachable))
        self.assertIn('in time', str(gclient.explain(
            g_exc.ConnectionTimeout('slow'))))
        nowhere = gclient.explain(ksa_exc.EndpointNotFound(), settings)
        self.assertIn('region r1', str(nowhere))
        self.assertIsInstance(gclient.explain(g_exc.ClientException(502)),
                              gclient.Unavailable)
        self.assertIsNone(gclient.explain(ValueError('a bug')))

    def test_interface(self):
        self.assertEqual('internal', gclient.interface(types.SimpleNamespace(
            OPENSTACK_ENDPOINT_TYPE='internalURL')))
        self.assertEqual('public', gclient.interface(types.SimpleNamespace()))
