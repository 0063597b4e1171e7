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
"""Golden test: the full sample list for one recorded host.

The recorded libvirt 9.0 / QEMU 7.2 answers of the ``mixed`` guest go
through the real parser and every pollster (loaded by stevedore) of an
agent that already has state and saw the guest's QEMU process start, so
every delta is the whole counter.  Any
change of the published samples shows up as a diff of
``data/golden-samples.mixed.json``; regenerate it deliberately with
``python -m ceilometer_blockacct.tests.unit.test_golden``.
"""

import json
import os
import sys

import fixtures
import testtools

from ceilometer_blockacct import cycle
from ceilometer_blockacct import meters
from ceilometer_blockacct.sources import qmp
from ceilometer_blockacct.sources import records
from ceilometer_blockacct import state
from ceilometer_blockacct.tests.unit.sources import test_parsers
from ceilometer_blockacct.tests.unit import test_pollsters

GOLDEN = os.path.join(test_parsers.DATA, 'golden-samples.mixed.json')
MONO_NS = 5000 * 10 ** 9


class RecordedReader:
    """Serves the recorded answers of the ``mixed`` guest."""

    def __init__(self, start):
        self.epoch = records.Epoch(state.boot_id(), 1, start)
        reply = test_parsers.load('mixed', 'qmp-query-blockstats')
        self.uuid = reply['guest']['uuid']
        aliases = qmp.aliases_from_xml(
            test_parsers.load('mixed', 'xmldesc')['answer'])
        self.disks, _ = qmp.parse_blockstats(reply['answer'], aliases)

    def read(self, ids):
        out = records.Readings({self.uuid: records.VMReading(
            instance_id=self.uuid, epoch=self.epoch, mono_ns=MONO_NS,
            source='qmp', disks=self.disks)})
        out.listing = records.Listing(self.epoch.boot_id, {self.uuid: 1},
                                      MONO_NS)
        return out


def sample_list(test):
    """Poll once with every pollster; return the samples as plain rows."""
    tp = test_pollsters.TestPollsters('test_all_meters_loaded_by_stevedore')
    tp.setUp()
    test.addCleanup(tp.doCleanups)
    tp.exts[0].obj.agent.store.close()
    # An agent that has state already: a previous run created the store
    # and every meter's state, then the guest's QEMU process started.
    previous = state.StateStore(tp.conf.blockacct.state_dir)
    for m in meters.METERS:
        previous.meter(m.name)
    previous.close()
    reader = RecordedReader(start=state.boottime_ns() + 1)
    agent = cycle.Agent(tp.conf, reader=reader)
    test.addCleanup(agent.store.close)
    for e in tp.exts:
        e.obj.agent = agent
    inst = test_pollsters.instance(reader.uuid)
    cache, rows = {}, []
    for e in tp.exts:
        for s in e.obj.get_samples(None, cache, [inst]):
            rows.append([s.name, s.resource_id, s.type, s.unit, s.volume,
                         s.resource_metadata['disk_name']])
    return sorted(rows)


class TestGolden(testtools.TestCase):

    def test_full_sample_list(self):
        self.useFixture(fixtures.FakeLogger())
        with open(GOLDEN) as f:
            want = json.load(f)
        self.assertEqual(want, sample_list(self))


if __name__ == '__main__':
    case = TestGolden('test_full_sample_list')
    with open(GOLDEN, 'w') as out:
        json.dump(sample_list(case), out, indent=0)
        out.write('\n')
    case.doCleanups()
    sys.exit(0)
