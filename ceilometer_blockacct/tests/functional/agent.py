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
"""Run the plugin's pollsters exactly as ``ceilometer-polling`` does.

:class:`PollingAgent` builds Ceilometer's own AgentManager (stevedore
loading of the ``compute`` namespace, ``libvirt_metadata`` instance
discovery, polling.yaml sources, the per-cycle cache) and runs one polling
cycle on demand; the samples are taken where they leave the agent
(``PollingTask._send_notification``), i.e. what would go to the
notification agent.
"""

import os
import tempfile
import textwrap
from unittest import mock

from ceilometer.polling import manager
from ceilometer import service
import fixtures
import yaml

from ceilometer_blockacct import cycle
from ceilometer_blockacct import meters


class PollingAgent(fixtures.Fixture):
    """One agent process' worth of Ceilometer polling, in this process.

    A new :class:`PollingAgent` on the same ``state_dir`` is what a
    restarted ``ceilometer-polling`` is: fresh objects, durable state.
    """

    def __init__(self, host, state_dir, blockacct=None, meter_names=None,
                 interval=1):
        super().__init__()
        self.host = host
        self.state_dir = state_dir
        self.blockacct = dict(blockacct or {})
        self.meter_names = meter_names or sorted(meters.BY_NAME)
        self.interval = interval

    def _setUp(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        polling = os.path.join(tmp, 'polling.yaml')
        with open(polling, 'w') as f:
            yaml.safe_dump({'sources': [{
                'name': 'blockacct', 'interval': self.interval,
                'meters': self.meter_names}]}, f)
        options = {'state_dir': self.state_dir}
        options.update(self.blockacct)
        conf_path = os.path.join(tmp, 'ceilometer.conf')
        with open(conf_path, 'w') as f:
            f.write(textwrap.dedent('''\
                [DEFAULT]
                libvirt_uri = %(uri)s
                host = functional-host
                [compute]
                instance_discovery_method = libvirt_metadata
                [polling]
                cfg_file = %(polling)s
                enable_notifications = false
                [blockacct]
                ''') % {'uri': self.host.uri, 'polling': polling})
            for key, value in options.items():
                f.write('%s = %s\n' % (key, value))
        # NOTE: prepare_service() would reset the root logger, and with it
        # the test's log capture; everything else is the agent's own set-up.
        with mock.patch('oslo_log.log.setup'):
            self.conf = service.prepare_service([], [conf_path])
        self.manager = manager.AgentManager(0, self.conf,
                                            namespaces=['compute'])
        self.manager.polling_manager = manager.PollingManager(self.conf)
        self.addCleanup(self.stop)
        self.tasks = self.manager.setup_polling_tasks()
        if not self.tasks:
            raise RuntimeError('no polling task: our pollsters did not load')

    def stop(self):
        """End this agent as its process would: release its state_dir."""
        cycle.release(self.conf)

    def poll(self):
        """Run one polling cycle; return the sample dicts it published."""
        published = []

        def send(task, samples):
            published.extend(samples)
        with mock.patch.object(manager.PollingTask, '_send_notification',
                               send):
            for task in self.tasks.values():
                task.poll_and_notify()
        return published


def by_meter(samples, resource_id):
    """``{meter name: volume}`` of one disk's samples."""
    found = {}
    for s in samples:
        if s['resource_id'] == resource_id:
            if s['counter_name'] in found:
                raise AssertionError('%s published twice for %s'
                                     % (s['counter_name'], resource_id))
            found[s['counter_name']] = s['counter_volume']
    return found


def new_state_dir(test):
    """A state directory that lives as long as ``test``."""
    return tempfile.mkdtemp(dir=test.useFixture(fixtures.TempDir()).path)
