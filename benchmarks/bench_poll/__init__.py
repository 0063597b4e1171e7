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
"""Poll cost of our pollsters against Ceilometer's own disk pollsters.

One run starts a private libvirtd and N real QEMU (TCG) boot-sector guests
with 2 disks each (they do a tiny workload, print DONE and halt), then, per
N, measures one polling cycle over all VMs of:

* ``ours-qmp``: ALL our pollsters (stevedore-loaded from
  ``ceilometer.poll.compute`` as ceilometer-polling loads them, one shared
  cache dict per cycle, samples materialised), QMP query-blockstats;
* ``ours-bulk``: the same with ``[blockacct] enable_qmp = false`` (libvirt
  bulk stats on the read-only connection);
* ``upstream``: Ceilometer's own 6 disk.device.{read,write}.{bytes,
  requests,latency} pollsters on the same guests;
* ``raw-qmp``: the round trips ours-qmp needs and nothing else: one
  listAllDomains + N concurrent qemuMonitorCommand(query-blockstats);
  ``raw-qmp-8`` is the same bounded like our reader (max_concurrent_reads);
* ``raw-bulk``: one getAllDomainStats(BLOCK) (what ours-bulk needs);
* ``discovery``: Ceilometer's libvirt_metadata instance discovery, run
  once per N and reported on its own; its resource list feeds every side.

Per cycle: wall time, the agent's CPU (time.process_time: every thread of
this process), libvirtd's and the QEMUs' CPU (/proc/PID/stat utime+stime,
minus their idle rate over the same wall time), and the libvirt RPCs
counted where they arrive: libvirtd's own RPC log (RPC_SERVER_CLIENT_MSG_RX,
switched on at run time through virt-admin for one counting cycle per side,
so logging never weighs on the timed cycles).

Usage (as root, from the repository)::

    python -m benchmarks.bench_poll                  # N = 1,10,30
    python -m benchmarks.bench_poll --vms 1,10 --cycles 5 --disks4 0

Output: a table on stdout, ``benchmarks/results/bench_poll.json`` and
``bench_poll.png`` (matplotlib, optional), and the goals at the largest N.

Modules: :mod:`.measure` (CPU, RPCs, timed cycles), :mod:`.sides` (what
is measured), :mod:`.run` (the host, the guests, one point per N),
:mod:`.analyse` (ratios, growth, goals) and :mod:`.report` (table, chart).
"""
