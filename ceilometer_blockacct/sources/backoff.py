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
"""Exponential backoff per key (a refused QMP: one VM, or the connection).

A refusal is often transient (an ACL or polkit rule being changed, a
socket's permissions during an upgrade): QMP is retried after ``initial``
seconds, then after twice as long each time, up to ``maximum``.
"""

import time

INITIAL = 60.0
MAXIMUM = 3600.0


class Backoff:
    """When each key may be tried again."""

    def __init__(self, initial=INITIAL, maximum=MAXIMUM,
                 clock=time.monotonic):
        self.initial = initial
        self.maximum = maximum
        self._clock = clock
        # key -> (monotonic time of the next try, current delay)
        self._next = {}

    def allowed(self, key):
        """Whether ``key`` may be tried now."""
        entry = self._next.get(key)
        return entry is None or self._clock() >= entry[0]

    def failed(self, key):
        """Record a failure; returns the seconds until the next try."""
        entry = self._next.get(key)
        delay = (self.initial if entry is None
                 else min(entry[1] * 2, self.maximum))
        self._next[key] = (self._clock() + delay, delay)
        return delay

    def succeeded(self, key):
        """Forget ``key``'s failures."""
        self._next.pop(key, None)

    def forget(self, keep):
        """Drop the keys ``keep(key)`` rejects (e.g. VMs that are gone)."""
        for key in [k for k in self._next if not keep(k)]:
            del self._next[key]
