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
"""Run blocking libvirt calls on bounded threads, each under a deadline.

A call's deadline counts from when a thread STARTED it: a call merely
queued behind others is never late.  A started call that overruns is
*hung*: the pool stops waiting for it and gives its slot to a new thread,
because a thread blocked inside libvirt cannot be stopped; that thread
ends when its call returns.  So hung calls never starve the others, and
:meth:`Pool.run` returns within ``(ceil(calls / width) + 1) * deadline``
at most (each slot runs its calls one after another, none longer than the
deadline).  The caller must not start a second call on something whose
hung call still runs (:attr:`Task.done` tells): then at most one thread
per VM, plus ``width``, exists.
"""

import collections
import queue
import threading
import time


class Task:
    """One call, and what became of it.

    Worker threads write only this object's fields; everything else the
    caller keeps (caches, per-VM state) is touched by the caller alone.
    """

    def __init__(self, key, func, *args):
        self.key = key
        self._call = (func, args)
        self.started = None   # monotonic seconds when a thread took it
        self.value = None
        self.error = None
        self.hung = False
        self._done = threading.Event()

    @property
    def done(self):
        """Whether the call has returned (or raised)."""
        return self._done.is_set()

    def _run(self):
        func, args = self._call
        try:
            self.value = func(*args)
        except Exception as e:  # noqa: handed to the caller, typed there
            self.error = e


class _Worker(threading.Thread):

    def __init__(self, pool, name):
        super().__init__(name=name, daemon=True)
        self.pool = pool
        self.inbox = queue.SimpleQueue()

    def run(self):
        while True:
            task = self.inbox.get()
            if task is None:
                return
            task._run()
            if not self.pool._finished(self, task):
                return


class Pool:
    """At most ``width`` calls at once, not counting hung ones."""

    def __init__(self, width, name='blockacct-read'):
        self.width = width
        self.name = name
        self._cond = threading.Condition()
        self._idle = []
        self._count = 0
        self._closed = False

    def run(self, tasks, deadline):
        """Run ``tasks``; return when each has returned or is hung.

        :returns: (finished, hung) lists of :class:`Task`.
        """
        waiting = collections.deque(tasks)
        running, finished, hung = [], [], []
        with self._cond:
            while waiting or running:
                while waiting and len(running) < self.width:
                    task = waiting.popleft()
                    task.started = time.monotonic()
                    running.append(task)
                    self._worker().inbox.put(task)
                now = time.monotonic()
                still = []
                for task in running:
                    if task.done:
                        finished.append(task)
                    elif now - task.started >= deadline:
                        # NOTE: under the lock, so the worker sees it when
                        # it returns and retires (its slot is reused).
                        task.hung = True
                        hung.append(task)
                    else:
                        still.append(task)
                running = still
                if running and (len(running) >= self.width or not waiting):
                    first = min(t.started for t in running)
                    self._cond.wait(max(first + deadline - now, 0.0))
        return finished, hung

    def _worker(self):
        if self._idle:
            return self._idle.pop()
        self._count += 1
        worker = _Worker(self, '%s-%d' % (self.name, self._count))
        worker.start()
        return worker

    def _finished(self, worker, task):
        """Called by ``worker`` after ``task``; False retires the worker."""
        with self._cond:
            task._done.set()
            self._cond.notify_all()
            if task.hung or self._closed:
                return False
            self._idle.append(worker)
            return True

    def close(self):
        """Stop the idle threads (busy and hung ones stop when done)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.inbox.put(None)
