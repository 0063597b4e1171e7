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

One SQLite database, ``<[blockacct] state_dir>/baselines.sqlite`` (the
directory 0700, the files 0600), in WAL mode.  Each pollster commits its own
meter's baselines in one transaction BEFORE it hands its samples to
Ceilometer: a crash in between loses that one poll of that meter (never
bills it twice).

Durability without fsync (``synchronous=NORMAL``): a transaction survives
the agent's death at once (it is in the OS's WAL file); only a host crash
can lose the last transactions, and a host crash also ends every QEMU, so
each disk's next reading is a new epoch counted whole whatever its baseline
says: a stale baseline can never bill anything twice.  This makes a commit
cost tens of microseconds instead of an fsync'ed file per meter per cycle.
"""

import json
import os
import sqlite3
import threading
import time

from oslo_log import log

from ceilometer_blockacct import derive

LOG = log.getLogger(__name__)

FILENAME = 'baselines.sqlite'
SCHEMA_VERSION = '1'
_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)',
    'CREATE TABLE IF NOT EXISTS baselines (meter TEXT NOT NULL, '
    'disk TEXT NOT NULL, epoch TEXT NOT NULL, mono_ns INTEGER NOT NULL, '
    'seen REAL NOT NULL, vals TEXT NOT NULL, PRIMARY KEY (meter, disk)) '
    'WITHOUT ROWID',
)


class StateError(Exception):
    """The state could not be saved."""


class MeterState:
    """The baselines of one meter, for every disk."""

    def __init__(self, store, name):
        self.store = store
        self.name = name
        self.path = store.path
        self.baselines, ok = store.load(name)
        # Whether the agent knew the host before: else first deltas are 0.
        self.known = ok and store.state_existed

    def get(self, key):
        return self.baselines.get(key)

    def commit(self, updates):
        """Save the baselines with ``updates`` applied, in one transaction.

        Disks not seen for ``prune_after`` s are forgotten.  The in-memory
        baselines change only once the transaction is committed: if saving
        fails, the next cycle derives from the old baselines again, so
        nothing is lost or counted twice.

        :raises StateError: when the transaction fails.
        """
        limit = time.time() - self.store.prune_after
        self.store.save(self.name, updates, limit)
        merged = dict(self.baselines)
        merged.update(updates)
        gone = [k for k, b in merged.items() if b.seen < limit]
        for key in gone:
            del merged[key]
        if gone:
            LOG.info('%(meter)s: forgot %(n)d disks not seen for %(s)d s',
                     {'meter': self.name, 'n': len(gone),
                      's': self.store.prune_after})
        self.baselines = merged
        self.known = True


class StateStore:
    """All meters' baselines in one SQLite database."""

    def __init__(self, state_dir, prune_after):
        self.state_dir = state_dir
        self.prune_after = prune_after
        self.path = os.path.join(state_dir, FILENAME)
        self._meters = {}
        self._lock = threading.Lock()
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        try:
            self.state_existed = self._open()
        except sqlite3.OperationalError as e:
            raise StateError('cannot open the state database %s: %s (check '
                             '[blockacct] state_dir and its permissions)'
                             % (self.path, e))
        except sqlite3.DatabaseError as e:
            LOG.warning('State database %(path)s is unreadable (%(err)s): '
                        'moved aside to %(path)s.corrupt; starting without '
                        'state', {'path': self.path, 'err': e})
            self._conn.close()
            for suffix in ('', '-wal', '-shm'):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix,
                               self.path + '.corrupt' + suffix)
            self.state_existed = self._open()
        if not self.state_existed:
            LOG.warning('No agent state in %s: first run or state lost. '
                        'Counters seen now become baselines and are not '
                        'billed (each disk is logged).', state_dir)

    def _open(self):
        """Open (creating) the database; return whether it had state."""
        old_umask = os.umask(0o077)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None)
            self._conn.execute('PRAGMA journal_mode=WAL')
            self._conn.execute('PRAGMA synchronous=NORMAL')
            for statement in _SCHEMA:
                self._conn.execute(statement)
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'created'").fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO meta VALUES ('created', ?), "
                    "('schema', ?)", (repr(time.time()), SCHEMA_VERSION))
            return row is not None
        finally:
            os.umask(old_umask)

    def load(self, meter):
        """Return ``({disk: Baseline}, ok)``; ok is False when corrupt."""
        with self._lock:
            rows = self._conn.execute(
                'SELECT disk, epoch, mono_ns, seen, vals FROM baselines '
                'WHERE meter = ?', (meter,)).fetchall()
        baselines = {}
        try:
            for disk, epoch, mono_ns, seen, vals in rows:
                baselines[disk] = derive.Baseline.from_json(
                    [epoch, mono_ns, seen, json.loads(vals)])
        except (ValueError, TypeError) as e:
            LOG.warning('Baselines of %(meter)s in %(path)s are malformed '
                        '(%(err)s): this meter starts without state; its '
                        'counters become baselines and are not billed',
                        {'meter': meter, 'path': self.path, 'err': e})
            return {}, False
        return baselines, True

    def save(self, meter, updates, prune_before):
        """Upsert ``updates`` and prune, in one transaction."""
        rows = [(meter, disk, b.epoch, b.mono_ns, b.seen,
                 json.dumps(b.values)) for disk, b in updates.items()]
        with self._lock:
            try:
                self._conn.execute('BEGIN IMMEDIATE')
                try:
                    self._conn.executemany(
                        'INSERT OR REPLACE INTO baselines VALUES '
                        '(?, ?, ?, ?, ?, ?)', rows)
                    self._conn.execute(
                        'DELETE FROM baselines WHERE meter = ? AND seen < ?',
                        (meter, prune_before))
                    self._conn.execute('COMMIT')
                except BaseException:
                    self._conn.execute('ROLLBACK')
                    raise
            except sqlite3.Error as e:
                raise StateError(str(e))

    def meter(self, name):
        """The :class:`MeterState` of ``name``, loaded on first use."""
        with self._lock:
            state = self._meters.get(name)
        if state is None:
            state = MeterState(self, name)
            with self._lock:
                state = self._meters.setdefault(name, state)
        return state
