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
"""A real Gnocchi (PostgreSQL indexer, file storage) for tests and runner.

:class:`GnocchiStack` starts, in a fresh temporary directory:

1. PostgreSQL (:class:`PostgreSQL`) as the dedicated OS user
   :data:`PG_OS_USER` (PostgreSQL refuses to run as root; the user is
   created if missing), listening on 127.0.0.1 on a free port;
2. ``gnocchi-upgrade`` (schema, Gnocchi's default archive policies);
3. ``gnocchi-api`` (which execs uwsgi) with ``[api] auth_mode = basic``
   on 127.0.0.1 on a free port;
4. ``gnocchi-metricd`` with file storage and a configurable
   ``metric_processing_delay`` and ``[metricd] workers``;
5. the real ``ceilometer-upgrade`` with a generated ceilometer.conf
   (``[service_credentials] auth_type = gnocchi-basic``), which creates
   Ceilometer's resource types, ``instance_disk`` among them.

Every binary comes from the virtualenv of the running interpreter.  Usage::

    with GnocchiStack() as stack:
        client = stack.client()
        subprocess.run(['gnocchi', 'status'], env=stack.env)

or ``self.useFixture(GnocchiStack())`` in a testtools test, or
:func:`get_shared_stack` for one stack per process.
"""

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from ceilometer_blockacct.harness import services

PG_OS_USER = os.environ.get('BLOCKACCT_PG_USER', 'blockacct-pg')
PG_BIN_DIR = os.environ.get('BLOCKACCT_PG_BIN', '/usr/lib/postgresql/15/bin')
VENV_BIN = services.VENV_BIN
StackStartError = services.StackStartError
free_port = services.free_port

ADMIN = 'admin'


def ensure_os_user(name):
    """Create system user ``name`` (no home, no shell) unless it exists."""
    with contextlib.suppress(KeyError):  # missing: created below
        return pwd.getpwnam(name)
    result = subprocess.run(
        ['useradd', '--system', '--no-create-home', '--user-group',
         '--shell', '/usr/sbin/nologin', name],
        capture_output=True, text=True)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise StackStartError('cannot create OS user %s for PostgreSQL: %s'
                              % (name, result.stderr.strip())) from None


class PostgreSQL(services.ServiceFixture):
    """A throw-away PostgreSQL cluster run as a dedicated OS user.

    :param root: directory to create the cluster in (default: a new
        temporary directory, removed on cleanUp).
    :param os_user: OS user running the server (created if missing).
    """

    def __init__(self, root=None, os_user=PG_OS_USER, start_timeout=60.0):
        super().__init__()
        self.root = root
        self.os_user = os_user
        self.start_timeout = start_timeout
        self.host = '127.0.0.1'
        self.port = None
        self.start_seconds = None
        self._service = None

    @property
    def log_path(self):
        return os.path.join(self.root, 'postgresql.log')

    def _setUp(self):
        started = time.monotonic()
        if self.root is None:
            self.root = tempfile.mkdtemp(prefix='blockacct-pg-')
            self.addCleanup(shutil.rmtree, self.root, True)
        else:
            os.makedirs(self.root, exist_ok=True)
        user = ensure_os_user(self.os_user)
        # NOTE: the server runs as another user: it must reach its files.
        os.chmod(self.root, 0o755)
        data = os.path.join(self.root, 'data')
        os.mkdir(data, 0o700)
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = {'user': user.pw_uid, 'group': user.pw_gid,
                   'extra_groups': [], 'cwd': self.root}
        services.run_once(
            'initdb', [os.path.join(PG_BIN_DIR, 'initdb'), '-D', data,
                       '-U', self.os_user, '--auth=trust', '--no-sync',
                       '--encoding=UTF8', '--locale=C'],
            self.log_path, 120, **as_user)
        self.port = free_port()
        # NOTE: durability is worthless for a throw-away cluster; without
        # fsync the indexer's many small commits are much faster.
        self._service = services.Service(
            'postgres',
            [os.path.join(PG_BIN_DIR, 'postgres'), '-D', data,
             '-h', self.host, '-p', str(self.port), '-k', data,
             '-c', 'fsync=off', '-c', 'synchronous_commit=off',
             '-c', 'full_page_writes=off'],
            self.log_path, **as_user)
        self.addCleanup(self._service.stop, signal.SIGINT)
        self._wait_ready()
        self.start_seconds = time.monotonic() - started

    def _connect(self, dbname='postgres'):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port,
                                user=self.os_user, dbname=dbname,
                                connect_timeout=5)

    def _wait_ready(self):
        import psycopg2

        deadline = time.monotonic() + self.start_timeout
        error = None
        while time.monotonic() < deadline:
            self._service.check_alive()
            try:
                self._connect().close()
                return
            except psycopg2.OperationalError as exc:
                error = exc
            time.sleep(0.1)
        raise StackStartError('PostgreSQL did not answer within %ss (%s): %s'
                              % (self.start_timeout, error,
                                 services.tail(self.log_path)))

    def create_database(self, name):
        """Create database ``name``; returns its SQLAlchemy URL."""
        conn = self._connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute('CREATE DATABASE "%s"' % name.replace('"', ''))
        finally:
            conn.close()
        return self.url(name)

    def url(self, dbname):
        """SQLAlchemy URL of database ``dbname``."""
        return 'postgresql://%s@%s:%d/%s' % (self.os_user, self.host,
                                             self.port, dbname)


class GnocchiStack(services.ServiceFixture):
    """PostgreSQL + Gnocchi API + metricd (+ ceilometer-upgrade).

    :param metric_processing_delay: metricd's delay between two passes
        over new measures, in seconds.
    :param metricd_workers: ``[metricd] workers``.
    :param ceilometer_upgrade: run the real ``ceilometer-upgrade`` to
        create Ceilometer's resource types (``instance_disk``...).
    :param metricd: start gnocchi-metricd (not needed to test setup).
    :param start_timeout: seconds to wait for each service.
    :param keep_dir: keep the temporary directory (config, logs, data).

    After setUp: :attr:`url`, :attr:`env`, :meth:`client`,
    :attr:`config_file` (gnocchi.conf), :attr:`ceilometer_config_file`,
    :attr:`timings` (seconds per start step) and :attr:`start_seconds`.
    """

    def __init__(self, metric_processing_delay=1, metricd_workers=1,
                 ceilometer_upgrade=True, metricd=True, start_timeout=60.0,
                 keep_dir=False):
        super().__init__()
        self.metric_processing_delay = metric_processing_delay
        self.metricd_workers = metricd_workers
        self.ceilometer_upgrade = ceilometer_upgrade
        self.metricd = metricd
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.root = None
        self.url = None
        self.env = None
        self.postgresql = None
        self.config_file = None
        self.ceilometer_config_file = None
        self.start_seconds = None

    def _setUp(self):
        started = time.monotonic()
        self._make_root('gnocchi', self.keep_dir)
        # NOTE: PostgreSQL runs as another user and must traverse it.
        os.chmod(self.root, 0o711)
        self.postgresql = self._step('postgresql', self.useFixture,
                                     PostgreSQL(os.path.join(self.root,
                                                             'pg')))
        indexer_url = self.postgresql.create_database('gnocchi')
        port = free_port()
        self.url = 'http://127.0.0.1:%d' % port
        self.env = {'OS_AUTH_TYPE': 'gnocchi-basic',
                    'GNOCCHI_ENDPOINT': self.url, 'GNOCCHI_USER': ADMIN}
        self.config_file = self._write_gnocchi_conf(indexer_url, port)
        self._step('gnocchi-upgrade', services.run_once, 'gnocchi-upgrade',
                   [self._bin('gnocchi-upgrade'),
                    '--config-file', self.config_file],
                   self._log('gnocchi-upgrade'), 120)
        self._step('gnocchi-api', self._start_api, port)
        if self.metricd:
            self._step('gnocchi-metricd', self._start_metricd)
        self.ceilometer_config_file = self._write_ceilometer_conf()
        if self.ceilometer_upgrade:
            self._step('ceilometer-upgrade', self.run_ceilometer_upgrade)
        self.start_seconds = round(time.monotonic() - started, 2)

    # -- configuration -------------------------------------------------

    @staticmethod
    def _bin(name):
        path = os.path.join(VENV_BIN, name)
        if not os.access(path, os.X_OK):
            raise StackStartError('%s not found: install gnocchi and uwsgi '
                                  'in %s' % (path, os.path.dirname(VENV_BIN)))
        return path

    def _write_gnocchi_conf(self, indexer_url, port):
        path = os.path.join(self.root, 'gnocchi.conf')
        storage = os.path.join(self.root, 'storage')
        with open(path, 'w') as f:
            f.write(
                '[DEFAULT]\n'
                'debug = false\n'
                '[api]\n'
                'auth_mode = basic\n'
                'host = 127.0.0.1\n'
                'port = %(port)d\n'
                'uwsgi_path = %(uwsgi)s\n'
                '[indexer]\n'
                'url = %(indexer)s\n'
                '[storage]\n'
                'driver = file\n'
                'file_basepath = %(storage)s\n'
                '[incoming]\n'
                'driver = file\n'
                'file_basepath = %(storage)s\n'
                '[metricd]\n'
                'workers = %(workers)d\n'
                'metric_processing_delay = %(delay)s\n'
                % {'port': port, 'uwsgi': self._bin('uwsgi'),
                   'indexer': indexer_url, 'storage': storage,
                   'workers': self.metricd_workers,
                   'delay': self.metric_processing_delay})
        return path

    def _write_ceilometer_conf(self):
        path = os.path.join(self.root, 'ceilometer.conf')
        with open(path, 'w') as f:
            f.write('[service_credentials]\n'
                    'auth_type = gnocchi-basic\n'
                    'user = %s\n'
                    'endpoint = %s\n' % (ADMIN, self.url))
        return path

    # -- services ------------------------------------------------------

    def _start_api(self, port):
        env = dict(os.environ)
        # NOTE: gnocchi-api passes this to uwsgi as its python home.
        env['VIRTUAL_ENV'] = os.path.dirname(VENV_BIN)
        # NOTE: the config file path must be absolute: uwsgi chdirs to /.
        service = self._spawn('gnocchi-api', [
            self._bin('gnocchi-api'), '--config-file',
            os.path.abspath(self.config_file)], env=env)
        deadline = time.monotonic() + self.start_timeout
        error = None
        while time.monotonic() < deadline:
            service.check_alive()
            try:
                self.client().status.get()
                return
            except Exception as exc:  # not up yet: connection refused, 5xx
                error = exc
            time.sleep(0.2)
        raise StackStartError('gnocchi-api did not answer at %s within %ss '
                              '(%s): %s' % (self.url, self.start_timeout,
                                            error,
                                            self.log_tail('gnocchi-api')))

    def _start_metricd(self):
        service = self._spawn('gnocchi-metricd', [
            self._bin('gnocchi-metricd'), '--config-file', self.config_file])
        # NOTE: metricd has no readiness probe of its own; a broken config
        # makes it exit within a second, so give it that second.
        time.sleep(1.0)
        service.check_alive()

    def run_ceilometer_upgrade(self):
        """Run the real ``ceilometer-upgrade`` against this Gnocchi."""
        services.run_once(
            'ceilometer-upgrade',
            [self._bin('ceilometer-upgrade'), '--config-file',
             self.ceilometer_config_file, '--retry', '3'],
            self._log('ceilometer-upgrade'), 120)

    # -- public --------------------------------------------------------

    def client(self, user=ADMIN):
        """A gnocchiclient v1 Client with basic auth as ``user``."""
        from gnocchiclient import auth
        from gnocchiclient.v1 import client
        from keystoneauth1 import session

        return client.Client(session=session.Session(
            auth=auth.GnocchiBasicPlugin(user=user, endpoint=self.url),
            timeout=30))


_shared = None
_shared_lock = threading.Lock()


def get_shared_stack():
    """One GnocchiStack per process, started on first use, stopped at exit.

    Tests that share it must use names of their own for what they create.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            stack = GnocchiStack().start()
            atexit.register(stack.cleanUp)
            _shared = stack
        return _shared
