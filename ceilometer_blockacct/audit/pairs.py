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
"""Which meters the audit compares: a delta meter and its cumulative one."""

import dataclasses

from ceilometer_blockacct import meters

# Upstream's cumulative meters of the counters we have no cumulative
# meter of our own for (we never register upstream's names again).
UPSTREAM_CUMULATIVE = {
    'rd_bytes': 'disk.device.read.bytes',
    'wr_bytes': 'disk.device.write.bytes',
    'rd_operations': 'disk.device.read.requests',
    'wr_operations': 'disk.device.write.requests',
}


@dataclasses.dataclass(frozen=True)
class Pair:
    """A delta meter and the cumulative meter of the same counter."""

    counter: str
    delta: str
    cumulative: str

    @property
    def quantity(self):
        return meters.COUNTERS[self.counter].quantity

    @property
    def read_apart(self):
        """Whether the two meters come from two readings of the counter.

        Ours share one reading per cycle; upstream's pollsters read the
        counter again, a moment apart: while the disk is busy the two
        differ by what it did in between.
        """
        return self.cumulative in UPSTREAM_CUMULATIVE.values()


def pairs(mapped=None):
    """Every (delta, cumulative) pair of the meter table.

    :param mapped: meter names the resources file maps for
        ``instance_disk`` (see :func:`mapped_meters`); pairs with a meter
        outside it are left out.  None: every pair.
    """
    cumulative_of = dict(UPSTREAM_CUMULATIVE)
    cumulative_of.update((m.source, m.name) for m in meters.METERS
                         if m.kind == meters.KIND_COUNTER)
    found = []
    for m in meters.METERS:
        cumulative = cumulative_of.get(m.source)
        if m.kind != meters.KIND_DELTA or cumulative is None:
            continue
        if mapped is None or {m.name, cumulative} <= set(mapped):
            found.append(Pair(m.source, m.name, cumulative))
    return found


def refused_meter(quantity):
    """Name of the meter counting refused increases of ``quantity``."""
    for m in meters.METERS:
        if m.kind == meters.KIND_REFUSED and m.refused_of == quantity:
            return m.name
    return None


def mapped_meters(definition):
    """Meters a parsed resources definition maps for ``instance_disk``."""
    names = set()
    for resource in definition.get('resources') or ():
        if resource.get('resource_type') == meters.RESOURCE_TYPE:
            names.update(resource.get('metrics') or ())
    return names
