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
"""``gnocchi-setup`` against a fake Gnocchi on 127.0.0.1 that answers badly.

The real gnocchiclient and keystoneauth talk HTTP to a small server whose
answers each test chooses: every answer that is not Gnocchi's API must end
as one line on stderr and exit code 2, and the credentials of a URL must
never show, with ``--debug`` and ``--log-file`` included.
"""

import base64
import copy
import http.server
import io
import json
import logging
import socket
import threading

import fixtures
import testtools

from ceilometer_blockacct.cmd import main as cmd_main
from ceilometer_blockacct.gnocchi import policies

JSON = 'application/json'
HTML = 'text/html; charset=utf-8'
PAGE = ('<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title>'
        '</head>\n<body>\n<h1>Bad Gateway</h1>\n<p>upstream\nclosed</p>\n'
        '</body>\n</html>\n')
POLICIES = [p['name'] for p in policies.archive_policies()]
RATE = POLICIES[0]


def api_form(policy):
    """A policy as Gnocchi 4.7's API returns it (timedelta spelling)."""
    out = copy.deepcopy(policy)
    out['definition'] = [
        {'granularity': '0:00:01', 'timespan': '1:00:00', 'points': 3600},
        {'granularity': '0:01:00', 'timespan': '7 days, 0:00:00',
         'points': 10080},
        {'granularity': '1:00:00', 'timespan': '400 days, 0:00:00',
         'points': 9600}]
    return out


class FakeGnocchi(fixtures.Fixture):
    """A Gnocchi API on 127.0.0.1: correct unless told otherwise.

    ``answers[(method, path)] = (status, content type, body text)``
    replaces the correct answer; ``requests`` records what was asked.
    """

    def _setUp(self):
        self.policies = {}
        self.attributes = {}
        self.answers = {}
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                fake.requests.append((self.command, self.path,
                                      dict(self.headers)))
                status, ctype, text = fake.answer(self.command, self.path,
                                                  body)
                data = text.encode('utf-8')
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _answer

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        thread = threading.Thread(target=self.server.serve_forever,
                                  daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port

    def answer(self, method, path, body):
        if (method, path) in self.answers:
            return self.answers[(method, path)]
        prefix = '/v1/archive_policy'
        if method == 'GET' and path.startswith(prefix + '/'):
            name = path[len(prefix) + 1:]
            if name in self.policies:
                return 200, JSON, json.dumps(self.policies[name])
            return 404, JSON, json.dumps(
                {'code': 404, 'description':
                 'Archive policy %s does not exist' % name})
        if method == 'POST' and path.rstrip('/') == prefix:
            policy = json.loads(body)
            self.policies[policy['name']] = api_form(policy)
            return 201, JSON, json.dumps(self.policies[policy['name']])
        if method == 'GET' and path == '/v1/resource_type/instance_disk':
            return 200, JSON, json.dumps({'name': 'instance_disk',
                                          'attributes': self.attributes})
        if method == 'PATCH' and path == '/v1/resource_type/instance_disk':
            for op in json.loads(body):
                self.attributes[op['path'].rpartition('/')[2]] = op['value']
            return 200, JSON, json.dumps({'name': 'instance_disk',
                                          'attributes': self.attributes})
        return 404, JSON, json.dumps({'code': 404, 'description': 'no'})


class CliFixture(fixtures.Fixture):
    """Run ``ceilometer-blockacct`` in this process, streams captured."""

    def _setUp(self):
        self.stdout = self.useFixture(fixtures.MonkeyPatch(
            'sys.stdout', io.StringIO())).new_value
        self.stderr = self.useFixture(fixtures.MonkeyPatch(
            'sys.stderr', io.StringIO())).new_value

    def run(self, *argv):
        self.stdout.seek(0)
        self.stdout.truncate()
        self.stderr.seek(0)
        self.stderr.truncate()
        code = cmd_main.main(list(argv))
        return code, self.stdout.getvalue(), self.stderr.getvalue()


class TestMalformedAnswers(testtools.TestCase):
    """Each answer that is not Gnocchi's API: one line, exit 2."""

    def setUp(self):
        super().setUp()
        self.gnocchi = self.useFixture(FakeGnocchi())
        self.cli = self.useFixture(CliFixture())

    def _policy_answer(self, **changes):
        policy = api_form(policies.archive_policies()[0])
        policy.update(changes)
        return policy

    def _fails(self, answer, reason,
               key=('GET', '/v1/archive_policy/' + RATE)):
        self.gnocchi.answers[key] = answer
        code, out, err = self.cli.run('gnocchi-setup', '--gnocchi-url',
                                      self.gnocchi.url)
        self.assertEqual(2, code, err)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertTrue(err.startswith('gnocchi-setup: Gnocchi at %s '
                                       % self.gnocchi.url), err)
        self.assertIn(reason, err)
        self.assertEqual('', out)
        return err

    def _bad_policy(self, reason, **changes):
        return self._fails(
            (200, JSON, json.dumps(self._policy_answer(**changes))), reason)

    def test_policy_without_definition(self):
        policy = self._policy_answer()
        del policy['definition']
        err = self._fails((200, JSON, json.dumps(policy)),
                          'archive policy %s with what is not an archive '
                          'policy: it has no definition' % RATE)
        self.assertIn('archive-policy delete', err)
        self._bad_policy('it has no definition', definition=None)
        self._bad_policy('it has no definition', definition=[])
        self._bad_policy('its definition is a string, not a list',
                         definition='1 second')
        self._bad_policy('a definition entry is a list, not an object',
                         definition=[[1, 3600]])

    def test_null_or_odd_granularity(self):
        for value, shown in ((None, 'None'), ('soon', "'soon'"),
                             (0, '0'), (-60, '-60'), ('nan', "'nan'"),
                             (True, 'True'), ([60], '[60]'),
                             (10 ** 400, '1' + '0' * 56 + '...')):
            definition = [{'granularity': value, 'timespan': '1:00:00',
                           'points': 3600}]
            err = self._bad_policy('granularity ' + shown,
                                   definition=definition)
            self.assertLess(len(err), 600)

    def test_integer_too_long_for_python(self):
        # Python's JSON decoder refuses integers over 4300 digits.
        text = json.dumps(self._policy_answer(back_window=0)).replace(
            '"back_window": 0', '"back_window": ' + '9' * 5000)
        self._fails((200, JSON, text),
                    "gave an answer to GET archive policy %s that is not "
                    "Gnocchi's API (ValueError: Exceeds the limit" % RATE)

    def test_null_or_odd_timespan(self):
        self._bad_policy("granularity '0:00:01' has neither a timespan nor "
                         'a number of points',
                         definition=[{'granularity': '0:00:01',
                                      'timespan': None, 'points': None}])
        self._bad_policy("timespan 'forever' is no length of time",
                         definition=[{'granularity': '0:00:01',
                                      'timespan': 'forever'}])
        self._bad_policy('timespan -3600 is not > 0',
                         definition=[{'granularity': 1,
                                      'timespan': -3600}])
        self._bad_policy("points '3600' is not a whole number in 1..2**53",
                         definition=[{'granularity': 1, 'timespan': None,
                                      'points': '3600'}])

    def test_string_back_window(self):
        self._bad_policy("back_window '1' is not a whole number >= 0",
                         back_window='1')
        self._bad_policy('back_window None is not a whole number >= 0',
                         back_window=None)
        self._bad_policy('back_window -1 is not a whole number >= 0',
                         back_window=-1)

    def test_odd_aggregation_methods(self):
        self._bad_policy("aggregation_methods 'sum' is not a list of names",
                         aggregation_methods='sum')

    def test_list_body(self):
        self._fails((200, JSON, json.dumps([self._policy_answer()])),
                    'gave an answer to GET archive policy %s that is not '
                    "Gnocchi's API (TypeError: list where an object was "
                    'expected)' % RATE)

    def test_string_body(self):
        self._fails((200, JSON, json.dumps(RATE)),
                    "not Gnocchi's API (TypeError: str where an object was "
                    'expected)')
        self._fails((200, JSON, 'null'),
                    "not Gnocchi's API (TypeError: NoneType where an object "
                    'was expected)')

    def test_html_body(self):
        err = self._fails((200, HTML, PAGE),
                          'gave an answer to GET archive policy %s that is '
                          "not Gnocchi's API (JSONDecodeError" % RATE)
        self.assertNotIn('<html>', err)

    def test_html_error_page(self):
        # A proxy's error page: the message is the page, on one line.
        self._fails((502, HTML, PAGE), 'error: <!DOCTYPE html> <html> '
                    '<head><title>502 Bad Gateway</title>')

    def test_error_body_that_is_a_json_string(self):
        # gnocchiclient looks for 'description' in it and then fails.
        self._fails((400, JSON, json.dumps('no description here')),
                    "gave an answer to GET archive policy %s that is not "
                    "Gnocchi's API (AttributeError" % RATE)

    def test_error_body_that_is_a_json_list(self):
        self._fails((500, JSON, json.dumps(['description'])),
                    "not Gnocchi's API (AttributeError")

    def test_html_answer_to_create(self):
        self._fails((201, HTML, PAGE),
                    'gave an answer to POST archive policy %s that is not '
                    "Gnocchi's API" % RATE,
                    key=('POST', '/v1/archive_policy/'))

    def test_html_answer_for_the_resource_type(self):
        self._fails((200, HTML, PAGE),
                    'gave an answer to GET resource type instance_disk '
                    "that is not Gnocchi's API",
                    key=('GET', '/v1/resource_type/instance_disk'))

    def test_a_correct_gnocchi_still_works(self):
        code, out, err = self.cli.run('gnocchi-setup', '--gnocchi-url',
                                      self.gnocchi.url)
        self.assertEqual(0, code, err)
        self.assertEqual(['archive policy %s: created' % n for n in POLICIES]
                         + ['resource type instance_disk: attribute '
                            'volume_id added',
                            'resource type instance_disk: ok'],
                         out.splitlines())
        self.assertEqual('', err)
        code, out, err = self.cli.run('gnocchi-setup', '--gnocchi-url',
                                      self.gnocchi.url)
        self.assertEqual(0, code, err)
        self.assertEqual(['archive policy %s: ok' % n for n in POLICIES]
                         + ['resource type instance_disk: ok'],
                         out.splitlines())
        # Without credentials in the URL: basic auth as --user, no password.
        self.assertEqual('basic ' + base64.b64encode(b'admin:').decode(),
                         self.gnocchi.requests[-1][2]['Authorization'])


class TestCredentialsInTheUrl(testtools.TestCase):
    """user:password@ in --gnocchi-url is used, and never shown."""

    USER = 'ops'
    PASSWORD = 'pa@ss:w0rd'
    QUOTED = 'pa%40ss%3Aw0rd'

    def setUp(self):
        super().setUp()
        self.gnocchi = self.useFixture(FakeGnocchi())
        self.cli = self.useFixture(CliFixture())
        self.log_file = self.useFixture(fixtures.TempDir()).join('cli.log')
        # NOTE: other tests of this process set up oslo.log, whose
        # default_log_levels leave keystoneauth at WARN; the command runs
        # in a fresh process where it is not.
        ks_log = logging.getLogger('keystoneauth')
        self.addCleanup(ks_log.setLevel, ks_log.level)
        ks_log.setLevel(logging.NOTSET)

    def _url(self, base):
        return base.replace('://', '://%s:%s@' % (self.USER, self.QUOTED))

    def _run(self, url, *extra):
        code, out, err = self.cli.run('--log-file', self.log_file,
                                      'gnocchi-setup', '--gnocchi-url', url,
                                      *extra)
        with open(self.log_file) as f:
            log = f.read()
        for text in (out, err, log):
            for secret in (self.PASSWORD, self.QUOTED, 'w0rd'):
                self.assertNotIn(secret, text)
        return code, out, err, log

    def test_success_with_debug(self):
        code, out, err, log = self._run(self._url(self.gnocchi.url),
                                        '--debug')
        self.assertEqual(0, code, err)
        self.assertIn('resource type instance_disk: ok', out)
        # --debug logged the HTTP requests, without the credentials.
        self.assertIn('REQ: curl -g -i -X GET %s/v1/archive_policy/%s'
                      % (self.gnocchi.url, RATE), log)
        self.assertIn('/v1/archive_policy/%s' % RATE, err)
        # The server got them in the Authorization header only.
        expected = 'basic ' + base64.b64encode(
            ('%s:%s' % (self.USER, self.PASSWORD)).encode()).decode()
        for _method, path, headers in self.gnocchi.requests:
            self.assertEqual(expected, headers['Authorization'], path)
            self.assertNotIn('@', path)

    def test_malformed_answer_with_debug(self):
        self.gnocchi.answers[('GET', '/v1/archive_policy/' + RATE)] = (
            200, HTML, PAGE)
        code, out, err, log = self._run(self._url(self.gnocchi.url),
                                        '--debug')
        self.assertEqual(2, code)
        self.assertIn('gnocchi-setup: Gnocchi at %s gave an answer'
                      % self.gnocchi.url, err)
        # --debug adds the traceback of the error, redacted as well.
        self.assertIn('Traceback', log)

    def test_unreachable(self):
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            closed = 'http://127.0.0.1:%d' % sock.getsockname()[1]
        code, out, err, log = self._run(self._url(closed))
        self.assertEqual(2, code)
        self.assertTrue(err.startswith(
            'gnocchi-setup: cannot reach Gnocchi at %s: ' % closed), err)
        self.assertEqual(1, len(err.splitlines()), err)

    def test_error_message_echoing_the_url_is_redacted(self):
        # A server (or proxy) that quotes the URL it was given.
        self.gnocchi.answers[('GET', '/v1/archive_policy/' + RATE)] = (
            500, 'text/plain', 'upstream %s failed'
            % self._url('http://backend:8041'))
        code, out, err, log = self._run(self._url(self.gnocchi.url))
        self.assertEqual(2, code)
        self.assertIn('error: upstream http://***@backend:8041 failed', err)
