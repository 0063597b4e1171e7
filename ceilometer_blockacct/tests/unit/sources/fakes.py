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
"""Fake libvirt objects and a fake /proc: faults no real part produces.

Real libvirt/QEMU answers are covered by the parser tests (recorded data)
and the functional tests; these fakes inject hangs, refusals, lost
connections, hotplug races and malformed answers.
"""

import json
import os
import threading

import fixtures
import libvirt
from oslo_config import cfg
import testtools

from ceilometer_blockacct import opts
from ceilometer_blockacct.sources import reader

XML = """<domain><devices>
<disk><source file='/a' index='2'/><target dev='vda'/>
<alias name='virtio-disk0'/></disk>
<disk><source file='/b' index='1'/><target dev='hdc'/>
<alias name='ide0-1-0'/></disk>
</devices></domain>"""

QUERY = '{"execute": "query-blockstats"}'
QUERY_CPUS = '{"execute": "query-cpus-fast"}'
VCPU_TID = 4343
QEMU_PID = 4242


def entry(qdev, node, **stats):
    """One query-blockstats entry."""
    return {'device': '', 'qdev': qdev, 'node-name': node, 'stats': stats}


def reply(rd_ops=1):
    return json.dumps({'return': [
        entry('/machine/peripheral/virtio-disk0/virtio-backend',
              'libvirt-2-format', rd_operations=rd_ops, rd_bytes=512 * rd_ops,
              account_failed=True),
        entry('ide0-1-0', 'libvirt-1-format', flush_operations=3),
    ], 'id': 'libvirt-1'})


def disk_xml(*disks):
    """Live XML of ``(dev, alias, index)`` disks."""
    return '<domain><devices>%s</devices></domain>' % ''.join(
        "<disk><source file='/%s' index='%d'/><target dev='%s'/>"
        "<alias name='%s'/></disk>" % (alias, index, dev, alias)
        for dev, alias, index in disks)


def cpus_reply(*tids):
    return json.dumps({'return': [
        {'cpu-index': i, 'thread-id': tid, 'qom-path': '/machine/cpu'}
        for i, tid in enumerate(tids or (VCPU_TID,))]})


def lv_error(code, domain=libvirt.VIR_FROM_QEMU, msg='boom', int1=0):
    e = libvirt.libvirtError(msg)
    e.err = (code, domain, msg, 2, None, None, None, int1, 0)
    return e


class FakeDom:
    """A running domain: its QMP answers are functions, called each time."""

    def __init__(self, uuid, dom_id=7, qmp=None, xml=XML, cpus=None):
        self.uuid, self.dom_id = uuid, dom_id
        self.qmp = qmp or (lambda: reply())
        self.cpus = cpus or (lambda: cpus_reply())
        self.xml = xml
        self.xml_reads = 0
        self.qmp_reads = 0
        self.cpu_reads = 0

    def UUIDString(self):
        return self.uuid

    def ID(self):
        return self.dom_id

    def XMLDesc(self, flags=0):
        self.xml_reads += 1
        return self.xml() if callable(self.xml) else self.xml


class FakeConn:
    def __init__(self, doms, bulk=None, list_error=None):
        self.doms, self.bulk, self.list_error = doms, bulk, list_error
        self.alive = True
        self.on_list = None
        self.listings = 0

    def isAlive(self):
        return self.alive

    def listAllDomains(self, flags=0):
        self.listings += 1
        if self.on_list:
            self.on_list()
        if self.list_error:
            raise self.list_error
        return list(self.doms)

    def getAllDomainStats(self, stats, flags):
        if isinstance(self.bulk, Exception):
            raise self.bulk
        if callable(self.bulk):
            return self.bulk(self.doms)
        return [(d, self.bulk or {'block.count': 1, 'block.0.name': 'vda',
                                  'block.0.rd.reqs': 9})
                for d in self.doms]


class FakeProc(fixtures.Fixture):
    """A /proc with QEMU processes: ``add(uuid, pid, tid, ticks)``."""

    def _setUp(self):
        self.path = self.useFixture(fixtures.TempDir()).path

    def _write(self, rel, data, mode='w'):
        path = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as f:
            f.write(data)

    def add(self, uuid, pid=QEMU_PID, tid=VCPU_TID, ticks=123456,
            comm='qemu-system-x86'):
        self._write('%d/status' % tid, 'Name:\tCPU 0/TCG\nUmask:\t0022\n'
                    'State:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\n' % (
                        pid, tid))
        # Fields 3..52 after "pid (comm) "; field 22 is starttime.
        after = ['S'] + ['0'] * 18 + [str(ticks)] + ['0'] * 30
        self._write('%d/stat' % pid, '%d (%s) %s\n' % (pid, comm,
                                                       ' '.join(after)))
        self._write('%d/cmdline' % pid, b'/usr/bin/qemu-system-x86_64\0'
                    b'-name\0guest=x,debug-threads=on\0-uuid\0'
                    + uuid.encode() + b'\0-S\0', 'wb')


def ns_of_ticks(ticks):
    """What /proc's starttime means: clock ticks since boot, in ns."""
    return ticks * 10 ** 9 // os.sysconf('SC_CLK_TCK')


class ReaderTestCase(testtools.TestCase):
    """Builds Readers over fake libvirt connections and a fake /proc."""

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        opts.register_opts(self.conf)
        self.conf([], project='ceilometer')
        self.conf.set_override('read_timeout', 0.5, 'blockacct')
        self.logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(message)s'))
        self.proc = self.useFixture(FakeProc())
        self.now = 1000.0
        self.release = threading.Event()
        self.addCleanup(self.release.set)

    def clock(self):
        return self.now

    def make(self, doms, ro=None, opener=None, **kwargs):
        """A Reader whose connections are FakeConn(doms, **kwargs).

        :param ro: another FakeConn for the read-only connection.
        :param opener: replaces libvirt.open (e.g. to hang or refuse).
        """
        conn = FakeConn(doms, **kwargs)
        self.useFixture(fixtures.MockPatch(
            'libvirt.open', side_effect=opener or (lambda uri: conn)))
        self.useFixture(fixtures.MockPatch(
            'libvirt.openReadOnly', return_value=ro or conn))

        def qmp(dom, cmd, flags):
            if cmd == QUERY:
                dom.qmp_reads += 1
                return dom.qmp()
            self.assertEqual(QUERY_CPUS, cmd)
            dom.cpu_reads += 1
            return dom.cpus()
        self.useFixture(fixtures.MockPatch(
            'libvirt_qemu.qemuMonitorCommand', side_effect=qmp))
        try:
            r = reader.Reader(self.conf, clock=self.clock,
                              proc=self.proc.path)
        except TypeError:  # the reader before issue 9 (to show tests fail)
            r = reader.Reader(self.conf)
        close = getattr(r, 'close', None) or (
            lambda: r._executor.shutdown(wait=False))
        self.addCleanup(close)
        return r, conn

    def hang(self, result=None):
        """A QMP answer that blocks until the test ends."""
        def answer():
            self.release.wait(30)
            return result or reply()
        return answer
