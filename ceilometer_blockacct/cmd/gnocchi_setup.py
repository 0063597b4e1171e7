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
"""``ceilometer-blockacct gnocchi-setup``.

The one place that creates, checks and updates our archive policies in
Gnocchi (idempotent), and checks that the ``instance_disk`` resource type,
which ``ceilometer-upgrade`` creates, exists.  It logs in to Keystone with
keystoneauth's options, as the ``gnocchi`` CLI does (see
:mod:`.gnocchi_auth`), or uses basic auth (``--gnocchi-url``) or the
publisher's ``[service_credentials]`` (``--config-file``).  Every failure,
a refusal of Keystone or an answer of Gnocchi it cannot read included, is
one line on stderr and exit code 2; credentials in the URL are never
printed.
"""

import argparse
import contextlib

from ceilometer_blockacct.cmd import base
from ceilometer_blockacct.gnocchi import policies
from ceilometer_blockacct.gnocchi import resource_type as resource_type_mod
from ceilometer_blockacct import meters


class SetupError(base.CommandError):
    """A failure to report as one line, with what to do about it."""

    exit_code = base.EXIT_USAGE


def make_client(url=None, user='admin', config_file=None, timeout=10.0):
    """A gnocchiclient v1 Client.

    With ``config_file``: the way Ceilometer's publisher builds it, from the
    file's ``[service_credentials]`` (keystone, or ``auth_type =
    gnocchi-basic`` with ``user`` and ``endpoint``).  Otherwise basic auth
    (Gnocchi's ``[api] auth_mode = basic``) as ``user`` at ``url``; a user
    and password in ``url`` win over ``user``.
    """
    if config_file:
        return _client_like_the_publisher(config_file, timeout)
    from gnocchiclient import auth
    from gnocchiclient.v1 import client
    from keystoneauth1 import session

    from ceilometer_blockacct.cmd import gnocchi_auth

    url, url_user, password = gnocchi_auth.split_credentials(url)
    if password is None:
        plugin = auth.GnocchiBasicPlugin(user=url_user or user, endpoint=url)
    else:
        plugin = gnocchi_auth.BasicAuth(url_user or user, password, url)
    return client.Client(session=session.Session(auth=plugin,
                                                 timeout=timeout))


def _client_like_the_publisher(config_file, timeout):
    # NOTE: imported here: Ceilometer's option tree is slow to import and
    # only needed on this path.
    from ceilometer import gnocchi_client
    from ceilometer import keystone_client
    from ceilometer import opts as ceilo_opts
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    for group, options in ceilo_opts.list_opts():
        conf.register_opts(list(options),
                           group=None if group == 'DEFAULT' else group)
    keystone_client.register_keystoneauth_opts(conf)
    try:
        conf(['--config-file', config_file], project='ceilometer',
             default_config_files=[])
        keystone_client.post_register_keystoneauth_opts(conf)
        return gnocchi_client.get_gnocchiclient(conf,
                                                request_timeout=timeout)
    except cfg.Error as exc:
        raise SetupError('configuration: %s' % exc) from exc


def bare_url(url):
    """``url`` as it may be shown: without user and password."""
    if not url:
        return url
    from ceilometer_blockacct.cmd import gnocchi_auth
    return gnocchi_auth.split_credentials(url)[0]


def translate_error(exc, url=None, auth='basic'):
    """Turn a client or connection exception into a :class:`SetupError`.

    Returns None for exceptions this module does not know.
    """
    from gnocchiclient import exceptions as g_exc
    from keystoneauth1 import exceptions as ka_exc

    where = ' at %s' % bare_url(url) if url else ''
    status = getattr(exc, 'code', None) or getattr(exc, 'http_status', None)
    if isinstance(exc, (g_exc.ConnectionFailure, g_exc.ConnectionTimeout,
                        g_exc.UnknownConnectionError, g_exc.SSLError,
                        ka_exc.ConnectionError)):
        return SetupError('cannot reach Gnocchi%s: %s' % (where, exc))
    if auth == 'keystone' and (isinstance(exc, (
            g_exc.Unauthorized, ka_exc.Unauthorized)) or status == 401):
        return SetupError(
            'Gnocchi%s refused the token (401 Unauthorized): expired, '
            'revoked or not a token; get a new one (openstack token issue) '
            'or log in with a password (--os-password, OS_PASSWORD)' % where)
    if auth == 'keystone' and (isinstance(exc, (
            g_exc.Forbidden, ka_exc.Forbidden)) or status == 403):
        return SetupError(
            'Gnocchi%s refused the request (403 Forbidden): managing '
            'archive policies needs the admin role: log in as a user with '
            'the admin role on its project (--os-username, '
            '--os-project-name or OS_USERNAME, OS_PROJECT_NAME)' % where)
    if isinstance(exc, (g_exc.Unauthorized, ka_exc.Unauthorized)) \
            or status == 401:
        return SetupError(
            'Gnocchi%s refused the credentials (401 Unauthorized): check '
            '--user, or [service_credentials] in the config file' % where)
    if isinstance(exc, (g_exc.Forbidden, ka_exc.Forbidden)) \
            or status == 403:
        return SetupError(
            'Gnocchi%s refused the request (403 Forbidden): managing '
            'archive policies needs the admin role (user "admin" with '
            'basic auth)' % where)
    if isinstance(exc, (g_exc.ClientException, ka_exc.ClientException)):
        return SetupError('Gnocchi%s error: %s' % (where, exc))
    return None


@contextlib.contextmanager
def _request(what, url, auth='basic'):
    """Any failure of one request to Gnocchi, as one :class:`SetupError`."""
    try:
        yield
    except Exception as exc:
        error = translate_error(exc, url, auth)
        if error is not None:
            raise error from exc
        if isinstance(exc, (ValueError, TypeError, AttributeError,
                            KeyError)):
            # NOTE: gnocchiclient parses bodies without checking them: an
            # HTML page, a list or a string where it expects a JSON object
            # fails inside it with one of these.
            where = ' at %s' % bare_url(url) if url else ''
            raise SetupError('Gnocchi%s gave an answer to %s that is not '
                             "Gnocchi's API (%s: %s)"
                             % (where, what, type(exc).__name__, exc)
                             ) from exc
        raise


class _Gnocchi(object):
    """The few requests gnocchi-setup makes, each failure a SetupError."""

    def __init__(self, client, url=None, auth='basic'):
        self.client = client
        self.url = url
        self.auth = auth

    def get_policy(self, name):
        """Gnocchi's answer for policy ``name``, or None if it has none."""
        from gnocchiclient import exceptions as g_exc

        what = 'GET archive policy %s' % name
        with _request(what, self.url, self.auth):
            try:
                answer = self.client.archive_policy.get(name)
            except (g_exc.ArchivePolicyNotFound, g_exc.NotFound):
                return None
            if not isinstance(answer, dict):
                # NOTE: not a policy at all (a list, a string): more likely
                # a wrong URL than a policy to fix.
                raise TypeError('%s where an object was expected'
                                % type(answer).__name__)
        return answer

    def create_policy(self, policy):
        """Create ``policy``; False if it exists already (a race)."""
        from gnocchiclient import exceptions as g_exc

        with _request('POST archive policy %s' % policy['name'], self.url,
                      self.auth):
            try:
                self.client.archive_policy.create(policy)
                return True
            except g_exc.ArchivePolicyAlreadyExists:
                return False

    def update_policy(self, name, body):
        with _request('PATCH archive policy %s' % name, self.url,
                      self.auth):
            self.client.archive_policy.update(name, body)

    def has_resource_type(self, name):
        from gnocchiclient import exceptions as g_exc

        with _request('GET resource type %s' % name, self.url,
                      self.auth):
            try:
                self.client.resource_type.get(name)
                return True
            except (g_exc.ResourceTypeNotFound, g_exc.NotFound):
                return False

    def plan(self, policy, existing):
        """:func:`.policies.plan_archive_policy`, a bad answer a SetupError."""
        try:
            return policies.plan_archive_policy(policy, existing)
        except policies.MalformedPolicy as exc:
            where = ' at %s' % bare_url(self.url) if self.url else ''
            raise SetupError(
                'Gnocchi%s answered GET archive policy %s with what is not '
                'an archive policy: %s; fix or delete it (gnocchi '
                'archive-policy delete NAME) and run gnocchi-setup again'
                % (where, policy['name'], exc)) from exc


def ensure_archive_policies(client, wanted=None, url=None, auth='basic'):
    """Create missing policies, update changeable ones, report the rest.

    :returns: list of ``(name, action)`` with action in 'created',
        'updated', 'ok'.
    :raises SetupError: naming every difference Gnocchi cannot change in
        place (granularities, aggregation methods) and what to do; and for
        any failed request or unreadable answer.
    """
    server = _Gnocchi(client, url, auth)
    wanted = policies.archive_policies() if wanted is None else wanted
    report, conflicts = [], []
    for policy in wanted:
        action, details = server.plan(policy,
                                      server.get_policy(policy['name']))
        if action == 'create':
            if server.create_policy(policy):
                report.append((policy['name'], 'created'))
                continue
            # NOTE: another setup run created it meanwhile: check what it
            # created like any existing policy.
            action, details = server.plan(policy,
                                          server.get_policy(policy['name']))
            if action == 'create':
                raise SetupError('Gnocchi%s says archive policy %s exists '
                                 'and that it does not' % (
                                     ' at %s' % bare_url(url) if url else '',
                                     policy['name']))
        if action == 'update':
            server.update_policy(policy['name'], details)
            report.append((policy['name'], 'updated'))
        elif action == 'conflict':
            conflicts.append('%s: %s' % (policy['name'], '; '.join(details)))
        else:
            report.append((policy['name'], 'ok'))
    if conflicts:
        raise SetupError(
            'archive policy differs in what Gnocchi cannot change in place '
            '(%s); delete it once no metric uses it (gnocchi '
            'archive-policy delete NAME) and run gnocchi-setup again'
            % ' | '.join(conflicts))
    return report


def check_resource_type(client, name=meters.RESOURCE_TYPE, url=None,
                        auth='basic'):
    """Raise :class:`SetupError` unless resource type ``name`` exists."""
    if not _Gnocchi(client, url, auth).has_resource_type(name):
        raise SetupError(
            'Gnocchi has no resource type %r: run ceilometer-upgrade (it '
            'creates Ceilometer\'s resource types) and then gnocchi-setup '
            'again' % name)


def setup(client, resource_type=meters.RESOURCE_TYPE, url=None,
          auth='basic'):
    """Everything ``gnocchi-setup`` does; returns the policy report.

    :raises SetupError: for every failure (see the module docstring).
    """
    report = ensure_archive_policies(client, url=url, auth=auth)
    check_resource_type(client, resource_type, url, auth)
    return report


def ensure_attributes(client, resource_type=meters.RESOURCE_TYPE, url=None,
                      auth='basic'):
    """Add our optional attributes (``volume_id``) to ``resource_type``.

    :returns: the names of those added (see
        :func:`.resource_type.ensure_resource_attributes`).
    :raises SetupError: for every failure.
    """
    try:
        return resource_type_mod.ensure_resource_attributes(
            client, resource_type, lambda what: _request(what, url, auth))
    except resource_type_mod.AttributeConflict as exc:
        raise SetupError(str(exc)) from exc


KEYSTONE_EPILOG = """\
With neither --gnocchi-url nor --config-file, gnocchi-setup logs in to
Keystone like the gnocchi CLI: --os-auth-type (default password) and its
--os-* options, or an openrc file's OS_* variables; Gnocchi's endpoint is
the catalog's "metric" service (--os-region-name, --os-interface) unless
--os-endpoint-override names it.  The user needs the admin role.
"""


class GnocchiSetup(base.Command):
    """Create or check our Gnocchi archive policies (idempotent).

    Also checks that the instance_disk resource type, which
    ceilometer-upgrade creates, exists, and adds its optional volume_id
    attribute when missing.  Logs in to Keystone (keystoneauth's --os-*
    options or OS_* variables), or basic auth with --gnocchi-url, or as
    Ceilometer's publisher with --config-file.  Any failure: one line on
    stderr, exit code 2.
    """

    def get_parser(self, prog_name):
        from ceilometer_blockacct.cmd import gnocchi_auth

        # NOTE: keystoneauth's options are added when the arguments are
        # parsed: which ones depends on --os-auth-type (or OS_AUTH_TYPE).
        parser = gnocchi_auth.AuthArgumentParser(
            prog=prog_name, description=self.get_description(),
            epilog=KEYSTONE_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument('--gnocchi-url',
                            help='Gnocchi endpoint, with basic auth '
                                 '(Gnocchi [api] auth_mode = basic); '
                                 'user:password@ in it is never printed')
        parser.add_argument('--user', default='admin',
                            help='basic-auth user (default: admin; Gnocchi '
                                 'gives the admin role to "admin" only)')
        parser.add_argument('--config-file',
                            help='a ceilometer.conf whose '
                                 '[service_credentials] reach Gnocchi, as '
                                 'the publisher does')
        # NOTE: --timeout is keystoneauth's session option, with our
        # default: a stalled Gnocchi must not hang a deployment script.
        parser.set_defaults(timeout=10.0)
        return parser

    def take_action(self, parsed_args):
        from ceilometer_blockacct.cmd import gnocchi_auth

        url = parsed_args.gnocchi_url
        config_file = parsed_args.config_file
        keystone = not (url or config_file) and gnocchi_auth.wants_keystone(
            parsed_args)
        if [bool(url), bool(config_file), keystone].count(True) != 1:
            raise SetupError(
                'give exactly one of --gnocchi-url (basic auth), '
                '--config-file (a ceilometer.conf) and Keystone credentials '
                '(--os-auth-url, --os-username, --os-password, '
                "--os-project-name, or an openrc file's OS_* variables)")
        auth = 'basic'
        if keystone:
            auth = 'keystone'
            client, url = gnocchi_auth.keystone_client(parsed_args)
        else:
            try:
                client = make_client(url, parsed_args.user, config_file,
                                     parsed_args.timeout)
            except Exception as exc:
                # NOTE: e.g. keystoneauth's missing-option errors of a
                # [service_credentials] section.
                error = translate_error(exc, url)
                if error is None:
                    raise
                raise error from exc
        report = setup(client, url=url, auth=auth)
        added = ensure_attributes(client, url=url, auth=auth)
        for name, action in report:
            self.app.stdout.write('archive policy %s: %s\n' % (name, action))
        for name in added:
            self.app.stdout.write('resource type %s: attribute %s added\n'
                                  % (meters.RESOURCE_TYPE, name))
        self.app.stdout.write('resource type %s: ok\n'
                              % meters.RESOURCE_TYPE)
        return base.EXIT_OK
