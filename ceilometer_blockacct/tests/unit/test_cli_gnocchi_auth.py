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
"""``gnocchi-setup``'s Keystone options: keystoneauth's, as the gnocchi CLI.

The parser is the command's own (no mock); what the real Keystone answers
(refused credentials, unknown project, expired token) is tested against a
real Keystone in ``tests/functional/test_gnocchi_setup``.
"""

import io
import socket

import fixtures
import testtools

from ceilometer_blockacct.cmd import gnocchi_auth
from ceilometer_blockacct.cmd import gnocchi_setup
from ceilometer_blockacct.cmd import main as cmd_main

OS_VARIABLES = ('OS_AUTH_TYPE', 'OS_AUTH_PLUGIN', 'OS_AUTH_URL',
                'OS_USERNAME', 'OS_USER_ID', 'OS_PASSWORD', 'OS_PROJECT_NAME',
                'OS_PROJECT_ID', 'OS_USER_DOMAIN_NAME',
                'OS_PROJECT_DOMAIN_NAME', 'OS_TOKEN', 'OS_REGION_NAME',
                'OS_INTERFACE', 'OS_ENDPOINT_OVERRIDE',
                'OS_METRIC_ENDPOINT_OVERRIDE', 'OS_CACERT', 'GNOCCHI_USER',
                'GNOCCHI_ENDPOINT')


class CleanEnvironment(fixtures.Fixture):
    """No OS_* variable of the caller's shell; ``values`` set instead."""

    def __init__(self, **values):
        super().__init__()
        self.values = values

    def _setUp(self):
        for name in OS_VARIABLES:
            self.useFixture(fixtures.EnvironmentVariable(
                name, self.values.get(name)))


def closed_url(path='/v3'):
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return 'http://127.0.0.1:%d%s' % (sock.getsockname()[1], path)


def parse(*argv):
    """gnocchi-setup's parsed arguments, as the command would see them."""
    command = gnocchi_setup.GnocchiSetup(None, None)
    return command.get_parser('gnocchi-setup').parse_args(list(argv))


class TestOptions(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(CleanEnvironment())

    def test_password_options_and_their_defaults(self):
        args = parse('--os-auth-url', 'http://k:5000/v3', '--os-username',
                     'alice', '--os-password', 's3cret', '--os-project-name',
                     'tenant-a', '--os-user-domain-name', 'Default',
                     '--os-region-name', 'RegionTwo')
        self.assertEqual(
            ('password', 'http://k:5000/v3', 'alice', 's3cret', 'tenant-a',
             'Default', 'RegionTwo', 'public', 10.0),
            (args.os_auth_type, args.os_auth_url, args.os_username,
             args.os_password, args.os_project_name, args.os_user_domain_name,
             args.os_region_name, args.os_interface, args.timeout))
        self.assertTrue(gnocchi_auth.wants_keystone(args))

    def test_openrc_variables_are_the_defaults(self):
        self.useFixture(CleanEnvironment(
            OS_AUTH_URL='http://k/v3', OS_USERNAME='bob', OS_PASSWORD='pw',
            OS_PROJECT_NAME='b', OS_INTERFACE='internal',
            OS_REGION_NAME='R'))
        args = parse('--timeout', '3')
        self.assertEqual(('http://k/v3', 'bob', 'pw', 'b', 'internal', 'R',
                          3.0),
                         (args.os_auth_url, args.os_username,
                          args.os_password, args.os_project_name,
                          args.os_interface, args.os_region_name,
                          args.timeout))
        self.assertEqual(
            {'service_type': 'metric', 'service_name': None,
             'interface': 'internal', 'region_name': 'R',
             'endpoint_override': None},
            gnocchi_auth.adapter_options(args))

    def test_the_plugin_named_brings_its_options(self):
        args = parse('--os-auth-type', 'token', '--os-token', 'gAAAA',
                     '--os-auth-url', 'http://k/v3')
        self.assertEqual('gAAAA', args.os_token)
        self.assertFalse(hasattr(args, 'os_password'))
        self.useFixture(CleanEnvironment(
            OS_AUTH_TYPE='v3applicationcredential', OS_AUTH_URL='http://k/v3'))
        # NOTE: keystoneauth spells these flags with underscores.
        args = parse('--os-application_credential_id', 'id1')
        self.assertEqual('id1', args.os_application_credential_id)

    def test_metric_specific_endpoint_wins(self):
        args = parse('--os-auth-url', 'http://k/v3', '--os-endpoint-override',
                     'http://any', '--os-metric-endpoint-override',
                     'http://gnocchi:8041', '--os-interface', 'admin')
        options = gnocchi_auth.adapter_options(args)
        self.assertEqual(('http://gnocchi:8041', 'admin'),
                         (options['endpoint_override'], options['interface']))

    def test_basic_auth_options_stay(self):
        args = parse('--gnocchi-url', 'http://g:8041', '--user', 'ops')
        self.assertEqual(('http://g:8041', 'ops', 10.0),
                         (args.gnocchi_url, args.user, args.timeout))
        self.assertFalse(gnocchi_auth.wants_keystone(args))

    def test_gnocchi_basic_plugin_keeps_our_user_flag(self):
        # OS_AUTH_TYPE=gnocchi-basic, as the gnocchi CLI's default: its
        # --user is ours, and the plugin is built from it.
        self.useFixture(CleanEnvironment(OS_AUTH_TYPE='gnocchi-basic'))
        args = parse('--user', 'ops', '--endpoint', 'http://g:8041')
        plugin = gnocchi_auth.load_auth(args)
        self.assertEqual({'Authorization': 'basic b3BzOg=='},
                         plugin.get_headers(None))
        self.assertEqual('http://g:8041', plugin.get_endpoint(None))

    def test_help_lists_the_keystone_options(self):
        out = self.useFixture(fixtures.MonkeyPatch(
            'sys.stdout', io.StringIO())).new_value
        self.assertEqual(0, cmd_main.main(['gnocchi-setup', '--help']))
        for flag in ('--gnocchi-url', '--config-file', '--os-auth-type',
                     '--os-auth-url', '--os-username', '--os-password',
                     '--os-project-name', '--os-region-name',
                     '--os-interface', '--os-endpoint-override',
                     '--timeout', '--os-cacert'):
            self.assertIn(flag, out.getvalue())


class TestOneLineErrors(testtools.TestCase):
    """Errors found before Gnocchi is asked anything: one line, exit 2."""

    def setUp(self):
        super().setUp()
        self.useFixture(CleanEnvironment())
        self.stderr = self.useFixture(fixtures.MonkeyPatch(
            'sys.stderr', io.StringIO())).new_value
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', io.StringIO()))

    def run_cli(self, *argv):
        code = cmd_main.main(['gnocchi-setup'] + list(argv))
        err = self.stderr.getvalue()
        self.assertEqual(1, len(err.splitlines()), err)
        return code, err

    def test_nothing_to_log_in_with(self):
        self.assertEqual(
            (2, 'gnocchi-setup: give exactly one of --gnocchi-url (basic '
                'auth), --config-file (a ceilometer.conf) and Keystone '
                'credentials (--os-auth-url, --os-username, --os-password, '
                "--os-project-name, or an openrc file's OS_* variables)\n"),
            self.run_cli())

    def test_url_and_config_file(self):
        code, err = self.run_cli('--gnocchi-url', 'http://g',
                                 '--config-file', '/etc/ceilometer.conf')
        self.assertEqual(2, code)
        self.assertIn('give exactly one of', err)

    def test_missing_password(self):
        self.assertEqual(
            (2, 'gnocchi-setup: Keystone credentials incomplete (plugin '
                'password): give --os-username (OS_USERNAME), --os-password '
                '(OS_PASSWORD)\n'),
            self.run_cli('--os-auth-url', closed_url()))

    def test_missing_auth_url(self):
        self.useFixture(CleanEnvironment(OS_AUTH_TYPE='v3token'))
        self.assertEqual(
            (2, 'gnocchi-setup: Keystone credentials incomplete (plugin '
                'v3token): give --os-auth-url (OS_AUTH_URL)\n'),
            self.run_cli('--os-token', 'x'))

    def test_unknown_plugin(self):
        self.assertEqual(
            (2, "gnocchi-setup: no keystoneauth plugin 'pasword' "
                '(--os-auth-type or OS_AUTH_TYPE): e.g. password, token, '
                'v3applicationcredential\n'),
            self.run_cli('--os-auth-type', 'pasword'))

    def test_keystone_down(self):
        url = closed_url()
        code, err = self.run_cli('--os-auth-url', url, '--os-username', 'a',
                                 '--os-password', 'b', '--os-project-name',
                                 'c', '--timeout', '5')
        self.assertEqual(2, code)
        self.assertTrue(err.startswith(
            'gnocchi-setup: cannot reach Keystone at %s: ' % url), err)

    def test_keystone_down_without_a_version_in_the_url(self):
        # keystoneauth first asks the URL which versions it serves.
        url = closed_url('')
        code, err = self.run_cli('--os-auth-url', url, '--os-username', 'a',
                                 '--os-password', 'b', '--timeout', '5')
        self.assertEqual(
            (2, 'gnocchi-setup: no Keystone identity API answers at %s: is '
                'Keystone up, and is --os-auth-url (OS_AUTH_URL) its '
                'address, e.g. http://HOST:5000/v3?\n' % url),
            (code, err))
