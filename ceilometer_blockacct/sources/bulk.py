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
libvirt >= 11.10 / 12.1, which we do not use yet).
"""

from oslo_log import log

from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

# libvirt bulk-stats key suffix -> our counter field (QMP's name).
FIELD_MAP = {
    'rd.reqs': 'rd_operations',
    'rd.bytes': 'rd_bytes',
    'rd.times': 'rd_total_time_ns',
    'wr.reqs': 'wr_operations',
    'wr.bytes': 'wr_bytes',
    'wr.times': 'wr_total_time_ns',
    'fl.reqs': 'flush_operations',
    'fl.times': 'flush_total_time_ns',
}


def parse_block_stats(stats, where='domain'):
    """Turn one domain's bulk-stats dict into ``{dev: DiskCounters}``."""
    disks = {}
    try:
        count = int(stats.get('block.count', 0))
    except (TypeError, ValueError):
        LOG.warning('Bad block.count %(count)r for %(where)s',
                    {'count': stats.get('block.count'), 'where': where})
        return disks
    for i in range(count):
        prefix = 'block.%d.' % i
        dev = stats.get(prefix + 'name')
        if not dev:
            continue
        if dev in disks:
            # NOTE: backingIndex is set on top images too (-blockdev); only
            # the first entry of a name is the guest's device, later ones
            # are backing-chain elements (VIR_..._STATS_BACKING).
            continue
        counters = {}
        for key, field in FIELD_MAP.items():
            value = stats.get(prefix + key)
            if value is None:
                continue
            if (not isinstance(value, int) or isinstance(value, bool)
                    or value < 0):
                LOG.warning('Implausible value %(value)r for %(key)s of '
                            '%(where)s/%(dev)s: counter ignored',
                            {'value': value, 'key': key, 'where': where,
                             'dev': dev})
                continue
            counters[field] = value
        disks[dev] = records.DiskCounters(dev=dev, counters=counters)
    return disks
