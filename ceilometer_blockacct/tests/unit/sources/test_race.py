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
"""Issue 9 scenario 11: no shared dict iterated while workers write it.

Before: a read that overran went on in its worker thread and, when it
returned, wrote the alias cache while the polling thread iterated it to
forget gone domains ("dictionary changed size during iteration" out of
Reader.read).  Now worker threads only compute; the polling thread alone
reads and writes every cache.
"""

import sys
import time

from ceilometer_blockacct.tests.unit.sources import fakes

FakeDom = fakes.FakeDom


class SlowHash(str):
    """A uuid whose hashing yields the GIL: dict walks are slow.

    Once ``armed``, the ``at``-th hash runs ``then`` (releases the late
    reads in the middle of the polling thread's walks).
    """

    armed = None

    def __hash__(self):
        armed = SlowHash.armed
        if armed is not None:
            armed['n'] += 1
            if armed['n'] == armed['at']:
                armed['then']()
        time.sleep(0.0005)
        return str.__hash__(self)


class TestLateWorkers(fakes.ReaderTestCase):

    def test_late_reads_never_touch_the_caches_being_walked(self):
        self.conf.set_override('max_concurrent_reads', 16, 'blockacct')
        self.conf.set_override('read_timeout', 0.3, 'blockacct')
        interval = sys.getswitchinterval()
        self.addCleanup(sys.setswitchinterval, interval)
        sys.setswitchinterval(1e-5)
        healthy = [FakeDom(SlowHash('h-%02d' % i)) for i in range(60)]
        late = [FakeDom(SlowHash('late-%d' % i), qmp=self.hang())
                for i in range(8)]
        r, conn = self.make(healthy + late)
        everyone = [d.uuid for d in healthy + late]
        got = r.read(everyone)
        self.assertEqual({d.uuid for d in healthy}, set(got))
        # Next cycle: the late reads return while the polling thread
        # walks its caches (after it indexed the listing: 68 hashes).
        self.addCleanup(setattr, SlowHash, 'armed', None)

        def arm():
            SlowHash.armed = {'n': 0, 'at': 68 + 10,
                              'then': self.release.set}
        conn.on_list = arm
        for cycle in range(5):
            got = r.read(everyone)
            conn.on_list = None
            SlowHash.armed = None
            self.assertEqual({d.uuid for d in healthy}, set(got) - {
                d.uuid for d in late}, cycle)
        self.assertEqual(set(everyone), set(got))
