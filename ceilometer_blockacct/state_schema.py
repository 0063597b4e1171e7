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
"""The state database's schema, and the migration from schema 1."""

import json

from oslo_log import log

from ceilometer_blockacct import derive

LOG = log.getLogger(__name__)

VERSION = '2'
TABLES = (
    'CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)',
    'CREATE TABLE IF NOT EXISTS baselines2 (meter TEXT NOT NULL, '
    'disk TEXT NOT NULL, boot TEXT NOT NULL, mono_ns INTEGER NOT NULL, '
    'data TEXT NOT NULL, PRIMARY KEY (meter, disk)) WITHOUT ROWID',
    'CREATE TABLE IF NOT EXISTS processes (boot TEXT NOT NULL, '
    'dom INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (boot, dom)) '
    'WITHOUT ROWID',
)


def migrate_v1(conn, path):
    """Move baselines of schema 1 (no device ids) into schema 2's table."""
    if not conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND "
            "name = 'baselines'").fetchone():
        return
    rows = conn.execute(
        'SELECT meter, disk, epoch, mono_ns, vals FROM baselines'
    ).fetchall()
    moved = 0
    for meter, disk, epoch, mono_ns, vals in rows:
        try:
            b = derive.Baseline.from_json({
                'epoch': epoch, 'device': None, 'mono_ns': mono_ns,
                'values': json.loads(vals)})
        except ValueError:
            continue
        conn.execute(
            'INSERT OR IGNORE INTO baselines2 VALUES (?, ?, ?, ?, ?)',
            (meter, disk, b.epoch.boot_id, b.mono_ns,
             json.dumps(b.to_json())))
        moved += 1
    conn.execute('DROP TABLE baselines')
    LOG.info('State %(path)s: %(n)d baselines migrated to schema '
             '%(v)s', {'path': path, 'n': moved,
                       'v': VERSION})
