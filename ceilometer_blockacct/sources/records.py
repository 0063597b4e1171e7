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
"""Neutral per-disk counter records, the output of every source."""

import dataclasses


@dataclasses.dataclass
class DiskCounters:
    """Counters of one virtual disk, keyed by meters.COUNTER_FIELDS names.

    A counter the source does not give is absent from ``counters`` (never
    zero): meters that need it are simply not emitted.
    """

    dev: str
    counters: dict
    # QEMU's account_failed flag (failed requests add to total time); None
    # when the source does not say (libvirt bulk stats).
    account_failed: bool = None


@dataclasses.dataclass
class VMReading:
    """One VM's counters, read once in a polling cycle."""

    instance_id: str
    # Identity of the QEMU process the counters belong to; it changes when
    # the counters may have restarted from zero.
    epoch: str
    # Host-wide monotonic clock (CLOCK_MONOTONIC, ns) when the read ended.
    mono_ns: int
    source: str
    disks: dict = dataclasses.field(default_factory=dict)
