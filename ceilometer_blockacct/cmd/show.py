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
"""``ceilometer-blockacct show``: an iostat-like view for operators.

Reads the host's running VMs with the same sources and derivation code as
the pollsters (nothing is published, no state is written) and prints every
counter and the per-interval values of each disk, with cliff's formatters
(``-f table``, ``-f json``, ``-f csv`` ...).  ``--watch N`` refreshes every
N seconds like ``iostat N``.  It reads the polling agent's configuration
(``--config-file``, else the ceilometer.conf oslo.config finds): [DEFAULT]
libvirt_uri and the [blockacct] options, which its own options override.
"""

import argparse
import time

import libvirt

from ceilometer_blockacct.cmd import base
from ceilometer_blockacct.cmd import config
from ceilometer_blockacct import derive
from ceilometer_blockacct import meters
from ceilometer_blockacct.sources import reader as reader_mod

# Raw counters shown, in this order, with short headers.
COUNTERS = [(c.name, c.header) for c in meters.COUNTERS.values()]
# Per-interval values: the table's derived meters, headed by short names.
DERIVED = [(m, m.name[len('disk.device.'):]) for m in meters.METERS
           if m.kind in (meters.KIND_LATENCY, meters.KIND_QUEUE)]
RATES = [(meters.BY_NAME['disk.device.%s.delta' % n], h) for n, h in (
    ('read.requests', 'r/s'), ('write.requests', 'w/s'),
    ('flush.requests', 'f/s'), ('read.bytes', 'rB/s'),
    ('write.bytes', 'wB/s'))]
NO_LIMITS = derive.Limits(2 ** 63, 2 ** 63, 2 ** 63)


class ShowError(base.CommandError):
    """libvirt cannot be reached, or runs no domain."""


def _positive(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError('must be > 0: %r' % text)
    return value


def derive_one(meter, key, reading, disk, baseline):
    """The pollsters' derivation of one meter for one disk, for display.

    :returns: (volume or None, new baseline or None to keep the old one)
    """
    point = derive.Point(key=key, counters=disk.counters,
                         epoch=reading.epoch, mono_ns=reading.mono_ns,
                         account_failed=disk.account_failed,
                         device_id=disk.device_id)
    return derive.compute(meter, point, baseline, NO_LIMITS)


class Show(base.Lister):
    """Show every VM disk's counters and per-interval values."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        config.add_config_file_argument(parser)
        # NOTE: no argparse defaults below: a value only in the config file
        # must win over a default nobody typed.
        parser.add_argument('--libvirt-uri',
                            help='libvirt URI (default: [blockacct] '
                                 'libvirt_uri, else [DEFAULT] libvirt_uri, '
                                 'else what libvirt_type implies: '
                                 'qemu:///system)')
        qmp = parser.add_mutually_exclusive_group()
        qmp.add_argument('--qmp', dest='enable_qmp', action='store_true',
                         default=None,
                         help='read QMP query-blockstats (default: '
                              '[blockacct] enable_qmp, true)')
        qmp.add_argument('--no-qmp', dest='enable_qmp',
                         action='store_false', default=None,
                         help='read libvirt bulk stats on a read-only '
                              'connection only (no failed/invalid/idle)')
        parser.add_argument('--interval', type=_positive, default=1.0,
                            help='seconds between the two reads that give '
                                 'the per-interval values (default 1)')
        parser.add_argument('--watch', type=_positive, metavar='N',
                            help='refresh every N seconds until Ctrl-C')
        parser.add_argument('--timeout', type=_positive,
                            help='deadline for reading one VM in seconds '
                                 '(default: [blockacct] read_timeout, 5)')
        return parser

    @staticmethod
    def load_conf(parsed_args):
        """The agent's configuration with this command's options on top."""
        return config.load(parsed_args.config_file, {
            'libvirt_uri': parsed_args.libvirt_uri,
            'enable_qmp': parsed_args.enable_qmp,
            'read_timeout': parsed_args.timeout}, parsed_args.config_dir)

    def _setup(self, parsed_args):
        conf = self.load_conf(parsed_args)
        libvirt.registerErrorHandler(_quiet, None)
        self.reader = reader_mod.Reader(conf)
        self.uri = self.reader.uri
        self.baselines = {}

    def _domains(self):
        try:
            conn = libvirt.openReadOnly(self.uri)
            doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            return {d.UUIDString(): d.name() for d in doms}
        except libvirt.libvirtError as e:
            raise ShowError('cannot reach libvirt at %s: %s'
                            % (self.uri, e.get_error_message()))

    def _rows(self):
        names = self._domains()
        if not names:
            raise ShowError('no running domains at %s' % self.uri)
        readings = self.reader.read(names)
        rows = []
        for uuid, reading in sorted(readings.items(),
                                    key=lambda i: names[i[0]]):
            for dev, disk in sorted(reading.disks.items()):
                rows.append(self._row(names[uuid], uuid, reading, disk))
        return rows

    def _row(self, name, uuid, reading, disk):
        key = '%s-%s' % (uuid, disk.dev)
        row = [name, disk.dev, reading.source]
        row += [disk.counters.get(f) for f, _h in COUNTERS]
        for m, _h in DERIVED + RATES:
            volume, new = derive_one(m, key, reading, disk,
                                     self.baselines.get((key, m.name)))
            if new is not None:
                self.baselines[(key, m.name)] = new
            if m.kind == meters.KIND_DELTA and volume is not None:
                volume = volume / self._elapsed(key, reading)
            row.append(None if volume is None else round(volume, 3))
        self._last_mono[key] = reading.mono_ns
        return row

    def _elapsed(self, key, reading):
        last = self._prev_mono.get(key)
        if last is None:
            return float('inf')
        return max((reading.mono_ns - last) / derive.NS_PER_S, 1e-9)

    def columns(self):
        return (['domain', 'dev', 'source'] + [h for _f, h in COUNTERS]
                + [h for _m, h in DERIVED + RATES])

    def take_action(self, parsed_args):
        """Two reads ``--interval`` apart; with ``--watch``, go on."""
        self._setup(parsed_args)
        self._last_mono, self._prev_mono = {}, {}
        self._rows()
        time.sleep(parsed_args.interval)
        columns, rows = self._next()
        while parsed_args.watch:
            self.produce_output(parsed_args, columns, rows)
            time.sleep(parsed_args.watch)
            columns, rows = self._next()
        return columns, rows

    def _next(self):
        self._prev_mono, self._last_mono = self._last_mono, {}
        return self.columns(), self._rows()


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr; ours are clearer."""
