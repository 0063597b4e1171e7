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
"""A real CloudKitty rating a :class:`GnocchiStack`, with no Keystone.

:class:`CloudKittyStack` starts, in a fresh temporary directory:

1. InfluxDB 1.x (Debian's ``influxd``) on free ports, with database
   :data:`INFLUX_DB`: CloudKitty's default v2 storage backend
   (``[storage] backend = influxdb``, ``version = 2``).  Why this one:
   v1 storage (sqlalchemy/hybrid) disables CloudKitty's v2 API
   (``/v2/summary``, ``/v2/dataframes``, ``/v2/scope``); Elasticsearch and
   OpenSearch are not packaged by Debian and need a JVM; Loki is not
   packaged either.  InfluxDB stores ``qty`` and ``price`` as float64:
   exact for the integer quantities and binary-fraction prices the tests
   use;
2. MariaDB (Debian's ``mariadbd``, no grants) for CloudKitty's own
   database (``cloudkitty-dbsync upgrade``: rating modules, hashmap, scope
   state).  Not the Gnocchi stack's PostgreSQL: CloudKitty 25's migrations
   fail on PostgreSQL and SQLite (see :meth:`_start_mariadb`);
3. ``cloudkitty-api`` (``cloudkitty.wsgi.api`` under uwsgi) with
   ``auth_strategy = noauth``; requests carry ``X-Roles: admin``
   (:meth:`CloudKittyStack.api`);
4. on :meth:`CloudKittyStack.start_processor` (not before: a scope the
   fetcher finds with no state is rated from the start of the month, so
   tests seed it first), ``cloudkitty-processor`` with the gnocchi fetcher
   and collector using basic auth to Gnocchi.

RPC between API and processor uses oslo.messaging's ``fake://`` transport
(in-process only): the processor reloads hashmap rules from the database
before every period anyway, and nothing else needs RPC here.  Usage::

    gnocchi = gnocchi_stack.get_shared_stack()
    ck = self.useFixture(CloudKittyStack(gnocchi, metrics_file, period=60))
    ck.api('POST', '/v2/scope', json={...})
    ck.start_processor()
"""

import os
import time

import requests

from ceilometer_blockacct.harness import gnocchi_stack
from ceilometer_blockacct.harness import services

INFLUXD = os.environ.get('BLOCKACCT_INFLUXD', '/usr/bin/influxd')
INFLUX_DB = 'cloudkitty'
MARIADBD = os.environ.get('BLOCKACCT_MARIADBD', '/usr/sbin/mariadbd')
MARIADB_INSTALL_DB = '/usr/bin/mariadb-install-db'

_API_PASTE = """\
[pipeline:cloudkitty+noauth]
pipeline = request_id ck_api

[app:ck_api]
paste.app_factory = cloudkitty.api.app:app_factory

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory
"""

ADMIN_HEADERS = {'X-Roles': 'admin', 'X-User-Id': 'blockacct',
                 'X-Project-Id': 'blockacct'}


class CloudKittyStack(services.ServiceFixture):
    """InfluxDB + cloudkitty-api (+ cloudkitty-processor) for a Gnocchi.

    :param gnocchi: a started :class:`GnocchiStack` (what CloudKitty
        rates).
    :param metrics_file: CloudKitty's metrics.yml.
    :param period: ``[collect] period`` in seconds; the metrics'
        ``force_granularity`` must equal it.
    :param wait_periods: ``[collect] wait_periods``.
    :param resource_types: ``[fetcher_gnocchi] resource_types`` (where the
        fetcher looks for scopes, i.e. project ids).
    :param database: name of CloudKitty's MariaDB database.
    """

    def __init__(self, gnocchi, metrics_file, period=3600, wait_periods=1,
                 resource_types=('instance_disk',), database='cloudkitty',
                 start_timeout=60.0, keep_dir=False):
        super().__init__()
        self.gnocchi = gnocchi
        self.metrics_file = os.path.abspath(metrics_file)
        self.period = period
        self.wait_periods = wait_periods
        self.resource_types = resource_types
        self.database = database
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.root = None
        self.url = None
        self.influx_port = None
        self.config_file = None

    def _setUp(self):
        self._make_root('cloudkitty', self.keep_dir)
        self._step('influxdb', self._start_influxdb)
        db_url = self._step('mariadb', self._start_mariadb)
        self.config_file = self._write_config(db_url)
        self._step('cloudkitty-dbsync', services.run_once,
                   'cloudkitty-dbsync',
                   [gnocchi_stack.GnocchiStack._bin('cloudkitty-dbsync'),
                    '--config-file', self.config_file, 'upgrade'],
                   self._log('cloudkitty-dbsync'), 120)
        self._step('cloudkitty-storage-init', services.run_once,
                   'cloudkitty-storage-init',
                   [gnocchi_stack.GnocchiStack._bin(
                       'cloudkitty-storage-init'),
                    '--config-file', self.config_file],
                   self._log('cloudkitty-storage-init'), 120)
        self._step('cloudkitty-api', self._start_api)

    # -- configuration -------------------------------------------------

    def _write_config(self, db_url):
        paste = os.path.join(self.root, 'api_paste.ini')
        with open(paste, 'w') as f:
            f.write(_API_PASTE)
        locks = os.path.join(self.root, 'locks')
        os.mkdir(locks)
        path = os.path.join(self.root, 'cloudkitty.conf')
        values = {
            'paste': paste, 'db': db_url, 'locks': locks,
            'period': self.period, 'wait': self.wait_periods,
            'metrics': self.metrics_file,
            'gnocchi': self.gnocchi.url, 'user': gnocchi_stack.ADMIN,
            'types': ','.join(self.resource_types),
            'influx_port': self.influx_port, 'influx_db': INFLUX_DB,
        }
        with open(path, 'w') as f:
            f.write(
                '[DEFAULT]\n'
                'debug = true\n'
                'host = blockacct-cloudkitty\n'
                'transport_url = fake://\n'
                'auth_strategy = noauth\n'
                'api_paste_config = %(paste)s\n'
                '[database]\n'
                'connection = %(db)s\n'
                '[oslo_concurrency]\n'
                'lock_path = %(locks)s\n'
                '[orchestrator]\n'
                'coordination_url = file://%(locks)s\n'
                'max_workers = 1\n'
                'max_workers_reprocessing = 0\n'
                '[collect]\n'
                'collector = gnocchi\n'
                'period = %(period)d\n'
                'wait_periods = %(wait)d\n'
                'metrics_conf = %(metrics)s\n'
                'scope_key = project_id\n'
                '[fetcher]\n'
                'backend = gnocchi\n'
                '[fetcher_gnocchi]\n'
                'gnocchi_auth_type = basic\n'
                'gnocchi_user = %(user)s\n'
                'gnocchi_endpoint = %(gnocchi)s\n'
                'resource_types = %(types)s\n'
                'scope_attribute = project_id\n'
                '[collector_gnocchi]\n'
                'gnocchi_auth_type = basic\n'
                'gnocchi_user = %(user)s\n'
                'gnocchi_endpoint = %(gnocchi)s\n'
                '[storage]\n'
                'backend = influxdb\n'
                'version = 2\n'
                '[storage_influxdb]\n'
                'host = 127.0.0.1\n'
                'port = %(influx_port)d\n'
                'database = %(influx_db)s\n'
                % values)
        return path

    # -- services ------------------------------------------------------

    def _wait(self, service, probe, what):
        deadline = time.monotonic() + self.start_timeout
        error = None
        while time.monotonic() < deadline:
            service.check_alive()
            try:
                if probe():
                    return
            except requests.RequestException as exc:
                error = exc
            time.sleep(0.2)
        raise services.StackStartError(
            '%s did not answer within %ss (%s): %s' % (
                what, self.start_timeout, error,
                services.tail(service.log_path)))

    def _start_mariadb(self):
        # NOTE: not the Gnocchi stack's PostgreSQL: CloudKitty 25's
        # migrations only run on MySQL.  On PostgreSQL, hashmap f8c799db4aa0
        # passes a str to Connection.execute() (SQLAlchemy 2 refuses it) and
        # a later one adds a TEXT(256) column (PostgreSQL refuses it); on
        # PostgreSQL and SQLite, whose DDL is transactional, 8a591f85865f
        # queries the new columns through another session before they are
        # committed.  MySQL commits each DDL statement.
        for binary in (MARIADB_INSTALL_DB, MARIADBD):
            if not os.access(binary, os.X_OK):
                raise services.StackStartError(
                    '%s not found: install mariadb-server (see bindep.txt)'
                    % binary)
        data = os.path.join(self.root, 'mariadb')
        services.run_once(
            'mariadb-install-db',
            [MARIADB_INSTALL_DB, '--no-defaults', '--datadir=' + data,
             '--user=root', '--auth-root-authentication-method=normal',
             '--skip-test-db'],
            self._log('mariadb-install-db'), 120)
        port = services.free_port()
        # NOTE: a throw-away server: no grants, no durability.
        service = self._spawn('mariadbd', [
            MARIADBD, '--no-defaults', '--datadir=' + data, '--user=root',
            '--bind-address=127.0.0.1', '--port=%d' % port,
            '--socket=' + os.path.join(self.root, 'mariadb.sock'),
            '--skip-grant-tables', '--skip-name-resolve',
            '--innodb-flush-log-at-trx-commit=0', '--skip-log-bin'])
        import pymysql

        def probe():
            try:
                conn = pymysql.connect(host='127.0.0.1', port=port,
                                       user='root', connect_timeout=2)
            except pymysql.err.OperationalError:
                return False
            try:
                with conn.cursor() as cur:
                    cur.execute('CREATE DATABASE IF NOT EXISTS `%s`'
                                % self.database)
            finally:
                conn.close()
            return True
        self._wait(service, probe, 'mariadbd')
        return 'mysql+pymysql://root@127.0.0.1:%d/%s' % (port,
                                                         self.database)

    def _start_influxdb(self):
        if not os.access(INFLUXD, os.X_OK):
            raise services.StackStartError(
                '%s not found: install influxdb (see bindep.txt)' % INFLUXD)
        data = os.path.join(self.root, 'influxdb')
        self.influx_port = services.free_port()
        rpc_port = services.free_port()
        conf = os.path.join(self.root, 'influxdb.conf')
        with open(conf, 'w') as f:
            f.write(
                'reporting-disabled = true\n'
                'bind-address = "127.0.0.1:%(rpc)d"\n'
                '[meta]\n  dir = "%(data)s/meta"\n'
                '[data]\n  dir = "%(data)s/data"\n'
                '  wal-dir = "%(data)s/wal"\n'
                '  query-log-enabled = false\n'
                '[monitor]\n  store-enabled = false\n'
                '[continuous_queries]\n  enabled = false\n'
                '[http]\n  bind-address = "127.0.0.1:%(http)d"\n'
                '  log-enabled = false\n'
                % {'data': data, 'rpc': rpc_port, 'http': self.influx_port})
        service = self._spawn('influxd', [INFLUXD, '-config', conf])
        base = 'http://127.0.0.1:%d' % self.influx_port
        self._wait(service, lambda: requests.get(
            base + '/ping', timeout=2).status_code == 204, 'influxd')
        requests.post(base + '/query', timeout=10,
                      data={'q': 'CREATE DATABASE %s' % INFLUX_DB}
                      ).raise_for_status()

    def _start_api(self):
        port = services.free_port()
        self.url = 'http://127.0.0.1:%d' % port
        env = dict(os.environ)
        env['VIRTUAL_ENV'] = os.path.dirname(services.VENV_BIN)
        # NOTE: uwsgi hands --pyargv to the app as sys.argv[1:], which
        # cloudkitty's prepare_service() parses with oslo.config.
        service = self._spawn('cloudkitty-api', [
            gnocchi_stack.GnocchiStack._bin('uwsgi'),
            '--http-socket', '127.0.0.1:%d' % port,
            # NOTE: CloudKitty 25's hashmap mapping and pyscripts
            # controllers read [keystone_authtoken] (to name the user who
            # changes a rule) even with noauth; keystonemiddleware
            # registers that group when imported.  With no X-Auth-Token
            # header the user is 'unknown' and Keystone is not called.
            '--import', 'keystonemiddleware.auth_token',
            '--module', 'cloudkitty.wsgi.api:application',
            '--virtualenv', env['VIRTUAL_ENV'],
            '--pyargv', '--config-file %s' % self.config_file,
            '--master', '--processes', '1', '--threads', '2',
            '--die-on-term', '--need-app', '--lazy-apps'], env=env)
        self._wait(service, lambda: requests.get(
            self.url + '/', timeout=5).status_code == 200, 'cloudkitty-api')

    def start_processor(self):
        """Start ``cloudkitty-processor`` (once the scopes are seeded)."""
        if 'cloudkitty-processor' in self._services:
            return
        service = self._spawn('cloudkitty-processor', [
            gnocchi_stack.GnocchiStack._bin('cloudkitty-processor'),
            '--config-file', self.config_file])
        # NOTE: no readiness probe; a broken config exits at once.
        time.sleep(1.0)
        service.check_alive()

    # -- public --------------------------------------------------------

    def api(self, method, path, **kwargs):
        """One request to cloudkitty-api as an admin; the parsed answer."""
        headers = dict(ADMIN_HEADERS)
        headers.update(kwargs.pop('headers', {}))
        # NOTE: PUT /v1/rating/modules/<id> answers 302 to itself.
        resp = requests.request(method, self.url + path, headers=headers,
                                timeout=30, allow_redirects=False, **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError('%s %s: %s %s' % (
                method, path, resp.status_code, resp.text[:500]))
        if resp.status_code >= 300 or not resp.content:
            return None
        return resp.json()
