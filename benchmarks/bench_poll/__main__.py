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
"""``python -m benchmarks.bench_poll [--vms 1,10,30 ...]``."""

import argparse
import json
import os
import signal
import sys

import benchmarks.bench_poll as package
from benchmarks.bench_poll import analyse
from benchmarks.bench_poll import report
from benchmarks.bench_poll import run

# The repository's benchmarks/ folder.
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
    p = argparse.ArgumentParser(prog='python -m benchmarks.bench_poll',
                                description=package.__doc__.split('\n\n')[0])
    p.add_argument('--vms', default='1,10,30',
                   type=lambda s: [int(x) for x in s.split(',') if x],
                   help='guest counts, 2 disks each (default 1,10,30)')
    p.add_argument('--disks4', type=int, default=10,
                   help='also measure this many 4-disk guests, for the cost '
                        'per added disk (0: skip; default 10)')
    p.add_argument('--cycles', type=int, default=7,
                   help='measured cycles per side and N, after one warm-up '
                        '(median; default 7)')
    p.add_argument('--idle-seconds', type=float, default=1.5,
                   help='window measuring libvirtd/QEMU idle CPU')
    p.add_argument('--state-parent', default=None,
                   help='parent of the temporary state dir (default: the '
                        'system temp dir)')
    p.add_argument('--out', default=os.path.join(HERE, 'results'),
                   help='directory of bench_poll.json and bench_poll.png')
    p.add_argument('--report', metavar='JSON',
                   help='print the table of an earlier run and exit')
    p.add_argument('--profile', action='store_true',
                   help='cProfile ours-qmp at the largest N')
    args = p.parse_args(argv)
    if not args.vms or min(args.vms) < 1:
        p.error('--vms needs positive counts')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        with open(args.report) as f:
            result = json.load(f)
        print(report.table(result, analyse.analyse(result)))
        return 0
    if os.geteuid() != 0:
        sys.exit('bench_poll needs root (private libvirtd, see bindep.txt)')

    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    with run.Bench(args) as bench:
        result = bench.run()
    analysis = analyse.analyse(result)
    result['analysis'] = analysis
    os.makedirs(args.out, exist_ok=True)
    text = report.table(result, analysis)
    profile = [p.pop('profile') for p in result['points']]
    result['table'] = text
    json_path = os.path.join(args.out, 'bench_poll.json')
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
    png = report.chart(result, os.path.join(args.out, 'bench_poll.png'))
    for prof in profile:
        if prof:
            path = os.path.join(args.out, 'bench_poll.profile.txt')
            with open(path, 'w') as f:
                f.write(prof)
            report.log('profile of ours-qmp written to %s' % path)
    print(text)
    print('\nJSON: %s%s (run took %.0f s)' % (
        json_path, '\nPNG:  %s' % png if png else '', result['seconds']))
    return 0 if all(g['met'] for g in analysis['goals'].values()
                    if isinstance(g, dict) and not g.get('info')) else 1


if __name__ == '__main__':
    sys.exit(main())
