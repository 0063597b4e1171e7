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
"""The all-in-one, in a short mode: libvirt guest -> real ceilometer-polling
-> RabbitMQ -> real ceilometer-agent-notification -> Gnocchi.

Nothing is mocked: the samples reach Gnocchi only through the polling
agent, RabbitMQ and the notification agent's gnocchi publisher.  The guest
starts paused (every counter 0 at the agents' first reading), then runs
:data:`ROUNDS` rounds of its known workload and halts: what Gnocchi holds
must reconcile exactly, per disk, with what QEMU counted and with what the
workload did.
"""

import os
import time

import fixtures
from gnocchiclient import exceptions as g_exc
import testtools

from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import allinone
from ceilometer_blockacct.tests.functional.fixtures import ceilometer_agents
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import keystone as ks
from ceilometer_blockacct.tests.functional.fixtures import services
from tools.allinone import report
from tools.allinone import runner

# NOTE: long enough for a full minute bucket and several metricd passes.
POLL_SECONDS = int(os.environ.get('BLOCKACCT_ALLINONE_SECONDS', 60))
# Rounds of the guest's workload: done well inside POLL_SECONDS (vda is
# throttled to 40 IOPS: about 0.3 s a round).
ROUNDS = 40

# Each delta meter and the QEMU counter (query-blockstats) whose increase
# it bills; written here from QEMU's names, not taken from the plugin.
QMP_OF_DELTA = {
    'disk.device.read.bytes.delta': 'rd_bytes',
    'disk.device.write.bytes.delta': 'wr_bytes',
    'disk.device.read.requests.delta': 'rd_operations',
    'disk.device.write.requests.delta': 'wr_operations',
    'disk.device.flush.requests.delta': 'flush_operations',
    'disk.device.read.requests.failed.delta': 'failed_rd_operations',
    'disk.device.write.requests.failed.delta': 'failed_wr_operations',
    'disk.device.flush.requests.failed.delta': 'failed_flush_operations',
    'disk.device.read.requests.invalid.delta': 'invalid_rd_operations',
    'disk.device.write.requests.invalid.delta': 'invalid_wr_operations',
    'disk.device.flush.requests.invalid.delta': 'invalid_flush_operations',
    'disk.device.read.total.time.delta': 'rd_total_time_ns',
    'disk.device.write.total.time.delta': 'wr_total_time_ns',
    'disk.device.flush.total.time.delta': 'flush_total_time_ns',
}
# The cumulative meter of ours that pairs with a delta meter (read/write
# requests and bytes are upstream's, which the all-in-one does not poll).
CUMULATIVE_OF_DELTA = {
    delta: delta[:-len('.delta')] for delta in QMP_OF_DELTA
    if '.bytes.' not in delta and delta not in (
        'disk.device.read.requests.delta',
        'disk.device.write.requests.delta')}
# Counters whose value the workload fixes (times are QEMU's to measure).
WORKLOAD_COUNTERS = tuple(sorted(
    guest_mod.expected_blockstats(guest_mod.Disk('vda'))))


class AllInOneTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(POLL_SECONDS + 900, gentle=True))
        # NOTE: the process's shared Keystone, as the other tests.
        self.aio = self.useFixture(allinone.AllInOne(
            rounds=ROUNDS, paused=True, keystone=ks.get_shared_keystone()))
        self.client = self.aio.stack.client()
        guest = self.aio.guest
        # Every pollster has published a reading of the paused guest (so
        # every baseline is 0) before the guest does any I/O.
        services.wait_until(self._all_metrics_exist, 'first samples of '
                            'every meter in Gnocchi', 180, interval=1,
                            alive=self.aio.check_alive)
        guest.domain.resume()
        resumed = time.monotonic()
        guest.wait_done(timeout=POLL_SECONDS + 300)
        # The guest has halted: its counters are final.  The agents read
        # them at least twice more before polling stops.
        time.sleep(max(3 * self.aio.interval,
                       POLL_SECONDS - (time.monotonic() - resumed)))
        self.aio.check_alive()
        self.final = guest.blockstats()
        self.aio.agents.stop_polling()
        time.sleep(2)  # the notification agent's batch_timeout is 1 s
        self.assertEqual(0, self.aio.wait_processed(timeout=180))

    def _all_metrics_exist(self):
        wanted = set(QMP_OF_DELTA) | set(CUMULATIVE_OF_DELTA.values())
        for disk in allinone.DISKS:
            try:
                resource = self.client.resource.get(
                    meters.RESOURCE_TYPE, self.aio.resource_id(disk.target))
            except g_exc.NotFound:  # not created yet
                return False
            if not wanted <= set(resource['metrics']):
                return False
        return True

    def _sum(self, resource_id, meter):
        rows = self.client.metric.get_measures(
            meter, resource_id=resource_id, aggregation='sum',
            granularity=60)
        return sum(value for _ts, _gran, value in rows)

    def _last(self, resource_id, meter):
        rows = self.client.metric.get_measures(
            meter, resource_id=resource_id, aggregation='last',
            granularity=1)
        return rows[-1][2]

    def test_short_run(self):
        # One run of the services for every check: it is the slow part.
        self._check_counters_are_the_workload()
        self._check_deltas_reconcile_with_counters()
        self._check_gnocchi_resources_and_latency()
        self._check_measures_printed_and_plot_written()

    def _check_counters_are_the_workload(self):
        for index, disk in enumerate(allinone.DISKS):
            want = guest_mod.expected_blockstats(disk, rounds=ROUNDS,
                                                 boot=(index == 0))
            got = {k: self.final[disk.target][k] for k in WORKLOAD_COUNTERS}
            self.assertEqual(want, got, disk.target)

    def _check_deltas_reconcile_with_counters(self):
        for disk in allinone.DISKS:
            rid = self.aio.resource_id(disk.target)
            qmp = self.final[disk.target]
            for delta, field in sorted(QMP_OF_DELTA.items()):
                where = '%s of %s' % (delta, disk.target)
                billed = self._sum(rid, delta)
                # From a baseline of 0: the sum of the deltas is the
                # counter's whole increase, bytes included.
                self.assertEqual(qmp[field], billed, where)
                cumulative = CUMULATIVE_OF_DELTA.get(delta)
                if cumulative:
                    self.assertEqual(self._last(rid, cumulative), billed,
                                     where)

    def _check_gnocchi_resources_and_latency(self):
        self.assertIn(ceilometer_agents.SAMPLE_QUEUE,
                      self.aio.rabbit.queues())
        for disk in allinone.DISKS:
            rid = self.aio.resource_id(disk.target)
            resource = self.client.resource.get(meters.RESOURCE_TYPE, rid)
            self.assertEqual(rid, resource['original_resource_id'])
            self.assertEqual(self.aio.guest.uuid, resource['instance_id'])
            self.assertEqual(disk.target, resource['name'])
            # The customer the guest's Nova metadata names owns it.
            self.assertEqual((self.aio.customer.project_id,
                              self.aio.customer.user_id),
                             (resource['project_id'], resource['user_id']))
        # The throttled boot disk: a per-interval latency at 1 s.
        latency = self.client.metric.get_measures(
            'disk.device.write.latency.avg',
            resource_id=self.aio.resource_id('vda'), aggregation='mean',
            granularity=1)
        self.assertTrue(latency)
        self.assertTrue(all(value > 0 for _ts, _gran, value in latency))
        self.assertEqual([], self.aio.agents.errors('notification'))

    def _check_measures_printed_and_plot_written(self):
        out = self.useFixture(fixtures.StringStream('out')).stream
        report.print_measures(self.aio, out=out)
        out.seek(0)
        text = out.read()
        self.assertNotIn('ERROR', text)
        self.assertIn('disk.device.write.bytes.delta', text)
        self.assertIn('--granularity 60', text)
        self.assertIn(' 60.0 |', text)
        # The customer's own view beside the admin's and another
        # customer's, each with its own credentials.
        out = self.useFixture(fixtures.StringStream('view')).stream
        report.print_customer_view(self.aio, out=out)
        out.seek(0)
        sections = out.read().split('== ')[1:]
        owner, other = self.aio.customer, self.aio.other
        ids = [self.aio.resource_id(d.target) for d in allinone.DISKS]
        titles = [s.partition('\n')[0] for s in sections]
        self.assertEqual(
            ['their disks, as admin:',
             'their disks, as customer %s (owns the guest):'
             % owner.username,
             'their disks, as customer %s (owns nothing):' % other.username,
             '%s of vda, 1 min, as admin:' % report.CUSTOMER_METER[0],
             '%s of vda, 1 min, as customer %s (owns the guest):' % (
                 report.CUSTOMER_METER[0], owner.username),
             '%s of vda, 1 min, as customer %s (owns nothing):' % (
                 report.CUSTOMER_METER[0], other.username),
             'how customer %s runs the same queries (their openrc, then the '
             'gnocchi CLI or Horizon):' % owner.username], titles)
        for rid in ids:
            self.assertIn(rid, sections[0])
            self.assertIn(rid, sections[1])
            self.assertNotIn(rid, sections[2])
        self.assertIn(' 60.0 |', sections[4])
        self.assertIn('ERROR (exit 1)', sections[5])
        self.assertIn('(HTTP 403)', sections[5])
        self.assertIn('export OS_USERNAME=%s' % owner.username, sections[6])
        self.assertIn('export OS_PASSWORD=<their password>', sections[6])
        self.assertNotIn(owner.password, sections[6])
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'allinone.png')
        report.plot(self.client, self.aio, path)
        with open(path, 'rb') as f:
            self.assertEqual(b'\x89PNG', f.read(4))
        self.assertGreater(os.path.getsize(path), 20000)


class RunLockTestCase(testtools.TestCase):

    def test_second_run_says_so_and_exits_non_zero(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'allinone.lock')
        self.useFixture(fixtures.MonkeyPatch(
            'tools.allinone.runner.LOCK_FILE', path))
        err = self.useFixture(fixtures.StringStream('stderr')).stream
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        with runner.RunLock():
            code = runner.main(['--duration', '1'])
        self.assertEqual(runner.EXIT_BUSY, code)
        err.seek(0)
        message = err.read()
        self.assertIn('another all-in-one run is up (pid %d' % os.getpid(),
                      message)
        # Released: the next run may take it.
        with runner.RunLock():
            pass
