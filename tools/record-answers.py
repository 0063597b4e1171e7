#!/usr/bin/env python3
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
"""Record real libvirt/QEMU answers for the unit tests' parsers.

Runs each CASE guest (known workload) on a private LibvirtHost (or on a
running one, --host-root) and writes, into ceilometer_blockacct/tests/
unit/data/, one JSON file per answer kind:

  CASE.qmp-query-blockstats.libvirt-V.qemu-V.json   raw reply text of
      libvirt_qemu.qemuMonitorCommand(dom, query-blockstats)
  CASE.xmldesc.libvirt-V.qemu-V.json                 dom.XMLDesc(0)
  CASE.bulk-stats-block.libvirt-V.qemu-V.json        the stats dict of
      conn.domainListGetStats([dom], VIR_DOMAIN_STATS_BLOCK)

Each file is {"libvirt", "qemu", "case", "kind", "guest": {name, uuid,
rounds, disks: [{target, bus, alias, size_mib, workload}]}, "expected":
{target: counters the workload must give (harness.guest.
expected_blockstats)}, "answer": ...}.  Run as root:

  /tmp/venv/bin/python tools/record-answers.py [--host-root DIR] [CASE...]
"""

import argparse
import dataclasses
import json
import os
import sys

import libvirt

from ceilometer_blockacct.tests.functional.fixtures import guest as guest_mod
from ceilometer_blockacct.tests.functional.fixtures import libvirt_host

Disk = guest_mod.Disk
Workload = guest_mod.Workload

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                        'ceilometer_blockacct', 'tests', 'unit', 'data')

# NOTE: fixed names and uuids, so re-recording changes only what QEMU and
# libvirt changed (and the temporary image paths).
CASES = {
    # virtio boot disk, virtio data disk with an alias, an IDE disk with
    # flushes, and a disk never used (no idle_time_ns).
    'mixed': dict(
        uuid='6d1b7c2e-0000-4000-8000-000000000001',
        disks=[
            Disk('vda', workload=Workload(reads=2)),
            Disk('vdb', workload=Workload(reads=10, writes=5, sectors=8),
                 alias='ua-data'),
            Disk('hda', 'ide', Workload(reads=3, writes=2, sectors=4,
                                        flushes=4)),
            Disk('vdc'),
        ]),
    # invalid and failed reads, writes and flushes on virtio and IDE.
    'errors': dict(
        uuid='6d1b7c2e-0000-4000-8000-000000000002',
        disks=[
            Disk('vda'),
            Disk('vdb', workload=Workload(
                reads=4, writes=3, invalid_reads=2, invalid_writes=1,
                failed_reads=2, failed_writes=3)),
            Disk('hda', 'ide', Workload(
                writes=1, sectors=2, invalid_reads=1, invalid_writes=1,
                failed_reads=1, failed_writes=1, failed_flushes=2)),
        ]),
    # a steady workload caught mid-run by three reads one second apart
    # would not be reproducible; this one runs 5 paced rounds.
    'rounds': dict(
        uuid='6d1b7c2e-0000-4000-8000-000000000003',
        rounds=5, pace_us=10000,
        disks=[Disk('vda', workload=Workload(reads=3, writes=2,
                                             sectors=16))]),
}


def describe(guest):
    """The guest as recorded: enough to recompute every expected value."""
    return {
        'name': guest.name,
        'uuid': guest.uuid,
        'rounds': guest.rounds,
        'pace_us': guest.pace_us,
        'disks': [{'target': d.target, 'bus': d.bus, 'alias': d.alias,
                   'size_mib': d.size_mib, 'iotune': d.iotune,
                   'workload': dataclasses.asdict(d.workload)}
                  for d in guest.disks],
    }


def expected(guest):
    return {d.target: guest_mod.expected_blockstats(
        d, rounds=guest.rounds, boot=(i == 0))
        for i, d in enumerate(guest.disks)}


def answers(host, guest):
    """{kind: answer} read from the running guest."""
    conn = host.connect()
    bulk = conn.domainListGetStats([guest.domain],
                                   libvirt.VIR_DOMAIN_STATS_BLOCK)
    return {
        'qmp-query-blockstats': guest.qmp_text(
            '{"execute": "query-blockstats"}'),
        'xmldesc': guest.domain.XMLDesc(0),
        'bulk-stats-block': bulk[0][1],
    }


def check(guest):
    """Refuse to record a guest whose counters are not the expected."""
    stats = guest.blockstats()
    for target, want in expected(guest).items():
        got = {k: stats[target][k] for k in want}
        if got != want:
            sys.exit('%s: %s counters %s != expected %s' % (
                guest.name, target, got, want))


def record(host, case, spec):
    libvirt_version, qemu_version = host.versions()
    spec = dict(spec)
    disks = spec.pop('disks')
    with guest_mod.Guest(host, disks, name='blockacct-rec-%s' % case,
                         **spec) as guest:
        guest.wait_done(timeout=60)
        check(guest)
        for kind, answer in answers(host, guest).items():
            path = os.path.join(DATA_DIR, '%s.%s.libvirt-%s.qemu-%s.json' % (
                case, kind, libvirt_version, qemu_version))
            with open(path, 'w') as f:
                json.dump({'libvirt': libvirt_version, 'qemu': qemu_version,
                           'case': case, 'kind': kind,
                           'guest': describe(guest),
                           'expected': expected(guest),
                           'answer': answer}, f, indent=1, sort_keys=True)
                f.write('\n')
            print(os.path.relpath(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host-root',
                        help='root dir of a running LibvirtHost to use')
    parser.add_argument('cases', nargs='*', choices=[[]] + sorted(CASES),
                        help='cases to record (default: all)')
    args = parser.parse_args()
    os.makedirs(DATA_DIR, exist_ok=True)
    if args.host_root:
        host = libvirt_host.LibvirtHost.attach(args.host_root)
        for case in args.cases or sorted(CASES):
            record(host, case, CASES[case])
        return
    with libvirt_host.LibvirtHost() as host:
        for case in args.cases or sorted(CASES):
            record(host, case, CASES[case])


if __name__ == '__main__':
    main()
