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
"""The baselines of one meter, for every disk, as a pollster uses them."""

import threading


class MeterState:
    """The baselines of one meter, for every disk.

    Hold :attr:`lock` from reading the baselines to :meth:`commit`: two
    sources polling the same meter must not both derive from one baseline.
    """

    def __init__(self, store, name, baselines, mark):
        self.store = store
        self.name = name
        self.path = store.path
        self.baselines = baselines
        # (boot id, boottime ns) when this meter's state began.
        self.mark = mark
        self.lock = threading.RLock()

    def get(self, key):
        return self.baselines.get(key)

    def commit(self, updates):
        """Save the baselines with ``updates`` applied, in one transaction.

        The in-memory baselines change only once the transaction is
        committed: if saving fails, the next cycle derives from the old
        baselines again, so nothing is lost or counted twice.

        :raises StateError: when the transaction fails.
        """
        if updates:
            self.store.save(self.name, updates)
            self.baselines.update(updates)

    def forget(self, doomed):
        """Drop the baselines for which ``doomed(key, baseline)``."""
        with self.lock:
            for key in [k for k, b in self.baselines.items()
                        if doomed(k, b)]:
                del self.baselines[key]
