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
"""The plugin's two libvirt connections: read-only and read-write.

Ceilometer's own helper opens read-only connections only, and QMP needs a
read-write one, so the connections are ours; the URI is Ceilometer's.
"""

from ceilometer.compute.virt.libvirt import utils as lv_utils
import libvirt


def libvirt_uri(conf):
    """The URI of both connections: ours, else Ceilometer's own."""
    uri = conf.blockacct.libvirt_uri or getattr(conf, 'libvirt_uri', None)
    if uri:
        return uri
    return lv_utils.LIBVIRT_PER_TYPE_URIS.get(
        getattr(conf, 'libvirt_type', None), 'qemu:///system')


class Connection:
    """One lazily (re)opened libvirt connection.

    :meth:`get` may block (connecting to a stuck daemon): it runs in a
    pool thread under a deadline, one call at a time (the reader never
    starts a second while one is hung).  :meth:`drop` never blocks.
    """

    def __init__(self, uri, read_only):
        self.uri = uri
        self.read_only = read_only
        self._conn = None

    def get(self):
        """The open connection, opened again if it was dropped or died.

        :raises libvirt.libvirtError: when it cannot be opened.
        """
        conn = self._conn
        if conn is not None and _alive(conn):
            return conn
        self._conn = None
        opener = libvirt.openReadOnly if self.read_only else libvirt.open
        conn = opener(self.uri)
        self._conn = conn
        return conn

    def drop(self):
        """Forget the connection: the next :meth:`get` opens a new one."""
        self._conn = None


def _alive(conn):
    try:
        return conn.isAlive()
    except libvirt.libvirtError:
        return False
