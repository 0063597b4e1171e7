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
directory 0700 and owned by the agent's user, the files 0600), in WAL mode,
locked by one agent at a time (``flock`` on ``state_dir/lock``: two agents
on one state would both bill).  Each pollster commits its own meter's
baselines in one transaction BEFORE it hands its samples to Ceilometer: a
crash in between loses that one poll of that meter (never bills it twice).

It also keeps, per meter, when its state began (the *mark*: whole counters
are billed only for disks that began counting after it), and the registry
of QEMU processes and devices seen (:mod:`registry`).  Baselines are
dropped only when their QEMU process is gone, never by age.

Durability without fsync (``synchronous=NORMAL``): a transaction survives
the agent's death at once; only a host crash can lose the last ones, and a
host crash also ends every QEMU, whose successors are new processes.

A corrupt database is moved aside and rebuilt from what the agent holds in
memory, so billing goes on exactly; a database that is corrupt at start is
moved aside and the agent starts without state (nothing billed twice).
"""

import json
import os
import sqlite3
import threading

from oslo_log import log

from ceilometer_blockacct import baseline as baseline_mod
from ceilometer_blockacct import host
from ceilometer_blockacct import meterstate
from ceilometer_blockacct import registry as registry_mod
from ceilometer_blockacct import statedb
from ceilometer_blockacct import statedir

LOG = log.getLogger(__name__)

FILENAME = 'baselines.sqlite'
LOCKNAME = 'lock'


class StateError(Exception):
    """The state could not be opened or saved."""


# NOTE: module-level names, so that tests can move this store's clock.
boot_id = host.boot_id
boottime_ns = host.boottime_ns


class StateStore:
    """All meters' baselines and the registry in one SQLite database."""

    def __init__(self, state_dir, prune_after=None):
        # NOTE: prune_after is accepted for compatibility and unused:
        # baselines are dropped when their QEMU process is gone, not by age.
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, FILENAME)
        self.boot_id = boot_id()
        self._meters = {}
        self._lock = threading.RLock()
        self._db = statedb.Database(self.path)
        try:
            statedir.check_state_dir(state_dir)
            self._lockfile = statedir.take_lock(state_dir, LOCKNAME)
        except statedir.StateDirError as e:
            raise StateError(str(e))
        try:
            self.state_existed = self._db.open_or_move_aside()
            self.created = self._load_mark('created')
            self.registry = self._load_registry()
        except (sqlite3.Error, OSError, StateError) as e:
            self.close()
            raise StateError('cannot open the state database %s: %s (check '
                             '[blockacct] state_dir and its permissions)'
                             % (self.path, e))
        except BaseException:
            # NOTE: never leave the state_dir locked by a store that failed.
            self.close()
            raise
        if not self.state_existed:
            LOG.warning('No agent state in %s: first run or state lost. '
                        'Counters of disks that were already counting '
                        'become baselines and are not billed (each disk '
                        'is logged).', state_dir)

    # -- marks and the registry ---------------------------------------------

    def _now_mark(self):
        return json.dumps([self.boot_id, boottime_ns()])

    def _load_mark(self, key):
        """(boot id, boottime ns) stored under ``key``, set to now if none.

        A malformed mark is replaced by now: later is the safe side (fewer
        disks count as new).
        """
        with self._lock:
            raw = self._db.meta(key)
            if raw is not None:
                mark = _parse_mark(raw)
                if mark is not None:
                    return mark
                LOG.warning('%(key)s in %(path)s is malformed (%(raw).80r): '
                            'replaced by now', {'key': key,
                                                'path': self.path,
                                                'raw': raw})
            mark = self._now_mark()
            self._write(lambda: self._db.set_meta(key, mark))
            return tuple(json.loads(mark))

    def _load_registry(self):
        with self._lock:
            rows = self._db.conn.execute(
                'SELECT data FROM processes').fetchall()
            listing = self._db.meta('listing')
            gone = self._db.meta('gone')
        procs = []
        try:
            for (data,) in rows:
                procs.append(registry_mod.Process.from_json(
                    json.loads(data)))
            listing = tuple(json.loads(listing)) if listing else None
            gone = {(b, d): s for b, d, s in json.loads(gone or '[]')}
        except (ValueError, TypeError) as e:
            LOG.warning('Process registry in %(path)s is malformed (%(err)s):'
                        ' starting it anew (whole counters are billed only '
                        'for processes listed from now on)',
                        {'path': self.path, 'err': e})
            return registry_mod.Registry()
        return registry_mod.Registry(procs, gone, listing)

    # -- writing -----------------------------------------------------------

    def _write(self, body):
        """Run ``body`` in one transaction; recover from corruption.

        :raises StateError: when it fails (nothing was written).
        """
        with self._lock:
            try:
                self._db.write(body, self._rebuild)
            except (sqlite3.Error, ValueError, TypeError, OSError) as e:
                raise StateError(str(e))

    def _rebuild(self):
        """(in a transaction) Write again what memory holds."""
        self._db.set_meta('created', json.dumps(list(self.created)))
        for m in list(self._meters.values()):
            self._db.set_meta('mark:' + m.name, json.dumps(list(m.mark)))
            self._upsert(m.name, m.baselines)
        self._save_registry_rows()

    def _upsert(self, meter, updates):
        rows = [(meter, disk, b.epoch.boot_id, b.mono_ns,
                 json.dumps(b.to_json())) for disk, b in updates.items()]
        # NOTE: an older reading never overwrites a newer baseline of the
        # same boot, whoever writes it.
        self._db.conn.executemany(
            'INSERT INTO baselines2 VALUES (?, ?, ?, ?, ?) '
            'ON CONFLICT (meter, disk) DO UPDATE SET boot = excluded.boot, '
            'mono_ns = excluded.mono_ns, data = excluded.data '
            'WHERE excluded.boot != baselines2.boot '
            'OR excluded.mono_ns >= baselines2.mono_ns', rows)

    def save(self, meter, updates):
        """Upsert ``updates`` of ``meter`` in one transaction."""
        self._write(lambda: self._upsert(meter, updates))

    def _save_registry_rows(self):
        procs, gone, listing = self.registry.snapshot()
        self._db.conn.execute('DELETE FROM processes')
        self._db.conn.executemany(
            'INSERT INTO processes VALUES (?, ?, ?)',
            [(p['boot'], p['dom'], json.dumps(p)) for p in procs])
        self._db.set_meta('gone', json.dumps(gone))
        self._db.set_meta('listing', json.dumps(listing))

    def save_registry(self):
        """Persist the registry if it changed.

        :raises StateError: when it cannot be saved (it stays dirty).
        """
        if not self.registry.dirty:
            return
        try:
            self._write(self._save_registry_rows)
        except StateError:
            self.registry.dirty = True
            raise

    def forget_processes(self, processes):
        """Drop every baseline of these gone processes, in memory and disk.

        :raises StateError: when the rows cannot be deleted (the memory is
            cleaned anyway; the rows go at the next success).
        """
        if not processes:
            return
        ids = {(p.boot_id, p.dom_id): p.uuid for p in processes}

        def doomed(key, b):
            uuid = ids.get((b.epoch.boot_id, b.epoch.dom_id))
            return uuid is not None and key.startswith(uuid + '-')
        with self._lock:
            meters = list(self._meters.values())
        for m in meters:
            m.forget(doomed)
        LOG.info('QEMU processes gone, their baselines dropped: %s',
                 ', '.join('%s (%s:%d)' % (u, b, d)
                           for (b, d), u in sorted(ids.items())))

        def delete():
            for meter, disk, data in self._db.conn.execute(
                    'SELECT meter, disk, data FROM baselines2').fetchall():
                b = baseline_mod.Baseline.from_json(json.loads(data))
                if doomed(disk, b):
                    self._db.conn.execute('DELETE FROM baselines2 WHERE '
                                          'meter = ? AND disk = ?',
                                          (meter, disk))
        self._write(delete)

    # -- reading -----------------------------------------------------------

    def load(self, meter):
        """Return ``{disk: Baseline}`` of ``meter`` and whether all parsed.

        A malformed row makes the whole meter start anew (with a new mark):
        its counters become baselines and are not billed.
        """
        with self._lock:
            rows = self._db.conn.execute(
                'SELECT disk, data FROM baselines2 WHERE meter = ?',
                (meter,)).fetchall()
        baselines = {}
        try:
            for disk, data in rows:
                baselines[disk] = baseline_mod.Baseline.from_json(
                    json.loads(data))
        except (ValueError, TypeError) as e:
            LOG.warning('Baselines of %(meter)s in %(path)s are malformed '
                        '(%(err)s): this meter starts without state; its '
                        'counters become baselines and are not billed',
                        {'meter': meter, 'path': self.path, 'err': e})
            return {}, False
        return baselines, True

    def ensure_marks(self, names):
        """Give every meter in ``names`` a mark if it has none, now.

        Called before the first listing, so that a VM absent from that
        listing counts as begun after its meters' marks.
        """
        with self._lock:
            try:
                for name in names:
                    self._load_mark('mark:' + name)
            except sqlite3.Error as e:
                raise StateError('cannot read the marks in %s: %s'
                                 % (self.path, e))

    def meter(self, name):
        """The :class:`.meterstate.MeterState` of ``name``, loaded once."""
        with self._lock:
            state = self._meters.get(name)
            if state is None:
                try:
                    baselines, ok = self.load(name)
                except sqlite3.DatabaseError as e:
                    if not statedb.is_corrupt(e):
                        raise StateError(str(e))
                    self._db.recover(e, self._rebuild)
                    baselines, ok = {}, False
                if not ok:
                    self._write(lambda: self._db.conn.execute(
                        'DELETE FROM meta WHERE key = ?', ('mark:' + name,)))
                state = meterstate.MeterState(
                    self, name, baselines, self._load_mark('mark:' + name))
                self._meters[name] = state
        return state

    def close(self):
        """Close the database and release the state_dir lock."""
        self._db.close()
        if getattr(self, '_lockfile', None) is not None:
            os.close(self._lockfile)
            self._lockfile = None


def _parse_mark(raw):
    """``(boot id, boottime ns)`` from a stored mark, None if malformed."""
    try:
        boot, ns = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if isinstance(boot, str) and isinstance(ns, int):
        return boot, ns
    return None
