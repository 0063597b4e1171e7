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
"""Issue 9 scenarios 6 and 12: deadlines count from when a call started.

Only reads that started and overran are hung; queued ones run.  Connect
and listAllDomains run under the deadline too.
"""

import threading
import time

from ceilometer_blockacct.tests.unit.sources import fakes

FakeDom = fakes.FakeDom


def slow(seconds):
    def answer():
        time.sleep(seconds)
        return fakes.reply()
    return answer


class TestQueuedReadsRun(fakes.ReaderTestCase):
    """Scenario 6."""

    def test_stuck_vms_never_cost_healthy_ones(self):
        """6 stuck VMs of 48, 4 concurrent reads: every healthy VM is read.

        Before: reads still queued at the deadline were recorded as hung
        and never ran (22-23 healthy VMs skipped every cycle).
        """
        self.conf.set_override('max_concurrent_reads', 4, 'blockacct')
        self.conf.set_override('read_timeout', 0.3, 'blockacct')
        # 'a-' sorts first: the stuck ones take every thread first.
        stuck = [FakeDom('a-stuck-%d' % i, qmp=self.hang())
                 for i in range(6)]
        healthy = [FakeDom('h-%02d' % i) for i in range(42)]
        r, _ = self.make(stuck + healthy)
        everyone = [d.uuid for d in stuck + healthy]
        threads = threading.active_count()
        for cycle in range(3):
            started = time.monotonic()
            got = r.read(everyone)
            took = time.monotonic() - started
            self.assertEqual({d.uuid for d in healthy}, set(got), cycle)
            # Stuck calls take a slot for one deadline each, in waves of 4.
            self.assertLess(took, 0.3 * 3 + 1.0, cycle)
        self.assertEqual([1] * 6, [d.qmp_reads for d in stuck])
        self.assertEqual([3] * 42, [d.qmp_reads for d in healthy])
        self.assertEqual(6, self.logger.output.count(
            'did not answer query-blockstats within 0.3 s'))
        # At most one thread per stuck VM plus the pool's 4.
        self.assertLessEqual(threading.active_count() - threads, 6 + 4)

    def test_slow_reads_in_waves_are_not_hung(self):
        """250 ms reads, 40 VMs, deadline 1 s: none is declared hung.

        Scaled down by 4 (reads of 100 ms, deadline 0.4 s): 10 waves of
        4 reads take 1 s, far past the deadline, and each read is on time.
        """
        self.conf.set_override('max_concurrent_reads', 4, 'blockacct')
        self.conf.set_override('read_timeout', 0.4, 'blockacct')
        doms = [FakeDom('vm-%02d' % i, qmp=slow(0.1)) for i in range(40)]
        r, _ = self.make(doms)
        started = time.monotonic()
        got = r.read([d.uuid for d in doms])
        took = time.monotonic() - started
        self.assertEqual({d.uuid for d in doms}, set(got))
        self.assertNotIn('did not answer', self.logger.output)
        # The documented bound: (ceil(40 / 4) + 1) * 0.4 s, plus the
        # listing's deadline.
        self.assertLess(took, 11 * 0.4 + 0.4)
        self.assertGreaterEqual(took, 1.0)


class TestListingDeadline(fakes.ReaderTestCase):
    """Scenario 12."""

    def test_stuck_listing_does_not_stall_the_cycle(self):
        """A listing stuck 8 s with read_timeout 1 s (here 0.3 s).

        Before: the cycle waited for listAllDomains (9 s for 8 s stuck).
        The VMs are read from bulk stats on the other connection.
        """
        self.conf.set_override('read_timeout', 0.3, 'blockacct')
        doms = [FakeDom('u1', 3), FakeDom('u2', 4)]
        ro = fakes.FakeConn(doms)
        r, rw = self.make(doms, ro=ro)
        rw.on_list = lambda: self.release.wait(8)
        for cycle in range(2):
            started = time.monotonic()
            got = r.read(['u1', 'u2'])
            self.assertLess(time.monotonic() - started, 0.3 * 2 + 0.5)
            self.assertEqual({'u1': 'bulk', 'u2': 'bulk'},
                             {u: g.source for u, g in got.items()})
            self.assertEqual({'u1': 3, 'u2': 4}, got.listing.domains)
        # The stuck listing is not started again while it runs.
        self.assertEqual(1, rw.listings)
        self.assertIn('listing of %s: did not answer listAllDomains within '
                      '0.3 s' % r.uri, self.logger.output)
        self.assertIn('still has not returned', self.logger.output)
        self.release.set()
        rw.on_list = None
        for _ in range(100):
            got = r.read(['u1', 'u2'])
            if {g.source for g in got.values()} == {'qmp'}:
                break
        self.assertEqual({'qmp'}, {g.source for g in got.values()})

    def test_stuck_connect_does_not_stall_the_cycle(self):
        self.conf.set_override('read_timeout', 0.3, 'blockacct')
        doms = [FakeDom('u1', 3)]
        conn = fakes.FakeConn(doms)

        def opener(uri):
            self.release.wait(8)
            return conn
        r, _ = self.make(doms, ro=conn, opener=opener)
        started = time.monotonic()
        got = r.read(['u1'])
        self.assertLess(time.monotonic() - started, 0.3 * 2 + 0.5)
        self.assertEqual('bulk', got['u1'].source)

    def test_stuck_bulk_call_is_bounded(self):
        self.conf.set_override('enable_qmp', False, 'blockacct')
        self.conf.set_override('read_timeout', 0.3, 'blockacct')
        calls = []

        def stuck(doms):
            calls.append(1)
            self.release.wait(8)
            return []
        r, _ = self.make([FakeDom('u1')], bulk=stuck)
        for _ in range(2):
            started = time.monotonic()
            got = r.read(['u1'])
            self.assertLess(time.monotonic() - started, 0.3 + 0.5)
            self.assertEqual({}, got)
            self.assertIsNone(got.listing)
        self.assertEqual(1, len(calls))
