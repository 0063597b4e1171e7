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
"""Durable baselines per (disk, meter), so an agent restart doubles nothing.

One JSON file per meter under ``[blockacct] state_dir`` (mode 0600, the
directory 0700), replaced atomically (write, fsync, rename).  Each pollster
touches only its own meter's file, so pollsters running in parallel threads
need no shared lock.  A pollster saves its baselines BEFORE it hands its
samples to Ceilometer: a crash in between loses that one poll of that meter
(logged as not billed when the agent comes back without the state it would
have needed), it never bills it twice.
"""

import json
import os
import tempfile
import threading
import time

from oslo_log import log

from ceilometer_blockacct import derive

LOG = log.getLogger(__name__)

FORMAT_VERSION = 1
MARKER = 'agent.json'


def _write_atomic(path, data):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, separators=(',', ':'))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class MeterState:
    """The baselines of one meter, for every disk."""

    def __init__(self, path, name, prune_after, state_existed):
        self.path = path
        self.name = name
        self.prune_after = prune_after
        self.baselines = {}
        self.known = self._load(state_existed)

    def _load(self, state_existed):
        """Load the file; return whether the agent's state is known."""
        try:
            with open(self.path) as f:
                data = json.load(f)
            if data.get('version') != FORMAT_VERSION:
                raise ValueError('unknown format version %r'
                                 % data.get('version'))
            self.baselines = {
                key: derive.Baseline.from_json(value)
                for key, value in data['baselines'].items()}
            return True
        except FileNotFoundError:
            # The agent had state but not for this meter: a meter enabled
            # since then, whose whole counters are new to billing.
            return state_existed
        except (OSError, ValueError, KeyError, TypeError,
                AttributeError) as e:
            LOG.warning('State file %(path)s of %(meter)s is unreadable '
                        '(%(err)s): starting this meter without state; its '
                        'counters become baselines and are not billed',
                        {'path': self.path, 'meter': self.name, 'err': e})
            self._keep_corrupt()
            self.baselines = {}
            return False

    def _keep_corrupt(self):
        # NOTE: keep the bad file for an operator to look at, once.
        try:
            os.replace(self.path, self.path + '.corrupt')
        except OSError as e:
            LOG.warning('Cannot move %(path)s aside: %(err)s',
                        {'path': self.path, 'err': e})

    def get(self, key):
        return self.baselines.get(key)

    def commit(self, updates):
        """Save the baselines with ``updates`` applied, atomically.

        Disks not seen for ``prune_after`` s are forgotten.  The in-memory
        baselines change only once the file is written: if saving fails,
        the next cycle derives from the old baselines again, so nothing is
        lost or counted twice.

        :raises OSError: when the file cannot be written.
        """
        merged = dict(self.baselines)
        merged.update(updates)
        limit = time.time() - self.prune_after
        gone = [k for k, b in merged.items() if b.seen < limit]
        for key in gone:
            del merged[key]
        _write_atomic(self.path, {
            'version': FORMAT_VERSION, 'meter': self.name,
            'baselines': {k: b.to_json() for k, b in merged.items()}})
        if gone:
            LOG.info('%(meter)s: forgot %(n)d disks not seen for %(s)d s',
                     {'meter': self.name, 'n': len(gone),
                      's': self.prune_after})
        self.baselines = merged
        self.known = True


class StateStore:
    """All meters' baselines under one directory."""

    def __init__(self, state_dir, prune_after):
        self.state_dir = state_dir
        self.prune_after = prune_after
        self._meters = {}
        self._lock = threading.Lock()
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        marker = os.path.join(state_dir, MARKER)
        self.state_existed = os.path.exists(marker)
        if not self.state_existed:
            LOG.warning('No agent state in %s: first run or state lost. '
                        'Counters seen now become baselines and are not '
                        'billed (each disk is logged).', state_dir)
            _write_atomic(marker, {'version': FORMAT_VERSION,
                                   'created': time.time()})

    def meter(self, name):
        """The :class:`MeterState` of ``name``, loaded on first use."""
        with self._lock:
            state = self._meters.get(name)
            if state is None:
                path = os.path.join(self.state_dir, name + '.json')
                state = MeterState(path, name, self.prune_after,
                                   self.state_existed)
                self._meters[name] = state
            return state
