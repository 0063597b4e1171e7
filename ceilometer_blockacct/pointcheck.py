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
"""What every derivation checks of a reading, and the lines it logs.

A reading's counter must be one (an int in [0, 2^64)), and a reading must
be placeable against the baseline (same identity and newer, or another
identity that is not a stale reading of an older process); what is not
is logged once, with the disk, meter, process and device, and bills
nothing (see :mod:`ceilometer_blockacct.derive`).
"""

import logging

from oslo_log import log

from ceilometer_blockacct import baseline as baseline_mod
from ceilometer_blockacct import plausibility

# NOTE: the derivations' lines keep the logger name operators filter on.
LOG = log.getLogger('ceilometer_blockacct.derive')

NS_PER_S = plausibility.NS_PER_S


def new_baseline(point, values):
    return baseline_mod.Baseline(point.epoch, point.device_id, point.mono_ns,
                                 values)


def lifetime(point):
    if point.lifetime_s is not None:
        return max(point.lifetime_s, 1.0)
    # NOTE: CLOCK_MONOTONIC starts at boot, so it bounds how long any QEMU
    # process on this host can have been counting.
    return max(point.mono_ns / NS_PER_S, 1.0)


def _show(value):
    """A value for a log line, however large.

    Python refuses to print an int of more than 4300 digits.
    """
    if isinstance(value, int) and value.bit_length() > 128:
        return '<a %d-bit integer>' % value.bit_length()
    if isinstance(value, (list, tuple)):
        return '[%s]' % ', '.join(_show(v) for v in value)
    return '%s' % (value,)


def _log(level, point, meter, what, **extra):
    args = {'key': point.key, 'meter': meter.name, 'what': what,
            'epoch': point.epoch.key, 'device': point.device_id}
    detail = ''.join(', %s %s' % (k, _show(extra[k])) for k in sorted(extra))
    LOG.log(level, '%(key)s %(meter)s: %(what)s (process %(epoch)s, '
            'device %(device)s' + detail.replace('%', '%%') + ')', args)


def err(point, meter, what, **extra):
    _log(logging.ERROR, point, meter, what, **extra)


def warn(point, meter, what, **extra):
    _log(logging.WARNING, point, meter, what, **extra)


def counter(point, meter, field):
    """The counter ``field`` of ``point`` if it is one, else None.

    Sources drop what is not an int in [0, 2^64); this keeps derivations
    safe from any other producer of records.
    """
    value = point.counters.get(field)
    if value is None or baseline_mod.counter_or_none(value):
        return value
    err(point, meter, 'not a counter: ignored', field=field,
        reading=value if isinstance(value, int) else type(value).__name__)
    return None


def window(point, baseline):
    return '%.1f s' % ((point.mono_ns - baseline.mono_ns) / NS_PER_S)


def unplaced(point, meter, baseline, values):
    """The reading cannot be placed: say why; None to bill nothing.

    Only for readings of the baseline's own identity or of a conflict.
    """
    if point.conflict:
        err(point, meter, 'reading not placed, not billed: %s'
            % point.conflict, reading=values)
        return True
    if baseline is None or not baseline.same_identity(point):
        # NOTE: a reading of another identity that is not newer than the
        # baseline (same boot) is a stale reading of an older process.
        if (baseline is not None
                and baseline.epoch.boot_id == point.epoch.boot_id
                and point.mono_ns <= baseline.mono_ns):
            err(point, meter, 'reading older than the baseline of '
                'process %s: stale, not billed' % baseline.epoch.key,
                reading=values, baseline=baseline.values,
                window=window(point, baseline))
            return True
        return False
    if point.mono_ns <= baseline.mono_ns:
        err(point, meter, 'reading not newer than the baseline: stale '
            'or out of order, not billed', reading=values,
            baseline=baseline.values, window=window(point, baseline))
        return True
    return False
