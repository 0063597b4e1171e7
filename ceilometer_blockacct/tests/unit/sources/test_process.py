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
"""QEMU process start from /proc, or None on any doubt."""

import os
import threading

import testtools

from ceilometer_blockacct.sources import process
from ceilometer_blockacct.tests.unit.sources import fakes

UUID = '0c5c8ea6-9c2d-4d9b-9a2b-0d7c4a0f0001'


class TestFind(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.proc = self.useFixture(fakes.FakeProc())

    def test_thread_to_process_to_start(self):
        # A comm with spaces and parentheses does not shift the fields.
        self.proc.add(UUID, pid=900, tid=901, ticks=31337,
                      comm='qemu (x) y')
        self.assertEqual((900, fakes.ns_of_ticks(31337)),
                         process.find([901, 902], UUID, self.proc.path))
        self.assertEqual(fakes.ns_of_ticks(31337),
                         process.start_of(900, self.proc.path))

    def test_doubt_gives_none(self):
        self.proc.add('another-' + UUID[8:], pid=900, tid=901)
        self.assertIsNone(process.find([901], UUID, self.proc.path))
        self.assertIsNone(process.find([], UUID, self.proc.path))
        self.assertIsNone(process.find([5], UUID, self.proc.path))
        self.assertIsNone(process.start_of(5, self.proc.path))
        # The uuid must be a whole argument, not a part of one.
        self.proc.add(UUID + '0', pid=800, tid=801)
        self.assertIsNone(process.find([801], UUID, self.proc.path))

    def test_real_proc(self):
        # This process does not carry the uuid: no start, whatever /proc.
        tid = threading.get_native_id()
        self.assertIsNone(process.find([tid], UUID))
        with open('/proc/self/stat') as f:
            ticks = int(f.read().rsplit(')', 1)[1].split()[19])
        self.assertEqual(ticks * 10 ** 9 // os.sysconf('SC_CLK_TCK'),
                         process.start_of(os.getpid()))
