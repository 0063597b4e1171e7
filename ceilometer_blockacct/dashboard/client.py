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
"""A Gnocchi client that acts as the logged-in user, and its errors in words.

The panel never uses a service account for customer data: the client
re-scopes the user's own Keystone token (keystoneauth's ``v3.Token``) to
the user's project, finds Gnocchi (``metric``) in that token's catalog,
and Gnocchi's policy decides what comes back.

Settings (Horizon's ``local_settings``), all optional:

- ``BLOCKACCT_GNOCCHI_REGION``: the catalog region of Gnocchi (default:
  the region the user chose in Horizon);
- ``BLOCKACCT_GNOCCHI_TIMEOUT``: seconds per Gnocchi request (10);
- Horizon's ``OPENSTACK_ENDPOINT_TYPE``, ``OPENSTACK_SSL_NO_VERIFY`` and
  ``OPENSTACK_SSL_CACERT`` are honoured as Horizon's own clients do.
"""

DEFAULT_TIMEOUT = 10.0


class Unavailable(Exception):
    """Gnocchi cannot be asked; the message says why, in words."""


class Refused(Exception):
    """Gnocchi refused the user this disk (its policy): show no data."""


def _setting(settings, name, default=None):
    return getattr(settings, name, default)


def interface(settings):
    """keystoneauth's interface name for ``OPENSTACK_ENDPOINT_TYPE``."""
    endpoint_type = _setting(settings, 'OPENSTACK_ENDPOINT_TYPE',
                             'publicURL') or 'publicURL'
    return endpoint_type[:-3] if endpoint_type.endswith('URL') \
        else endpoint_type


def region(settings, user):
    return (_setting(settings, 'BLOCKACCT_GNOCCHI_REGION')
            or getattr(user, 'services_region', None) or None)


def for_user(user, settings):
    """gnocchiclient v1 Client acting as Horizon's ``request.user``."""
    from gnocchiclient.v1 import client
    from keystoneauth1.identity import v3
    from keystoneauth1 import session

    verify = not _setting(settings, 'OPENSTACK_SSL_NO_VERIFY', False)
    if verify and _setting(settings, 'OPENSTACK_SSL_CACERT'):
        verify = settings.OPENSTACK_SSL_CACERT
    auth = v3.Token(auth_url=user.endpoint, token=user.token.id,
                    project_id=user.project_id)
    sess = session.Session(auth=auth, verify=verify, timeout=float(
        _setting(settings, 'BLOCKACCT_GNOCCHI_TIMEOUT', DEFAULT_TIMEOUT)))
    return client.Client(session=sess, adapter_options={
        'region_name': region(settings, user),
        'interface': interface(settings)})


def explain(exc, settings=None, user=None):
    """Map a client error to :class:`Refused`, :class:`Unavailable` or None.

    None: not an error this module knows (let it raise).
    """
    from gnocchiclient import exceptions as g_exc
    from keystoneauth1 import exceptions as ksa_exc

    if isinstance(exc, (g_exc.Forbidden, ksa_exc.Forbidden)):
        return Refused('Gnocchi refused: this disk is not yours to read.')
    if isinstance(exc, ksa_exc.EndpointNotFound):
        where = region(settings, user) if settings is not None else None
        return Unavailable(
            'No metric service (Gnocchi) in your catalog%s: ask your cloud '
            'operator.' % (' for region %s' % where if where else ''))
    # NOTE: gnocchiclient turns keystoneauth's connection errors into its
    # own; Keystone's (the token's re-scoping) stay keystoneauth's.
    if isinstance(exc, (g_exc.ConnectionTimeout, ksa_exc.ConnectTimeout,
                        ksa_exc.RequestTimeout)):
        return Unavailable('Gnocchi did not answer in time: the numbers '
                           'cannot be shown now; try again later.')
    if isinstance(exc, (g_exc.ConnectionFailure, g_exc.UnknownConnectionError,
                        g_exc.SSLError, ksa_exc.ConnectFailure,
                        ksa_exc.UnknownConnectionError, ksa_exc.SSLError,
                        ksa_exc.DiscoveryFailure)):
        return Unavailable('Gnocchi is unreachable: the numbers cannot be '
                           'shown now; try again later.')
    if isinstance(exc, (g_exc.Unauthorized, ksa_exc.Unauthorized)):
        return Unavailable('Your login was refused by Keystone or Gnocchi: '
                           'log in again.')
    if isinstance(exc, (g_exc.ClientException, ksa_exc.HttpError)):
        code = getattr(exc, 'code', None) or getattr(exc, 'http_status',
                                                     None)
        if code is not None and int(code) >= 500:
            return Unavailable('Gnocchi failed (HTTP %s): try again later.'
                               % code)
    return None
