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
"""The Disk I/O panel in a real browser, on the real cloud.

Customers A and B (:class:`~.fixtures.tenants.Tenants`: Keystone projects
with guests of known workload, the real Ceilometer agents, the shared
Gnocchi) and a real Horizon with the panel (:mod:`.fixtures.horizon`);
Debian's Chromium, headless, driven by selenium through chromedriver.

- A logs in, opens Project > Compute > Disk I/O and sees exactly A's
  disks; for each disk and each range (1 h at 1 s, 1 day at 1 min, 30
  days at 1 h) the Table view's counts (its totals row, and the sum of its
  rows) equal what A's guest was made to do, and its average latency per
  operation equals QEMU's own total time / operations (query-blockstats,
  read from QEMU, not from the plugin).
- A's first disk is throttled with libvirt ``<iotune>`` (10 IOPS), so its
  latency and queue depth show: its charts are screenshotted.
- B sees only B's disk; B opening A's disk URL gets Gnocchi's refusal in
  words and no number.
- B's page with Gnocchi down says so (HTTP 503); a customer with no disk
  yet is told so.
- The admin's view (Admin > Compute > Disk I/O) lists both.

Screenshots and a report of the numbers read from the page go to
``$BLOCKACCT_PANEL_DIR`` (default ``build/test_panel``).
"""

import os
import shutil
import tempfile
import time

import fixtures
import testtools
from testtools import content
import yaml

from ceilometer_blockacct.dashboard import data
from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import horizon
from ceilometer_blockacct.tests.functional.fixtures import tenants

Disk = guest_mod.Disk
Workload = guest_mod.Workload

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
LOG_DIR = os.environ.get('BLOCKACCT_PANEL_DIR') or os.path.join(
    REPO, 'build', 'test_panel')
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'

IOPS = 10
ROUNDS = 20
GUESTS = {
    'a': (Disk('vda', 'virtio', Workload(reads=3, writes=2, sectors=8),
               iotune={'total_iops_sec': IOPS}),
          Disk('hda', 'ide', Workload(writes=1, sectors=4, flushes=1))),
    'b': (Disk('vda', 'virtio', Workload(reads=1, writes=5, sectors=16)),),
}
# The table's counted columns and the QMP counter each one totals; written
# here from QEMU's names.
COUNTER_OF = {
    'read_rps': 'rd_operations', 'write_rps': 'wr_operations',
    'flush_rps': 'flush_operations',
    'read_bps': 'rd_bytes', 'write_bps': 'wr_bytes',
    'read_failed': 'failed_rd_operations',
    'write_failed': 'failed_wr_operations',
    'flush_failed': 'failed_flush_operations',
    'read_invalid': 'invalid_rd_operations',
    'write_invalid': 'invalid_wr_operations',
    'flush_invalid': 'invalid_flush_operations',
}
# QMP's operations and total time counters per operation.
QMP_OPS = {'read': ('rd_operations', 'rd_total_time_ns'),
           'write': ('wr_operations', 'wr_total_time_ns'),
           'flush': ('flush_operations', 'flush_total_time_ns')}
# The page prints 6 significant digits.
DIGITS = 6e-6

# What the agents poll: the panel's metrics, and cpu for Gnocchi's
# instance resource (the instance name the panel shows).
METERS = sorted(set(data.AGGREGATION) | {'cpu'})

_SCRIPT_CELLS = '''
return Array.from(document.querySelectorAll(arguments[0])).map(
    function (td) { return [td.dataset.col, td.dataset.count || null,
                            td.textContent.trim()]; });
'''


class TestPanel(testtools.TestCase):

    def setUp(self):
        super().setUp()
        # NOTE: 300-500 s from a cold process at load 8-10 (see the report).
        self.useFixture(fixtures.Timeout(900, gentle=True))
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                self.fail('%s is missing: tools/install-deps.sh installs '
                          'chromium and chromium-driver (bindep.txt)' % path)
        started = time.monotonic()
        self.tenants = self.useFixture(tenants.Tenants(
            GUESTS, ROUNDS, METERS, wait_for=data.SUMMED, name='panel'))
        tenants_up = time.monotonic()
        self.horizon = self.useFixture(horizon.Horizon(
            self.tenants.keystone, self.tenants.stack.region))
        os.makedirs(LOG_DIR, exist_ok=True)
        self.page_seconds = []
        self.report = {'seconds': {
            'cloud, customers, guests, agents': round(
                tenants_up - started, 1),
            'horizon start': self.horizon.start_seconds}}

    # -- the browser -----------------------------------------------------

    def browser(self):
        from selenium import webdriver
        from selenium.webdriver.chrome import service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        profile = tempfile.mkdtemp(prefix='blockacct-chromium-')
        self.addCleanup(shutil.rmtree, profile, True)
        for arg in ('--headless=new', '--no-sandbox', '--disable-gpu',
                    '--disable-dev-shm-usage', '--window-size=1300,1900',
                    '--user-data-dir=%s' % profile):
            options.add_argument(arg)
        # NOTE: the driver path is given, so selenium's manager never
        # looks for (or downloads) one.
        driver = webdriver.Chrome(options=options, service=service.Service(
            CHROMEDRIVER, log_output=os.path.join(LOG_DIR,
                                                  'chromedriver.log')))
        self.addCleanup(driver.quit)
        driver.set_page_load_timeout(120)
        return driver

    def wait(self, driver, css, timeout=180):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support import ui

        return ui.WebDriverWait(driver, timeout).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def login(self, driver, account, landing='/project/disk_io/'):
        from selenium.webdriver.common.by import By

        driver.delete_all_cookies()
        driver.get('%s/auth/login/?next=%s' % (self.horizon.url, landing))
        driver.find_element(By.ID, 'id_username').send_keys(
            account.username)
        driver.find_element(By.ID, 'id_password').send_keys(
            account.password)
        driver.find_element(By.ID, 'loginBtn').click()
        try:
            self.wait(driver, '#blockacct-disk-io')
        except Exception:
            driver.save_screenshot(os.path.join(LOG_DIR, 'login-failed.png'))
            self.addDetail('horizon', content.text_content(
                self.horizon.log_tail('horizon', 40)))
            raise
        self.assertEqual(self.horizon.url + landing, driver.current_url,
                         driver.page_source[-2000:])

    def listed(self, driver):
        """{Gnocchi id: (instance, disk, volume)} of the index page."""
        from selenium.webdriver.common.by import By

        rows = {}
        for tr in driver.find_elements(By.CSS_SELECTOR,
                                       'tr.blockacct-disk'):
            cells = [td.text for td in tr.find_elements(By.TAG_NAME, 'td')]
            rows[tr.get_attribute('data-disk-id')] = tuple(cells[:3])
        return rows

    def table(self, driver, url):
        """(totals, sums of the rows) of the Table view at ``url``.

        totals: {column: (count, text)}; sums: {column: sum of counts}.
        """
        started = time.monotonic()
        driver.get(url)
        self.wait(driver, '#blockacct-table')
        self.page_seconds.append(time.monotonic() - started)
        totals = {col: (count, text) for col, count, text in
                  driver.execute_script(_SCRIPT_CELLS,
                                        '#blockacct-totals td')}
        sums = {}
        for col, count, _text in driver.execute_script(
                _SCRIPT_CELLS, '#blockacct-table tbody td[data-count]'):
            sums[col] = sums.get(col, 0) + int(count)
        return totals, sums

    @staticmethod
    def status(driver, url):
        """HTTP status of ``url`` in the browser's session.

        (selenium shows pages, not their status.)
        """
        import requests

        cookies = {c['name']: c['value'] for c in driver.get_cookies()}
        return requests.get(url, cookies=cookies, timeout=180).status_code

    def disk_url(self, gnocchi_id, range_key, view, dashboard='project'):
        return '%s/%s/disk_io/%s/?range=%s&view=%s' % (
            self.horizon.url, dashboard, gnocchi_id, range_key, view)

    # -- the test --------------------------------------------------------

    def test_customers_see_their_own_disks_in_horizon(self):
        started = time.monotonic()
        self.tenants.run()
        qmp = {label: g.blockstats()
               for label, g in self.tenants.guests.items()}
        self.report['seconds']['workload, last poll, metricd'] = round(
            time.monotonic() - started, 1)
        driver = self.browser()
        started = time.monotonic()
        self.check_customer_a(driver, qmp['a'])
        self.check_customer_b(driver, qmp['b'])
        self.check_customer_without_disks(driver)
        self.check_admin(driver)
        self.report['seconds']['browser'] = round(
            time.monotonic() - started, 1)
        self.report['seconds']['Table view page, mean of %d' % len(
            self.page_seconds)] = round(
                sum(self.page_seconds) / len(self.page_seconds), 1)
        text = yaml.safe_dump(self.report, width=200, sort_keys=False)
        self.addDetail('panel', content.text_content(text))
        with open(os.path.join(LOG_DIR, 'report.yaml'), 'w') as f:
            f.write(text)

    def check_customer_a(self, driver, qmp):
        t = self.tenants
        self.login(driver, t.customers['a'])
        mine = {t.gnocchi_id('a', d.target): d for d in GUESTS['a']}
        # Exactly A's disks, named after A's instance (Gnocchi's instance
        # resource), no volume.
        self.assertEqual({gid: ('panel-a', d.target, '-')
                          for gid, d in mine.items()}, self.listed(driver))
        driver.save_screenshot(os.path.join(LOG_DIR, 'a-index.png'))
        want = t.workload('a', COUNTER_OF)
        read = {}
        for gid, disk in mine.items():
            for key, rng in data.RANGES.items():
                totals, sums = self.table(
                    driver, self.disk_url(gid, key, 'table'))
                got = {col: int(totals[col][0]) for col in COUNTER_OF}
                self.assertEqual(want[disk.target], got, (disk.target, key))
                self.assertEqual(want[disk.target], sums,
                                 (disk.target, key))
                # Average latency of the range: QEMU's total time over
                # its operations (as printed: 6 digits).
                latency = {}
                for op, (ops, time_ns) in QMP_OPS.items():
                    text = totals['%s_latency' % op][1]
                    if not qmp[disk.target][ops]:
                        self.assertEqual('', text, (disk.target, key, op))
                        continue
                    expected = (qmp[disk.target][time_ns]
                                / qmp[disk.target][ops] / 1e6)
                    self.assertLess(abs(float(text) - expected),
                                    expected * DIGITS,
                                    (disk.target, key, op, text, expected))
                    latency[op] = text
                read['%s %s' % (disk.target, key)] = {
                    'counts (page = workload)': got,
                    'latency ms (page)': latency}
        self.report['A: the Table view (totals row)'] = read
        # The throttled disk: each request waits for the throttle, one at
        # a time (the guest's int 13h calls are synchronous).
        vda = qmp['vda']
        qmp_latency = vda['rd_total_time_ns'] / vda['rd_operations'] / 1e6
        self.assertGreaterEqual(qmp_latency, 0.5 * 1000 / IOPS)
        self.report['A vda: QEMU read latency (ms) under %d IOPS' % IOPS] = \
            round(qmp_latency, 3)
        busy = t.gnocchi_id('a', 'vda')
        driver.get(self.disk_url(busy, 'hour', 'chart'))
        self.wait(driver, '#blockacct-charts[data-drawn="true"]')
        shot = os.path.join(LOG_DIR, 'panel-a-vda-hour.png')
        driver.save_screenshot(shot)
        self.report['screenshot'] = shot

    def check_customer_b(self, driver, qmp):
        from selenium.webdriver.common.by import By

        t = self.tenants
        self.login(driver, t.customers['b'])
        b_vda = t.gnocchi_id('b', 'vda')
        self.assertEqual({b_vda: ('panel-b', 'vda', '-')},
                         self.listed(driver))
        own = self.disk_url(b_vda, 'hour', 'table')
        totals, _sums = self.table(driver, own)
        self.assertEqual(t.workload('b', COUNTER_OF)['vda'], {
            col: int(totals[col][0]) for col in COUNTER_OF})
        # A's disk, by its URL: Gnocchi refuses B, the page says so and
        # shows no number.
        a_vda = t.gnocchi_id('a', 'vda')
        # NOTE: the Table view: the refusal comes before either view.
        theirs = self.disk_url(a_vda, 'hour', 'table')
        driver.get(theirs)
        refused = self.wait(driver, '#blockacct-refused').text
        self.assertEqual('Gnocchi refused: this disk is not yours to read.',
                         refused)
        for css in ('#blockacct-table', '#blockacct-charts',
                    '#blockacct-chart-data', '#blockacct-disk-facts'):
            self.assertEqual([], driver.find_elements(By.CSS_SELECTOR, css),
                             css)
        self.assertNotIn(t.guests['a'].uuid, driver.page_source)
        self.assertEqual(403, self.status(driver, theirs))
        driver.save_screenshot(os.path.join(LOG_DIR, 'b-refused.png'))
        self.report['B opens A\'s disk %s' % a_vda] = 'HTTP 403: ' + refused
        # Gnocchi down: the page says so (HTTP 503), then all is back.
        stack = t.stack
        stack.kill_api()
        try:
            driver.get(own)
            error = self.wait(driver, '#blockacct-error').text
            status = self.status(driver, own)
        finally:
            stack.start_api()
        self.assertEqual((503, 'Gnocchi is unreachable: the numbers cannot '
                          'be shown now; try again later.'), (status, error))
        self.report['B, Gnocchi down'] = 'HTTP %d: %s' % (status, error)

    def check_customer_without_disks(self, driver):
        """A project with no disk measured yet: said in words."""
        self.login(driver, self.tenants.keystone.customer('c'))
        self.assertEqual({}, self.listed(driver))
        empty = self.wait(driver, '#blockacct-no-disks').text
        self.assertTrue(empty.startswith('No disk has been measured in '
                                         'this project yet'), empty)
        self.report['C, no disk yet'] = empty

    def check_admin(self, driver):
        t = self.tenants
        self.login(driver, t.keystone.admin, landing='/admin/disk_io/')
        listed = self.listed(driver)
        for label, disks in GUESTS.items():
            for disk in disks:
                self.assertEqual(('panel-%s' % label, disk.target, '-'),
                                 listed.get(t.gnocchi_id(label,
                                                         disk.target)))
        self.report['admin: disks listed'] = len(listed)
