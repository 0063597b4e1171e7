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
"""A private RabbitMQ node (Debian's rabbitmq-server) for tests and runner.

:class:`RabbitMQ` starts, in a fresh temporary directory:

1. ``epmd`` on 127.0.0.1 and a free port, as our own child: the node
   registers there, not in a machine-wide epmd another node may own, so
   stopping it stops nothing of anyone else;
2. ``rabbitmq-server -detached`` as root (``/usr/lib/rabbitmq/bin``: the
   ``/usr/sbin`` wrapper switches to the ``rabbitmq`` user, who cannot
   write our directory) with its own node name, AMQP and distribution
   ports on 127.0.0.1, and RABBITMQ_MNESIA_BASE / LOG_BASE / HOME (the
   Erlang cookie) in the temporary directory; no plugin, no config file
   of the machine's (``/etc/rabbitmq`` is ignored);
3. a user and a vhost: :attr:`RabbitMQ.transport_url` is the
   oslo.messaging URL for them.

cleanUp stops the node (``rabbitmqctl stop PIDFILE``, which waits for the
process), kills what is left of it by pid, then stops epmd.  Usage::

    with RabbitMQ() as rabbit:
        conf.transport_url = rabbit.transport_url
"""

import contextlib
import os
import signal
import subprocess
import time

from ceilometer_blockacct.harness import services

RABBIT_BIN = os.environ.get('BLOCKACCT_RABBITMQ_BIN', '/usr/lib/rabbitmq/bin')
EPMD = os.environ.get('BLOCKACCT_EPMD', '/usr/bin/epmd')

StackStartError = services.StackStartError
_tail = services.tail


class RabbitMQ(services.ServiceFixture):
    """A RabbitMQ node of our own, on loopback only.

    :param user: AMQP user to create (password :attr:`password`).
    :param vhost: vhost to create, the user's only one.
    :param start_timeout: seconds to wait for the node to boot.
    :param keep_dir: keep the temporary directory (logs) after cleanUp.

    After setUp: :attr:`transport_url`, :attr:`port`, :attr:`node`,
    :attr:`root`, :attr:`log_dir`, :attr:`start_seconds`.
    """

    def __init__(self, user='blockacct', vhost='blockacct',
                 start_timeout=90.0, keep_dir=False):
        super().__init__()
        self.user = user
        self.vhost = vhost
        self.password = 'blockacct-%d' % os.getpid()
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.root = None
        self.port = None
        self.node = None
        self.transport_url = None
        self.start_seconds = None
        self._epmd = None
        self._env = None

    @property
    def log_dir(self):
        return os.path.join(self.root, 'log')

    @property
    def pid_file(self):
        return os.path.join(self.root, 'rabbit.pid')

    def _log(self, name):
        return os.path.join(self.log_dir, '%s.log' % name)

    def _setUp(self):
        started = time.monotonic()
        for path in (os.path.join(RABBIT_BIN, 'rabbitmq-server'),
                     os.path.join(RABBIT_BIN, 'rabbitmqctl'), EPMD):
            if not os.access(path, os.X_OK):
                raise StackStartError('%s not found: install rabbitmq-server '
                                      '(see bindep.txt)' % path)
        if os.geteuid() != 0:
            raise StackStartError('the RabbitMQ fixture runs the node as '
                                  'root (the Debian wrapper would switch to '
                                  'the rabbitmq user)')
        self._make_root('rabbitmq', self.keep_dir)
        for name in ('home', 'mnesia'):
            os.mkdir(os.path.join(self.root, name), 0o700)
        self._env = self._environment()
        self._start_epmd()
        self._start_node()
        self._add_user()
        self.transport_url = 'rabbit://%s:%s@127.0.0.1:%d/%s' % (
            self.user, self.password, self.port, self.vhost)
        self.start_seconds = round(time.monotonic() - started, 2)

    def _environment(self):
        free = services.free_port
        self.port = free()
        epmd_port = free()
        dist_port = free()
        self.node = 'blockacct-%d-%d@localhost' % (os.getpid(), self.port)
        empty_env = os.path.join(self.root, 'rabbitmq-env.conf')
        config = os.path.join(self.root, 'rabbitmq.conf')
        plugins = os.path.join(self.root, 'enabled_plugins')
        open(empty_env, 'w').close()
        with open(config, 'w') as f:
            f.write('listeners.tcp.default = 127.0.0.1:%d\n' % self.port)
        with open(plugins, 'w') as f:
            f.write('[].\n')
        env = dict(os.environ)
        env.update({
            'HOME': os.path.join(self.root, 'home'),
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(dist_port),
            'RABBITMQ_MNESIA_BASE': os.path.join(self.root, 'mnesia'),
            'RABBITMQ_LOG_BASE': self.log_dir,
            'RABBITMQ_PID_FILE': self.pid_file,
            # NOTE: without these the node reads /etc/rabbitmq, which
            # belongs to the machine's own (packaged) node.
            'RABBITMQ_CONF_ENV_FILE': empty_env,
            'RABBITMQ_CONFIG_FILE': config,
            'RABBITMQ_ENABLED_PLUGINS_FILE': plugins,
            # NOTE: the distribution port listens on every interface
            # unless told otherwise.
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
            'ERL_EPMD_PORT': str(epmd_port),
            'ERL_EPMD_ADDRESS': '127.0.0.1',
        })
        self._epmd_port = epmd_port
        return env

    def _start_epmd(self):
        log_path = self._log('epmd')
        with open(log_path, 'ab') as log:
            self._epmd = subprocess.Popen(
                [EPMD, '-port', str(self._epmd_port), '-address',
                 '127.0.0.1'],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=self._env, start_new_session=True)
        self.addCleanup(self._stop_epmd)

    def _stop_epmd(self):
        if self._epmd.poll() is None:
            self._epmd.terminate()
            try:
                self._epmd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._epmd.kill()
                self._epmd.wait()

    def _ctl(self, *args, timeout=60, check=True):
        """Run rabbitmqctl against our node; returns the CompletedProcess."""
        try:
            result = subprocess.run(
                [os.path.join(RABBIT_BIN, 'rabbitmqctl'), '-n', self.node]
                + list(args), env=self._env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackStartError('rabbitmqctl %s did not finish within %ss:'
                                  ' %s' % (args[0], timeout,
                                           self._node_log_tail())) from None
        if check and result.returncode != 0:
            raise StackStartError('rabbitmqctl %s failed (%s): %s | %s' % (
                args[0], result.returncode,
                ' '.join(result.stderr.split())[-400:],
                self._node_log_tail()))
        return result

    def _node_log_tail(self):
        return _tail(os.path.join(self.log_dir, '%s.log' % self.node))

    def _start_node(self):
        self.addCleanup(self._stop_node)
        log_path = self._log('rabbitmq-server')
        with open(log_path, 'ab') as log:
            result = subprocess.run(
                [os.path.join(RABBIT_BIN, 'rabbitmq-server'), '-detached'],
                env=self._env, cwd=self.root, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, timeout=60)
        if result.returncode != 0:
            raise StackStartError('rabbitmq-server -detached failed with %s:'
                                  ' %s' % (result.returncode,
                                           _tail(log_path)))
        # NOTE: 'wait' returns when the rabbit application runs, or fails
        # as soon as the OS process named in the pid file is gone.
        self._ctl('wait', self.pid_file, '--timeout',
                  str(int(self.start_timeout)),
                  timeout=self.start_timeout + 15)

    def _add_user(self):
        self._ctl('add_user', self.user, self.password)
        self._ctl('add_vhost', self.vhost)
        self._ctl('set_permissions', '-p', self.vhost, self.user,
                  '.*', '.*', '.*')

    def _node_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _stop_node(self):
        pid = self._node_pid()
        if not pid or not _alive(pid):
            return
        # NOTE: 'stop PIDFILE' halts the node and waits for its OS process
        # to exit; whatever survives (a wedged node, its port helpers) is
        # killed by pid, with the helpers it forked.
        self._ctl('stop', self.pid_file, timeout=30, check=False)
        children = _descendants(pid)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        for victim in [pid] + children:
            with contextlib.suppress(ProcessLookupError):  # gone
                os.kill(victim, signal.SIGKILL)

    def queues(self):
        """``{queue name: number of consumers}`` of our vhost."""
        result = self._ctl('list_queues', '-p', self.vhost, '--quiet',
                           '--no-table-headers', 'name', 'consumers',
                           timeout=30)
        found = {}
        for line in result.stdout.splitlines():
            name, _sep, consumers = line.rpartition('\t')
            if name and consumers.isdigit():
                found[name] = int(consumers)
        return found

    def check_alive(self):
        """Raise StackStartError if the node or epmd has died."""
        if self._epmd is not None and self._epmd.poll() is not None:
            raise StackStartError('epmd exited with %s' %
                                  self._epmd.returncode)
        pid = self._node_pid()
        if not pid or not _alive(pid):
            raise StackStartError('RabbitMQ node %s is gone: %s' % (
                self.node, self._node_log_tail()))


def _alive(pid):
    """True if ``pid`` runs (a zombie counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def _descendants(pid):
    """PIDs of every descendant of ``pid`` (from /proc)."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found
