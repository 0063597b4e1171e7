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
agent, RabbitMQ and the notification agent's gnocchi publisher.
"""

import os
import time

import fixtures
import testtools

from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import allinone
from ceilometer_blockacct.tests.functional.fixtures import ceilometer_agents
from tools.allinone import report
from tools.allinone import runner

# NOTE: long enough for a full minute bucket and several metricd passes.
POLL_SECONDS = int(os.environ.get('BLOCKACCT_ALLINONE_SECONDS', 60))

# Meters whose sum over the run must be > 0, per disk of allinone.DISKS.
NON_ZERO = {
    'vda': ('disk.device.read.bytes.delta', 'disk.device.write.bytes.delta',
            'disk.device.read.requests.delta',
            'disk.device.write.requests.delta',
            'disk.device.read.requests.invalid.delta',
            'disk.device.write.requests.invalid.delta'),
    'vdb': ('disk.device.read.bytes.delta', 'disk.device.write.bytes.delta',
            'disk.device.read.requests.failed.delta',
            'disk.device.write.requests.failed.delta'),
    'hda': ('disk.device.write.bytes.delta',
            'disk.device.flush.requests.delta'),
}
# Counters every disk reports, zero or not (QMP has them all).
PRESENT = ('disk.device.flush.requests', 'disk.device.read.total.time',
           'disk.device.write.total.time',
           'disk.device.read.requests.failed',
           'disk.device.write.requests.failed',
           'disk.device.flush.requests.failed',
           'disk.device.read.requests.invalid',
           'disk.device.write.requests.invalid',
           'disk.device.flush.requests.invalid',
           'disk.device.flush.requests.failed.delta',
           'disk.device.flush.requests.invalid.delta',
           'disk.device.write.queue.depth')


class AllInOneTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(POLL_SECONDS + 600, gentle=True))
        self.aio = self.useFixture(allinone.AllInOne(say=None))
        self.client = self.aio.stack.client()
        time.sleep(POLL_SECONDS)
        self.aio.check_alive()
        # Everything polled is processed before the checks.
        self.aio.agents.stop_polling()
        time.sleep(2)
        self.assertEqual(0, self.aio.wait_processed(timeout=180))

    def _sum(self, resource_id, meter):
        rows = self.client.metric.get_measures(
            meter, resource_id=resource_id, aggregation='sum',
            granularity=60)
        return sum(value for _ts, _gran, value in rows)

    def test_short_run(self):
        # One run of the services for every check: it is the slow part.
        self._check_gnocchi_holds_our_meters_for_each_disk()
        self._check_measures_printed_and_plot_written()

    def _check_gnocchi_holds_our_meters_for_each_disk(self):
        self.assertIn(
            ceilometer_agents.SAMPLE_QUEUE, self.aio.rabbit.queues())
        for disk in allinone.DISKS:
            rid = self.aio.resource_id(disk.target)
            resource = self.client.resource.get(meters.RESOURCE_TYPE, rid)
            self.assertEqual(rid, resource['original_resource_id'])
            self.assertEqual(self.aio.guest.uuid, resource['instance_id'])
            self.assertEqual(disk.target, resource['name'])
            for meter in NON_ZERO[disk.target] + PRESENT:
                self.assertIn(meter, resource['metrics'],
                              '%s of %s' % (meter, disk.target))
            for meter in NON_ZERO[disk.target]:
                self.assertGreater(self._sum(rid, meter), 0,
                                   '%s of %s' % (meter, disk.target))
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
