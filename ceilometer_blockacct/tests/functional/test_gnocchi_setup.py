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
"""``ceilometer-blockacct gnocchi-setup`` against a real Gnocchi."""

import copy
import datetime
import os
import subprocess
import sys

import fixtures
from gnocchiclient import exceptions as g_exc
from gnocchiclient.v1 import client as g_client
from keystoneauth1 import session
import testtools

from ceilometer_blockacct.cmd import gnocchi_setup
from ceilometer_blockacct import gnocchi
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack
from ceilometer_blockacct.tests.functional.fixtures import services

CLI = os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                   'ceilometer-blockacct')


def _cli(*args):
    return subprocess.run([CLI, 'gnocchi-setup'] + list(args),
                          capture_output=True, text=True, timeout=120)


def _renamed(policy, name, **changes):
    policy = copy.deepcopy(policy)
    policy['name'] = name
    policy.update(changes)
    return policy


class TestSharedStack(testtools.TestCase):
    """Tests that leave the shared stack as gnocchi-setup would."""

    def setUp(self):
        super().setUp()
        self.stack = gnocchi_stack.get_shared_stack()
        self.client = self.stack.client()

    def test_setup_twice_is_idempotent(self):
        first = _cli('--gnocchi-url', self.stack.url)
        self.assertEqual(0, first.returncode, first.stderr)
        second = _cli('--gnocchi-url', self.stack.url)
        self.assertEqual(0, second.returncode, second.stderr)
        self.assertEqual(
            ['archive policy %s: ok' % p['name']
             for p in gnocchi.archive_policies()]
            + ['resource type instance_disk: ok'],
            second.stdout.splitlines())
        for wanted in gnocchi.archive_policies():
            have = self.client.archive_policy.get(wanted['name'])
            self.assertEqual(('ok', None),
                             gnocchi.plan_archive_policy(wanted, have))
            self.assertEqual(sorted(wanted['aggregation_methods']),
                             sorted(have['aggregation_methods']))
            self.assertEqual([3600, 10080, 9600],
                             [d['points'] for d in have['definition']])

    def test_config_file_like_the_publisher(self):
        result = _cli('--config-file', self.stack.ceilometer_config_file)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('resource type instance_disk: ok', result.stdout)

    def test_delta_policy_sums_in_metricd(self):
        _cli('--gnocchi-url', self.stack.url)
        metric = self.client.metric.create(
            {'archive_policy_name': 'blockacct-delta'})
        start = datetime.datetime(2024, 1, 1, 10, 0, 0,
                                  tzinfo=datetime.timezone.utc)
        self.client.metric.add_measures(metric['id'], [
            {'timestamp': (start + datetime.timedelta(seconds=s)).isoformat(),
             'value': v} for s, v in ((0.2, 5), (1.1, 7), (59.9, 11))])
        measures = services.wait_until(
            lambda: self.client.metric.get_measures(
                metric['id'], aggregation='sum', granularity=60),
            'metricd', 30, interval=0.5)
        self.assertEqual([23.0], [v for _t, _g, v in measures])

    def test_update_back_window_and_timespan_in_place(self):
        wanted = _renamed(gnocchi.archive_policies()[0],
                          'blockacct-test-update')
        old = _renamed(wanted, wanted['name'], back_window=0)
        old['definition'] = copy.deepcopy(old['definition'])
        old['definition'][1]['timespan'] = '1 day'
        self.client.archive_policy.create(old)
        self.addCleanup(self.client.archive_policy.delete, wanted['name'])
        self.assertEqual(
            [(wanted['name'], 'updated')],
            gnocchi_setup.ensure_archive_policies(self.client, [wanted]))
        self.assertEqual(
            [(wanted['name'], 'ok')],
            gnocchi_setup.ensure_archive_policies(self.client, [wanted]))
        have = self.client.archive_policy.get(wanted['name'])
        self.assertEqual(1, have['back_window'])
        self.assertEqual(10080, have['definition'][1]['points'])

    def test_methods_differ_is_a_conflict(self):
        wanted = _renamed(gnocchi.archive_policies()[2],
                          'blockacct-test-methods')
        self.client.archive_policy.create(
            _renamed(wanted, wanted['name'], aggregation_methods=['mean']))
        self.addCleanup(self.client.archive_policy.delete, wanted['name'])
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.ensure_archive_policies,
                                self.client, [wanted])
        self.assertIn('aggregation methods are mean, expected count, sum',
                      str(exc))

    def test_no_credentials_is_401(self):
        # NOTE: with auth_mode = basic Gnocchi checks no password: a
        # request without an Authorization header is what it answers 401.
        conf = self.useFixture(fixtures.TempDir()).join('ceilometer.conf')
        with open(conf, 'w') as f:
            f.write('[service_credentials]\nauth_type = gnocchi-noauth\n'
                    'user_id = nobody\nproject_id = nobody\n'
                    'endpoint = %s\n' % self.stack.url)
        result = _cli('--config-file', conf)
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn('401 Unauthorized', result.stderr)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)

    def test_no_auth_header_function(self):
        anonymous = g_client.Client(
            session=session.Session(),
            adapter_options={'endpoint_override': self.stack.url})
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.setup, anonymous,
                                url=self.stack.url)
        self.assertIn('Gnocchi at %s refused the credentials (401 '
                      'Unauthorized)' % self.stack.url, str(exc))
        self.assertIsInstance(exc.__cause__, g_exc.Unauthorized)

    def test_credentials_in_the_url_are_used_and_never_shown(self):
        log = self.useFixture(fixtures.TempDir()).join('cli.log')
        url = self.stack.url.replace('://', '://admin:n0t-Shown@')
        result = subprocess.run(
            [CLI, '--debug', '--log-file', log, 'gnocchi-setup',
             '--gnocchi-url', url], capture_output=True, text=True,
            timeout=120)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('resource type instance_disk: ok', result.stdout)
        with open(log) as f:
            logged = f.read()
        # --debug logged every request, with the bare URL.
        self.assertIn('GET %s/v1/archive_policy/blockacct-rate'
                      % self.stack.url, logged)
        for text in (result.stdout, result.stderr, logged):
            self.assertNotIn('n0t-Shown', text)

    def test_unreachable(self):
        url = 'http://127.0.0.1:%d' % gnocchi_stack.free_port()
        result = _cli('--gnocchi-url', url)
        self.assertEqual(2, result.returncode)
        self.assertIn('gnocchi-setup: cannot reach Gnocchi at %s' % url,
                      result.stderr)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)


class TestFreshGnocchi(testtools.TestCase):
    """The life of a new deployment, on a stack of its own.

    It needs a Gnocchi where ``ceilometer-upgrade`` has not run yet and
    where our policy names can be taken by a wrong definition, which the
    shared stack must never see.  No metricd: nothing is aggregated.
    """

    def test_fresh_deployment(self):
        stack = self.useFixture(gnocchi_stack.GnocchiStack(
            ceilometer_upgrade=False, metricd=False))
        client = stack.client()
        url = ['--gnocchi-url', stack.url]

        # A user without the admin role cannot create policies, whether
        # named in the URL (whose password is never shown) or by --user.
        result = _cli('--gnocchi-url',
                      stack.url.replace('://', '://nobody:n0t-Shown@'))
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertEqual(
            'gnocchi-setup: Gnocchi at %s refused the request (403 '
            'Forbidden): managing archive policies needs the admin role '
            '(user "admin" with basic auth)\n' % stack.url, result.stderr)
        result = _cli(*url, '--user', 'nobody')
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn('403 Forbidden', result.stderr)
        self.assertIn('admin role', result.stderr)

        # A policy of ours with other granularities: clear error.
        wrong = _renamed(gnocchi.archive_policies()[2], 'blockacct-delta',
                         definition=[{'granularity': '5 minutes',
                                      'timespan': '30 days'}])
        client.archive_policy.create(wrong)
        result = _cli(*url)
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn('blockacct-delta: granularities are 300 s, expected '
                      '1/60/3600 s', result.stderr)
        self.assertIn('archive-policy delete', result.stderr)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)

        # Fixed; now instance_disk is missing: ceilometer-upgrade must run.
        client.archive_policy.delete('blockacct-delta')
        result = _cli(*url)
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn("no resource type 'instance_disk': run "
                      'ceilometer-upgrade', result.stderr)
        self.assertRaises(gnocchi_setup.SetupError,
                          gnocchi_setup.check_resource_type, client)

        stack.run_ceilometer_upgrade()
        result = _cli(*url)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('resource type instance_disk: ok', result.stdout)
