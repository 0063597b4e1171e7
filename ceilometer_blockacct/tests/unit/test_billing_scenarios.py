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
"""Issue 9's over-billing scenarios, through the real pollsters.

Each test plays one host history (see :mod:`fakes`) through every pollster
as Ceilometer loads them and checks what was billed against what the
counters grew.  Every one of them over-billed, raised or stayed silent
before the issue was fixed.
"""

import logging
import os
import sqlite3

import fixtures
from stevedore import named
import testtools

from ceilometer_blockacct import meters
from ceilometer_blockacct.sources import records
from ceilometer_blockacct import state
from ceilometer_blockacct.tests.unit import fakes

GIB = fakes.GIB
READ_BYTES = 'disk.device.read.bytes.delta'
U = fakes.uuid_of(0)
V = fakes.uuid_of(1)
VDA = U + '-vda'


class ScenarioBase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.conf = fakes.make_conf()
        self.exts = fakes.load_extensions(
            self.conf, os.path.join(self.tmp, 'loader'))
        # NOTE: after make_conf(): oslo.log's setup replaces root handlers.
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, format='%(levelname)s %(message)s'))
        self.host = fakes.Host()
        self.reader = fakes.FakeReader()
        self.state_dir = os.path.join(self.tmp, 'state')
        self.driver = fakes.Driver(self.conf, self.exts, self.state_dir,
                                   self.reader)
        self.addCleanup(self.driver.stop_agent)
        # The host's clocks and boot id are the agent's.
        self.useFixture(fixtures.MockPatchObject(
            state, 'boottime_ns', self.host.boottime_ns, create=True))
        self.useFixture(fixtures.MockPatchObject(
            state, 'boot_id', lambda: self.host.boot_id, create=True))
        self.useFixture(fixtures.MockPatch('time.time',
                                           self.host.wall_time))

    def start(self, driver=None):
        escape = (driver or self.driver).start_agent()
        self.assertIsNone(escape)

    def poll(self, served=None, meters_only=None, cache=None, driver=None):
        """One cycle; ``{(meter, resource id): volume}``; nothing raised."""
        served = served or self.host.snapshot()
        self.reader.serve(served.readings)
        samples, escapes = (driver or self.driver).poll(
            served.instances, meters_only, cache)
        self.assertEqual([], [str(e) for e in escapes])
        return {(name, res): vol for name, res, vol in samples}

    def errors(self, *words, levels=('ERROR',)):
        """Log lines at ``levels`` that contain every one of ``words``."""
        return [line for line in self.logger.output.splitlines()
                if line.startswith(levels) and all(w in line for w in words)]

    def assertLogged(self, *words, levels=('ERROR',)):
        if not self.errors(*words, levels=levels):
            self.fail('no %s line with %r in:\n%s' % (
                '/'.join(levels), words, self.logger.output[-3000:]))

    def later(self, seconds=60, uuid=U, dev='vda', amount=None, **grow):
        """Time passes, then the disk's counters grow."""
        self.host.advance(seconds)
        self.host.grow(uuid, dev, amount, **grow)


class TestOverBilling(ScenarioBase):

    def test_refused_reading_never_becomes_the_baseline(self):
        """Scenario 1: a refused reading never becomes the baseline.

        A counter read as 2^64-1 is refused (ERROR); the next normal reading
        bills from the last good one, not the whole counter again.
        """
        self.host.start(U, ('vda',), started_ago_s=600)
        self.host.grow(U, 'vda', rd_bytes=10 * GIB)
        self.start()
        got = [self.poll()]
        self.later(rd_bytes=GIB)
        got.append(self.poll())
        self.later(rd_bytes=GIB)
        bad = fakes.copy_served(self.host.snapshot())
        fakes.glitch_value(bad, U, 'vda', 'rd_bytes', 2 ** 64 - 1)
        got.append(self.poll(bad))
        self.later(rd_bytes=GIB)
        got.append(self.poll())
        # Pre-install usage not billed; the glitch bills nothing; the next
        # reading bills both GiB grown since the last good one.
        self.assertEqual([0, GIB, 0, 2 * GIB],
                         [g.get((READ_BYTES, VDA), 0) for g in got])
        self.assertLogged(VDA, READ_BYTES)

    def test_older_cached_reading_of_another_source_bills_nothing(self):
        """Scenario 2: an older cached reading of another source.

        One meter in two polling sources: source A's reading is derived after
        source B committed a newer one; it bills 0 (ERROR), nothing twice.
        """
        self.host.start(U, ('vda',), started_ago_s=600)
        self.host.grow(U, 'vda', rd_bytes=5 * GIB)
        self.start()
        self.assertEqual(0, self.poll()[(READ_BYTES, VDA)])
        self.later(30, rd_bytes=GIB)
        # Source A's cycle reads (its first pollster), then is delayed...
        cache_a = {}
        self.poll(meters_only={'disk.device.idle.time'}, cache=cache_a)
        self.later(10, rd_bytes=GIB)
        # ...source B (deltas every 10 s) reads and commits meanwhile...
        b = self.poll(meters_only=fakes.DELTA_NAMES)
        # ...then source A derives the rest of its cycle.
        a = self.poll(meters_only=set(meters.BY_NAME) - {
            'disk.device.idle.time'}, cache=cache_a)
        self.later(30, rd_bytes=GIB)
        last = self.poll()
        self.assertEqual([2 * GIB, 0, GIB],
                         [b[(READ_BYTES, VDA)], a.get((READ_BYTES, VDA), 0),
                          last[(READ_BYTES, VDA)]])
        self.assertLogged(VDA, READ_BYTES)

    def test_running_vm_not_read_for_days_keeps_its_baselines(self):
        """Scenario 3: baselines of a running VM are never aged out.

        Its reads hang while the wall clock moves on two days; its QEMU
        process is still listed, so when read again only its growth is billed.
        """
        self.host.start(U, ('vda',), started_ago_s=600)
        self.host.start(V, ('vda',), started_ago_s=600)
        self.host.grow(U, 'vda', rd_bytes=500 * GIB)
        self.start()
        self.poll()
        for _ in range(3):
            self.later(60, rd_bytes=GIB)
            self.host.wall += 86400
            hung = self.host.snapshot()
            del hung.readings[U]
            self.poll(hung)
        self.later(60, rd_bytes=GIB)
        self.assertEqual(4 * GIB, self.poll()[(READ_BYTES, VDA)])

    def test_first_cycle_that_reads_nothing_does_not_make_usage_new(self):
        """Scenario 4: a first cycle that reads nothing.

        The agent's first cycle reads no VM (libvirt down): the next cycle
        must not bill usage from before the install.
        """
        self.host.start(U, ('vda',), started_ago_s=900)
        self.host.grow(U, 'vda', rd_bytes=800 * GIB)
        self.start()
        nothing = fakes.Served(records.Readings(), [U], {})
        self.poll(nothing)
        self.later(60)
        first = self.poll()
        self.later(60, rd_bytes=GIB)
        self.assertEqual([0, GIB], [first.get((READ_BYTES, VDA), 0),
                                    self.poll()[(READ_BYTES, VDA)]])

    def test_second_agent_on_one_state_dir_refuses_to_start(self):
        """Scenario 5: a second agent on one state_dir.

        Two agents on one state would both bill (3 GiB billed as 6): the
        second refuses to start, naming the option.
        """
        self.host.start(U, ('vda',), started_ago_s=600)
        self.start()
        other = fakes.Driver(self.conf, self.exts, self.state_dir,
                             self.reader)
        self.addCleanup(other.stop_agent)
        refused = other.start_agent()
        agents = [self.driver] + ([other] if refused is None else [])
        served = self.host.snapshot()
        for driver in agents:
            self.poll(served, driver=driver)
        self.later(60, rd_bytes=3 * GIB)
        served = self.host.snapshot()
        billed = sum(self.poll(served, driver=d).get((READ_BYTES, VDA), 0)
                     for d in agents)
        self.assertEqual(3 * GIB, billed)
        self.assertIsInstance(refused.error, state.StateError)
        self.assertIn('[blockacct] state_dir', str(refused.error))

    def test_corrupt_page_moves_the_state_aside_and_polling_goes_on(self):
        """Scenario 10: a corrupt page of baselines.sqlite.

        A damaged page (not the header) raised DatabaseError in every stateful
        pollster forever; the file is moved aside and billing goes on without
        double counting.
        """
        self.host.start(U, ('vda',), started_ago_s=600)
        self.host.grow(U, 'vda', rd_bytes=2 * GIB)
        self.start()
        self.poll()
        self.later(rd_bytes=GIB)
        self.assertEqual(GIB, self.poll()[(READ_BYTES, VDA)])
        self.driver.stop_agent()
        path = os.path.join(self.state_dir, 'baselines.sqlite')
        conn = sqlite3.connect(path)
        roots = [r for r, in conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND "
            "name LIKE 'baselines%'")]
        (page_size,), = conn.execute('PRAGMA page_size').fetchall()
        conn.close()
        self.assertNotEqual([], roots)
        with open(path, 'r+b') as f:
            for root in roots:
                f.seek((root - 1) * page_size)
                f.write(b'\xa5' * 64)
        self.start()
        self.later(rd_bytes=GIB)
        after = [self.poll()]
        self.later(rd_bytes=GIB)
        after.append(self.poll())
        # The state is lost: the first reading becomes the baseline.
        self.assertEqual([0, GIB], [a.get((READ_BYTES, VDA), 0)
                                    for a in after])
        self.assertLogged(path, levels=('ERROR', 'WARNING'))

    def test_undecodable_text_in_the_state_moves_it_aside(self):
        """Scenario 10: any corruption, here bytes that are not UTF-8.

        Found by tox -e fuzz: a few random bytes over the text of the
        state's boot ids (its creation mark among them) made the agent's
        start raise UnicodeDecodeError; the file is moved aside instead.
        """
        self.host.start(U, ('vda',), started_ago_s=600)
        self.host.grow(U, 'vda', rd_bytes=2 * GIB)
        self.start()
        self.poll()
        self.driver.stop_agent()
        path = os.path.join(self.state_dir, 'baselines.sqlite')
        with open(path, 'rb') as f:
            data = f.read()
        self.assertIn(b'boot-1', data)
        with open(path, 'wb') as f:
            f.write(data.replace(b'boot-1', b'\xb4\xe4ot-1'))
        self.start()
        self.later(rd_bytes=GIB)
        after = [self.poll()]
        self.later(rd_bytes=GIB)
        after.append(self.poll())
        self.assertEqual([0, GIB], [a.get((READ_BYTES, VDA), 0)
                                    for a in after])
        self.assertLogged(path, levels=('ERROR', 'WARNING'))

    def test_unusable_state_dir_is_an_error_naming_the_option(self):
        """Scenario 13: an unusable state_dir is an ERROR.

        A world-writable state_dir made Ceilometer drop every pollster with a
        DEBUG line only; our ERROR names the option, once.
        """
        conf = fakes.make_conf()
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, format='%(levelname)s %(message)s'))
        shared = os.path.join(self.tmp, 'shared')
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        conf.set_override('state_dir', shared, 'blockacct')
        skipped = []
        named.NamedExtensionManager(
            'ceilometer.poll.compute', names=list(meters.BY_NAME),
            invoke_on_load=True, invoke_args=(conf,),
            # What Ceilometer's polling manager does: a DEBUG line.
            on_load_failure_callback=lambda m, ep, e: skipped.append(
                ep.name))
        self.assertEqual(1, len(self.errors('[blockacct] state_dir',
                                            shared)))
        # Accounting is off, as the ERROR says: no pollster of ours runs.
        self.assertEqual(sorted(meters.BY_NAME), sorted(skipped))


class TestImplausibleValues(ScenarioBase):

    def setUp(self):
        super().setUp()
        self.host.start(U, ('vda', 'vdb'), started_ago_s=600)
        self.host.grow(U, 'vda', 10 ** 6)
        self.host.grow(U, 'vdb', 10 ** 6)
        self.start()
        self.poll()
        self.later(60, amount=10 ** 6)

    def test_counter_of_thousands_of_digits_is_never_published(self):
        """Scenario 14: a counter of 5,001 digits.

        The raw meter published it; it is dropped (ERROR naming the disk) and
        the other disk is unaffected.
        """
        bad = fakes.copy_served(self.host.snapshot())
        fakes.glitch_value(bad, U, 'vda', 'rd_total_time_ns', 10 ** 5000)
        got = self.poll(bad)
        name = 'disk.device.read.total.time'
        self.assertEqual({U + '-vdb': 10 ** 6},
                         {r: v for (n, r), v in got.items() if n == name})
        self.assertEqual([], [(k, v) for k, v in got.items()
                              if not 0 <= v <= records.COUNTER_MAX])
        self.assertLogged(VDA, name)

    def test_latency_is_not_made_of_refused_increases(self):
        """Scenario 14: no latency from refused increases.

        latency.avg came from deltas the delta meter refused (1e-27 ms): no
        latency is published for that interval.
        """
        bad = fakes.copy_served(self.host.snapshot())
        counters = bad.readings[U].disks['vda'].counters
        counters['rd_operations'] += 2 ** 62
        got = self.poll(bad)
        self.assertIsNone(got.get(('disk.device.read.latency.avg', VDA)))
        self.assertEqual(0, got.get(('disk.device.read.requests.delta', VDA),
                                    0))
        self.assertLogged(VDA, 'read.requests.delta')

    def test_idle_time_beyond_the_process_lifetime_is_an_error(self):
        """Scenario 14: an idle time of 1e30 ns.

        It was published without an ERROR; it is not published, and the ERROR
        names the disk.
        """
        bad = fakes.copy_served(self.host.snapshot())
        fakes.glitch_value(bad, U, 'vda', fakes.IDLE, 10 ** 30)
        got = self.poll(bad)
        self.assertIsNone(got.get(('disk.device.idle.time', VDA)))
        self.assertEqual(5 * fakes.S, got[('disk.device.idle.time',
                                           U + '-vdb')])
        self.assertLogged(VDA, 'disk.device.idle.time')
