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
"""metrics.yml against the meter table, and against CloudKitty's schema."""

import fractions
import io
import os
from unittest import mock

import fixtures
import testtools
import yaml

from ceilometer_blockacct import cloudkitty
from ceilometer_blockacct.cmd import main as cmd_main
from ceilometer_blockacct.gnocchi import policies
from ceilometer_blockacct import meters

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
COMMITTED = os.path.join(REPO, 'etc', 'cloudkitty', 'metrics.yml')


class TestMetricsConfig(testtools.TestCase):

    def setUp(self):
        super().setUp()
        with open(COMMITTED, encoding='utf-8') as f:
            self.text = f.read()
        self.shipped = yaml.safe_load(self.text)['metrics']

    def test_committed_file_is_current(self):
        self.assertEqual(
            cloudkitty.dump_metrics_config(), self.text,
            'etc/cloudkitty/metrics.yml is stale: run ceilometer-blockacct '
            'gen-cloudkitty -o etc/cloudkitty/metrics.yml')

    def test_exactly_the_billable_meters(self):
        billable = [m.name for m in meters.METERS if m.billable]
        self.assertEqual(billable, list(self.shipped))
        # Each is its own hashmap service, failed and invalid included.
        for op in ('read', 'write', 'flush'):
            for kind in ('failed', 'invalid'):
                self.assertIn('disk.device.%s.requests.%s.delta'
                              % (op, kind), self.shipped)
        for name in billable:
            self.assertEqual(meters.DELTA, meters.BY_NAME[name].type)
            self.assertNotIn('alt_name', self.shipped[name])

    def test_aggregation_is_kept_by_the_archive_policy(self):
        for name, metric in self.shipped.items():
            policy = meters.BY_NAME[name].archive_policy
            extra = metric['extra_args']
            self.assertIn(extra['aggregation_method'],
                          policies.AGGREGATION_METHODS[policy], name)
            self.assertEqual('sum', extra['aggregation_method'], name)
            self.assertEqual('sum', extra['re_aggregation_method'], name)
            self.assertEqual(3600, extra['force_granularity'], name)
            self.assertEqual(meters.RESOURCE_TYPE, extra['resource_type'])
            self.assertEqual('id', extra['resource_key'])

    def test_groupby_uses_the_gnocchi_attributes(self):
        for name, metric in self.shipped.items():
            self.assertEqual(
                ['id', 'instance_id', 'name', 'project_id', 'user_id'],
                metric['groupby'], name)
            self.assertEqual(['volume_id'], metric['metadata'], name)

    def test_units_and_factors(self):
        for name, metric in self.shipped.items():
            factor = fractions.Fraction(str(metric['factor']))
            if name.endswith('.bytes.delta'):
                self.assertEqual(('GiB', fractions.Fraction(1, 2 ** 30)),
                                 (metric['unit'], factor), name)
            elif '.failed.' in name or '.invalid.' in name:
                self.assertEqual(('request', 1), (metric['unit'], factor),
                                 name)
            else:
                self.assertEqual(
                    ('million requests', fractions.Fraction(1, 10 ** 6)),
                    (metric['unit'], factor), name)
        raw = cloudkitty.metrics_config(60, cloudkitty.raw_units)['metrics']
        for name, metric in raw.items():
            self.assertEqual(1, metric['factor'], name)
            self.assertEqual(60, metric['extra_args']['force_granularity'])

    def test_unkept_aggregation_is_refused(self):
        self.assertRaises(ValueError, cloudkitty.metrics_config,
                          extra={'disk.device.flush.requests': 'sum'})
        extra = cloudkitty.metrics_config(
            extra={'disk.device.flush.requests': 'rate:sum'})['metrics']
        self.assertEqual('rate:sum', extra['disk.device.flush.requests'][
            'extra_args']['aggregation_method'])

    def test_cloudkitty_accepts_it(self):
        # CloudKitty's own validation, as cloudkitty-processor runs it.
        from cloudkitty.collector import gnocchi as ck_gnocchi
        from oslo_config import cfg
        self.useFixture(fixtures.MockPatchObject(
            cfg.CONF, 'collect', mock.Mock(scope_key='project_id')))
        checked = ck_gnocchi.GnocchiCollector.check_configuration(
            yaml.safe_load(self.text))
        self.assertEqual(set(self.shipped), set(checked))
        for name, metric in checked.items():
            self.assertIsInstance(metric['factor'],
                                  (int, fractions.Fraction), name)
            self.assertEqual('NONE', metric['mutate'])

    def test_gen_cloudkitty_command(self):
        out = self.useFixture(fixtures.TempDir()).join('metrics.yml')
        self.assertEqual(0, cmd_main.main(['gen-cloudkitty', '-o', out]))
        with open(out, encoding='utf-8') as f:
            self.assertEqual(self.text, f.read())
        stdout = self.useFixture(fixtures.MonkeyPatch(
            'sys.stdout', io.StringIO())).new_value
        self.assertEqual(0, cmd_main.main(
            ['gen-cloudkitty', '--period', '60', '--raw-units']))
        data = yaml.safe_load(stdout.getvalue())['metrics']
        self.assertEqual(1, data['disk.device.read.bytes.delta']['factor'])
        self.assertEqual(
            60, data['disk.device.read.bytes.delta']['extra_args'][
                'force_granularity'])
