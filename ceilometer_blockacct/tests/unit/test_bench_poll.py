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
"""The benchmark's arithmetic and log parsing (benchmarks/bench_poll).

Speed itself is never asserted here: the benchmark prints it.
"""

import testtools

from benchmarks.bench_poll import analyse
from benchmarks.bench_poll import measure


def _side(wall, samples=0, rpcs=1, cpu=1.0):
    return {'wall_ms': wall, 'samples': samples, 'rpcs': rpcs,
            'agent_cpu_ms': cpu, 'libvirtd_cpu_ms': 0.0,
            'qemu_cpu_ms': 0.0, 'total_cpu_ms': cpu,
            'cpu_share_1hz': cpu / 1e3}


def _point(n, disks, ours, up, raw):
    sides = {name: _side(raw * n) for name in (
        'raw-qmp', 'raw-qmp-8', 'raw-bulk')}
    sides['ours-qmp'] = _side(ours * n, samples=28 * disks * n)
    sides['ours-bulk'] = _side(ours * n, samples=12 * disks * n)
    sides['upstream'] = _side(up * n, samples=6 * disks * n,
                              rpcs=13 * n)
    return {'vms': n, 'disks_per_vm': disks, 'sides': sides,
            'discovery': {'wall_ms': 1.0}}


class TestBenchPoll(testtools.TestCase):

    def test_rpc_log_line_is_parsed(self):
        line = ('2026-11-25 21:28:24.722+0000: 32724: info : '
                'virNetServerClientDispatchRead:1224 : '
                'RPC_SERVER_CLIENT_MSG_RX: client=0x55fae7598020 len=44 '
                'prog=536903814 vers=1 proc=24 type=0 status=0 serial=10')
        reply = line.replace('type=0', 'type=1')
        self.assertEqual([('0x55fae7598020', '536903814', '24')],
                         measure.RPC_RX.findall(line + '\n' + reply))

    def test_goals_and_ratios(self):
        result = {'points': [_point(n, 2, 2.0, 20.0, 1.0)
                             for n in (1, 10, 30)]}
        a = analyse.analyse(result)
        top = a['per_n'][-1]
        self.assertAlmostEqual(10.0, top['wall_upstream_over_ours_qmp'])
        # Per sample: ours 2/56, upstream 20/12 per VM.
        self.assertAlmostEqual((2.0 / 56) / (20.0 / 12),
                               top['per_sample_cost_ratio_qmp'])
        self.assertTrue(a['goals']['vs_upstream']['met'])
        self.assertFalse(a['goals']['vs_raw_qmp']['met'])
        self.assertAlmostEqual(2.0, a['goals']['vs_raw_qmp']['ratio'])
        self.assertAlmostEqual(
            2.0, a['growth_per_vm_ms']['ours-qmp']['slope_ms_per_vm'])
        self.assertTrue(a['goals']['linear']['met'])

    def test_growth_per_added_disk(self):
        two, four = _point(10, 2, 2.0, 20.0, 1.0), _point(10, 4, 3.0, 30.0,
                                                          1.0)
        a = analyse.analyse({'points': [two, four]})
        g = a['growth_per_disk_ms']['ours-qmp']
        self.assertAlmostEqual(0.5, g['ms_per_added_disk'])
        self.assertEqual(0, g['rpcs_per_added_disk'])

    def test_fit(self):
        self.assertEqual((2.0, 1.0), analyse.fit([1, 2, 3], [3, 5, 7]))
