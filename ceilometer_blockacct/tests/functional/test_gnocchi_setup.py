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
"""``ceilometer-blockacct gnocchi-setup`` against a real Gnocchi.

Gnocchi authenticates with the real Keystone (:mod:`.fixtures.keystone`):
the command logs in with an openrc's ``OS_*`` variables, as an operator
runs it, and every refusal of Keystone or Gnocchi is one line, exit 2.
Basic auth (``--gnocchi-url``) stays an option: :class:`TestBasicAuth`.
"""

import copy
import datetime
import os
import subprocess
import sys
import time

import fixtures
from gnocchiclient import exceptions as g_exc
from gnocchiclient.v1 import client as g_client
from keystoneauth1 import session
import testtools

from ceilometer_blockacct.cmd import gnocchi_setup
from ceilometer_blockacct.gnocchi import policies as gnocchi
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack
from ceilometer_blockacct.tests.functional.fixtures import services

CLI = os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                   'ceilometer-blockacct')


def _cli(*args, env=None, debug_log=None):
    """``gnocchi-setup ARGS`` with ``env`` as its only OS_* variables."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(('OS_', 'GNOCCHI_'))}
    environ.update(env or {})
    debug = ['--debug', '--log-file', debug_log] if debug_log else []
    return subprocess.run([CLI] + debug + ['gnocchi-setup'] + list(args),
                          env=environ, capture_output=True, text=True,
                          timeout=120)


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
        self.admin_env = self.stack.env

    def test_setup_twice_is_idempotent(self):
        first = _cli(env=self.admin_env)
        self.assertEqual(0, first.returncode, first.stderr)
        second = _cli(env=self.admin_env)
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
        _cli(env=self.admin_env)
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

    def test_options_instead_of_variables(self):
        # The same login as keystoneauth's command-line options, the
        # endpoint named instead of found in the catalog.
        env = self.admin_env
        result = _cli('--os-auth-url', env['OS_AUTH_URL'], '--os-username',
                      env['OS_USERNAME'], '--os-password',
                      env['OS_PASSWORD'], '--os-project-name',
                      env['OS_PROJECT_NAME'], '--os-user-domain-name',
                      'Default', '--os-project-domain-name', 'Default',
                      '--os-endpoint-override', self.stack.url)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('resource type instance_disk: ok', result.stdout)

    def test_keystone_refusals_are_one_line(self):
        auth_url = self.stack.keystone.auth_url
        alice = self.stack.keystone.customer('setup')
        env = self.stack.env_for(alice)
        where = 'gnocchi-setup: Keystone at %s ' % auth_url
        cases = [
            (dict(env, OS_PASSWORD='wrong'),
             where + 'refused the credentials of user %s (401 '
             'Unauthorized): check --os-username, --os-password, '
             '--os-user-domain-name (OS_USERNAME, OS_PASSWORD, '
             'OS_USER_DOMAIN_NAME)\n' % alice.username),
            (dict(env, OS_USERNAME='nobody-%s' % alice.username),
             where + 'refused the credentials of user nobody-%s (401 '
             'Unauthorized): check --os-username, --os-password, '
             '--os-user-domain-name (OS_USERNAME, OS_PASSWORD, '
             'OS_USER_DOMAIN_NAME)\n' % alice.username),
            (dict(env, OS_PROJECT_NAME='no-such-project'),
             where + 'accepted user %s but not project no-such-project '
             '(unknown, or the user has no role on it): check '
             '--os-project-name, --os-project-domain-name (OS_PROJECT_NAME, '
             'OS_PROJECT_DOMAIN_NAME)\n' % alice.username),
            (dict(env, OS_AUTH_TYPE='token', OS_TOKEN='garbage'),
             where + 'does not accept the token (404: expired, revoked or '
             'not a token): get a new one (openstack token issue) or log in '
             'with a password\n'),
            (dict(env, OS_AUTH_TYPE='token',
                  OS_TOKEN=self.expired_token(alice)),
             where + 'does not accept the token (404: expired, revoked or '
             'not a token): get a new one (openstack token issue) or log in '
             'with a password\n'),
            (dict(env, OS_REGION_NAME='nowhere'),
             "gnocchi-setup: Keystone's catalog has no metric endpoint for "
             'interface public in region nowhere: give --os-region-name / '
             '--os-interface (OS_REGION_NAME, OS_INTERFACE) or '
             '--os-endpoint-override\n'),
        ]
        for case_env, line in cases:
            result = _cli(env=case_env)
            self.assertEqual((2, line), (result.returncode, result.stderr))

    def test_a_token_gnocchi_refuses(self):
        # A token sent to Gnocchi as it is: its keystonemiddleware says no.
        result = _cli('--os-auth-type', 'admin_token', '--os-token',
                      'garbage', '--os-endpoint', self.stack.url)
        self.assertEqual(
            (2, 'gnocchi-setup: Gnocchi at %s refused the token (401 '
                'Unauthorized): expired, revoked or not a token; get a new '
                'one (openstack token issue) or log in with a password '
                '(--os-password, OS_PASSWORD)\n' % self.stack.url),
            (result.returncode, result.stderr))

    def test_keystone_down_at_start(self):
        down = 'http://127.0.0.1:%d/v3' % gnocchi_stack.free_port()
        result = _cli(env=dict(self.admin_env, OS_AUTH_URL=down))
        self.assertEqual(2, result.returncode)
        self.assertTrue(result.stderr.startswith(
            'gnocchi-setup: cannot reach Keystone at %s: ' % down),
            result.stderr)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)

    def expired_token(self, account):
        """A real token of ``account``, expired.

        Keystone caps a token's life at its application credential's,
        which expires 10 s after its creation.
        """
        from keystoneauth1.identity import v3
        from keystoneauth1 import session

        keystone = self.stack.keystone
        login = keystone.session(account)
        login.get_token()
        # NOTE: long enough to log in with it on a loaded machine.
        expires = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=10)
        answer = login.post(
            '%s/users/%s/application_credentials' % (keystone.auth_url,
                                                     account.user_id),
            json={'application_credential': {
                'name': 'expiring', 'expires_at': expires.strftime(
                    '%Y-%m-%dT%H:%M:%S.%f')}}).json()['application_credential']
        token = session.Session(auth=v3.ApplicationCredential(
            auth_url=keystone.auth_url,
            application_credential_id=answer['id'],
            application_credential_secret=answer['secret'])).get_token()
        time.sleep(max(0, expires.timestamp() + 1 - time.time()))
        return token

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

        # A customer (a member of its project) cannot create policies.
        member = stack.keystone.customer('fresh')
        result = _cli(env=stack.env_for(member))
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertEqual(
            'gnocchi-setup: Gnocchi at %s refused the request (403 '
            'Forbidden): managing archive policies needs the admin role: '
            'log in as a user with the admin role on its project '
            '(--os-username, --os-project-name or OS_USERNAME, '
            'OS_PROJECT_NAME)\n' % stack.url, result.stderr)

        # A policy of ours with other granularities: clear error.
        wrong = _renamed(gnocchi.archive_policies()[2], 'blockacct-delta',
                         definition=[{'granularity': '5 minutes',
                                      'timespan': '30 days'}])
        client.archive_policy.create(wrong)
        result = _cli(env=stack.env)
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn('blockacct-delta: granularities are 300 s, expected '
                      '1/60/3600 s', result.stderr)
        self.assertIn('archive-policy delete', result.stderr)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)

        # Fixed; now instance_disk is missing: ceilometer-upgrade must run.
        client.archive_policy.delete('blockacct-delta')
        result = _cli(env=stack.env)
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn("no resource type 'instance_disk': run "
                      'ceilometer-upgrade', result.stderr)
        self.assertRaises(gnocchi_setup.SetupError,
                          gnocchi_setup.check_resource_type, client)

        stack.run_ceilometer_upgrade()
        result = _cli(env=stack.env)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('resource type instance_disk: ok', result.stdout)


class TestBasicAuth(testtools.TestCase):
    """Gnocchi with ``[api] auth_mode = basic``: --gnocchi-url and --user.

    No metricd, no ceilometer-upgrade: only what setup asks of the API.
    """

    def test_url_credentials_used_never_shown_and_the_admin_role(self):
        stack = self.useFixture(gnocchi_stack.GnocchiStack(
            auth_mode='basic', ceilometer_upgrade=False, metricd=False))
        # A user without the admin role cannot create policies, whether
        # named in the URL (whose password is never shown) or by --user.
        result = _cli('--gnocchi-url',
                      stack.url.replace('://', '://nobody:n0t-Shown@'))
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertEqual(
            'gnocchi-setup: Gnocchi at %s refused the request (403 '
            'Forbidden): managing archive policies needs the admin role '
            '(user "admin" with basic auth)\n' % stack.url, result.stderr)
        result = _cli('--gnocchi-url', stack.url, '--user', 'nobody')
        self.assertEqual(2, result.returncode, result.stdout)
        self.assertIn('403 Forbidden', result.stderr)
        self.assertIn('admin role', result.stderr)

        log = self.useFixture(fixtures.TempDir()).join('cli.log')
        url = stack.url.replace('://', '://admin:n0t-Shown@')
        stack.run_ceilometer_upgrade()
        result = _cli('--gnocchi-url', url, debug_log=log)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('resource type instance_disk: ok', result.stdout)
        with open(log) as f:
            logged = f.read()
        # --debug logged every request, with the bare URL.
        self.assertIn('GET %s/v1/archive_policy/blockacct-rate'
                      % stack.url, logged)
        for text in (result.stdout, result.stderr, logged):
            self.assertNotIn('n0t-Shown', text)
