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
"""When a domain's QEMU process started, from /proc (no shelling out).

A vCPU thread id (QMP ``query-cpus-fast``) leads to the process
(``/proc/<tid>/status`` Tgid), whose ``/proc/<pid>/stat`` field 22 is its
start in clock ticks since boot.  The process must carry the domain's uuid
on its command line (QEMU's ``-uuid``): thread ids from a remote libvirtd,
or from another PID namespace, mean nothing here.  Any doubt gives None,
never a wrong start.
"""

import os

from oslo_log import log

LOG = log.getLogger(__name__)

PROC = '/proc'
NS_PER_S = 10 ** 9


def _read(path, mode='r'):
    with open(path, mode) as f:
        return f.read()


def _tgid(proc, tid):
    for line in _read(os.path.join(proc, str(tid), 'status')).splitlines():
        if line.startswith('Tgid:'):
            return int(line.split()[1])
    raise ValueError('no Tgid in the status of thread %d' % tid)


def _start_ticks(proc, pid):
    stat = _read(os.path.join(proc, str(pid), 'stat'))
    # NOTE: field 2 (comm) may hold spaces and parentheses: fields 3... come
    # after its last ')'; field 22 is starttime.
    fields = stat.rsplit(')', 1)[1].split()
    return int(fields[22 - 3])


def find(thread_ids, uuid, proc=PROC):
    """The QEMU process running ``thread_ids`` for domain ``uuid``.

    :param thread_ids: vCPU thread ids from query-cpus-fast.
    :param uuid: the domain's uuid, which QEMU's command line must carry.
    :returns: (pid, start in ns since boot, CLOCK_BOOTTIME), or None when
        not sure.
    """
    if not thread_ids:
        return None
    try:
        pid = _tgid(proc, thread_ids[0])
        before = _start_ticks(proc, pid)
        cmdline = _read(os.path.join(proc, str(pid), 'cmdline'), 'rb')
        after = _start_ticks(proc, pid)
    except (OSError, ValueError, IndexError) as e:
        LOG.debug('Instance %(uuid)s: no QEMU process start from %(proc)s '
                  '(%(err)s)', {'uuid': uuid, 'proc': proc, 'err': e})
        return None
    if uuid.encode('ascii', 'replace') not in cmdline.split(b'\0'):
        LOG.debug('Instance %(uuid)s: process %(pid)d of its vCPU thread '
                  'is not its QEMU (remote libvirtd or another PID '
                  'namespace): start unknown', {'uuid': uuid, 'pid': pid})
        return None
    if before != after:
        # The pid was reused between two reads.
        return None
    return pid, _ns(before)


def start_of(pid, proc=PROC):
    """Start (ns since boot) of process ``pid``, or None if it is gone.

    A (pid, start) pair names one process for the life of the host: the
    same pair later is the same process.
    """
    try:
        return _ns(_start_ticks(proc, pid))
    except (OSError, ValueError, IndexError):
        return None


def _ns(ticks):
    return ticks * NS_PER_S // os.sysconf('SC_CLK_TCK')
