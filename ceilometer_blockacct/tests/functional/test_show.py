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
"""``ceilometer-blockacct show`` against a real libvirtd and guest."""

import json
import os
import subprocess
import sys

import fixtures
import testtools

from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host

Disk = guest_mod.Disk
Workload = guest_mod.Workload
CLI = os.path.join(os.path.dirname(sys.executable), 'ceilometer-blockacct')
DISKS = [Disk('vda', 'virtio', Workload(reads=6, writes=3, sectors=8,
                                        invalid_writes=1)),
         Disk('hda', 'ide', Workload(writes=2, sectors=1, flushes=5))]


def show(*args):
    return subprocess.run([CLI, 'show'] + list(args), capture_output=True,
                          text=True, timeout=60)


class TestShow(testtools.TestCase):

    def test_json_values_equal_the_workload(self):
        host = libvirt_host.get_shared_host()
        guest = self.useFixture(guest_mod.Guest(host, DISKS))
        guest.wait_done()
        out = show('--libvirt-uri', host.uri, '-f', 'json',
                   '--interval', '0.2')
        self.assertEqual(0, out.returncode, out.stderr)
        rows = {(r['domain'], r['dev']): r for r in json.loads(out.stdout)}
        vda = rows[(guest.name, 'vda')]
        # 6 reads of 8 sectors, plus SeaBIOS's boot-sector read.
        self.assertEqual((7, 6 * 8 * 512 + 512), (vda['rd_ops'],
                                                  vda['rd_bytes']))
        self.assertEqual((3, 3 * 8 * 512, 1),
                         (vda['wr_ops'], vda['wr_bytes'],
                          vda['wr_invalid']))
        hda = rows[(guest.name, 'hda')]
        self.assertEqual((2, 5), (hda['wr_ops'], hda['fl_ops']))
        self.assertEqual('qmp', hda['source'])
        # The guest has halted: nothing moved between the two reads.
        self.assertEqual((0.0, 0.0), (vda['r/s'], vda['read.queue.depth']))
        self.assertIsNone(vda['read.latency.avg'])

    def test_table_and_bulk_only(self):
        host = libvirt_host.get_shared_host()
        guest = self.useFixture(guest_mod.Guest(host, DISKS))
        guest.wait_done()
        out = show('--libvirt-uri', host.ro_uri, '--no-qmp', '-c', 'dev',
                   '-c', 'source', '-c', 'fl_ops', '-c', 'fl_failed',
                   '--interval', '0.1')
        self.assertEqual(0, out.returncode, out.stderr)
        self.assertRegex(out.stdout, r'\| hda +\| bulk +\| +5 \| None +\|')

    def test_reads_the_agent_config_file(self):
        host = libvirt_host.get_shared_host()
        guest = self.useFixture(guest_mod.Guest(host, DISKS))
        guest.wait_done()
        conf = self.useFixture(fixtures.TempDir()).join('ceilometer.conf')
        with open(conf, 'w') as f:
            f.write('[DEFAULT]\nlibvirt_uri = %s\n[blockacct]\n'
                    'enable_qmp = false\n' % host.uri)
        columns = ['-c', 'domain', '-c', 'dev', '-c', 'source', '-c',
                   'fl_ops', '-c', 'wr_invalid']
        out = show('--config-file', conf, '-f', 'json', '--interval', '0.1',
                   *columns)
        self.assertEqual(0, out.returncode, out.stderr)
        rows = {r['dev']: r for r in json.loads(out.stdout)
                if r['domain'] == guest.name}
        self.assertEqual({'domain': guest.name, 'dev': 'hda',
                          'source': 'bulk', 'fl_ops': 5, 'wr_invalid': None},
                         rows['hda'])
        # The command line wins over the file.
        out = show('--config-file', conf, '--qmp', '-f', 'json',
                   '--interval', '0.1', *columns)
        self.assertEqual(0, out.returncode, out.stderr)
        rows = {r['dev']: r for r in json.loads(out.stdout)
                if r['domain'] == guest.name}
        self.assertEqual(('qmp', 1), (rows['vda']['source'],
                                      rows['vda']['wr_invalid']))

    def test_unreachable_libvirt(self):
        out = show('--libvirt-uri', 'qemu+unix:///system?socket=/nonexistent')
        self.assertEqual(1, out.returncode)
        self.assertEqual(
            "show: cannot reach libvirt at qemu+unix:///system?socket="
            "/nonexistent: Failed to connect socket to '/nonexistent': No "
            'such file or directory\n', out.stderr)

    def test_no_domains(self):
        host = self.useFixture(libvirt_host.LibvirtHost())
        out = show('--libvirt-uri', host.uri)
        self.assertEqual(1, out.returncode)
        self.assertEqual('show: no running domains at %s\n' % host.uri,
                         out.stderr)
