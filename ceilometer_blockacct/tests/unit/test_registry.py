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
"""The registry: when a disk's counting provably began, gone processes."""

import fixtures
import testtools

from ceilometer_blockacct import registry
from ceilometer_blockacct.sources import records

BOOT = 'boot-1'
MARK = (BOOT, 1000)


def listing(domains, boot=BOOT):
    return records.Listing(boot, dict(domains), 0)


def reading(uuid, dom_id, devices, mono_ns, start=None, boot=BOOT):
    return records.VMReading(
        instance_id=uuid, epoch=records.Epoch(boot, dom_id, start),
        mono_ns=mono_ns, source='qmp',
        disks={dev: records.DiskCounters(dev, {}, None, did)
               for dev, did in devices.items()})


class TestBeganAfter(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger())
        self.reg = registry.Registry()

    def began(self, uuid, dom_id, device_id=None, start=None, boot=BOOT):
        return self.reg.began_after(
            uuid, records.Epoch(boot, dom_id, start), device_id, MARK)

    def test_processes_of_the_first_listing_are_not_provably_new(self):
        # Scenario 4: running before the agent's first complete listing.
        self.reg.observe_listing(listing({'u': 1}), 2000)
        self.assertFalse(self.began('u', 1))

    def test_a_first_listing_without_vms_proves_nothing_about_later_reads(
            self):
        # Scenario 4: a first cycle that read no VM (listing failed) must
        # not make every VM of the next cycle new.
        self.reg.observe_listing(listing({'u': 1}), 2000)
        self.reg.observe_listing(listing({'u': 1, 'v': 2}), 3000)
        self.assertFalse(self.began('u', 1))
        self.assertTrue(self.began('v', 2))

    def test_absent_from_a_listing_before_the_mark_is_not_new(self):
        self.reg.observe_listing(listing({}), 500)
        self.reg.observe_listing(listing({'v': 2}), 3000)
        self.assertFalse(self.began('v', 2))

    def test_start_time_after_the_mark_is_new(self):
        self.reg.observe_listing(listing({'u': 1}), 2000)
        self.assertTrue(self.began('u', 1, start=1001))
        self.assertFalse(self.began('u', 1, start=999))

    def test_a_later_boot_is_new(self):
        self.reg.observe_listing(listing({'u': 1}, boot='boot-2'), 10)
        self.assertTrue(self.began('u', 1, boot='boot-2'))

    def test_only_a_process_listed_as_this_vms_is_new(self):
        # Found by the fuzz: VM u's answer showing VM v's process, in a
        # cycle whose listing failed, billed v's whole counter to u too.
        self.assertFalse(self.began('u', 1, start=1001))
        self.reg.observe_listing(listing({'v': 1}), 2000)
        self.assertFalse(self.began('u', 1, start=1001))
        self.assertTrue(self.began('v', 1, start=1001))

    def test_hotplugged_device_is_new_after_a_reading_without_it(self):
        self.reg.observe_listing(listing({'u': 1}), 2000)
        self.reg.observe_reading(reading('u', 1, {'vda': 'd0'}, 10), 2000)
        self.reg.observe_reading(
            reading('u', 1, {'vda': 'd0', 'vdb': 'd1'}, 20), 3000)
        self.assertFalse(self.began('u', 1, 'd0'))
        self.assertTrue(self.began('u', 1, 'd1'))

    def test_device_of_the_first_reading_is_not_new(self):
        self.reg.observe_listing(listing({'u': 1}), 2000)
        self.reg.observe_reading(reading('u', 1, {'vdb': 'd1'}, 10), 2000)
        self.assertFalse(self.began('u', 1, 'd1'))

    def test_gone_process_listed_again_is_not_new(self):
        self.reg.observe_listing(listing({'u': 1}), 2000)
        for t in (3000, 4000):
            self.reg.observe_listing(listing({}), t)
        self.assertIn((BOOT, 1), self.reg.gone)
        self.reg.observe_listing(listing({'u': 1}), 5000)
        self.assertFalse(self.began('u', 1))


class TestGoneAndConflicts(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger())
        self.reg = registry.Registry()
        self.reg.observe_listing(listing({'u': 1, 'v': 2}), 2000)

    def test_gone_only_after_two_complete_listings(self):
        self.assertEqual([], self.reg.observe_listing(listing({'v': 2}),
                                                      3000))
        gone = self.reg.observe_listing(listing({'v': 2}), 4000)
        self.assertEqual([('u', 1)], [(p.uuid, p.dom_id) for p in gone])

    def test_one_missed_listing_is_forgiven(self):
        self.reg.observe_listing(listing({'v': 2}), 3000)
        self.reg.observe_listing(listing({'u': 1, 'v': 2}), 4000)
        self.assertEqual([], self.reg.observe_listing(listing({'v': 2}),
                                                      5000))

    def test_a_new_boot_makes_every_old_process_gone(self):
        gone = self.reg.observe_listing(listing({'u': 1}, boot='b2'), 10)
        self.assertEqual({'u', 'v'}, {p.uuid for p in gone})

    def test_reading_of_another_vms_process_conflicts(self):
        got = self.reg.observe_reading(reading('u', 2, {'vda': 'd0'}, 10),
                                       2000)
        self.assertIn('is instance v', got['vda'])

    def test_device_seen_under_another_target_conflicts(self):
        # Two disks' counters (and device ids) swapped.
        self.reg.observe_reading(
            reading('u', 1, {'vda': 'd0', 'vdb': 'd1'}, 10), 2000)
        got = self.reg.observe_reading(
            reading('u', 1, {'vda': 'd1', 'vdb': 'd0'}, 20), 3000)
        self.assertEqual({'vda', 'vdb'}, set(got))

    def test_one_device_read_for_two_targets_conflicts(self):
        got = self.reg.observe_reading(
            reading('u', 1, {'vda': 'd0', 'vdb': 'd0'}, 10), 2000)
        self.assertEqual({'vda', 'vdb'}, set(got))

    def test_stale_reading_records_nothing(self):
        self.reg.observe_reading(reading('u', 1, {'vda': 'd0'}, 20), 2000)
        self.reg.observe_reading(
            reading('u', 1, {'vda': 'd0', 'vdb': 'd9'}, 10), 3000)
        self.assertNotIn('d9', self.reg.processes[(BOOT, 1)].devices)

    def test_round_trip(self):
        self.reg.observe_reading(reading('u', 1, {'vda': 'd0'}, 10, start=7),
                                 2000)
        procs, gone, lst = self.reg.snapshot()
        again = registry.Registry(
            [registry.Process.from_json(p) for p in procs],
            {(b, d): s for b, d, s in gone}, lst)
        p = again.processes[(BOOT, 1)]
        self.assertEqual(('u', 7, {'d0': ['vda', None]}),
                         (p.uuid, p.start, p.devices))
        self.assertRaises(ValueError, registry.Process.from_json,
                          {'uuid': 1})

    def test_device_plugged_before_an_agent_restart_is_new_after_it(self):
        # Found by the fuzz: the first reading after a restart used to be
        # the only evidence, so a device plugged meanwhile billed 0.
        self.reg.observe_reading(reading('u', 1, {'vda': 'd0'}, 10), 2000)
        procs, gone, lst = self.reg.snapshot()
        again = registry.Registry(
            [registry.Process.from_json(p) for p in procs],
            {(b, d): s for b, d, s in gone}, lst)
        again.observe_reading(
            reading('u', 1, {'vda': 'd0', 'vdb': 'd5'}, 30), 4000)
        self.assertTrue(again.began_after(
            'u', records.Epoch(BOOT, 1), 'd5', MARK))
