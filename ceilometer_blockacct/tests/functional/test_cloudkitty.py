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
"""Real CloudKitty rates what the real pollsters published, exactly.

The chain is the production one from the pollsters on: our pollsters run
by Ceilometer's AgentManager (:mod:`.agent`) against a real QEMU guest whose
workload is known, Ceilometer's gnocchi publisher (:mod:`.publish`), a real
Gnocchi, and a real ``cloudkitty-processor`` (keystone fetcher: the guest's
project, a Keystone project on which CloudKitty's user has the ``rating``
role; gnocchi collector with Keystone auth; hashmap rating configured
through ``cloudkitty-api`` with the admin's token; InfluxDB storage) rating
60 s periods with ``force_granularity: 60``.

Sample timestamps: the polls run within a few seconds, so before
publishing each poll's samples are stamped in a distinct minute (second 30
of minute k, for poll k); the values are the pollsters' own.  The minutes
are the FUTURE ones that follow the disks' creation in Gnocchi, not past
ones: the collector always queries Gnocchi with ``use_history``, which only
finds a resource's metrics in periods its revisions overlap, and a
revision starts when the publisher creates the resource.  So the test
waits (about 6 minutes) until CloudKitty (``wait_periods = 1``) has rated
the four minutes.  The scope is seeded (``POST /v2/scope``) to start at the
first of them, not at the start of the month.

The four periods (guest: the 4-disk guest of :mod:`.test_pollsters`, 3
paced rounds per boot):

0. agent A polls after the first round (the rest is still to come);
1. agent A is gone; agent B (same state directory) polls once the guest
   is done: the agent restart;
2. the guest's QEMU restarts (counters back to zero); B polls after its
   first round;
3. B polls once the guest is done.

The delta meters add up to 2 boots x 3 rounds of the workload, per period
as published, in CloudKitty's quantities and prices.  The cumulative
``disk.device.flush.requests`` rated with ``rate:sum`` (on
``blockacct-rate``) misses the first period, and in the QEMU restart
period it rates (counter after restart - counter before), a negative
quantity: why the delta meters exist.
"""

import datetime
import decimal
import os
import time

import fixtures
import testtools
from testtools import content
import yaml

from ceilometer_blockacct import cloudkitty
from ceilometer_blockacct.gnocchi import policies as gnocchi
from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional import agent as agent_mod
from ceilometer_blockacct.tests.functional.fixtures import cloudkitty_stack
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host
from ceilometer_blockacct.tests.functional.fixtures import services
from ceilometer_blockacct.tests.functional import publish
from ceilometer_blockacct.tests.functional import test_pollsters

PERIOD = 60
ROUNDS = 3
# NOTE: between two rounds agent A polls every meter in-process; on a
# loaded 2-core machine that took more than the 1.5 s it once had.
PACE_US = 4000000
CUMULATIVE = 'disk.device.flush.requests'
DELTA_OF_CUMULATIVE = 'disk.device.flush.requests.delta'

# Flat prices per unit (factor 1: per byte, per request).  Binary
# fractions, so InfluxDB's float64 sums stay exact.  Invalid requests are
# priced 0: the provider's choice to count them but not bill them.
PRICES = {
    'disk.device.read.bytes.delta': '0.5',
    'disk.device.write.bytes.delta': '0.25',
    'disk.device.read.requests.delta': '2',
    'disk.device.write.requests.delta': '4',
    'disk.device.flush.requests.delta': '8',
    'disk.device.read.requests.failed.delta': '16',
    'disk.device.write.requests.failed.delta': '32',
    'disk.device.flush.requests.failed.delta': '64',
    'disk.device.read.requests.invalid.delta': '0',
    'disk.device.write.requests.invalid.delta': '0',
    'disk.device.flush.requests.invalid.delta': '0',
    # The guest discards nothing: these rate 0 whatever their price.
    'disk.device.discard.bytes.delta': '0.125',
    'disk.device.discard.requests.delta': '2',
    'disk.device.discard.requests.failed.delta': '16',
    'disk.device.discard.requests.invalid.delta': '0',
    CUMULATIVE: '8',
}
TARGETS = [d.target for d in test_pollsters.DISKS]


BOOTS = 2


def workload(target):
    """Delta meters of the whole test: BOOTS boots of ROUNDS rounds."""
    want = test_pollsters.expected_deltas(target, BOOTS * ROUNDS)
    if target == TARGETS[0]:
        # NOTE: expected_deltas counts SeaBIOS's boot read once per
        # round; it happens once per boot.
        extra = BOOTS * ROUNDS - BOOTS
        want['disk.device.read.requests.delta'] -= (
            extra * guest_mod.BIOS_READS_ON_BOOT_DISK)
        want['disk.device.read.bytes.delta'] -= (
            extra * guest_mod.BIOS_READ_BYTES_ON_BOOT_DISK)
    return want


_iso = services.iso


class TestCloudKittyRating(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.host = libvirt_host.get_shared_host()
        self.logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(name)s %(message)s'))
        # NOTE: the shared Gnocchi: the keystone fetcher rates only the
        # projects where this CloudKitty's own user has the rating role.
        self.gnocchi = gnocchi_stack.get_shared_stack()
        self.customer = self.gnocchi.keystone.customer('rated')
        tmp = self.useFixture(fixtures.TempDir()).path
        self.metrics_file = os.path.join(tmp, 'metrics.yml')
        with open(self.metrics_file, 'w') as f:
            f.write(cloudkitty.dump_metrics_config(cloudkitty.metrics_config(
                PERIOD, cloudkitty.raw_units,
                extra={CUMULATIVE: 'rate:sum'})))
        self.ck = self.useFixture(cloudkitty_stack.CloudKittyStack(
            self.gnocchi, self.metrics_file, period=PERIOD, wait_periods=1,
            keep_dir=bool(os.environ.get('BLOCKACCT_KEEP_CLOUDKITTY'))))
        self.publisher = self.useFixture(publish.GnocchiPublisher(
            self.gnocchi.ceilometer_config_file))

    def poll_and_publish(self, agent, k):
        """Poll; publish the samples stamped in the k-th minute."""
        samples = agent.poll()
        # NOTE: read now: publishing (Keystone, resources created in
        # Gnocchi) takes longer than the guest's pause on a loaded machine.
        self.rounds_at_poll = self.guest.rounds_done()
        if self.base is None:
            # NOTE: the first minute that starts after this first publish
            # creates the resources in Gnocchi.
            self.base = ((int(time.time()) + 5) // PERIOD + 1) * PERIOD
        stamp = _iso(self.base + k * PERIOD + PERIOD / 2)
        for s in samples:
            s['timestamp'] = stamp
        ours = [s for s in samples
                if s['resource_id'].startswith(self.guest.uuid)]
        self.publisher.publish(ours)
        return {t: agent_mod.by_meter(ours, '%s-%s' % (self.guest.uuid, t))
                for t in TARGETS}

    def wait_processed(self, scope, last, timeout=120):
        services.wait_until(
            lambda: self.ck.processed_up_to(scope) >= last.timestamp(),
            'CloudKitty rating up to %s' % last, timeout,
            alive=self.ck.check_alive, interval=1,
            explain=lambda: self.ck.log_tail('cloudkitty-processor', 30))

    def test_rated_quantities_and_prices_are_the_workload(self):
        self.base = None
        state = agent_mod.new_state_dir(self)
        # An agent that has polled before (its state exists), as in
        # test_pollsters.agent_with_state.
        agent_a = self.useFixture(agent_mod.PollingAgent(self.host, state))
        witness = guest_mod.Guest(self.host, [guest_mod.Disk('vda')])
        with witness:
            witness.wait_done()
            agent_a.poll()
        self.guest = self.useFixture(guest_mod.Guest(
            self.host, test_pollsters.DISKS, rounds=ROUNDS, pace_us=PACE_US,
            nova=guest_mod.NovaMeta(
                user_id=self.customer.user_id,
                user_name=self.customer.username,
                project_id=self.customer.project_id,
                project_name=self.customer.project_name)))
        published = []
        # 0: a partial boot, agent A.
        self.guest.wait_for('.')
        published.append(self.poll_and_publish(agent_a, 0))
        self.assertLess(self.rounds_at_poll, ROUNDS)
        # 1: agent restart: A stops, B takes over its state directory.
        self.guest.wait_done()
        agent_a.stop()
        agent_b = self.useFixture(agent_mod.PollingAgent(self.host, state))
        published.append(self.poll_and_publish(agent_b, 1))
        # 2: QEMU restart, counters from zero; B polls mid-boot.
        self.guest.restart()
        self.guest.wait_for('.')
        published.append(self.poll_and_publish(agent_b, 2))
        # 3: the rest of the second boot.
        self.guest.wait_done()
        published.append(self.poll_and_publish(agent_b, 3))
        self.assertIn('runs in a new QEMU process', self.logger.output)

        base = self.base
        minutes = [base + k * PERIOD for k in range(4)]
        # The pollsters themselves: the deltas add up to the workload.
        for target in TARGETS:
            want = workload(target)
            got = {k: sum(p[target][k] for p in published) for k in want}
            self.assertEqual(want, got, target)

        # Gnocchi has every measure aggregated before CloudKitty asks.
        client = self.gnocchi.client()
        rated_meters = [m.name for m in cloudkitty.billable_meters()]
        for target in TARGETS:
            ids = client.resource.get(meters.RESOURCE_TYPE, '%s-%s' % (
                self.guest.uuid, target))['metrics']
            for name in rated_meters + [CUMULATIVE]:
                client.metric.get_measures(
                    ids[name], refresh=True, granularity=PERIOD,
                    aggregation=gnocchi.AGGREGATION_METHODS[
                        meters.BY_NAME[name].archive_policy][0])

        project = self.guest.nova.project_id
        since = _iso(base - 3600)
        self.ck.price(PRICES, since)
        self.ck.add_scope(project, _iso(base - PERIOD))
        self.ck.start_processor()
        last = datetime.datetime.fromtimestamp(minutes[-1],
                                               datetime.timezone.utc)
        deadline = last.timestamp() + 4 * PERIOD
        self.wait_processed(project, last, timeout=deadline - time.time())
        rated = self.ck.rated(_iso(base), _iso(base + 4 * PERIOD))

        # Every delta meter, every disk, every period: CloudKitty's
        # quantity is what was published, its price quantity x price.
        totals = {}
        for k, minute in enumerate(minutes):
            for target in TARGETS:
                for meter in cloudkitty.billable_meters():
                    name = meter.name
                    qty = published[k][target][name]
                    got = rated.get((minute, name, self.guest.uuid, target))
                    self.assertEqual(
                        (qty, qty * decimal.Decimal(PRICES[name])), got,
                        (k, target, name))
                    t = totals.setdefault((target, name), [0, 0])
                    t[0] += got[0]
                    t[1] += got[1]
        self.table = []
        for target in TARGETS:
            want = workload(target)
            for name, qty in want.items():
                price = decimal.Decimal(PRICES[name])
                self.assertEqual([qty, qty * price], totals[(target, name)],
                                 (target, name))
                self.table.append((target, name, qty, totals[(target, name)]))

        # The cumulative counter with rate:sum: per period the increase
        # of the last point over the previous period's last point.
        cum = [p['hda'][CUMULATIVE] for p in published]
        want = [None, cum[1] - cum[0], cum[2] - cum[1], cum[3] - cum[2]]
        got = [rated.get((m, CUMULATIVE, self.guest.uuid, 'hda'), (None,))[0]
               for m in minutes]
        self.assertEqual(want, got)
        deltas = [p['hda'][DELTA_OF_CUMULATIVE] for p in published]
        self.assertEqual(BOOTS * ROUNDS * 4, sum(deltas))
        # Across the QEMU restart the counter went down: rate:sum rates a
        # negative quantity (unless the poll came after the whole boot,
        # when it rates 0), while the delta is the new process's count.
        self.assertLessEqual(got[2], 0)
        self.assertEqual(deltas[2], cum[2])
        self.assertEqual(ROUNDS * 4 - cum[0], sum(q for q in got if q))
        report = yaml.safe_dump(
            {'deltas (disk, meter, workload, [qty, price])': [
                [str(x) for x in row] for row in self.table],
             'hda flush requests per period': {
                 'published cumulative': cum,
                 'rated rate:sum of the cumulative': [
                     None if q is None else str(q) for q in got],
                 'rated sum of the delta': deltas}}, width=200)
        self.addDetail('rated', content.text_content(report))
        # NOTE: for a run's record (the detail shows only on failure).
        path = os.environ.get('BLOCKACCT_RATED_REPORT')
        if path:
            with open(path, 'w') as f:
                f.write(report)
