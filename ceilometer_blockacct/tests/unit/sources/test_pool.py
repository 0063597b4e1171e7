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
"""The deadline pool: hung calls give their slot away, queued ones run."""

import threading
import time

import testtools

from ceilometer_blockacct.sources import pool


class TestPool(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.release = threading.Event()
        self.addCleanup(self.release.set)
        self.pool = pool.Pool(2)
        self.addCleanup(self.pool.close)

    def test_values_and_errors(self):
        def boom():
            raise ValueError('x')
        tasks = [pool.Task('a', lambda: 1), pool.Task('b', boom),
                 pool.Task('c', pow, 2, 10)]
        finished, hung = self.pool.run(tasks, 1.0)
        self.assertEqual([], hung)
        self.assertEqual({'a': 1, 'b': None, 'c': 1024},
                         {t.key: t.value for t in finished})
        self.assertIsInstance(tasks[1].error, ValueError)

    def test_hung_calls_give_their_slot_to_queued_ones(self):
        stuck = [pool.Task('s%d' % i, self.release.wait, 30)
                 for i in range(3)]
        quick = [pool.Task('q%d' % i, time.sleep, 0.01) for i in range(6)]
        started = time.monotonic()
        finished, hung = self.pool.run(stuck + quick, 0.2)
        took = time.monotonic() - started
        self.assertEqual(['s0', 's1', 's2'], [t.key for t in hung])
        self.assertEqual(['q%d' % i for i in range(6)],
                         sorted(t.key for t in finished))
        self.assertTrue(all(t.hung and not t.done for t in hung))
        # s0 and s1 hang together, s2 after them: two deadlines.
        self.assertLess(took, 0.2 * 2 + 0.3)
        self.release.set()
        for t in hung:
            t._done.wait(5)
        self.assertTrue(all(t.done for t in hung))
        # The retired threads are gone; the pool still has its two.
        finished, hung = self.pool.run([pool.Task(i, int, i)
                                        for i in range(4)], 0.2)
        self.assertEqual([0, 1, 2, 3], sorted(t.value for t in finished))

    def test_deadline_counts_from_the_start_of_each_call(self):
        tasks = [pool.Task(i, time.sleep, 0.1) for i in range(8)]
        started = time.monotonic()
        finished, hung = self.pool.run(tasks, 0.15)
        self.assertEqual(([], 8), (hung, len(finished)))
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        for t in finished:
            self.assertIsNone(t.error)
