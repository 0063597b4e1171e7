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
"""Parse QEMU ``query-blockstats`` replies (via virDomainQemuMonitorCommand).

QMP is the only place the failed, invalid and idle counters exist, and it
carries the basic ones too, so one query per VM gives everything.
"""

import json
import xml.etree.ElementTree as ETree

from oslo_log import log

from ceilometer_blockacct import meters
from ceilometer_blockacct.sources import records

LOG = log.getLogger(__name__)

QUERY = json.dumps({'execute': 'query-blockstats'})

_PERIPHERAL = '/machine/peripheral/'
# Our counter fields, plus the extras QEMU has and we may use later.
_WANTED = frozenset(meters.COUNTER_FIELDS)


class ReplyError(ValueError):
    """The monitor's reply cannot be used at all."""


def aliases_from_xml(xml_text):
    """Map each disk's device ``<alias>`` to its target dev, from live XML.

    libvirt 9.0 starts disks with -blockdev, so query-blockstats leaves
    ``device`` empty and only the ``qdev`` path names the disk.
    """
    root = ETree.fromstring(xml_text)
    result = {}
    for disk in root.findall('./devices/disk'):
        target = disk.find('target')
        alias = disk.find('alias')
        if target is None or alias is None:
            continue
        dev, name = target.get('dev'), alias.get('name')
        if dev and name:
            result[name] = dev
    return result


def qdev_alias(qdev):
    """Return the device alias a ``qdev`` path belongs to.

    virtio: ``/machine/peripheral/virtio-disk0/virtio-backend`` ->
    ``virtio-disk0``; IDE/SCSI give the id itself (``ide0-0-0``).
    """
    if qdev.startswith(_PERIPHERAL):
        return qdev[len(_PERIPHERAL):].split('/', 1)[0]
    return qdev


def _counters(stats, where):
    counters = {}
    for field in _WANTED.intersection(stats):
        value = stats[field]
        # NOTE: bool is an int subclass; a JSON true is not a counter.
        if (not isinstance(value, int) or isinstance(value, bool)
                or value < 0):
            LOG.warning('Implausible value %(value)r for %(field)s of '
                        '%(where)s: counter ignored',
                        {'value': value, 'field': field, 'where': where})
            continue
        counters[field] = value
    return counters


def parse_blockstats(reply_text, aliases, where='domain'):
    """Turn a query-blockstats reply into ``{dev: DiskCounters}``.

    :param reply_text: the JSON text libvirt returns for the command.
    :param aliases: ``{alias: target dev}`` from :func:`aliases_from_xml`.
    :param where: a label for log lines (instance id).
    :returns: (disks, unknown) where ``unknown`` lists the qdev aliases
        that are not in ``aliases`` (the caller may refresh its map).
    :raises ReplyError: when the reply is not a usable answer.
    """
    try:
        reply = json.loads(reply_text)
    except (TypeError, ValueError) as e:
        raise ReplyError('not JSON (%s): %.80r' % (e, reply_text))
    if not isinstance(reply, dict):
        raise ReplyError('not a QMP object: %.80r' % (reply_text,))
    if 'error' in reply:
        raise ReplyError('QMP error: %s' % (reply['error'],))
    entries = reply.get('return')
    if not isinstance(entries, list):
        raise ReplyError('no "return" list: %.80r' % (reply_text,))
    disks, unknown = {}, []
    for entry in entries:
        if not isinstance(entry, dict):
            LOG.warning('Skipping a malformed query-blockstats entry of '
                        '%(where)s: %(entry).80r',
                        {'where': where, 'entry': entry})
            continue
        qdev = entry.get('qdev') or entry.get('device')
        stats = entry.get('stats')
        if not qdev:
            # A backend with no guest device (e.g. an empty CD-ROM node).
            continue
        if not isinstance(stats, dict):
            LOG.warning('query-blockstats entry %(qdev)s of %(where)s has no '
                        'stats', {'qdev': qdev, 'where': where})
            continue
        alias = qdev_alias(qdev)
        dev = aliases.get(alias)
        if dev is None:
            unknown.append(alias)
            continue
        account_failed = stats.get('account_failed')
        disks[dev] = records.DiskCounters(
            dev=dev,
            counters=_counters(stats, '%s/%s' % (where, dev)),
            account_failed=(account_failed
                            if isinstance(account_failed, bool) else None))
    return disks, unknown
