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
"""The state's SQLite file: opened and checked, written in transactions.

WAL mode, ``synchronous=NORMAL`` (:mod:`ceilometer_blockacct.state` says
why), created 0600.  A file SQLite calls damaged, at opening or in a later
transaction, is moved aside to ``<path>.corrupt`` and a new one is made;
what goes into the new one is the caller's (``rebuild``).
"""

import contextlib
import os
import sqlite3

from oslo_log import log

from ceilometer_blockacct import state_schema

# NOTE: the state's lines keep the logger name operators filter on.
LOG = log.getLogger('ceilometer_blockacct.state')

# SQLite primary result codes that mean the file itself is damaged.
_CORRUPT_CODES = frozenset([11, 26])    # SQLITE_CORRUPT, SQLITE_NOTADB
# Codes of the environment, not of the file: permissions, locks, I/O, a
# full disk, a file that cannot be opened (SQLITE_PERM, BUSY, LOCKED,
# READONLY, IOERR, FULL, CANTOPEN).  Any other error while opening means
# the file is not a database of ours (e.g. "unsupported file format").
_ENVIRONMENT_CODES = frozenset([3, 5, 6, 8, 10, 13, 14])


class Corrupt(sqlite3.DatabaseError):
    """SQLite's integrity check found damage."""


def is_corrupt(exc):
    """Whether a SQLite error says the file itself is damaged."""
    if isinstance(exc, Corrupt):
        return True
    code = getattr(exc, 'sqlite_errorcode', None)
    return code is not None and (code & 0xff) in _CORRUPT_CODES


def _decode(raw):
    """Text of the database; bytes that are not UTF-8 are damage."""
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as e:
        raise Corrupt('text that is not UTF-8 (%s)' % e)


class Database:
    """One SQLite file of the state, moved aside when it is damaged.

    Not thread-safe: its owner serialises the calls.
    """

    def __init__(self, path):
        self.path = path
        self.conn = None

    def open_or_move_aside(self):
        """Open (creating) the file; return whether it had state.

        A file that is damaged, or not a database of ours, is moved aside
        and a new one made; errors of the environment propagate.
        """
        try:
            try:
                return self._open()
            except UnicodeDecodeError as e:
                # NOTE: SQLite's own message quoting damaged schema text.
                raise Corrupt('text that is not UTF-8 (%s)' % e)
        except sqlite3.DatabaseError as e:
            code = getattr(e, 'sqlite_errorcode', None)
            if not (is_corrupt(e) or (code is not None and code & 0xff
                                      not in _ENVIRONMENT_CODES)):
                raise
            LOG.warning('State database %(path)s is unreadable (%(err)s): '
                        'moved aside to %(path)s.corrupt; starting without '
                        'state', {'path': self.path, 'err': e})
            self._move_aside()
            return self._open()

    def _open(self):
        """Open (creating) the database; return whether it had state."""
        old_umask = os.umask(0o077)
        try:
            if self.conn is not None:
                self.conn.close()
            self.conn = sqlite3.connect(self.path, check_same_thread=False,
                                        isolation_level=None)
            self.conn.text_factory = _decode
            self.conn.execute('PRAGMA journal_mode=WAL')
            self.conn.execute('PRAGMA synchronous=NORMAL')
            for statement in state_schema.TABLES:
                self.conn.execute(statement)
            # NOTE: the owner marks a new database ('created') at once.
            existed = self.meta('created') is not None
            state_schema.migrate_v1(self.conn, self.path)
            self.set_meta('schema', state_schema.VERSION)
            # NOTE: read every row and index once now, so that a corrupt
            # page shows at start (and is moved aside) rather than in
            # every cycle.  integrity_check, not quick_check: only it
            # compares the indexes with their tables, and a damaged index
            # fails a lookup by key (found by tox -e fuzz).
            check = self.conn.execute('PRAGMA integrity_check').fetchall()
            if check != [('ok',)]:
                raise Corrupt('integrity_check: %s' % '; '.join(
                    str(r[0]) for r in check[:3]))
            # NOTE: decode every text once now (_decode raises on damage).
            for table in ('meta', 'processes', 'baselines2'):
                self.conn.execute('SELECT * FROM %s' % table).fetchall()
            return existed
        finally:
            os.umask(old_umask)

    def _move_aside(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix,
                           self.path + '.corrupt' + suffix)

    def meta(self, key):
        """The value of ``key`` in the meta table, or None."""
        row = self.conn.execute('SELECT value FROM meta WHERE key = ?',
                                (key,)).fetchone()
        return row and row[0]

    def set_meta(self, key, value):
        self.conn.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)',
                          (key, value))

    def transaction(self, body):
        """Run ``body()`` in one transaction (rolled back if it raises)."""
        self.conn.execute('BEGIN IMMEDIATE')
        try:
            body()
            self.conn.execute('COMMIT')
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute('ROLLBACK')
            raise

    def write(self, body, rebuild):
        """Run ``body`` in one transaction; recover from corruption.

        A damaged file is moved aside (:meth:`recover`), then ``body`` runs
        again on the new one.
        """
        try:
            try:
                self.transaction(body)
            except UnicodeDecodeError as e:
                # NOTE: SQLite's own message quoting damaged text.
                raise Corrupt('text that is not UTF-8 (%s)' % e)
        except sqlite3.DatabaseError as e:
            if not is_corrupt(e):
                raise
            self.recover(e, rebuild)
            self.transaction(body)

    def recover(self, err, rebuild):
        """Move the corrupt file aside; ``rebuild()`` fills the new one."""
        LOG.error('State database %(path)s is corrupt (%(err)s): moved aside '
                  'to %(path)s.corrupt and rebuilt from the baselines held '
                  'in memory', {'path': self.path, 'err': err})
        self._move_aside()
        self._open()
        self.transaction(rebuild)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
