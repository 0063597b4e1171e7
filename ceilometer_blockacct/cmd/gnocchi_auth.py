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
"""Credentials of a ``--gnocchi-url``, kept out of every URL we use.

A URL like ``http://admin:secret@gnocchi:8041`` would put the password in
every request line keystoneauth logs and in every connection error.  The
credentials are split off: the client gets the bare URL, and the password
travels only in the Authorization header (keystoneauth logs a hash of it).
Imported only by ``gnocchi-setup``: keystoneauth is slow to import.
"""

import base64
import urllib.parse

from keystoneauth1 import plugin


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
