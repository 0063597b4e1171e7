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
"""``gnocchi-setup`` and ``gen-resources`` subcommands.

``gnocchi-setup`` is the one place that creates, checks and updates our
archive policies in Gnocchi (idempotent), and checks that the
``instance_disk`` resource type, which ``ceilometer-upgrade`` creates,
exists.  Every failure is one line on stderr and exit code 2.
"""

import argparse
import logging
import sys
import warnings

from ceilometer_blockacct import gnocchi
from ceilometer_blockacct import meters

EXIT_OK = 0
EXIT_ERROR = 2


class SetupError(Exception):
    """A failure to report as one line, with what to do about it."""


def make_client(url=None, user='admin', config_file=None, timeout=10.0):
    """A gnocchiclient v1 Client.

    With ``config_file``: the way Ceilometer's publisher builds it, from the
    file's ``[service_credentials]`` (keystone, or ``auth_type =
    gnocchi-basic`` with ``user`` and ``endpoint``).  Otherwise basic auth
    (Gnocchi's ``[api] auth_mode = basic``) as ``user`` at ``url``.
    """
    if config_file:
        # NOTE: imported here: Ceilometer's option tree is slow to import
        # and only needed on this path.  Its imports warn that eventlet is
        # deprecated, which would bury our one-line error on stderr.
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore',
                                    message=r'\s*Eventlet is deprecated')
            from ceilometer import gnocchi_client
            from ceilometer import keystone_client
            from ceilometer import opts as ceilo_opts
        from oslo_config import cfg

        conf = cfg.ConfigOpts()
        for group, options in ceilo_opts.list_opts():
            conf.register_opts(list(options),
                               group=None if group == 'DEFAULT' else group)
        keystone_client.register_keystoneauth_opts(conf)
        conf(['--config-file', config_file], project='ceilometer',
             default_config_files=[])
        keystone_client.post_register_keystoneauth_opts(conf)
        return gnocchi_client.get_gnocchiclient(conf,
                                                request_timeout=timeout)
    from gnocchiclient import auth
    from gnocchiclient.v1 import client
    from keystoneauth1 import session

    plugin = auth.GnocchiBasicPlugin(user=user, endpoint=url)
    return client.Client(session=session.Session(auth=plugin,
                                                 timeout=timeout))


def translate_error(exc, url=None):
    """Turn a client or connection exception into a :class:`SetupError`.

    Returns None for exceptions this module does not know.
    """
    from gnocchiclient import exceptions as g_exc
    from keystoneauth1 import exceptions as ka_exc

    where = ' at %s' % url if url else ''
    status = getattr(exc, 'code', None) or getattr(exc, 'http_status', None)
    if isinstance(exc, (g_exc.ConnectionFailure, g_exc.ConnectionTimeout,
                        g_exc.UnknownConnectionError, g_exc.SSLError,
                        ka_exc.ConnectionError)):
        return SetupError('cannot reach Gnocchi%s: %s' % (where, exc))
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


def ensure_archive_policies(client, wanted=None):
    """Create missing policies, update changeable ones, report the rest.

    :returns: list of ``(name, action)`` with action in 'created',
        'updated', 'ok'.
    :raises SetupError: naming every difference Gnocchi cannot change in
        place (granularities, aggregation methods) and what to do.
    """
    from gnocchiclient import exceptions as g_exc

    wanted = gnocchi.archive_policies() if wanted is None else wanted
    report, conflicts = [], []
    for policy in wanted:
        try:
            existing = client.archive_policy.get(policy['name'])
        except (g_exc.ArchivePolicyNotFound, g_exc.NotFound):
            existing = None
        action, details = gnocchi.plan_archive_policy(policy, existing)
        if action == 'create':
            try:
                client.archive_policy.create(policy)
                report.append((policy['name'], 'created'))
                continue
            except g_exc.ArchivePolicyAlreadyExists:
                # NOTE: another setup run created it meanwhile: check what
                # it created like any existing policy.
                action, details = gnocchi.plan_archive_policy(
                    policy, client.archive_policy.get(policy['name']))
        if action == 'update':
            client.archive_policy.update(policy['name'], details)
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


def check_resource_type(client, name=meters.RESOURCE_TYPE):
    """Raise :class:`SetupError` unless resource type ``name`` exists."""
    from gnocchiclient import exceptions as g_exc

    try:
        client.resource_type.get(name)
    except (g_exc.ResourceTypeNotFound, g_exc.NotFound):
        raise SetupError(
            'Gnocchi has no resource type %r: run ceilometer-upgrade (it '
            'creates Ceilometer\'s resource types) and then gnocchi-setup '
            'again' % name) from None


def setup(client, resource_type=meters.RESOURCE_TYPE):
    """Everything ``gnocchi-setup`` does; returns the policy report."""
    report = ensure_archive_policies(client)
    check_resource_type(client, resource_type)
    return report


def _parser():
    parser = argparse.ArgumentParser(
        prog='ceilometer-blockacct gnocchi-setup',
        description=__doc__.split('\n\n')[1].replace('\n', ' '))
    parser.add_argument('--gnocchi-url',
                        help='Gnocchi endpoint, with basic auth '
                             '(Gnocchi [api] auth_mode = basic)')
    parser.add_argument('--user', default='admin',
                        help='basic-auth user (default: admin; Gnocchi '
                             'gives the admin role to "admin" only)')
    parser.add_argument('--config-file',
                        help='a ceilometer.conf whose [service_credentials] '
                             'reach Gnocchi, as the publisher does')
    parser.add_argument('--timeout', type=float, default=10.0,
                        help='seconds per HTTP request (default: 10)')
    parser.add_argument('--debug', action='store_true',
                        help='log HTTP requests and retries on stderr')
    return parser


def main(argv=None):
    """Entry point of ``ceilometer-blockacct gnocchi-setup``."""
    args = _parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG)
    else:
        # NOTE: keystoneauth logs each connection retry as a warning,
        # which Python would print; the error line below says it all.
        logging.getLogger().addHandler(logging.NullHandler())
    if bool(args.gnocchi_url) == bool(args.config_file):
        print('gnocchi-setup: give exactly one of --gnocchi-url and '
              '--config-file', file=sys.stderr)
        return EXIT_ERROR
    try:
        client = make_client(args.gnocchi_url, args.user, args.config_file,
                             args.timeout)
        report = setup(client)
    except SetupError as exc:
        print('gnocchi-setup: %s' % exc, file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        error = translate_error(exc, args.gnocchi_url)
        if error is None:
            raise
        print('gnocchi-setup: %s' % error, file=sys.stderr)
        return EXIT_ERROR
    for name, action in report:
        print('archive policy %s: %s' % (name, action))
    print('resource type %s: ok' % meters.RESOURCE_TYPE)
    return EXIT_OK


def gen_resources(argv=None):
    """Entry point of ``ceilometer-blockacct gen-resources``."""
    parser = argparse.ArgumentParser(
        prog='ceilometer-blockacct gen-resources',
        description='Write the Gnocchi resources definition for '
                    "Ceilometer's gnocchi publisher: the installed "
                    "Ceilometer's whole file plus our policies and meters.")
    parser.add_argument('--output', '-o',
                        help='file to write (default: stdout)')
    args = parser.parse_args(argv)
    text = gnocchi.dump_resources_definition()
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK
