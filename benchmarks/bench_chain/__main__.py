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
"""``python -m benchmarks.bench_chain [--window 300 ...]`` (as root)."""

import argparse
import json
import os
import signal
import sys

import benchmarks.bench_chain as package
from benchmarks.bench_chain import chain
from benchmarks.bench_chain import report

# The repository's benchmarks/ folder.
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ints(text):
    values = [int(x) for x in text.split(',') if x]
    if not values or min(values) < 1:
        raise ValueError(text)
    return values


_ints.__name__ = 'list of positive integers'


def _sides(text):
    values = [x for x in text.split(',') if x]
    if not values or set(values) - set(chain.SIDES):
        raise ValueError(text)
    return values


def _steps(text):
    """``10:4,30;1:1,4`` -> {10: [4, 30], 1: [1, 4]}."""
    found = {}
    for part in text.split(';'):
        interval, _, vms = part.partition(':')
        found[int(interval)] = _ints(vms)
    return found


_steps.__name__ = 'INTERVAL:N,N;INTERVAL:N...'


_sides.__name__ = 'list of sides (%s)' % ', '.join(chain.SIDES)


def parse_args(argv):
    p = argparse.ArgumentParser(prog='python -m benchmarks.bench_chain',
                                description=package.__doc__.split('\n\n')[0])
    p.add_argument('--window', type=float, default=300,
                   help='seconds measured per point, at least the '
                        'interval + 10 (default 300: 5 min)')
    p.add_argument('--intervals', type=_ints, default=[60, 10, 1],
                   help='polling intervals, seconds (default 60,10,1)')
    p.add_argument('--sides', type=_sides, default=list(chain.DEFAULT_SIDES),
                   help="a profile (its one pollster, as shipped), "
                        "<profile>/meters (one pollster per meter) or "
                        "upstream (Ceilometer's 6 disk meters); default: %s"
                        % ','.join(chain.DEFAULT_SIDES))
    p.add_argument('--vms', type=_ints, default=[1, 4, 15, 30, 60, 120, 240],
                   help='the step series of VMs (2 disks each), stopped '
                        'at the first whose backlog grows (default '
                        '1,4,15,30,60,120,240)')
    p.add_argument('--steps', type=_steps, default={},
                   help='VM steps per interval, overriding --vms, e.g. '
                        '"60:30;10:4,30;1:1,4"')
    p.add_argument('--real-vms', type=int, default=4,
                   help='real guests; VMs beyond them are synthetic '
                        '(default 4)')
    p.add_argument('--warmup', type=float, default=5,
                   help='seconds after the first cycle before the window')
    p.add_argument('--idle-seconds', type=float, default=30,
                   help="seconds measuring the services' CPU with no agent "
                        'running, subtracted from every point')
    p.add_argument('--backlog-every', type=float, default=5,
                   help="seconds between reads of Gnocchi's backlog")
    p.add_argument('--processing-delay', type=int, default=5,
                   help="metricd's metric_processing_delay (default 5)")
    p.add_argument('--metricd-workers', type=int, default=1)
    p.add_argument('--drain-timeout', type=float, default=180,
                   help='seconds metricd gets to drain between points')
    p.add_argument('--profile-api', action='store_true',
                   help="at the end, cProfile gnocchi-api's handling of one "
                        "cycle's batches, one request per meter against "
                        'one per 50 samples (benchmarks/bench_chain/'
                        'apiprofile.py)')
    p.add_argument('--profile-rounds', type=int, default=20,
                   help='cycles posted per layout by --profile-api')
    p.add_argument('--keep-logs', action='store_true',
                   help="copy each point's agent logs under --out/logs")
    p.add_argument('--out', default=os.path.join(HERE, 'results'),
                   help='directory of bench_chain.json and .png')
    p.add_argument('--report', metavar='JSON',
                   help='print the table of an earlier run and exit')
    args = p.parse_args(argv)
    if args.real_vms < 1:
        p.error('--real-vms: at least 1 (the synthetic VMs copy one)')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        with open(args.report) as f:
            print(report.table(json.load(f)))
        return 0
    if os.geteuid() != 0:
        sys.exit('bench_chain needs root (libvirtd, RabbitMQ, PostgreSQL)')

    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    with chain.Chain(args, report.log) as bench:
        result = bench.run()
    text = report.table(result)
    result['table'] = text
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'bench_chain.json')
    with open(path, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
    png = report.chart(result, os.path.join(args.out, 'bench_chain.png'))
    print(text)
    print('\nJSON: %s%s (run took %.0f s)' % (
        path, '\nPNG:  %s' % png if png else '', result['seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
