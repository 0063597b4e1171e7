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
"""Tests of the archive policies, the resources file and gnocchi-setup."""

import copy
import io
import os
from unittest import mock

import fixtures
from gnocchiclient import exceptions as g_exc
from keystoneauth1 import exceptions as ka_exc
import testtools
import yaml

from ceilometer_blockacct.cmd import gnocchi_setup
from ceilometer_blockacct.cmd import main as cmd_main
from ceilometer_blockacct.gnocchi import policies as policies_mod
from ceilometer_blockacct.gnocchi import resource_type
from ceilometer_blockacct.gnocchi import resources
from ceilometer_blockacct.gnocchi import values
from ceilometer_blockacct import meters

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
COMMITTED = os.path.join(REPO, 'etc', 'ceilometer', 'gnocchi_resources.yaml')


def _instance_disk(data):
    return [r for r in data['resources']
            if r['resource_type'] == 'instance_disk'][0]


class TestArchivePolicies(testtools.TestCase):

    def test_contract(self):
        by_name = {p['name']: p for p in policies_mod.archive_policies()}
        self.assertEqual(
            {'blockacct-rate': ['rate:sum', 'rate:mean', 'last'],
             'blockacct-gauge': ['mean', 'min', 'max', 'count'],
             'blockacct-delta': ['sum', 'count']},
            {n: p['aggregation_methods'] for n, p in by_name.items()})
        for policy in by_name.values():
            self.assertGreaterEqual(policy['back_window'], 1)
            self.assertEqual(
                [(1, 3600), (60, 7 * 86400), (3600, 400 * 86400)],
                [(values.to_seconds(d['granularity']),
                  values.to_seconds(d['timespan']))
                 for d in policy['definition']])

    def test_every_meter_policy_is_defined(self):
        names = {p['name'] for p in policies_mod.archive_policies()}
        for meter in meters.METERS:
            self.assertIn(meter.archive_policy, names, meter.name)

    def test_to_seconds(self):
        for text, seconds in [('1 second', 1), ('5 minutes', 300),
                              ('400 days', 400 * 86400), ('0:00:01', 1),
                              ('1 day, 0:00:00', 86400),
                              ('400 days, 0:00:00', 400 * 86400),
                              (60.0, 60), ('3600', 3600)]:
            self.assertEqual(seconds, values.to_seconds(text), text)
        for odd in ('soon', None, True, 'nan', float('inf'), '-5', [60],
                    '1.2.3 seconds', 10 ** 400, '', '5 fortnights'):
            self.assertRaises(ValueError, values.to_seconds, odd)


class TestResourcesDefinition(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.upstream = resources.load_upstream_resources()
        self.built = resources.build_resources_definition()

    def test_committed_file_is_current(self):
        with open(COMMITTED, encoding='utf-8') as f:
            committed = f.read()
        self.assertEqual(
            resources.dump_resources_definition(), committed,
            'etc/ceilometer/gnocchi_resources.yaml is stale: run '
            'ceilometer-blockacct gen-resources -o '
            'etc/ceilometer/gnocchi_resources.yaml')

    def test_committed_file_parses_to_the_definition(self):
        with open(COMMITTED, encoding='utf-8') as f:
            self.assertEqual(self.built, yaml.safe_load(f))

    def test_every_meter_with_its_policy(self):
        metrics = _instance_disk(self.built)['metrics']
        for meter in meters.METERS:
            self.assertEqual({'archive_policy_name': meter.archive_policy},
                             metrics[meter.name], meter.name)

    def test_upstream_kept_whole(self):
        # Remove what we add; what is left must be upstream's file exactly.
        ours = {p['name'] for p in policies_mod.archive_policies()}
        rest = copy.deepcopy(self.built)
        rest['archive_policies'] = [p for p in rest['archive_policies']
                                    if p['name'] not in ours]
        disk = _instance_disk(rest)
        for meter in meters.METERS:
            del disk['metrics'][meter.name]
        for name in resources.SAMPLE_ATTRIBUTES:
            del disk['attributes'][name]
        self.assertEqual(self.upstream, rest)
        self.assertEqual(
            self.upstream['archive_policy_default'],
            self.built['archive_policy_default'])

    def test_upstream_disk_meters_not_remapped(self):
        upstream = _instance_disk(self.upstream)
        built = _instance_disk(self.built)
        for name, extra in upstream['metrics'].items():
            self.assertEqual(extra, built['metrics'][name], name)
        for name in meters.UPSTREAM_DISK_METERS:
            self.assertNotIn(name, meters.BY_NAME)
        self.assertEqual(
            {'name': 'resource_metadata.disk_name',
             'instance_id': 'resource_metadata.instance_id',
             'volume_id': 'resource_metadata.volume_id'},
            built['attributes'])

    def test_ceilometer_publisher_reads_it(self):
        from ceilometer.publisher import gnocchi as publisher

        # NOTE: conf is only used to find a relative file; ours is absolute.
        defs, policies = publisher.GnocchiPublisher._load_definitions(
            None, None, COMMITTED)
        by_metric = {m: rd for rd in defs for m in rd.metrics}
        for meter in meters.METERS:
            rd = by_metric[meter.name]
            self.assertEqual('instance_disk', rd.cfg['resource_type'])
            self.assertEqual(meter.archive_policy,
                             rd.metrics[meter.name]['archive_policy_name'])
        self.assertEqual(policies_mod.archive_policies(), policies[-3:])

    def test_clash_with_upstream_is_refused(self):
        upstream = copy.deepcopy(self.upstream)
        _instance_disk(upstream)['metrics'][meters.METERS[0].name] = None
        self.assertRaises(ValueError, resources.build_resources_definition,
                          upstream)
        upstream = copy.deepcopy(self.upstream)
        upstream['archive_policies'].append({'name': 'blockacct-rate'})
        self.assertRaises(ValueError, resources.build_resources_definition,
                          upstream)

    def test_gen_resources_command(self):
        out = self.useFixture(fixtures.TempDir()).join('r.yaml')
        self.assertEqual(0, cmd_main.main(['gen-resources', '-o', out]))
        with open(out, encoding='utf-8') as f:
            self.assertEqual(resources.dump_resources_definition(), f.read())


def _api_form(policy, **changes):
    """A policy as Gnocchi's API returns it."""
    api = {'name': policy['name'],
           'back_window': policy['back_window'],
           'aggregation_methods': list(policy['aggregation_methods']),
           'definition': [
               {'granularity': '%d:%02d:%02d' % (
                   g // 3600, g % 3600 // 60, g % 60),
                'timespan': '%d days, 0:00:00' % (t // 86400)
                if t >= 86400 else '1:00:00',
                'points': t // g}
               for g, t in policies_mod.DEFINITION]}
    api.update(changes)
    return api


class TestPlan(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.wanted = policies_mod.archive_policies()[0]

    def test_missing(self):
        self.assertEqual(('create', self.wanted),
                         policies_mod.plan_archive_policy(self.wanted, None))

    def test_same(self):
        self.assertEqual(('ok', None), policies_mod.plan_archive_policy(
            self.wanted, _api_form(self.wanted)))

    def test_method_order_does_not_matter(self):
        have = _api_form(self.wanted, aggregation_methods=list(
            reversed(self.wanted['aggregation_methods'])))
        self.assertEqual(('ok', None),
                         policies_mod.plan_archive_policy(self.wanted, have))

    def test_back_window_too_small_is_updated(self):
        action, body = policies_mod.plan_archive_policy(
            self.wanted, _api_form(self.wanted, back_window=0))
        self.assertEqual('update', action)
        self.assertEqual(policies_mod.BACK_WINDOW, body['back_window'])
        self.assertEqual(self.wanted['definition'], body['definition'])

    def test_larger_back_window_is_kept(self):
        self.assertEqual(('ok', None), policies_mod.plan_archive_policy(
            self.wanted, _api_form(self.wanted, back_window=5)))

    def test_timespan_is_updated_and_back_window_kept(self):
        have = _api_form(self.wanted, back_window=3)
        have['definition'][1]['timespan'] = '1 day, 0:00:00'
        action, body = policies_mod.plan_archive_policy(self.wanted, have)
        self.assertEqual('update', action)
        self.assertEqual(3, body['back_window'])

    def test_granularity_conflict(self):
        have = _api_form(self.wanted)
        have['definition'] = have['definition'][1:]
        action, details = policies_mod.plan_archive_policy(self.wanted, have)
        self.assertEqual('conflict', action)
        self.assertEqual(['granularities are 60/3600 s, expected '
                          '1/60/3600 s'], details)

    def test_malformed_answers(self):
        good = _api_form(self.wanted)
        cases = [
            ([good], 'the answer is a list, not an object'),
            ('blockacct-rate', 'the answer is a string, not an object'),
            (dict(good, definition=None), 'it has no definition'),
            (dict(good, definition={}), 'its definition is an object, '
             'not a list'),
            (dict(good, definition=[{'granularity': None, 'points': 5}]),
             'granularity None is no length of time'),
            (dict(good, definition=[{'granularity': '0:00:00',
                                     'timespan': '1:00:00'}]),
             "granularity '0:00:00' is not > 0"),
            (dict(good, definition=[{'granularity': 1, 'timespan': None,
                                     'points': None}]),
             'granularity 1 has neither a timespan nor a number of points '
             '(kept forever?)'),
            (dict(good, definition=[{'granularity': 1, 'timespan': None,
                                     'points': 0}]),
             'points 0 is not a whole number in 1..2**53'),
            (dict(good, definition=[{'granularity': 1, 'timespan': None,
                                     'points': 2 ** 60}]),
             'points 1152921504606846976 is not a whole number in 1..2**53'),
            (dict(good, back_window='1'),
             "back_window '1' is not a whole number >= 0"),
            (dict(good, back_window=True),
             'back_window True is not a whole number >= 0'),
            (dict(good, aggregation_methods=None),
             'aggregation_methods None is not a list of names'),
        ]
        for answer, message in cases:
            exc = self.assertRaises(policies_mod.MalformedPolicy,
                                    policies_mod.plan_archive_policy,
                                    self.wanted, answer)
            self.assertEqual(message, str(exc))

    def test_timespan_from_points(self):
        have = _api_form(self.wanted)
        for item in have['definition']:
            item['timespan'] = None
        self.assertEqual(('ok', None),
                         policies_mod.plan_archive_policy(self.wanted, have))

    def test_methods_conflict(self):
        have = _api_form(self.wanted, aggregation_methods=['mean'])
        action, details = policies_mod.plan_archive_policy(self.wanted, have)
        self.assertEqual('conflict', action)
        self.assertIn('aggregation methods are mean', details[0])


class FakeManager(object):
    def __init__(self, items, not_found):
        self.items = items
        self.not_found = not_found
        self.calls = []

    def get(self, name):
        if name not in self.items:
            raise self.not_found(404, 'not found')
        return copy.deepcopy(self.items[name])

    def create(self, policy):
        self.calls.append(('create', policy['name']))
        self.items[policy['name']] = _api_form(policy)
        return self.items[policy['name']]

    def update(self, name, body):
        self.calls.append(('update', name))
        self.items[name]['back_window'] = body['back_window']
        return self.items[name]


class FakeClient(object):
    def __init__(self, policies=None, resource_types=('instance_disk',)):
        self.archive_policy = FakeManager(dict(policies or {}),
                                          g_exc.ArchivePolicyNotFound)
        # NOTE: as gnocchi-setup leaves it: with our volume_id attribute.
        self.resource_type = FakeManager(
            dict.fromkeys(resource_types, {'attributes': dict(
                resource_type.RESOURCE_ATTRIBUTES)}),
            g_exc.ResourceTypeNotFound)


class TestSetup(testtools.TestCase):

    def test_creates_then_ok(self):
        client = FakeClient()
        self.assertEqual(
            [('blockacct-rate', 'created'), ('blockacct-gauge', 'created'),
             ('blockacct-delta', 'created')],
            gnocchi_setup.setup(client))
        self.assertEqual(
            [(n, 'ok') for n in AGG_ORDER], gnocchi_setup.setup(client))
        self.assertEqual(3, len(client.archive_policy.calls))

    def test_policy_created_by_a_concurrent_run_is_checked(self):
        client = FakeClient()
        manager = client.archive_policy
        real_create = manager.create

        def racing_create(policy):
            # Another gnocchi-setup creates it first, with an old window.
            manager.items[policy['name']] = _api_form(policy, back_window=0)
            raise g_exc.ArchivePolicyAlreadyExists(409, 'exists')
        manager.create = racing_create
        self.assertEqual([(n, 'updated') for n in AGG_ORDER],
                         gnocchi_setup.setup(client))
        manager.create = real_create
        self.assertEqual([(n, 'ok') for n in AGG_ORDER],
                         gnocchi_setup.setup(client))

    def test_policy_gone_after_a_concurrent_create(self):
        client = FakeClient()

        def racing_create(policy):
            raise g_exc.ArchivePolicyAlreadyExists(409, 'exists')
        client.archive_policy.create = racing_create
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.setup, client)
        self.assertEqual('Gnocchi says archive policy blockacct-rate exists '
                         'and that it does not', str(exc))

    def test_malformed_policy_is_a_setup_error(self):
        policy = policies_mod.archive_policies()[0]
        client = FakeClient({policy['name']: dict(_api_form(policy),
                                                  back_window='1')})
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.setup, client,
                                url='http://u:pw@gnocchi:8041')
        self.assertEqual(
            "Gnocchi at http://gnocchi:8041 answered GET archive policy "
            "blockacct-rate with what is not an archive policy: back_window "
            "'1' is not a whole number >= 0; fix or delete it (gnocchi "
            'archive-policy delete NAME) and run gnocchi-setup again',
            str(exc))
        self.assertEqual(2, exc.exit_code)

    def test_updates_back_window(self):
        policies = {p['name']: _api_form(p, back_window=0)
                    for p in policies_mod.archive_policies()}
        client = FakeClient(policies)
        self.assertEqual([(n, 'updated') for n in AGG_ORDER],
                         gnocchi_setup.setup(client))

    def test_conflict_names_all_and_changes_nothing_else(self):
        policies = {p['name']: _api_form(p, aggregation_methods=['mean'])
                    for p in policies_mod.archive_policies()[:2]}
        client = FakeClient(policies)
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.setup, client)
        self.assertIn('blockacct-rate: aggregation methods', str(exc))
        self.assertIn('blockacct-gauge: aggregation methods', str(exc))
        self.assertIn('archive-policy delete', str(exc))

    def test_missing_resource_type(self):
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.setup,
                                FakeClient(resource_types=()))
        self.assertIn('run ceilometer-upgrade', str(exc))

    def test_translate_errors(self):
        url = 'http://127.0.0.1:1'
        cases = [
            (g_exc.ConnectionFailure(message='refused'), 'cannot reach'),
            (g_exc.Unauthorized(401, 'no'), '401 Unauthorized'),
            (ka_exc.Unauthorized(), '401 Unauthorized'),
            (g_exc.Forbidden(403, 'no'), 'needs the admin role'),
            (g_exc.BadRequest(400, 'bad'), 'error'),
        ]
        for exc, text in cases:
            error = gnocchi_setup.translate_error(exc, url)
            self.assertIn(text, str(error))
            self.assertIn(url, str(error))
        self.assertIsNone(gnocchi_setup.translate_error(KeyError('x')))

    def _run(self, argv, client=None, error=None):
        stderr = self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                                      io.StringIO())).new_value
        stdout = self.useFixture(fixtures.MonkeyPatch('sys.stdout',
                                                      io.StringIO())).new_value
        with mock.patch.object(gnocchi_setup, 'make_client',
                               return_value=client,
                               side_effect=error):
            code = cmd_main.main(['gnocchi-setup'] + argv)
        return code, stdout.getvalue(), stderr.getvalue()

    def test_command_exit_codes(self):
        code, out, err = self._run(['--gnocchi-url', 'http://x'],
                                   FakeClient())
        self.assertEqual(0, code)
        self.assertIn('archive policy blockacct-rate: created', out)
        code, out, err = self._run(['--gnocchi-url', 'http://x'],
                                   error=g_exc.Forbidden(403, 'no'))
        self.assertEqual(2, code)
        self.assertEqual(1, len(err.splitlines()))
        self.assertIn('403 Forbidden', err)
        code, out, err = self._run([], FakeClient())
        self.assertEqual(2, code)
        self.assertIn('exactly one of', err)

    def test_unknown_subcommand(self):
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        self.assertEqual(2, cmd_main.main(['nope']))


AGG_ORDER = [p['name'] for p in policies_mod.archive_policies()]
