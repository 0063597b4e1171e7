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
"""The ``ceilometer-blockacct`` cliff application and what it shares."""

import configparser
import importlib.metadata
import io
import logging
import os

import fixtures
import testtools

from ceilometer_blockacct.cmd import base
from ceilometer_blockacct.cmd import main as cmd_main
from ceilometer_blockacct.cmd import show

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
COMMANDS = ['audit', 'gen-cloudkitty', 'gen-polling', 'gen-resources',
            'gnocchi-setup', 'show']


class Boom(base.Command):
    """A command that fails the way the test says."""

    error = None

    def take_action(self, parsed_args):
        logging.getLogger('keystoneauth.session').warning('library warning')
        logging.getLogger('ceilometer_blockacct.x').warning('our warning')
        if self.error is not None:
            raise self.error
        self.app.stdout.write('done\n')


class CliTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.stdout = self.useFixture(fixtures.MonkeyPatch(
            'sys.stdout', io.StringIO())).new_value
        self.stderr = self.useFixture(fixtures.MonkeyPatch(
            'sys.stderr', io.StringIO())).new_value

    def run_app(self, argv, error=None):
        app = cmd_main.BlockacctApp()
        app.command_manager.add_command(
            'boom', type('Boom', (Boom,), {'error': error}))
        return app.run(argv)


class TestApp(CliTestCase):

    def test_version_comes_from_pbr(self):
        self.assertEqual(0, cmd_main.main(['--version']))
        self.assertEqual(
            'ceilometer-blockacct %s\n'
            % importlib.metadata.version('ceilometer-blockacct'),
            self.stdout.getvalue())

    def test_no_subcommand_is_a_usage_error_not_a_shell(self):
        self.useFixture(fixtures.MonkeyPatch('sys.stdin', io.StringIO(
            'show\n')))
        self.assertEqual(2, cmd_main.main([]))
        self.assertEqual('', self.stdout.getvalue())
        self.assertIn('subcommands: %s' % ', '.join(COMMANDS),
                      self.stderr.getvalue())

    def test_unknown_subcommand(self):
        self.assertEqual(2, cmd_main.main(['nope']))

    def test_help_lists_every_command(self):
        self.assertEqual(0, cmd_main.main(['help']))
        out = self.stdout.getvalue()
        self.assertIn('gnocchi-setup  Create or check our Gnocchi archive '
                      'policies (idempotent)', out)
        self.assertIn("show           Show every VM disk's counters", out)
        self.assertEqual(0, cmd_main.main(['gnocchi-setup', '--help']))
        self.assertIn('--gnocchi-url', self.stdout.getvalue())

    def test_application_help_exits_0(self):
        # NOTE: cliff ends --help with SystemExit(None): success.
        self.assertEqual(0, cmd_main.main(['--help']))
        self.assertIn('gnocchi-setup  Create or check our Gnocchi archive '
                      'policies (idempotent)', self.stdout.getvalue())

    def test_bad_arguments_exit_2(self):
        self.assertEqual(2, cmd_main.main(['show', '--interval', '0']))
        self.assertIn('--interval: must be > 0', self.stderr.getvalue())

    def test_commands_are_the_entry_points_of_setup_cfg(self):
        parser = configparser.ConfigParser()
        parser.read(os.path.join(REPO, 'setup.cfg'))
        declared = dict(
            line.split(' = ') for line in parser['entry_points'][
                cmd_main.NAMESPACE].strip().splitlines())
        self.assertEqual(COMMANDS, sorted(declared))
        installed = {ep.name: ep.value for ep in importlib.metadata
                     .entry_points(group=cmd_main.NAMESPACE)}
        self.assertEqual(declared, installed,
                         'reinstall the package: pip install -e .')
        app = cmd_main.BlockacctApp()
        self.assertEqual(sorted(COMMANDS + ['complete', 'help']),
                         sorted(name for name, _ep in app.command_manager))
        for name in COMMANDS:
            factory, _name, _args = app.command_manager.find_command([name])
            self.assertTrue(issubclass(factory, base.OneLineErrors), name)

    def test_handlers_do_not_pile_up(self):
        root = logging.getLogger()
        before = list(root.handlers)
        for _ in range(3):
            self.assertEqual(0, self.run_app(['boom']))
        self.assertEqual(before, root.handlers)


class TestErrors(CliTestCase):

    def test_command_error_is_one_redacted_line_with_its_code(self):
        error = base.CommandError(
            'cannot reach http://ops:s3cret@gnocchi:8041/v1:\n  refused')
        error.exit_code = 3
        self.assertEqual(3, self.run_app(['boom'], error))
        self.assertEqual('our warning\nboom: cannot reach '
                         'http://***@gnocchi:8041/v1: refused\n',
                         self.stderr.getvalue())

    def test_debug_adds_the_traceback_redacted(self):
        error = base.CommandError('at http://ops:s3cret@gnocchi:8041')
        self.assertEqual(1, self.run_app(['--debug', 'boom'], error))
        err = self.stderr.getvalue()
        self.assertIn('Traceback', err)
        self.assertIn('boom: at http://***@gnocchi:8041\n', err)
        self.assertNotIn('s3cret', err)

    def test_unexpected_error_is_one_line_exit_1(self):
        self.assertEqual(1, self.run_app(['boom'], RuntimeError('a bug')))
        self.assertEqual('our warning\na bug\n', self.stderr.getvalue())

    def test_library_records_need_verbose(self):
        self.assertEqual(0, self.run_app(['boom']))
        self.assertEqual('our warning\n', self.stderr.getvalue())
        self.assertEqual('done\n', self.stdout.getvalue())
        self.stderr.truncate(0)
        self.stderr.seek(0)
        self.assertEqual(0, self.run_app(['-v', 'boom']))
        self.assertEqual('library warning\nour warning\n',
                         self.stderr.getvalue())
        self.stderr.truncate(0)
        self.stderr.seek(0)
        self.assertEqual(0, self.run_app(['-q', 'boom']))
        self.assertEqual('', self.stderr.getvalue())

    def test_redact(self):
        for text, expected in [
                ('http://u:p@h:1/x', 'http://***@h:1/x'),
                ('https://u@h', 'https://***@h'),
                ('a http://u:p@ss@h/p b http://h2/q@r',
                 'a http://***@h/p b http://h2/q@r'),
                ('postgresql://gnocchi:pw@localhost/gnocchi?x=1',
                 'postgresql://***@localhost/gnocchi?x=1'),
                ('no url here: user@example.com', 'no url here: '
                 'user@example.com')]:
            self.assertEqual(expected, base.redact(text))

    def test_one_line_is_short(self):
        line = base.one_line('x\n' * 1000)
        self.assertEqual(base.MAX_LINE, len(line))
        self.assertTrue(line.endswith('x x...'))

    def test_unwritable_output(self):
        self.assertEqual(1, cmd_main.main(['gen-resources', '-o',
                                           '/nonexistent/dir/r.yaml']))
        self.assertEqual('gen-resources: cannot write /nonexistent/dir/'
                         'r.yaml: No such file or directory\n',
                         self.stderr.getvalue())


class TestShowConfig(CliTestCase):
    """show: defaults < the agent's config files < the command line."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.app = cmd_main.BlockacctApp()
        self.command = show.Show(self.app, None, cmd_name='show')

    def _file(self, text):
        path = os.path.join(self.tmp, 'ceilometer-%d.conf'
                            % len(os.listdir(self.tmp)))
        with open(path, 'w') as f:
            f.write(text)
        return path

    def _conf(self, *argv):
        parsed = self.command.get_parser('show').parse_args(list(argv))
        return self.command.load_conf(parsed)

    def _values(self, conf):
        return (conf.blockacct.libvirt_uri, conf.blockacct.enable_qmp,
                conf.blockacct.read_timeout)

    def test_file_wins_over_defaults(self):
        path = self._file('[blockacct]\nlibvirt_uri = qemu:///file\n'
                          'enable_qmp = false\nread_timeout = 7.5\n')
        self.assertEqual(('qemu:///file', False, 7.5),
                         self._values(self._conf('--config-file', path)))

    def test_command_line_wins_over_the_file(self):
        path = self._file('[blockacct]\nlibvirt_uri = qemu:///file\n'
                          'enable_qmp = false\nread_timeout = 7.5\n')
        conf = self._conf('--config-file', path, '--libvirt-uri',
                          'qemu:///cli', '--qmp', '--timeout', '2')
        self.assertEqual(('qemu:///cli', True, 2.0), self._values(conf))
        conf = self._conf('--config-file', path, '--timeout', '3')
        self.assertEqual(('qemu:///file', False, 3.0), self._values(conf))
        enabled = self._file('[blockacct]\nenable_qmp = true\n')
        conf = self._conf('--config-file', enabled, '--no-qmp')
        self.assertFalse(conf.blockacct.enable_qmp)

    def test_later_files_win_like_the_agent(self):
        first = self._file('[blockacct]\nread_timeout = 7.5\n')
        second = self._file('[blockacct]\nread_timeout = 9\n')
        conf = self._conf('--config-file', first, '--config-file', second)
        self.assertEqual(9.0, conf.blockacct.read_timeout)

    def test_config_dir_after_the_files(self):
        first = self._file('[blockacct]\nread_timeout = 7.5\n')
        confd = os.path.join(self.tmp, 'ceilometer.conf.d')
        os.mkdir(confd)
        with open(os.path.join(confd, '50-blockacct.conf'), 'w') as f:
            f.write('[blockacct]\nread_timeout = 4\n')
        conf = self._conf('--config-file', first, '--config-dir', confd)
        self.assertEqual(4.0, conf.blockacct.read_timeout)

    def test_options_default_like_the_agent(self):
        conf = self._conf('--config-file', self._file('[DEFAULT]\n'))
        self.assertEqual((None, True, 5.0), self._values(conf))

    def test_default_libvirt_uri_is_honoured(self):
        path = self._file('[DEFAULT]\nlibvirt_uri = qemu+unix:///system?'
                          'socket=/run/agent.sock\n')
        parsed = self.command.get_parser('show').parse_args(
            ['--config-file', path])
        self.command._setup(parsed)
        self.assertEqual('qemu+unix:///system?socket=/run/agent.sock',
                         self.command.uri)
        parsed = self.command.get_parser('show').parse_args(
            ['--config-file', self._file('[DEFAULT]\nlibvirt_type = lxc\n')])
        self.command._setup(parsed)
        self.assertEqual('lxc:///', self.command.uri)

    def test_missing_file_is_one_line(self):
        missing = os.path.join(self.tmp, 'missing.conf')
        self.assertEqual(1, cmd_main.main(['show', '--config-file',
                                           missing]))
        self.assertEqual('show: configuration: Failed to find some config '
                         'files: %s\n' % missing, self.stderr.getvalue())

    def test_bad_value_is_one_line(self):
        path = self._file('[blockacct]\nread_timeout = soon\n')
        self.assertEqual(1, cmd_main.main(['show', '--config-file', path]))
        err = self.stderr.getvalue()
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertIn('show: configuration: Value for option read_timeout',
                      err)
        self.assertIn("could not convert string to float: 'soon'", err)
