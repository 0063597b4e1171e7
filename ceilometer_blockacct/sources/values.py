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
"""Checks every source applies to what libvirt and QEMU answer.

QEMU's counters live in a process a guest may have compromised, and
libvirt passes them on unchecked: a value that is not a plausible uint64
counter, or a name that is not text, is dropped and logged, and never
reaches billing.
"""

from oslo_log import log

from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

# A disk name is a target dev ('vda', 'sdb', 'hdc'...): short text.
MAX_NAME = 255


def is_counter(value):
    """Whether ``value`` is an int (not bool) in [0, COUNTER_MAX]."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= records.COUNTER_MAX)


def is_name(value):
    """Whether ``value`` is usable as a disk name or device id part."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        return False
    if not value.isprintable():
        return False
    try:
        value.encode('utf-8')
    except UnicodeError:  # lone surrogates
        return False
    return True


def show(value):
    """A short, always printable repr of an answer's value for logs."""
    if isinstance(value, int) and not isinstance(value, bool) and (
            value.bit_length() > 64):
        # NOTE: repr() of a huge int raises (int max str digits) and the
        # log line would be lost.
        return '<%d-bit integer>' % value.bit_length()
    try:
        text = repr(value)
    except Exception:  # noqa: any object's repr may fail
        return '<%s>' % type(value).__name__
    return text if len(text) <= 60 else text[:57] + '...'


def counters(stats, fields, where):
    """``{our field: value}`` of the valid counters in ``stats``.

    :param stats: one disk's answer (a dict).
    :param fields: ``{key in stats: our counter field}``.
    :param where: 'instance/dev' for the log line.
    """
    result = {}
    for key, field in fields.items():
        if key not in stats:
            continue
        value = stats[key]
        if not is_counter(value):
            LOG.warning('Implausible value %(value)s for %(key)s of '
                        '%(where)s: counter ignored',
                        {'value': show(value), 'key': key, 'where': where})
            continue
        result[field] = value
    return result
