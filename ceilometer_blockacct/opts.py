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
"""Configuration options of the [blockacct] group."""

from oslo_config import cfg

GROUP = 'blockacct'

OPTS = [
    cfg.StrOpt('libvirt_uri',
               help='libvirt URI of both connections (the read-only one for '
                    'bulk stats and the read-write one for QMP). Empty: use '
                    "Ceilometer's own [DEFAULT] libvirt_uri (or the URI its "
                    'libvirt_type implies), so discovery and these pollsters '
                    'see the same daemon.'),
    cfg.BoolOpt('enable_qmp', default=True,
                help='Read QEMU query-blockstats through '
                     'virDomainQemuMonitorCommand. It carries every counter '
                     '(failed, invalid and idle ones only exist there) but '
                     'needs a read-write libvirt connection, which is '
                     'root-equivalent on the host, and libvirt marks each '
                     'domain read this way as tainted (custom-monitor). When '
                     'off, or refused, libvirt bulk stats on a read-only '
                     'connection give the basic counters only.'),
    cfg.FloatOpt('read_timeout', default=5.0, min=0.1,
                 help='Deadline in seconds for reading one VM. A VM whose '
                      'monitor hangs (or whose libvirt job lock is held) '
                      'costs its own samples for the cycle, never the '
                      'cycle.'),
    cfg.IntOpt('max_concurrent_reads', default=8, min=1,
               help='How many VMs are read at the same time.'),
    cfg.StrOpt('state_dir', default='/var/lib/ceilometer/blockacct',
               help='Directory of the durable baselines (baselines.sqlite, '
                    'one transaction per meter per cycle). It must be a '
                    'directory (not a symlink) owned by the agent\'s user '
                    'and not writable by group or others; it is created '
                    '0700 when missing. One agent at a time: a second agent '
                    'on the same directory refuses to start. Losing it '
                    'costs one unbilled interval per disk, never a double '
                    'count.'),
    cfg.IntOpt('state_prune_after', default=86400, min=60,
               deprecated_for_removal=True,
               deprecated_reason='Baselines are dropped when their QEMU '
                                 'process is gone (absent from two complete '
                                 'libvirt listings), never by age: dropping '
                                 'the baselines of a VM that is still '
                                 'running but was not read for a while '
                                 'would bill its whole counter again.',
               help='Ignored.'),
    cfg.IntOpt('max_bytes_per_second', default=64 * 1024 ** 3, min=1,
               help='Plausibility bound for one disk: a byte counter that '
                    'grows faster than this between two polls was not '
                    'produced by real I/O (QEMU\'s counters live in a process '
                    'a guest could compromise); the increase is refused and '
                    'logged as an error, never billed.'),
    cfg.IntOpt('max_requests_per_second', default=10 * 1000 ** 2, min=1,
               help='Plausibility bound on any request counter of one disk, '
                    'as max_bytes_per_second.'),
    cfg.IntOpt('max_bytes_per_request', default=64 * 1024 ** 2, min=512,
               help='Plausibility bound on the bytes one read or write '
                    'request carries: a byte counter that grows by more '
                    'than this times the growth of its request counter was '
                    'not produced by real I/O. QEMU reports no per-device '
                    'maximum; the default (64 MiB) is above what a virtio-'
                    'blk or virtio-scsi request carries from a Linux guest '
                    '(max_hw_sectors_kb, at most 32 MiB by default) and '
                    'what one IDE/SATA LBA48 command can (65536 sectors, '
                    '32 MiB). Discards are not bounded this way (one unmap '
                    'request may cover gigabytes).'),
    cfg.StrOpt('implausible_policy', default='refuse',
               choices=[('refuse', 'bill nothing of an implausible '
                                   'increase'),
                        ('cap', 'bill up to the plausibility bound'),
                        ('bill', 'bill all of it (still logged as an '
                                 'error)')],
               help='What an increase beyond the plausibility bounds bills. '
                    'Whatever is not billed is counted in the '
                    'disk.device.bytes.refused and '
                    'disk.device.requests.refused meters and logged as an '
                    'error with the amount.'),
    cfg.IntOpt('max_queue_depth', default=65536, min=1,
               help='Plausibility bound on delta(total time) / delta(wall '
                    'time) for one disk and operation.'),
    cfg.BoolOpt('repair_after_restart', default=True,
                help='When the agent starts on an existing state, audit '
                     'the delta meters of the disks it holds baselines of '
                     'in Gnocchi (with [service_credentials], as the '
                     'gnocchi publisher does) from shortly before the '
                     'previous process last saved them, and post once '
                     'what that process lost between saving its '
                     'baselines and sending its samples (a crash, a kill '
                     'while the broker was down). What was posted is '
                     'logged as a warning, what could not be as an error. '
                     'Needs the admin role in Gnocchi, as the publisher. '
                     'Do not run "ceilometer-blockacct audit --repair" on '
                     'the same disks at the same time: two repairs at once '
                     'can both post.'),
    cfg.FloatOpt('repair_delay', default=120.0, min=1.0,
                 help='Seconds after the agent starts before that repair '
                      'runs, and between its attempts while a difference '
                      'is still moving: more than two polling intervals '
                      'plus the audit\'s settle time (10 s), so that the '
                      'first polls of the new process heal the cumulative '
                      'meters first.'),
]


def register_opts(conf):
    """Register the [blockacct] options on ``conf`` (idempotent)."""
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    """Options for oslo-config-generator."""
    return [(GROUP, OPTS)]
