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
"""Two customers on one cloud: each sees its own disks and nothing else.

The cloud's shape as deployed: Keystone (:mod:`.fixtures.keystone`), Gnocchi
behind keystonemiddleware, Ceilometer's real polling and notification
agents with the ``ceilometer`` service user (the publisher filters the
``service`` project as it does by default), CloudKitty with its keystone
fetcher and the ``rating`` role on each customer's project.  Customers A
and B are Keystone projects, each with a member user and a running guest
whose Nova metadata names that project and user.  The guests start paused
(every counter 0 when first polled), run :data:`ROUNDS` rounds of a known
workload and halt; what each customer reads is compared with its own
workload, never with what Gnocchi or the plugin says.

Gnocchi's policy decides what a customer reads: a resource whose
``project_id`` is the customer's; A's read of B's resource, metric or
measures by id is refused, and a search by ``instance_id`` comes back
empty (the policy turns it into a filter on A's project).  CloudKitty
rates A and B as two scopes; with A's token its v2 summary narrows to A's
project and its v1 total for B is refused.
"""

import decimal
import json
import os
import subprocess
import time

import fixtures
from gnocchiclient import exceptions as g_exc
import testtools
from testtools import content
import yaml

from ceilometer_blockacct import cloudkitty
from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import cloudkitty_stack
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import services
from ceilometer_blockacct.tests.functional.fixtures import tenants

Disk = guest_mod.Disk
Workload = guest_mod.Workload

PERIOD = 60
ROUNDS = 4
GUESTS = {
    'a': (Disk('vda', 'virtio', Workload(reads=3, writes=2, sectors=8)),
          Disk('hda', 'ide', Workload(writes=1, sectors=4, flushes=1))),
    'b': (Disk('vda', 'virtio', Workload(reads=1, writes=5, sectors=16)),),
}
# Each delta meter polled and the QEMU counter (query-blockstats) whose
# increase it bills; written here from QEMU's names.
COUNTER_OF = {
    'disk.device.read.bytes.delta': 'rd_bytes',
    'disk.device.write.bytes.delta': 'wr_bytes',
    'disk.device.read.requests.delta': 'rd_operations',
    'disk.device.write.requests.delta': 'wr_operations',
    'disk.device.flush.requests.delta': 'flush_operations',
}
# Flat prices per unit; binary fractions, exact in InfluxDB's float64.
PRICES = {
    'disk.device.read.bytes.delta': '0.5',
    'disk.device.write.bytes.delta': '0.25',
    'disk.device.read.requests.delta': '2',
    'disk.device.write.requests.delta': '4',
    'disk.device.flush.requests.delta': '8',
}
# What each customer checks with the real gnocchi CLI.
CLI_METER = 'disk.device.write.bytes.delta'
GNOCCHI = os.path.join(services.VENV_BIN, 'gnocchi')


def workload(label):
    """{target: {delta meter: what ROUNDS rounds add}} of a guest."""
    return tenants.workload(GUESTS[label], ROUNDS, COUNTER_OF)


class _Dumper(yaml.SafeDumper):
    """YAML with the CLI's tables as literal blocks, as printed."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    'tag:yaml.org,2002:str', text, style='|' if '\n' in text else None))


_iso = services.iso


class TestTenants(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(1200, gentle=True))
        # NOTE: gnocchi-setup as an operator (the admin's openrc), the
        # customers, their paused guests and the agents: shared with
        # test_panel.
        self.tenants = self.useFixture(tenants.Tenants(
            GUESTS, ROUNDS, sorted(COUNTER_OF), name='tenant'))
        self.keystone = self.tenants.keystone
        self.stack = self.tenants.stack
        self.admin = self.tenants.admin
        self.customers = self.tenants.customers
        self.guests = self.tenants.guests
        self.agents = self.tenants.agents
        self.rid = self.tenants.rid
        self.gnocchi_id = self.tenants.gnocchi_id

    def gnocchi_cli(self, label, *args):
        """``gnocchi ARGS`` with customer ``label``'s openrc (or admin's)."""
        account = self.customers.get(label, self.keystone.admin)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('OS_', 'GNOCCHI_'))}
        env.update(self.stack.env_for(account), PYTHONWARNINGS='ignore')
        return subprocess.run([GNOCCHI] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)

    # -- the test ------------------------------------------------------

    def test_each_customer_sees_its_own_disks(self):
        # CloudKitty first: it rates from the first whole minute after the
        # disks exist in Gnocchi, and the guests start I/O in that minute.
        ck = self.start_cloudkitty()
        first = (int(time.time()) // PERIOD + 1) * PERIOD
        time.sleep(max(0, first + 1 - time.time()))
        stopped = self.tenants.run(timeout=120)
        report = {}
        self.check_what_customer_a_reads(report)
        self.check_a_never_reads_b(report)
        self.check_the_admin_sees_both()
        self.check_cloudkitty(ck, first, stopped, report)
        text = yaml.dump(report, Dumper=_Dumper, width=200, sort_keys=False)
        self.addDetail('tenants', content.text_content(text))
        # NOTE: for a run's record (the detail shows only on failure).
        path = os.environ.get('BLOCKACCT_TENANTS_REPORT')
        if path:
            with open(path, 'w') as f:
                f.write(text)

    def check_what_customer_a_reads(self, report):
        a = self.customers['a']
        mine = sorted(self.rid('a', d.target) for d in GUESTS['a'])
        # gnocchi resource list: A's disks, nobody else's.
        listed = self.gnocchi_cli('a', 'resource', 'list', '--type',
                                  meters.RESOURCE_TYPE, '-f', 'json')
        self.assertEqual(0, listed.returncode, listed.stderr)
        rows = json.loads(listed.stdout)
        self.assertEqual(mine, sorted(r['original_resource_id']
                                      for r in rows))
        self.assertEqual({a.project_id}, {r['project_id'] for r in rows})
        # Every delta meter of every disk at 1 s, 1 min and 1 h: the
        # workload (the guest started at 0, so the sum is all of it).
        client = self.stack.client(a)
        for target, want in workload('a').items():
            rid = self.gnocchi_id('a', target)
            for granularity in (1, 60, 3600):
                got = {m: sum(v for _t, _g, v in client.metric.get_measures(
                    m, resource_id=rid, aggregation='sum',
                    granularity=granularity)) for m in want}
                self.assertEqual(want, got, (target, granularity))
                # The same with the gnocchi CLI, as A types it.
                shown = self.gnocchi_cli(
                    'a', 'measures', 'show', '--resource-id', rid,
                    '--aggregation', 'sum', '--granularity',
                    str(granularity), CLI_METER, '-f', 'json')
                self.assertEqual(0, shown.returncode, shown.stderr)
                self.assertEqual(want[CLI_METER], sum(
                    row['value'] for row in json.loads(shown.stdout)))
        vda = self.gnocchi_id('a', 'vda')
        report['A: gnocchi measures show (60 s) of %s' % vda] = \
            self.gnocchi_cli('a', 'measures', 'show', '--resource-id', vda,
                             '--aggregation', 'sum', '--granularity', '60',
                             CLI_METER).stdout

    def check_a_never_reads_b(self, report):
        """A reading B's disk gets what Gnocchi's policy gives, never data."""
        client = self.stack.client(self.customers['a'])
        b_vda = self.gnocchi_id('b', 'vda')
        b_resource = self.admin.resource.get(meters.RESOURCE_TYPE, b_vda)
        metric_id = b_resource['metrics'][CLI_METER]
        # Ceilometer's id of B's disk names another resource for A.
        self.assertRaises(g_exc.ResourceNotFound, client.resource.get,
                          meters.RESOURCE_TYPE, self.rid('b', 'vda'))
        # By id: Gnocchi finds the resource, then its policy refuses.
        self.assertRaises(g_exc.Forbidden, client.resource.get,
                          meters.RESOURCE_TYPE, b_vda)
        self.assertRaises(g_exc.Forbidden, client.metric.get, metric_id)
        self.assertRaises(g_exc.Forbidden, client.metric.get_measures,
                          metric_id, aggregation='sum', granularity=60)
        self.assertRaises(g_exc.Forbidden, client.metric.get_measures,
                          CLI_METER, resource_id=b_vda, aggregation='sum',
                          granularity=60)
        # A search: the policy is a filter on A's project, so nothing.
        self.assertEqual([], client.resource.search(
            resource_type=meters.RESOURCE_TYPE,
            query={'=': {'instance_id': self.guests['b'].uuid}}))
        # The CLI: one line, exit 1, no measure.
        refused = self.gnocchi_cli('a', 'measures', 'show', '--resource-id',
                                   b_vda, '--aggregation', 'sum',
                                   '--granularity', '60', CLI_METER)
        self.assertEqual(1, refused.returncode)
        self.assertEqual('', refused.stdout)
        self.assertIn('(HTTP 403)', refused.stderr)
        mine = self.gnocchi_cli('b', 'measures', 'show', '--resource-id',
                                b_vda, '--aggregation', 'sum',
                                '--granularity', '60', CLI_METER)
        self.assertEqual(0, mine.returncode, mine.stderr)
        report['same disk %s, 60 s' % b_vda] = {
            'B (its owner)': mine.stdout,
            'A': 'exit %d: %s' % (refused.returncode,
                                  refused.stderr.strip().splitlines()[-1])}

    def check_the_admin_sees_both(self):
        # Keystone's bootstrap admin (admin role, another project).
        admin = self.stack.client(self.keystone.admin)
        ids = {r['original_resource_id']: r for r in admin.resource.list(
            meters.RESOURCE_TYPE, details=True)}
        for label, disks in GUESTS.items():
            who = self.customers[label]
            for disk in disks:
                resource = ids[self.rid(label, disk.target)]
                self.assertEqual(
                    (who.project_id, who.user_id,
                     self.guests[label].uuid, disk.target),
                    (resource['project_id'], resource['user_id'],
                     resource['instance_id'], resource['name']))
                # Created by Ceilometer's service user, in its project.
                self.assertEqual(self.stack.ceilometer.project_id,
                                 resource['created_by_project_id'])

    # -- CloudKitty ----------------------------------------------------

    def start_cloudkitty(self):
        path = self.useFixture(fixtures.TempDir()).join('metrics.yml')
        config = cloudkitty.metrics_config(PERIOD, cloudkitty.raw_units)
        config['metrics'] = {m: e for m, e in config['metrics'].items()
                             if m in PRICES}
        with open(path, 'w') as f:
            f.write(cloudkitty.dump_metrics_config(config))
        ck = self.useFixture(cloudkitty_stack.CloudKittyStack(
            self.stack, path, period=PERIOD, wait_periods=1))
        ck.price(PRICES, _iso(time.time() - 3600))
        start = (int(time.time()) // PERIOD + 1) * PERIOD
        for who in self.customers.values():
            ck.add_scope(who.project_id, _iso(start - PERIOD))
        ck.start_processor()
        return ck

    def check_cloudkitty(self, ck, first, stopped, report):
        last = (int(stopped) // PERIOD + 1) * PERIOD
        for who in self.customers.values():
            services.wait_until(
                lambda: ck.processed_up_to(who.project_id) >= last,
                'CloudKitty rating %s up to %s' % (who.project_name,
                                                   _iso(last)),
                last + 3 * PERIOD - time.time(), alive=ck.check_alive,
                interval=2,
                explain=lambda: ck.log_tail('cloudkitty-processor', 20))
        window = {'begin': _iso(first - PERIOD), 'end': _iso(last)}
        want = {}
        for label, who in self.customers.items():
            qty = {m: sum(disk[m] for disk in workload(label).values())
                   for m in PRICES}
            want[who.project_id] = (
                sum(qty.values()),
                sum(q * decimal.Decimal(PRICES[m]) for m, q in qty.items()))
        # The admin: both scopes, each its own workload x price.
        got = self.summary(ck, None, dict(window, groupby='project_id'))
        self.assertEqual(want, {p: got[p] for p in want})
        # Customer A: its own rating only; CloudKitty narrows the filter
        # to A's project even when A asks for B's.
        a, b = self.customers['a'], self.customers['b']
        self.assertEqual({a.project_id: want[a.project_id]}, self.summary(
            ck, a, dict(window, groupby='project_id')))
        self.assertEqual({a.project_id: want[a.project_id]}, self.summary(
            ck, a, dict(window, groupby='project_id',
                        filters='project_id:%s' % b.project_id)))
        # v1: A's own total, and a refusal for B's.
        own = ck.request('GET', '/v1/report/total', a, params=dict(
            window, tenant_id=a.project_id))
        self.assertEqual(200, own.status_code, own.text)
        self.assertEqual(want[a.project_id][1], decimal.Decimal(
            str(own.json())))
        other = ck.request('GET', '/v1/report/total', a, params=dict(
            window, tenant_id=b.project_id))
        self.assertEqual(403, other.status_code, other.text)
        report['CloudKitty totals (qty, price) per project'] = {
            who.project_name: {'workload': [str(x) for x in want[
                who.project_id]], 'rated': [str(x) for x in got[
                    who.project_id]]} for who in self.customers.values()}
        report['A asks CloudKitty v1 for B'] = '%d %s' % (
            other.status_code, other.text.strip()[:200])

    @staticmethod
    def summary(ck, account, params):
        """{project id: (qty, price)} of CloudKitty's v2 summary."""
        answer = ck.api('GET', '/v2/summary', account, params=params)
        columns = answer['columns']
        out = {}
        for row in answer['results']:
            values = dict(zip(columns, row))
            out[values['project_id']] = (
                decimal.Decimal(str(values['qty'])),
                decimal.Decimal(str(values['rate'])))
        return out
