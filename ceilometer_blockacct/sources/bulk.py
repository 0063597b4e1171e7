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
"""Parse libvirt bulk stats (virConnectGetAllDomainStats, BLOCK group).

The fallback source: a read-only connection suffices, but it has only the
basic counters and flush (plus timed_group and latency_histogram keys on
libvirt >= 11.10 / 12.1, which we do not use yet).  One domain's answer
never costs another's: whatever it holds, it gives disks or nothing.

It cannot say which volume a disk is: bulk stats carry no ``<serial>``, so
``DiskCounters.serial`` stays None and samples read here have no
``volume_id`` (Gnocchi keeps the attribute a QMP read set, since the
publisher only sends the attributes a sample has).
"""

from oslo_log import log

from ceilometer_blockacct import meters
from ceilometer_blockacct.sources import records
from ceilometer_blockacct.sources import values

LOG = log.getLogger(__name__)

# Bound on block.count: a huge one must never spin the polling thread.
MAX_DISKS = 4096

# libvirt bulk-stats key suffix -> our counter field (QMP's name).
FIELD_MAP = {c.bulk: c.name for c in meters.COUNTERS.values() if c.bulk}


def parse_block_stats(stats, where='domain'):
    """Turn one domain's bulk-stats dict into ``{dev: DiskCounters}``.

    ``device_id`` and ``serial`` stay None: bulk stats name neither the
    block node nor the volume.
    """
    if not isinstance(stats, dict):
        LOG.warning('Bulk stats of %(where)s are not a dict: %(stats)s',
                    {'where': where, 'stats': values.show(stats)})
        return {}
    count = stats.get('block.count', 0)
    if not (values.is_counter(count) and count <= MAX_DISKS):
        LOG.warning('Bad block.count %(count)s for %(where)s (an int in '
                    '[0, %(max)d] expected): no disks read',
                    {'count': values.show(count), 'where': where,
                     'max': MAX_DISKS})
        return {}
    disks = {}
    for i in range(count):
        prefix = 'block.%d.' % i
        dev = stats.get(prefix + 'name')
        if dev is None or dev == '':
            continue
        if not values.is_name(dev):
            LOG.warning('Bulk stats of %(where)s: %(key)s is not a disk '
                        'name: %(dev)s', {'where': where,
                                          'key': prefix + 'name',
                                          'dev': values.show(dev)})
            continue
        if dev in disks:
            # NOTE: backingIndex is set on top images too (-blockdev); only
            # the first entry of a name is the guest's device, later ones
            # are backing-chain elements (VIR_..._STATS_BACKING).
            continue
        fields = {prefix + key: field for key, field in FIELD_MAP.items()}
        disks[dev] = records.DiskCounters(
            dev=dev, counters=values.counters(stats, fields,
                                              '%s/%s' % (where, dev)))
    return disks
