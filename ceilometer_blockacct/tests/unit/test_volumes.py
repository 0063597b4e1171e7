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
"""Volume ids: the disk's <serial> from the live XML to the sample
metadata, the resources file, Gnocchi's resource type and metrics.yml."""

import copy
import io
import json
from unittest import mock

import fixtures
from gnocchiclient import exceptions as g_exc
import testtools

from ceilometer_blockacct import cloudkitty
from ceilometer_blockacct.cmd import gnocchi_setup
from ceilometer_blockacct.cmd import main as cmd_main
from ceilometer_blockacct import cycle
from ceilometer_blockacct.gnocchi import resource_type
from ceilometer_blockacct.gnocchi import resources
from ceilometer_blockacct.sources import qmp
from ceilometer_blockacct.sources import records
from ceilometer_blockacct.tests.unit import fakes

VOLUME = '6f2a4c1e-8b3d-4e5f-9a7b-0c1d2e3f4a5b'

XML = """<domain type='qemu'><devices>
  <disk type='file' device='disk'>
    <source file='/v/root.img' index='2'/><target dev='vda' bus='virtio'/>
    <alias name='virtio-disk0'/>
  </disk>
  <disk type='network' device='disk'>
    <source protocol='nbd' name='vol' index='1'>
      <host name='127.0.0.1' port='10809'/></source>
    <target dev='vdb' bus='virtio'/>
    <serial>%s</serial>
    <alias name='virtio-disk1'/>
  </disk>
  <disk type='file' device='disk'>
    <source file='/v/scsi.img' index='3'/><target dev='sda' bus='scsi'/>
    <serial>  %s  </serial>
    <alias name='scsi0-0-0-0'/>
  </disk>
</devices></domain>"""


def reply(*devices):
    """A query-blockstats reply with the given (qdev, node-name) entries."""
    return json.dumps({'return': [
        {'qdev': qdev, 'node-name': node,
         'stats': {'rd_operations': 1, 'rd_bytes': 512}}
        for qdev, node in devices]})


class TestSerialFromXml(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.logger = self.useFixture(fixtures.FakeLogger())

    def test_serials_by_alias(self):
        dmap = qmp.disk_map(XML % (VOLUME, 'other-volume'))
        self.assertEqual({'virtio-disk1': VOLUME,
                          'scsi0-0-0-0': 'other-volume'}, dmap.serials)

    def test_serial_reaches_the_disk_counters(self):
        disks, stale = qmp.parse_blockstats(
            reply(('/machine/peripheral/virtio-disk0/virtio-backend',
                   'libvirt-2-format'),
                  ('/machine/peripheral/virtio-disk1/virtio-backend',
                   'libvirt-1-format'),
                  ('scsi0-0-0-0', 'libvirt-3-format')),
            qmp.disk_map(XML % (VOLUME, 'other-volume')))
        self.assertEqual([], stale)
        self.assertEqual({'vda': None, 'vdb': VOLUME, 'sda': 'other-volume'},
                         {d: c.serial for d, c in disks.items()})

    def test_unusable_serial_is_left_out_and_logged(self):
        dmap = qmp.disk_map(XML % ('bad\tserial', 'x' * 256))
        self.assertEqual({}, dmap.serials)
        self.assertIn('Disk vdb of domain has a <serial> that is no volume '
                      'id', self.logger.output)
        self.assertIn('Disk sda of domain', self.logger.output)

    def test_empty_serial_is_none(self):
        self.assertEqual({}, qmp.disk_map(XML % ('', '   ')).serials)

    def test_old_two_field_maps_still_work(self):
        disks, _stale = qmp.parse_blockstats(
            reply(('ide0-0-0', 'libvirt-1-format')), {'ide0-0-0': 'hda'})
        self.assertIsNone(disks['hda'].serial)


class TestSampleMetadata(testtools.TestCase):
    """Cycle.metadata as every pollster gets it."""

    def setUp(self):
        super().setUp()
        self.conf = fakes.make_conf()
        self.inst = fakes.instance('11111111-2222-3333-4444-555555555555')
        self.cyc = cycle.Cycle(agent=None)

    def metadata(self, dev, serial):
        return self.cyc.metadata(self.conf, self.inst, records.DiskCounters(
            dev, {}, serial=serial))

    def test_volume_id_when_the_disk_has_a_serial(self):
        got = self.metadata('vdb', VOLUME)
        self.assertEqual((VOLUME, 'vdb', self.inst.id),
                         (got['volume_id'], got['disk_name'],
                          got['instance_id']))

    def test_no_volume_id_without_serial(self):
        self.assertNotIn('volume_id', self.metadata('vda', None))

    def test_a_new_serial_on_a_target_within_a_cycle(self):
        # NOTE: a target reused by another volume between two reads of
        # one cycle must not keep the first volume's id.
        self.assertEqual(VOLUME, self.metadata('vdb', VOLUME)['volume_id'])
        self.assertEqual('other', self.metadata('vdb', 'other')['volume_id'])


class TestResourcesFile(testtools.TestCase):

    def test_volume_id_mapped_on_instance_disk(self):
        built = resources.build_resources_definition()
        disk, = [r for r in built['resources']
                 if r['resource_type'] == 'instance_disk']
        self.assertEqual('resource_metadata.volume_id',
                         disk['attributes']['volume_id'])

    def test_upstream_mapping_volume_id_is_refused(self):
        upstream = resources.load_upstream_resources()
        for r in upstream['resources']:
            if r['resource_type'] == 'instance_disk':
                r['attributes']['volume_id'] = 'resource_metadata.x'
        self.assertRaises(ValueError, resources.build_resources_definition,
                          upstream)

    def test_publisher_sends_it_only_when_the_sample_has_it(self):
        from ceilometer.publisher import gnocchi as publisher
        from ceilometer import sample as sample_mod

        # NOTE: conf is only used to find a relative file; this is absolute.
        defs, _policies = publisher.GnocchiPublisher._load_definitions(
            None, None, _written(self))
        rd, = [d for d in defs if d.cfg['resource_type'] == 'instance_disk']

        def attributes(metadata):
            return rd.sample_attributes(sample_mod.Sample(
                name='disk.device.read.bytes.delta', type='delta', unit='B',
                volume=1, user_id='u', project_id='p', resource_id='r',
                resource_metadata=metadata))
        self.assertEqual(
            {'name': 'vdb', 'instance_id': 'i', 'volume_id': VOLUME},
            attributes({'disk_name': 'vdb', 'instance_id': 'i',
                        'volume_id': VOLUME}))
        self.assertEqual({'name': 'vda', 'instance_id': 'i'},
                         attributes({'disk_name': 'vda', 'instance_id': 'i'}))


def _written(test):
    path = test.useFixture(fixtures.TempDir()).join('resources.yaml')
    with open(path, 'w') as f:
        f.write(resources.dump_resources_definition())
    return path


CEILOMETER_TYPE = {
    'name': 'instance_disk', 'state': 'active',
    'attributes': {
        'name': {'type': 'string', 'required': True, 'min_length': 0,
                 'max_length': 255},
        'instance_id': {'type': 'uuid', 'required': True}}}


def with_volume_id(**changes):
    answer = copy.deepcopy(CEILOMETER_TYPE)
    answer['attributes']['volume_id'] = dict(
        resource_type.RESOURCE_ATTRIBUTES['volume_id'], **changes)
    return answer


class TestPlanAttributes(testtools.TestCase):

    def test_missing_is_added(self):
        self.assertEqual(
            ('update', [{'op': 'add', 'path': '/attributes/volume_id',
                         'value': {'type': 'string', 'required': False,
                                   'min_length': 0, 'max_length': 255}}]),
            resource_type.plan_resource_attributes(CEILOMETER_TYPE))

    def test_present_is_ok(self):
        self.assertEqual(('ok', None), resource_type.plan_resource_attributes(
            with_volume_id()))
        # A longer string is as good.
        self.assertEqual(('ok', None), resource_type.plan_resource_attributes(
            with_volume_id(max_length=1024)))

    def test_conflicts(self):
        cases = [
            (with_volume_id(type='uuid'),
             'attribute volume_id is of type \'uuid\', expected string'),
            (with_volume_id(required=True),
             'attribute volume_id is required, expected optional'),
            (with_volume_id(max_length=36),
             'attribute volume_id holds 36 characters at most, expected 255'),
            (with_volume_id(min_length=40),
             'attribute volume_id needs 40 characters at least, expected 0'),
        ]
        for answer, text in cases:
            self.assertEqual(('conflict', [text]),
                             resource_type.plan_resource_attributes(answer),
                             text)

    def test_malformed(self):
        for answer in (None, [], 'instance_disk', {'name': 'x'},
                       {'attributes': []},
                       {'attributes': {'volume_id': 'string'}}):
            self.assertRaises(resource_type.MalformedResourceType,
                              resource_type.plan_resource_attributes, answer)


class FakeResourceTypes:
    """gnocchiclient's resource_type manager over one stored answer."""

    def __init__(self, answer, race=None):
        self.answer = answer
        self.race = race
        self.patches = []

    def get(self, name):
        return copy.deepcopy(self.answer)

    def update(self, name, operations):
        self.patches.append(operations)
        if self.race is not None:
            # Another gnocchi-setup added it first.
            self.answer = self.race
            raise g_exc.BadRequest(400, 'attribute already exists')
        for op in operations:
            self.answer['attributes'][op['path'].rpartition('/')[2]] = (
                op['value'])
        return self.answer


class FakeClient:
    def __init__(self, types):
        self.resource_type = types


class TestEnsureAttributes(testtools.TestCase):

    def test_added_then_ok(self):
        types = FakeResourceTypes(copy.deepcopy(CEILOMETER_TYPE))
        client = FakeClient(types)
        self.assertEqual(['volume_id'],
                         resource_type.ensure_resource_attributes(client))
        self.assertEqual([], resource_type.ensure_resource_attributes(client))
        self.assertEqual(1, len(types.patches))
        self.assertEqual(with_volume_id(), types.answer)

    def test_added_by_a_concurrent_run(self):
        types = FakeResourceTypes(copy.deepcopy(CEILOMETER_TYPE),
                                  race=with_volume_id())
        self.assertEqual([], resource_type.ensure_resource_attributes(
            FakeClient(types)))

    def test_concurrent_run_added_another_form(self):
        types = FakeResourceTypes(copy.deepcopy(CEILOMETER_TYPE),
                                  race=with_volume_id(type='uuid'))
        exc = self.assertRaises(resource_type.AttributeConflict,
                                resource_type.ensure_resource_attributes,
                                FakeClient(types))
        self.assertIn("volume_id is of type 'uuid'", str(exc))

    def test_setup_error_for_a_conflict(self):
        types = FakeResourceTypes(with_volume_id(required=True))
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.ensure_attributes,
                                FakeClient(types))
        self.assertIn('resource type instance_disk: attribute volume_id is '
                      'required, expected optional', str(exc))
        self.assertIn('gnocchi resource-type update instance_disk -r',
                      str(exc))
        self.assertEqual([], types.patches)

    def test_setup_error_for_a_malformed_answer(self):
        exc = self.assertRaises(gnocchi_setup.SetupError,
                                gnocchi_setup.ensure_attributes,
                                FakeClient(FakeResourceTypes(['x'])),
                                url='http://127.0.0.1:1')
        self.assertEqual(
            'Gnocchi at http://127.0.0.1:1 gave an answer to GET resource '
            "type instance_disk that is not Gnocchi's API "
            '(MalformedResourceType: the answer is a list, not an object)',
            str(exc))

    def test_command_says_what_it_added(self):
        types = FakeResourceTypes(copy.deepcopy(CEILOMETER_TYPE))
        client = FakeClient(types)
        stdout = self.useFixture(fixtures.MonkeyPatch(
            'sys.stdout', io.StringIO())).new_value
        with mock.patch.object(gnocchi_setup, 'setup', return_value=[]), \
                mock.patch.object(gnocchi_setup, 'make_client',
                                  return_value=client):
            self.assertEqual(0, cmd_main.main(
                ['gnocchi-setup', '--gnocchi-url', 'http://x']))
            self.assertEqual('resource type instance_disk: attribute '
                             'volume_id added\n'
                             'resource type instance_disk: ok\n',
                             stdout.getvalue())
            stdout.truncate(0)
            stdout.seek(0)
            self.assertEqual(0, cmd_main.main(
                ['gnocchi-setup', '--gnocchi-url', 'http://x']))
            self.assertEqual('resource type instance_disk: ok\n',
                             stdout.getvalue())


class TestCloudKitty(testtools.TestCase):

    def test_volume_id_is_metadata_of_every_metric(self):
        metrics = cloudkitty.metrics_config()['metrics']
        self.assertTrue(metrics)
        for name, metric in metrics.items():
            self.assertEqual(['volume_id'], metric['metadata'], name)
            self.assertNotIn('volume_id', metric['groupby'], name)
