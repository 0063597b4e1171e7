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
"""``ceilometer-blockacct audit``: does what was billed add up?

Per disk and counter, the sum of the delta meter in Gnocchi against the
increase of the cumulative meter of the same counter, over a range, with
the windows where they differ and by how much (the package
:mod:`ceilometer_blockacct.audit` says how).  Exit code 0 when every pair
adds up, 1 when some does not, 2 when the audit could not run.
``--repair`` posts what is missing, once.
"""

import argparse
import datetime
import re
import time

import yaml

from ceilometer_blockacct.audit import auditor as auditor_mod
from ceilometer_blockacct.audit import balance
from ceilometer_blockacct.audit import pairs
from ceilometer_blockacct.audit import repair
from ceilometer_blockacct.audit import timeline
from ceilometer_blockacct.cmd import base
from ceilometer_blockacct.cmd import gnocchi_setup

COLUMNS = ('Resource', 'Meter', 'Cumulative', 'From', 'To', 'Truth',
           'Billed', 'Difference', 'Status', 'Repaired', 'Note')

_RELATIVE = re.compile(r'-(\d+(?:\.\d+)?)([smhd])')
_UNIT = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}


class AuditError(base.CommandError):
    """The audit cannot run: bad arguments, Gnocchi unreachable..."""

    exit_code = base.EXIT_USAGE


def parse_time(text, now):
    """Epoch seconds of ``now``, ``-90m`` (s, m, h, d) or ISO 8601.

    An ISO time without a zone is UTC, as Gnocchi reads it.
    """
    text = text.strip()
    if text == 'now':
        return now
    match = _RELATIVE.fullmatch(text)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            'not a time: %r (ISO 8601, "now" or e.g. "-2h")' % text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def _seconds(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError('must be > 0: %r' % text)
    return value


def load_mapped(path):
    """Meter names a resources definition file maps for instance_disk."""
    if path is None:
        from ceilometer_blockacct.gnocchi import resources
        return pairs.mapped_meters(resources.build_resources_definition())
    try:
        with open(path, encoding='utf-8') as f:
            definition = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise AuditError('cannot read resources file %s: %s'
                         % (path, exc)) from exc
    if not isinstance(definition, dict):
        raise AuditError('resources file %s is not a resources definition'
                         % path)
    return pairs.mapped_meters(definition)


def rows(results, end):
    """Table rows: a total per disk and pair, its windows, its repairs."""
    out = []
    for r in results:
        b = r.balance
        pair = (r.resource_id, r.pair.delta, r.pair.cumulative)
        if b is None:
            out.append(pair + ('', timeline.iso(end), None, None, None,
                               r.status, 0, '; '.join(r.notes)))
            continue
        notes = list(r.notes)
        if b.exact is None and b.net:
            notes.append('an estimate: no moment without a poll on its way '
                         'after the last difference')
        if any(x.late for x in r.repairs):
            notes.append('posted at the time of this run (older than '
                         "Gnocchi's back_window): billed late")
        out.append(pair + (timeline.iso(b.start), timeline.iso(b.end), b.truth,
                           b.billed, b.net, r.status, r.repaired,
                           '; '.join(notes)))
        for w in b.windows:
            note = 'the counter went down here' if w.reset else ''
            out.append(pair + (timeline.iso(w.start), timeline.iso(w.end),
                               w.truth, w.billed, w.difference, w.status,
                               0, note))
        for x in r.repairs:
            s = x.segment
            out.append(pair + (timeline.iso(s.start), timeline.iso(s.end),
                               s.truth, s.billed, s.change,
                               balance.REPAIRED, x.amount,
                               'posted at %s' % timeline.iso(x.ts)))
    return out


class Audit(base.Lister):
    """Compare billed deltas with counter increases in Gnocchi.

    Per disk and counter: the increase of the cumulative meter (Truth),
    the sum of the delta meter (Billed), and the settled difference
    (missing > 0, billed twice < 0), then every window where they
    differ.  Exit code 1 when a difference is left.
    """

    # Pairs with a difference left after this run (and its repairs).
    left = 0

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--gnocchi-url',
                            help='Gnocchi endpoint, with basic auth; '
                                 'user:password@ in it is never printed')
        parser.add_argument('--user', default='admin',
                            help='basic-auth user (default: admin)')
        parser.add_argument('--config-file',
                            help='a ceilometer.conf whose '
                                 '[service_credentials] reach Gnocchi, as '
                                 'the publisher does')
        parser.add_argument('--timeout', type=_seconds, default=30.0,
                            help='seconds per HTTP request (default: 30)')
        parser.add_argument('--start', required=True,
                            help='start of the range: ISO 8601 (UTC '
                                 'unless it says), "now", or e.g. '
                                 '--start=-2h (s, m, h, d)')
        parser.add_argument('--end',
                            help='end of the range (default: now)')
        parser.add_argument('--project',
                            help='only the disks of this project')
        parser.add_argument('--resource-id', action='append', default=[],
                            help="only this disk: Ceilometer's id "
                                 '(<instance uuid>-<target dev>) or '
                                 "Gnocchi's; repeatable")
        parser.add_argument('--repair', action='store_true',
                            help='post what is missing to the delta meter, '
                                 'once (a second run posts nothing); '
                                 'audits up to now')
        parser.add_argument('--repair-at', choices=(repair.AT_WINDOW,
                                                    repair.AT_NOW),
                            default=repair.AT_WINDOW,
                            help='window: in the window that lost it, '
                                 "unless Gnocchi's back_window no longer "
                                 'accepts it there (then now); now: every '
                                 'repair at the time of the run, so a '
                                 'period CloudKitty has already rated '
                                 'still bills it (default: window)')
        parser.add_argument('--resources-file', metavar='PATH',
                            help="the publisher's resources definition: "
                                 'which meters are mapped, hence which '
                                 'pairs exist (default: the one '
                                 'gen-resources writes)')
        parser.add_argument('--settle', type=_seconds,
                            default=balance.DEFAULT_SETTLE,
                            help='seconds a difference must hold to count '
                                 '(default: %(default)s)')
        parser.add_argument('--lead-in', type=_seconds,
                            default=auditor_mod.DEFAULT_LEAD_IN,
                            help='seconds read before the start for the '
                                 "counters' previous values; more than "
                                 'the polling interval (default: '
                                 '%(default)s)')
        return parser

    def take_action(self, parsed_args):
        self.left = 0
        args = parsed_args
        if bool(args.gnocchi_url) == bool(args.config_file):
            raise AuditError('give exactly one of --gnocchi-url and '
                             '--config-file')
        if args.repair and args.end:
            raise AuditError('--repair audits up to now: no --end (an '
                             'earlier repair posted late must be seen)')
        now = time.time()
        try:
            start = parse_time(args.start, now)
            end = parse_time(args.end, now) if args.end else now
        except argparse.ArgumentTypeError as exc:
            raise AuditError(str(exc)) from exc
        if not start < end:
            raise AuditError('--start must be before --end')
        mapped = load_mapped(args.resources_file)
        url = args.gnocchi_url
        with _gnocchi(url):
            client = gnocchi_setup.make_client(
                url, args.user, args.config_file, args.timeout)
            auditor = auditor_mod.Auditor(client, mapped,
                                          settle=args.settle,
                                          lead_in=args.lead_in)
            resources = auditor.find(args.project, args.resource_id, start)
            results = auditor.audit(resources, start, end, args.repair,
                                    args.repair_at)
        self.left = sum(1 for r in results if r.left)
        if not results:
            self.app.stderr.write('audit: no disk with a pair of meters to '
                                  'audit\n')
        return COLUMNS, rows(results, end)

    def run(self, parsed_args):
        code = super().run(parsed_args)
        if code == base.EXIT_OK and self.left:
            return base.EXIT_FAILED
        return code


class _gnocchi(object):
    """Any failure of a Gnocchi request, as one :class:`AuditError`."""

    def __init__(self, url):
        self.url = url

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, base.CommandError):
            return False
        status = getattr(exc, 'code', None) or getattr(exc, 'http_status',
                                                       None)
        if status == 403:
            raise AuditError(
                'Gnocchi refused the request (403 Forbidden): the audit '
                "reads every project's disks and a repair posts measures: "
                'use the credentials the publisher uses') from exc
        error = gnocchi_setup.translate_error(exc, self.url)
        if error is None:
            return False
        raise AuditError(str(error)) from exc
