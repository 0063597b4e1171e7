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
"""How ``gnocchi-setup`` authenticates: a URL's credentials, or Keystone.

Basic auth: a URL like ``http://admin:secret@gnocchi:8041`` would put
the password in every request line keystoneauth logs and in every
connection error.  The credentials are split off: the client gets the
bare URL, and the password travels only in the Authorization header
(keystoneauth logs a hash of it).

Keystone: keystoneauth's own command-line options and ``OS_*`` variables,
registered as the ``gnocchi`` CLI registers them (an openrc file works as
it is); the Gnocchi endpoint comes from the catalog (service type
``metric``) unless ``--os-endpoint-override`` names it.  Imported only by
``gnocchi-setup``: keystoneauth is slow to import.
"""

import argparse
import base64
import os
import sys
import urllib.parse

from keystoneauth1 import plugin

from ceilometer_blockacct.cmd import base


def split_credentials(url):
    """``(url without userinfo, user or None, password or None)``."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition('@')
    if not at:
        return url, None, None
    user, colon, password = userinfo.partition(':')
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return (bare, urllib.parse.unquote(user) or None,
            urllib.parse.unquote(password) if colon else None)


class BasicAuth(plugin.BaseAuthPlugin):
    """Gnocchi's basic auth (``[api] auth_mode = basic``) with a password.

    Gnocchi reads only the user; a proxy in front of it may check the
    password, as it did when the URL carried both.
    """

    def __init__(self, user, password, endpoint):
        self._credentials = base64.b64encode(
            ('%s:%s' % (user, password or '')).encode('utf-8')).decode()
        self._endpoint = endpoint

    def get_headers(self, session, **kwargs):
        return {'Authorization': 'basic ' + self._credentials}

    def get_endpoint(self, session, **kwargs):
        return self._endpoint

    def get_auth_ref(self, session, **kwargs):
        return None


# -- Keystone: keystoneauth's options, as the gnocchi CLI takes them ---------

#: what ``--os-auth-type`` is when neither it nor OS_AUTH_TYPE is given
DEFAULT_AUTH_TYPE = 'password'
#: Gnocchi's service type in Keystone's catalog
SERVICE_TYPE = 'metric'
#: keystoneauth plugins of gnocchiclient that talk to Gnocchi directly
GNOCCHI_PLUGINS = ('gnocchi-basic', 'gnocchi-noauth')
#: plugin option -> the option of ours that stands for it (same flag)
_OURS = {'user': 'user'}


class AuthArgumentParser(argparse.ArgumentParser):
    """A parser that adds keystoneauth's options before parsing.

    The options of an auth plugin depend on which plugin
    (``--os-auth-type`` or OS_AUTH_TYPE), so they are registered once the
    arguments are known, as keystoneauth's own CLI helpers do.
    """

    _auth_registered = False

    def register_auth(self, argv):
        if not self._auth_registered:
            self._auth_registered = True
            register_arguments(self, argv)

    def parse_known_args(self, args=None, namespace=None):
        self.register_auth(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def format_help(self):
        self.register_auth([])
        return super().format_help()


def _auth_type_default():
    return os.environ.get('OS_AUTH_TYPE') or os.environ.get(
        'OS_AUTH_PLUGIN') or DEFAULT_AUTH_TYPE


def register_arguments(parser, argv):
    """keystoneauth's session, adapter and auth-plugin options.

    The same as the ``gnocchi`` CLI's: ``--os-auth-type`` and the chosen
    plugin's ``--os-*`` options (each with its ``OS_*`` variable),
    ``--os-region-name``, ``--os-interface``, ``--os-endpoint-override``
    (and ``--os-metric-*``), ``--insecure``, ``--os-cacert``,
    ``--timeout``.  A plugin option whose flag is already ours
    (gnocchi-basic's ``--user``) stays ours.
    """
    from keystoneauth1 import adapter
    from keystoneauth1 import loading

    timeout = parser.get_default('timeout')
    loading.register_session_argparse_arguments(parser)
    if timeout is not None:
        parser.set_defaults(timeout=timeout)
    adapter.register_adapter_argparse_arguments(parser,
                                                service_type=SERVICE_TYPE)
    adapter.register_service_adapter_argparse_arguments(
        parser, service_type=SERVICE_TYPE)
    parser.add_argument('--os-auth-type', '--os-auth-plugin',
                        metavar='<name>', default=_auth_type_default(),
                        help='Keystone auth plugin (env OS_AUTH_TYPE; '
                             'default: %s)' % DEFAULT_AUTH_TYPE)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--os-auth-type', '--os-auth-plugin',
                     default=_auth_type_default())
    known, _rest = pre.parse_known_args(argv)
    try:
        loader = loading.get_plugin_loader(known.os_auth_type)
    except Exception:
        # NOTE: an unknown plugin is reported by load_auth, in one line.
        return
    group = parser.add_argument_group(
        'Authentication options',
        'Options of the %s plugin.' % known.os_auth_type)
    taken = parser._option_string_actions
    for opt in loader.get_options():
        if any(flag in taken for flag in opt.argparse_args):
            continue
        group.add_argument(*opt.argparse_args, default=opt.argparse_default,
                           metavar=opt.metavar, help=opt.help,
                           dest='os_%s' % opt.dest)


def wants_keystone(parsed):
    """Whether the arguments or OS_* variables name Keystone credentials."""
    return bool(getattr(parsed, 'os_auth_url', None)
                or os.environ.get('OS_AUTH_TYPE')
                or os.environ.get('OS_AUTH_PLUGIN')
                or getattr(parsed, 'os_auth_type', None)
                not in (None, DEFAULT_AUTH_TYPE))


def load_auth(parsed):
    """The keystoneauth plugin the arguments name.

    :raises keystoneauth1.exceptions.ClientException: an unknown plugin
        (NoMatchingPlugin) or missing options (MissingRequiredOptions).
    """
    from keystoneauth1 import loading

    loader = loading.get_plugin_loader(parsed.os_auth_type)

    def option(opt):
        value = getattr(parsed, 'os_%s' % opt.dest, None)
        if value is None and opt.dest in _OURS:
            value = getattr(parsed, _OURS[opt.dest], None)
        return value
    return loader.load_from_options_getter(option)


def adapter_options(parsed):
    """Where the Gnocchi endpoint is: catalog filters or an override."""
    metric = 'os_%s_' % SERVICE_TYPE

    def pick(name):
        return getattr(parsed, metric + name, None) or getattr(
            parsed, 'os_' + name, None)
    return {'service_type': pick('service_type'),
            'service_name': pick('service_name'),
            'interface': pick('interface'),
            'region_name': getattr(parsed, 'os_region_name', None),
            'endpoint_override': pick('endpoint_override')}


class AuthError(base.CommandError):
    """Keystone or its catalog said no: one line naming what to fix."""

    exit_code = base.EXIT_USAGE


# Options that scope a login to a project (dropped to tell a refused user
# from a refused project).
_SCOPE = ('project_id', 'project_name', 'project_domain_id',
          'project_domain_name', 'domain_id', 'domain_name', 'system_scope',
          'trust_id')


def _flag(dest):
    return '--os-%s (OS_%s)' % (dest.replace('_', '-'), dest.upper())


def _loader_options(parsed):
    from keystoneauth1 import loading

    return {o.dest for o in loading.get_plugin_loader(
        parsed.os_auth_type).get_options()}


def keystone_client(parsed):
    """A gnocchiclient Client logged in with keystoneauth's options.

    Returns ``(client, Gnocchi URL)``.  The login happens here, so that
    every refusal is Keystone's and is told as such; the Gnocchi URL comes
    from the catalog unless ``--os-endpoint-override`` names it.

    :raises AuthError: unknown plugin, missing options, Keystone down or
        not Keystone, refused credentials, unknown project, refused
        token, no Gnocchi in the catalog.
    """
    from gnocchiclient.v1 import client
    from keystoneauth1 import exceptions as ka_exc
    from keystoneauth1 import loading

    kind = parsed.os_auth_type
    try:
        auth = load_auth(parsed)
    except ka_exc.NoMatchingPlugin:
        raise AuthError('no keystoneauth plugin %r (--os-auth-type or '
                        'OS_AUTH_TYPE): e.g. password, token, '
                        'v3applicationcredential' % kind) from None
    except ka_exc.MissingRequiredOptions as exc:
        raise AuthError('Keystone credentials incomplete (plugin %s): give '
                        '%s' % (kind, ', '.join(
                            _flag(o.dest) for o in exc.options))) from None
    options = _loader_options(parsed)
    if 'password' in options:
        missing = [d for d in ('username', 'password')
                   if not getattr(parsed, 'os_%s' % d, None)
                   and not (d == 'username' and parsed.os_user_id)]
        if missing:
            raise AuthError('Keystone credentials incomplete (plugin %s): '
                            'give %s' % (kind, ', '.join(map(_flag,
                                                             missing))))
    session = loading.load_session_from_argparse_arguments(parsed,
                                                           auth=auth)
    if kind in GNOCCHI_PLUGINS:
        endpoint = getattr(parsed, 'os_endpoint', None)
        return client.Client(session=session), endpoint
    adapter = adapter_options(parsed)
    _login(session, parsed, options)
    endpoint = adapter['endpoint_override']
    if not endpoint:
        filters = {k: v for k, v in adapter.items()
                   if v and k != 'endpoint_override'}
        try:
            endpoint = session.get_endpoint(**filters)
        except ka_exc.EndpointNotFound:
            endpoint = None
        if not endpoint:
            raise AuthError(
                "Keystone's catalog has no %s endpoint for interface %s in "
                'region %s: give --os-region-name / --os-interface (OS_'
                'REGION_NAME, OS_INTERFACE) or --os-endpoint-override' % (
                    filters.get('service_type'), filters.get('interface'),
                    filters.get('region_name', '(any)')))
    return client.Client(session=session, adapter_options=adapter), endpoint


def _login(session, parsed, options):
    """Get a token; every failure an :class:`AuthError`."""
    from keystoneauth1 import exceptions as ka_exc

    where = 'Keystone at %s' % getattr(parsed, 'os_auth_url', None)
    try:
        session.get_auth_headers()
        return
    except ka_exc.ConnectionError as exc:
        raise AuthError('cannot reach %s: %s' % (where, exc)) from None
    except ka_exc.DiscoveryFailure:
        raise AuthError(
            'no Keystone identity API answers at %s: is Keystone up, and '
            'is --os-auth-url (OS_AUTH_URL) its address, e.g. '
            'http://HOST:5000/v3?' % parsed.os_auth_url) from None
    except ka_exc.Unauthorized:
        if 'password' not in options:
            raise AuthError('%s refused the credentials of the %s plugin '
                            '(401 Unauthorized)' % (
                                where, parsed.os_auth_type)) from None
        raise _refused_password(session, parsed, where) from None
    except ka_exc.NotFound:
        if 'token' in options:
            raise AuthError(
                '%s does not accept the token (404: expired, revoked or not '
                'a token): get a new one (openstack token issue) or log in '
                'with a password' % where) from None
        raise AuthError('no Keystone identity API at %s (404): is '
                        '--os-auth-url (OS_AUTH_URL) its address, e.g. '
                        'http://HOST:5000/v3?' % parsed.os_auth_url) \
            from None
    except ka_exc.HttpError as exc:
        raise AuthError('%s answered %s: %s' % (where, exc.http_status,
                                                exc)) from None


def _refused_password(session, parsed, where):
    """Whose fault a 401 to a password login is: the user's or project's."""
    user = parsed.os_username or parsed.os_user_id
    if _user_alone_accepted(session, parsed):
        return AuthError(
            '%s accepted user %s but not project %s (unknown, or the user '
            'has no role on it): check --os-project-name, '
            '--os-project-domain-name (OS_PROJECT_NAME, '
            'OS_PROJECT_DOMAIN_NAME)' % (
                where, user, parsed.os_project_name
                or parsed.os_project_id))
    return AuthError(
        '%s refused the credentials of user %s (401 Unauthorized): check '
        '--os-username, --os-password, --os-user-domain-name (OS_USERNAME, '
        'OS_PASSWORD, OS_USER_DOMAIN_NAME)' % (where, user))


def _user_alone_accepted(session, parsed):
    """Whether the same user and password log in with no project scope."""
    from keystoneauth1 import exceptions as ka_exc
    from keystoneauth1 import loading
    from keystoneauth1 import session as ka_session

    loader = loading.get_plugin_loader(parsed.os_auth_type)
    unscoped = loader.load_from_options_getter(
        lambda opt: None if opt.dest in _SCOPE else getattr(
            parsed, 'os_%s' % opt.dest, None))
    try:
        ka_session.Session(auth=unscoped, verify=session.verify,
                           timeout=session.timeout).get_auth_headers()
    except ka_exc.ClientException:
        return False
    return True
