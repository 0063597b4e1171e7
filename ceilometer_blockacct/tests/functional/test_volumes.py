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
"""Cinder volume ids from a disk's <serial> to the samples and to Gnocchi.

A Linux guest (:mod:`.fixtures.linux_guest`) has a local disk without
serial (vda) and a volume (vdb, ``<serial>`` = its volume id, as Nova
writes it); more volumes are attached live during the test.  The real
``gnocchi-setup`` prepares the shared Gnocchi, the real pollsters poll
(:mod:`.agent`) and Ceilometer's own gnocchi publisher posts
(:mod:`.publish`); Gnocchi is read with the ``gnocchi`` CLI as an operator
types it (``gnocchi resource search "volume_id='...'"``), with the
credentials the stack fixture gives.
"""

import json
import os
import sys
import uuid

import fixtures
import testtools

from ceilometer_blockacct.gnocchi import resource_type as gnocchi
from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional import agent as agent_mod
from ceilometer_blockacct.tests.functional.fixtures import gnocchi_stack
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host
from ceilometer_blockacct.tests.functional.fixtures import linux_guest as lg
from ceilometer_blockacct.tests.functional.fixtures import services
from ceilometer_blockacct.tests.functional import publish

BIN = os.path.dirname(os.path.abspath(sys.executable))


_run = services.run_checked


class TestVolumeIds(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(name)s %(message)s'))
        self.stack = gnocchi_stack.get_shared_stack()
        self.host = libvirt_host.get_shared_host()
        self.setup_output = _run([
            os.path.join(BIN, 'ceilometer-blockacct'), 'gnocchi-setup',
            '--config-file', self.stack.ceilometer_config_file])
        self.publisher = self.useFixture(publish.GnocchiPublisher(
            self.stack.ceilometer_config_file))

    def start_guest(self):
        """The guest (vda: local disk, vdb: a volume) and an agent.

        Volume ids are new for each test: the shared Gnocchi keeps the
        resources of earlier tests.
        """
        self.volumes = [str(uuid.uuid4()) for _ in range(3)]
        self.guest = self.useFixture(lg.LinuxGuest(self.host, [
            lg.LinuxDisk('vda', 'virtio', 8),
            lg.LinuxDisk('vdb', 'virtio', 9, serial=self.volumes[0]),
        ]))
        self.agent = self.useFixture(agent_mod.PollingAgent(
            self.host, agent_mod.new_state_dir(self)))

    def gnocchi(self, *args):
        """The ``gnocchi`` CLI as the stack's admin; parsed JSON."""
        env = dict(os.environ, PYTHONWARNINGS='ignore', **self.stack.env)
        return json.loads(_run([os.path.join(BIN, 'gnocchi')] + list(args)
                               + ['-f', 'json'], env))

    def search(self, volume_id):
        """``{Ceilometer's resource id: Gnocchi's id}`` of a volume's disks.

        NOTE: Gnocchi's own ``id`` is a UUID it derives from the original
        id and the creator (Ceilometer's user), so ``gnocchi resource
        show`` as another user needs it, not the original.
        """
        return {r['original_resource_id']: r['id'] for r in self.gnocchi(
            'resource', 'search', '--type', meters.RESOURCE_TYPE,
            "volume_id='%s'" % volume_id)}

    def poll_and_publish(self):
        samples = self.agent.poll()
        self.publisher.publish(samples)
        return samples

    def rid(self, target):
        return '%s-%s' % (self.guest.uuid, target)

    def metadata_volume_ids(self, samples, target):
        """volume_id of every sample of ``target`` (None: no such key)."""
        return {s['resource_metadata'].get('volume_id', 'absent')
                for s in samples if s['resource_id'] == self.rid(target)}

    def test_gnocchi_setup_added_the_attribute(self):
        self.assertIn('resource type instance_disk: ok',
                      self.setup_output.splitlines())
        attributes = self.stack.client().resource_type.get(
            meters.RESOURCE_TYPE)['attributes']
        self.assertEqual(gnocchi.RESOURCE_ATTRIBUTES['volume_id'],
                         attributes['volume_id'])
        # Run again: nothing to add.
        again = _run([os.path.join(BIN, 'ceilometer-blockacct'),
                      'gnocchi-setup', '--config-file',
                      self.stack.ceilometer_config_file])
        self.assertNotIn('added', again)
        self.assertIn('resource type instance_disk: ok', again.splitlines())

    def test_volume_id_in_samples_and_gnocchi(self):
        self.start_guest()
        volume = self.volumes[0]
        samples = self.poll_and_publish()
        self.assertEqual({volume}, self.metadata_volume_ids(samples, 'vdb'))
        # A disk without <serial> has no volume_id key at all.
        self.assertEqual({'absent'}, self.metadata_volume_ids(samples, 'vda'))

        found = self.search(volume)
        self.assertEqual([self.rid('vdb')], list(found))
        vdb = self.gnocchi('resource', 'show', '--type',
                           meters.RESOURCE_TYPE, found[self.rid('vdb')])
        self.assertEqual((volume, 'vdb', self.guest.uuid),
                         (vdb['volume_id'], vdb['name'], vdb['instance_id']))
        disks = self.gnocchi('resource', 'search', '--type',
                             meters.RESOURCE_TYPE,
                             "instance_id='%s'" % self.guest.uuid)
        self.assertEqual({self.rid('vda'): None, self.rid('vdb'): volume},
                         {r['original_resource_id']: r['volume_id']
                          for r in disks})
        self.assertEqual([], self.publisher.warnings)

    def test_volume_attached_live_and_target_reused(self):
        self.start_guest()
        _first, volume_2, volume_3 = self.volumes
        self.poll_and_publish()
        self.guest.attach(lg.LinuxDisk('vdc', 'virtio', 10,
                                       serial=volume_2))
        samples = self.poll_and_publish()
        self.assertEqual({volume_2},
                         self.metadata_volume_ids(samples, 'vdc'))
        self.assertEqual([self.rid('vdc')], list(self.search(volume_2)))

        # Another volume at the same target: the same Gnocchi resource
        # (its id is instance + target) now names the new volume; the old
        # value stays in the resource's history.
        self.guest.detach('vdc')
        self.poll_and_publish()
        self.guest.attach(lg.LinuxDisk('vdc', 'virtio', 11,
                                       serial=volume_3))
        samples = self.poll_and_publish()
        self.assertEqual({volume_3},
                         self.metadata_volume_ids(samples, 'vdc'))
        found = self.search(volume_3)
        self.assertEqual([self.rid('vdc')], list(found))
        self.assertEqual({}, self.search(volume_2))
        history = self.gnocchi('resource', 'history', '--type',
                               meters.RESOURCE_TYPE, found[self.rid('vdc')])
        self.assertEqual([volume_2, volume_3],
                         [r['volume_id'] for r in history])
        self.guest.detach('vdc')
