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
"""The real Ceilometer agents, with this plugin, for tests and runner.

:class:`CeilometerAgents` writes, in a fresh temporary directory,

- ``ceilometer.conf``: ``[DEFAULT] transport_url`` (RabbitMQ),
  ``libvirt_uri``; ``[compute] instance_discovery_method =
  libvirt_metadata`` (domains carrying Nova's metadata, no Nova API);
  ``[service_credentials] auth_type = gnocchi-basic`` (no Keystone);
  ``[blockacct] state_dir``;
- ``polling.yaml``: one source with our meters at ``interval`` seconds;
- ``pipeline.yaml``: every sample to the gnocchi publisher, with
  ``enable_filter_project=false`` (otherwise the publisher asks Keystone
  for the service project and publishes nothing) and
  ``resources_definition_file`` = ``gnocchi_resources.yaml``, generated
  here like ``ceilometer-blockacct gen-resources`` does (upstream's whole
  file plus our meters: the publisher reads only this one file);

and starts ``ceilometer-polling --polling-namespaces compute`` and
``ceilometer-agent-notification`` from the virtualenv of the running
interpreter, each with its own log file.  Usage::

    agents = self.useFixture(CeilometerAgents(
        libvirt_uri=host.uri, transport_url=rabbit.transport_url,
        gnocchi_url=stack.url))
"""

import contextlib
import os
import re
import time

import yaml

from ceilometer_blockacct import gnocchi
from ceilometer_blockacct.harness import gnocchi_stack
from ceilometer_blockacct.harness import services
from ceilometer_blockacct import meters

StackStartError = services.StackStartError

# NOTE: ceilometer-polling sends samples as notifications of priority
# 'sample' on topic 'notifications'; the notification agent consumes them.
SAMPLE_QUEUE = 'notifications.sample'

PUBLISHER_TEMPLATE = ('gnocchi://?enable_filter_project=false'
                      '&resources_definition_file=%(resources)s'
                      '&timeout=%(timeout)s')


class CeilometerAgents(services.ServiceFixture):
    """ceilometer-polling (compute) + ceilometer-agent-notification.

    :param libvirt_uri: the libvirtd both discovery and our pollsters use.
    :param transport_url: oslo.messaging URL (e.g. RabbitMQ.transport_url).
    :param gnocchi_url: Gnocchi endpoint with basic auth.
    :param interval: polling interval of our meters, seconds (>= 1).
    :param meter_names: meters to poll (default: all of ours).
    :param gnocchi_user: basic-auth user of the publisher.
    :param notification_batch: ``[notification] batch_size``: messages the
        notification agent gathers before one publish (fewer, larger
        Gnocchi requests); ``batch_timeout`` is 1 s.
    :param blockacct: extra ``[blockacct]`` options.
    :param rabbit: the :class:`~.rabbitmq.RabbitMQ` behind
        ``transport_url``, if any: the notification agent is then ready
        when its queue has a consumer (it logs nothing when it is).
    :param keep_dir: keep the temporary directory (config, logs, state).
    """

    def __init__(self, libvirt_uri, transport_url, gnocchi_url, interval=1,
                 meter_names=None, gnocchi_user=gnocchi_stack.ADMIN,
                 host='blockacct-allinone', notification_batch=100,
                 publisher_timeout=30, blockacct=None, rabbit=None,
                 start_timeout=60.0, keep_dir=False):
        super().__init__()
        self.libvirt_uri = libvirt_uri
        self.transport_url = transport_url
        self.gnocchi_url = gnocchi_url
        self.interval = interval
        self.meter_names = list(meter_names or sorted(meters.BY_NAME))
        self.gnocchi_user = gnocchi_user
        self.host = host
        self.notification_batch = notification_batch
        self.publisher_timeout = publisher_timeout
        self.blockacct = dict(blockacct or {})
        self.rabbit = rabbit
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.root = None
        self.config_file = None
        self.polling_file = None
        self.pipeline_file = None
        self.resources_file = None
        self.start_seconds = None

    def log_path(self, name):
        """Log file of agent ``name`` ('polling' or 'notification')."""
        return os.path.join(self.root, 'log', 'ceilometer-%s.log' % name)

    def _setUp(self):
        started = time.monotonic()
        self._make_root('ceilometer', self.keep_dir)
        self._write_files()
        # NOTE: the notification agent first, so its queue exists before
        # the first samples are sent.
        self._start('notification', 'ceilometer-agent-notification', [])
        if self.rabbit is not None:
            self._wait_consumer()
        self._start('polling', 'ceilometer-polling',
                    ['--polling-namespaces', 'compute'])
        self._wait_log('polling', r'[Pp]olling pollster')
        self.start_seconds = round(time.monotonic() - started, 2)

    # -- configuration -------------------------------------------------

    def _write_files(self):
        self.resources_file = os.path.join(self.root,
                                           'gnocchi_resources.yaml')
        with open(self.resources_file, 'w') as f:
            f.write(gnocchi.dump_resources_definition())
        self.polling_file = os.path.join(self.root, 'polling.yaml')
        with open(self.polling_file, 'w') as f:
            yaml.safe_dump({'sources': [{
                'name': 'blockacct', 'interval': self.interval,
                'meters': self.meter_names}]}, f, default_flow_style=False)
        self.pipeline_file = os.path.join(self.root, 'pipeline.yaml')
        with open(self.pipeline_file, 'w') as f:
            yaml.safe_dump({
                'sources': [{'name': 'blockacct_source', 'meters': ['*'],
                             'sinks': ['blockacct_sink']}],
                'sinks': [{'name': 'blockacct_sink',
                           'publishers': [self.publisher_url]}],
            }, f, default_flow_style=False)
        blockacct = {'state_dir': os.path.join(self.root, 'state')}
        blockacct.update(self.blockacct)
        self.config_file = os.path.join(self.root, 'ceilometer.conf')
        with open(self.config_file, 'w') as f:
            f.write(CONF_TEMPLATE % {
                'transport_url': self.transport_url,
                'libvirt_uri': self.libvirt_uri,
                'host': self.host,
                'pipeline': self.pipeline_file,
                'polling': self.polling_file,
                'batch': self.notification_batch,
                'user': self.gnocchi_user,
                'endpoint': self.gnocchi_url,
            })
            for key, value in sorted(blockacct.items()):
                f.write('%s = %s\n' % (key, value))

    @property
    def publisher_url(self):
        """The gnocchi publisher URL of pipeline.yaml."""
        return PUBLISHER_TEMPLATE % {'resources': self.resources_file,
                                     'timeout': self.publisher_timeout}

    # -- services ------------------------------------------------------

    def _start(self, name, binary, args):
        path = os.path.join(services.VENV_BIN, binary)
        if not os.access(path, os.X_OK):
            raise StackStartError('%s not found: install ceilometer in %s'
                                  % (path, os.path.dirname(
                                      services.VENV_BIN)))
        env = dict(os.environ)
        # NOTE: Ceilometer's imports warn about eventlet on every start.
        env.setdefault('PYTHONWARNINGS', 'ignore::DeprecationWarning')
        service = services.Service(
            'ceilometer-%s' % name,
            [path, '--config-file', self.config_file] + args,
            self.log_path(name), env=env)
        self._services[name] = service
        self.addCleanup(service.stop)
        return service

    def _wait_log(self, name, pattern):
        """Wait until agent ``name`` logs ``pattern`` (it is working)."""
        service = self._services[name]
        deadline = time.monotonic() + self.start_timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            service.check_alive()
            # NOTE: no log file yet while the agent is still starting.
            with contextlib.suppress(OSError):
                with open(service.log_path, errors='replace') as f:
                    if regex.search(f.read()):
                        return
            time.sleep(0.2)
        raise StackStartError('%s did not log %r within %ss: %s' % (
            service.name, pattern, self.start_timeout,
            services.tail(service.log_path)))

    def _wait_consumer(self, queue=SAMPLE_QUEUE):
        service = self._services['notification']
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            service.check_alive()
            if self.rabbit.queues().get(queue):
                return
            time.sleep(0.5)
        raise StackStartError('%s did not consume %s within %ss: %s' % (
            service.name, queue, self.start_timeout,
            services.tail(service.log_path)))

    def stop_polling(self):
        """Stop ceilometer-polling (the notification agent goes on)."""
        self._services.pop('polling').stop()

    def check_alive(self):
        """Raise StackStartError if an agent has died."""
        for service in self._services.values():
            service.check_alive()

    def log_tail(self, name, lines=15):
        return services.tail(self.log_path(name), lines)

    def errors(self, name):
        """ERROR/CRITICAL lines of agent ``name``'s log so far.

        NOTE: stevedore logs an ERROR at every start because oslo.cache's
        memcache_pool backend needs python-memcached, which nothing here
        uses: that line is left out.
        """
        try:
            with open(self.log_path(name), errors='replace') as f:
                return [line.rstrip() for line in f
                        if (' ERROR ' in line or ' CRITICAL ' in line)
                        and 'oslo_cache.memcache_pool' not in line]
        except OSError:
            return []


CONF_TEMPLATE = """\
# Generated by ceilometer_blockacct.harness.ceilometer_agents
[DEFAULT]
transport_url = %(transport_url)s
libvirt_uri = %(libvirt_uri)s
host = %(host)s
pipeline_cfg_file = %(pipeline)s
debug = false

[compute]
# Domains carrying Nova's <nova:instance> metadata; no Nova API call.
instance_discovery_method = libvirt_metadata

[polling]
cfg_file = %(polling)s

[notification]
pipelines = meter
workers = 1
batch_size = %(batch)s
batch_timeout = 1

[service_credentials]
auth_type = gnocchi-basic
user = %(user)s
endpoint = %(endpoint)s

[blockacct]
"""
