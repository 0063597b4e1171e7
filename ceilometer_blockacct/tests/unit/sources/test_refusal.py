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
"""Issue 9 scenario 8: a QMP refusal is retried with exponential backoff.

Before: one transient authorisation error turned QMP off for the agent's
life, so the failed/invalid meters were never emitted again.
"""

import errno

import libvirt

from ceilometer_blockacct.tests.unit.sources import fakes

FakeDom = fakes.FakeDom


class Refuser:
    """A QMP answer refused while ``refusing`` is set."""

    def __init__(self, error):
        self.error = error
        self.refusing = True

    def __call__(self):
        if self.refusing:
            raise self.error
        return fakes.reply()


class TestBackoff(fakes.ReaderTestCase):

    def sources(self, r, uuids=('u1', 'u2')):
        got = r.read(list(uuids))
        return {u: got[u].source for u in uuids if u in got}

    def test_one_vm_refused_then_allowed(self):
        refuser = Refuser(fakes.lv_error(libvirt.VIR_ERR_ACCESS_DENIED))
        dom = FakeDom('u1', qmp=refuser)
        r, _ = self.make([dom, FakeDom('u2')])
        self.assertEqual({'u1': 'bulk', 'u2': 'qmp'}, self.sources(r))
        self.now += 59
        self.assertEqual({'u1': 'bulk', 'u2': 'qmp'}, self.sources(r))
        self.assertEqual(1, dom.qmp_reads)
        refuser.refusing = False
        self.now += 1
        self.assertEqual({'u1': 'qmp', 'u2': 'qmp'}, self.sources(r))
        self.assertEqual(1, self.logger.output.count('ERROR'))
        self.assertIn('QMP read of u1 works again after 1 failed',
                      self.logger.output)

    def test_delay_doubles_up_to_an_hour_and_resets(self):
        refuser = Refuser(fakes.lv_error(libvirt.VIR_ERR_ACCESS_DENIED))
        dom = FakeDom('u1', qmp=refuser)
        r, _ = self.make([dom])
        tries = []
        start = self.now
        # Poll every 10 s for 4 hours.
        for _ in range(4 * 360):
            before = dom.qmp_reads
            self.sources(r, ['u1'])
            if dom.qmp_reads > before:
                tries.append(self.now - start)
            self.now += 10
        self.assertEqual([0, 60, 180, 420, 900, 1860, 3780, 7380, 10980],
                         tries)
        self.assertEqual(1, self.logger.output.count('ERROR'))
        refuser.refusing = False
        self.now = start + 18180
        self.assertEqual({'u1': 'qmp'}, self.sources(r, ['u1']))
        refuser.refusing = True
        self.sources(r, ['u1'])
        self.now += 60
        self.sources(r, ['u1'])
        # A new episode: logged again, its backoff from 60 s again.
        self.assertEqual(2, self.logger.output.count('ERROR'))
        self.assertEqual(12, dom.qmp_reads)

    def test_read_only_connection_is_retried(self):
        refuser = Refuser(fakes.lv_error(
            libvirt.VIR_ERR_OPERATION_DENIED,
            msg='read only access prevents virDomainQemuMonitorCommand'))
        doms = [FakeDom('u1', qmp=refuser), FakeDom('u2', qmp=refuser)]
        r, conn = self.make(doms)
        self.assertEqual({'u1': 'bulk', 'u2': 'bulk'}, self.sources(r))
        self.now += 30
        self.assertEqual({'u1': 'bulk', 'u2': 'bulk'}, self.sources(r))
        # QMP is off for the connection: not even listed on it.
        self.assertEqual(1, conn.listings)
        self.now += 30
        refuser.refusing = False
        self.assertEqual({'u1': 'qmp', 'u2': 'qmp'}, self.sources(r))
        self.assertEqual(1, self.logger.output.count('ERROR'))
        self.assertIn('works again', self.logger.output)

    def test_refused_connection_is_retried(self):
        """The socket refuses us (EACCES): bulk stats, QMP retried."""
        doms = [FakeDom('u1')]
        conn = fakes.FakeConn(doms)
        refused = [True]

        def opener(uri):
            if refused[0]:
                raise fakes.lv_error(
                    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC,
                    "Failed to connect socket to '/run/libvirt/libvirt-sock'"
                    ": Permission denied", int1=errno.EACCES)
            return conn
        r, _ = self.make(doms, ro=conn, opener=opener)
        self.assertEqual({'u1': 'bulk'}, self.sources(r, ['u1']))
        self.assertIn('ERROR listing of', self.logger.output)
        self.assertIn('QMP retried in 60 s', self.logger.output)
        refused[0] = False
        self.now += 60
        self.assertEqual({'u1': 'qmp'}, self.sources(r, ['u1']))
