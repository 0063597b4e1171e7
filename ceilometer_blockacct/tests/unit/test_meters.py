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
"""The meter table is the single source of truth: check the rest against it.
"""

import importlib.metadata

import testtools

from ceilometer_blockacct import meters
from ceilometer_blockacct import pollsters


class TestMeterTable(testtools.TestCase):

    def test_names_unique_and_not_upstream(self):
        names = [m.name for m in meters.METERS]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(set(), set(names) & meters.UPSTREAM_DISK_METERS)

    def test_contract_meters(self):
        # design.md section 3, spelled out here independently of the code.
        expected = {'disk.device.flush.requests', 'disk.device.idle.time'}
        for op in ('read', 'write', 'flush'):
            expected |= {'disk.device.%s.total.time' % op,
                         'disk.device.%s.requests.failed' % op,
                         'disk.device.%s.requests.invalid' % op,
                         'disk.device.%s.latency.avg' % op,
                         'disk.device.%s.queue.depth' % op,
                         'disk.device.%s.requests.delta' % op,
                         'disk.device.%s.requests.failed.delta' % op,
                         'disk.device.%s.requests.invalid.delta' % op}
        expected |= {'disk.device.read.bytes.delta',
                     'disk.device.write.bytes.delta'}
        # The extra that makes period latencies reset-safe.
        expected |= {'disk.device.%s.total.time.delta' % op
                     for op in ('read', 'write', 'flush')}
        # Discard (QEMU's unmap counters), the disk.device.discard.* family.
        expected |= {'disk.device.discard.%s' % m for m in (
            'requests', 'bytes', 'total.time', 'requests.failed',
            'requests.invalid', 'latency.avg', 'queue.depth', 'bytes.delta',
            'requests.delta', 'requests.failed.delta',
            'requests.invalid.delta', 'total.time.delta')}
        # What the plausibility bounds refused.
        expected |= {'disk.device.bytes.refused',
                     'disk.device.requests.refused'}
        self.assertEqual(expected, set(meters.BY_NAME))

    def test_types_units_policies(self):
        for m in meters.METERS:
            want = {
                meters.KIND_COUNTER: (meters.CUMULATIVE, meters.POLICY_RATE),
                meters.KIND_GAUGE: (meters.GAUGE, meters.POLICY_GAUGE),
                meters.KIND_LATENCY: (meters.GAUGE, meters.POLICY_GAUGE),
                meters.KIND_QUEUE: (meters.GAUGE, meters.POLICY_GAUGE),
                meters.KIND_DELTA: (meters.DELTA, meters.POLICY_DELTA),
                meters.KIND_REFUSED: (meters.DELTA, meters.POLICY_DELTA),
            }[m.kind]
            self.assertEqual(want, (m.type, m.archive_policy), m.name)
            self.assertEqual(m.kind == meters.KIND_DELTA and m.unit != 'ns',
                             m.billable, m.name)
            self.assertTrue(m.description, m.name)
            if m.kind == meters.KIND_LATENCY:
                self.assertEqual('ms', m.unit)
                self.assertIsNotNone(m.ops_source)

    def test_installed_entry_points_match_table(self):
        eps = importlib.metadata.entry_points(group='ceilometer.poll.compute')
        ours = {ep.name: ep.value for ep in eps
                if ep.value.startswith('ceilometer_blockacct.')}
        expected = {m.name: 'ceilometer_blockacct.pollsters:%s'
                    % m.class_name for m in meters.METERS}
        # One pollster per profile besides (test_profiles checks them).
        expected.update({meters.profile_pollster(p): 'ceilometer_blockacct.'
                         'pollsters:%sProfilePollster' % p.capitalize()
                         for p in meters.PROFILES})
        self.assertEqual(expected, ours)
        # And no other package registers one of our names (double sums).
        others = [ep for ep in eps if ep.name in meters.BY_NAME
                  and not ep.value.startswith('ceilometer_blockacct.')]
        self.assertEqual([], others)

    def test_entry_points_load_the_table_rows(self):
        eps = importlib.metadata.entry_points(group='ceilometer.poll.compute')
        for ep in eps:
            if ep.name in meters.BY_NAME:
                cls = ep.load()
                self.assertIs(meters.BY_NAME[ep.name], cls.meter)
                self.assertTrue(issubclass(cls, pollsters.BlockAcctPollster))

    def test_pollster_classes_are_module_level(self):
        for m in meters.METERS:
            cls = getattr(pollsters, m.class_name)
            self.assertEqual(pollsters.__name__, cls.__module__)
            self.assertIs(m, cls.meter)


class TestVocabulary(testtools.TestCase):

    def test_every_source_is_a_counter_of_the_vocabulary(self):
        for m in meters.METERS:
            for field in m.sources:
                self.assertIn(field, meters.COUNTERS, m.name)

    def test_units_follow_the_counters(self):
        self.assertEqual('B', meters.BY_NAME[
            'disk.device.discard.bytes.delta'].unit)
        self.assertEqual('ns', meters.BY_NAME[
            'disk.device.flush.total.time.delta'].unit)
        self.assertEqual('request', meters.BY_NAME[
            'disk.device.write.requests.invalid'].unit)

    def test_billable_rows_carry_their_rating(self):
        for m in meters.METERS:
            self.assertEqual(m.billable, m.rating is not None, m.name)
        self.assertEqual(('GiB', 1 / 2 ** 30), tuple(
            (u, float(f)) for u, f in [meters.BY_NAME[
                'disk.device.read.bytes.delta'].rating])[0])

    def test_bulk_keys_are_libvirts(self):
        # libvirt's virConnectGetAllDomainStats block.<n>.* names.
        self.assertEqual({'rd.reqs', 'rd.bytes', 'rd.times', 'wr.reqs',
                          'wr.bytes', 'wr.times', 'fl.reqs', 'fl.times'},
                         {c.bulk for c in meters.COUNTERS.values()
                          if c.bulk})

    def test_resource_id_is_upstreams(self):
        self.assertEqual('uuid-vda', meters.resource_id('uuid', 'vda'))
