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
"""Whole-chain capacity: ceilometer-polling -> RabbitMQ -> notification
agent -> gnocchi-api -> metricd, per meter profile and against upstream.

``python -m benchmarks.bench_chain`` (as root; ``tox -e chain-bench``)
starts the real services once, then for each polling interval, each side
(the profiles ``billing``, ``monitoring``, ``all`` of the meter table, and
Ceilometer's own 6 disk meters, ``upstream``) and each N of a step series
(VMs with 2 disks; the real guests first, then synthetic VMs whose QMP
answers are replayed through the real plugin, see :mod:`.replay`) runs the
real agents and measures over a window: CPU seconds of every component per
1000 samples (``/proc/<pid>/stat``), Gnocchi's backlog (does it grow?) and
the storage per disk per day of the archive policies used.  A side's steps
stop at the first N whose backlog grew.  Modules: ``procs`` (CPU per
component), ``replay`` (the polling process with synthetic VMs),
``chain`` (services and points), ``analyse`` (arithmetic, unit-tested),
``report`` (table, plot).
"""
