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
"""What is measured: our pollsters, upstream's, and the raw round trips."""

import concurrent.futures as futures
import os
import textwrap

from ceilometer import service
import libvirt
import libvirt_qemu
from oslo_utils import timeutils
from stevedore import named

UPSTREAM_METERS = ('disk.device.read.bytes', 'disk.device.write.bytes',
                   'disk.device.read.requests', 'disk.device.write.requests',
                   'disk.device.read.latency', 'disk.device.write.latency')


# -- configuration ------------------------------------------------------------

def make_conf(tmp, name, uri, log_path, blockacct=None):
    """A ceilometer.conf for one side, loaded as ceilometer-polling does."""
    path = os.path.join(tmp, name + '.conf')
    with open(path, 'w') as f:
        f.write(textwrap.dedent('''\
            [DEFAULT]
            libvirt_uri = %(uri)s
            host = bench-host
            log_file = %(log)s
            [compute]
            instance_discovery_method = libvirt_metadata
            [blockacct]
            ''') % {'uri': uri, 'log': log_path})
        for key, value in (blockacct or {}).items():
            f.write('%s = %s\n' % (key, value))
    return service.prepare_service([], [path])


def load_pollsters(conf, names):
    """Pollster extensions, as the polling manager's stevedore loads them."""
    mgr = named.NamedExtensionManager(
        'ceilometer.poll.compute', names=list(names), invoke_on_load=True,
        invoke_args=(conf,), name_order=True)
    missing = set(names) - set(mgr.names())
    if missing:
        raise RuntimeError('pollsters not loaded: %s' % sorted(missing))
    return list(mgr)


def poll_cycle(exts, resources):
    """One cycle: every pollster, one shared cache; returns #samples."""
    cache, count = {}, 0
    for ext in exts:
        # NOTE: what PollingTask does for each pollster and sample.
        stamp = timeutils.utcnow().isoformat()
        for s in ext.obj.get_samples(None, cache, resources):
            s.set_timestamp(stamp)
            count += 1
    return count


class RawQmp:
    """listAllDomains + concurrent query-blockstats: QMP's floor."""

    def __init__(self, uri, workers):
        self.conn = libvirt.open(uri)
        self.pool = futures.ThreadPoolExecutor(max_workers=workers)

    def __call__(self, resources):
        doms = self.conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        replies = list(self.pool.map(
            lambda d: libvirt_qemu.qemuMonitorCommand(
                d, '{"execute": "query-blockstats"}', 0), doms))
        return len(replies)

    def close(self):
        self.pool.shutdown()
        self.conn.close()


class RawBulk:
    """One getAllDomainStats(BLOCK): bulk stats' floor."""

    def __init__(self, uri):
        self.conn = libvirt.openReadOnly(uri)

    def __call__(self, resources):
        flags = (libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
                 | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
        return len(self.conn.getAllDomainStats(
            libvirt.VIR_DOMAIN_STATS_BLOCK, flags))

    def close(self):
        self.conn.close()
