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
"""The audit of a set of disks in Gnocchi, and its repairs."""

import dataclasses
import time

from ceilometer_blockacct.audit import balance as balance_mod
from ceilometer_blockacct.audit import measures
from ceilometer_blockacct.audit import pairs as pairs_mod
from ceilometer_blockacct.audit import repair as repair_mod
from ceilometer_blockacct.audit import timeline

# Read this much before the range: the counters' values before it.  It
# must exceed the polling interval.
DEFAULT_LEAD_IN = 3600.0


@dataclasses.dataclass
class Result:
    """One disk's pair: the balance, and what was done about it."""

    resource_id: str
    pair: pairs_mod.Pair
    balance: balance_mod.Balance = None
    repairs: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    @property
    def repaired(self):
        return sum(r.amount for r in self.repairs)

    @property
    def status(self):
        if self.balance is None:
            return balance_mod.UNAUDITED
        status = self.balance.status
        if status == balance_mod.MISSING and self.repaired:
            return balance_mod.REPAIRED if (
                self.repaired == self.balance.net) else balance_mod.NO_REPAIR
        if status == balance_mod.MISSING and self.notes:
            return balance_mod.NO_REPAIR
        return status

    @property
    def left(self):
        """What is still missing (> 0) or billed twice (< 0)."""
        if self.balance is None:
            return 0
        return self.balance.net - self.repaired


class Auditor:
    """Audits (and repairs) disks in Gnocchi through gnocchiclient.

    :param client: a gnocchiclient v1 Client (the publisher's
        credentials, or an admin).
    :param mapped: meter names the resources file maps (default: every
        pair of the table).
    """

    def __init__(self, client, mapped=None,
                 settle=balance_mod.DEFAULT_SETTLE,
                 lead_in=DEFAULT_LEAD_IN, clock_ns=time.time_ns):
        self.client = client
        self.pairs = pairs_mod.pairs(mapped)
        self.settle = settle
        self.lead_in = lead_in
        self.clock_ns = clock_ns
        self.measures = measures.Measures(client)

    def find(self, project=None, resource_ids=(), start=None):
        """The disks to audit: see :func:`.measures.find_disks`."""
        return measures.find_disks(self.client, project, resource_ids,
                                   start)

    # -- audit -----------------------------------------------------------

    def audit(self, resources, start, end=None, repair=False,
              repair_at=repair_mod.AT_WINDOW):
        """Audit ``resources`` (Gnocchi resource dicts) over a range.

        :param start: epoch seconds.
        :param end: epoch seconds (default: now).
        :param repair: post what is missing (see the package docstring).
        :param repair_at: :data:`.repair.AT_WINDOW` or :data:`.repair.AT_NOW`
            (every repair
            at the current time: billed late, but in a period CloudKitty
            has not rated yet).
        :returns: one :class:`Result` per disk and pair the disk has both
            meters of.
        """
        now = self.clock_ns() / timeline.NS_PER_S
        end = now if end is None else min(end, now)
        results = []
        for resource in resources:
            metrics = resource.get('metrics') or {}
            rid = resource.get('original_resource_id') or resource['id']
            for pair in self.pairs:
                if pair.delta not in metrics or (
                        pair.cumulative not in metrics):
                    continue
                result = Result(rid, pair)
                results.append(result)
                self._audit_pair(result, metrics, start, end, now)
                if repair and result.balance is not None:
                    self._repair(result, metrics, repair_at)
        return results

    def _audit_pair(self, result, metrics, start, end, now):
        pair = result.pair
        delta = self.measures.policy(metrics[pair.delta])
        cumulative = self.measures.policy(metrics[pair.cumulative])
        for policy, method, name in ((delta, 'sum', pair.delta),
                                     (cumulative, 'last', pair.cumulative)):
            if method not in policy['aggregation_methods']:
                result.notes.append(
                    '%s: its archive policy %s has no %r' % (
                        name, policy['name'], method))
        if result.notes:
            return
        plan = timeline.pieces([delta, cumulative], start - self.lead_in,
                               end, now)
        if not plan:
            result.notes.append('no granularity common to %s and %s' % (
                delta['name'], cumulative['name']))
            return
        lasts = self.measures.series(metrics[pair.cumulative], 'last', plan)
        sums = self.measures.series(metrics[pair.delta], 'sum', plan)
        result.balance = balance_mod.walk(balance_mod.merge(lasts, sums),
                                          start, end, self.settle,
                                          idle_only=pair.read_apart)
        if result.balance is None:
            result.notes.append('no value of %s before the end'
                                % pair.cumulative)

    def _repair(self, result, metrics, repair_at):
        balance = result.balance
        refused = []
        name = pairs_mod.refused_meter(result.pair.quantity)
        if name in metrics:
            since = min([balance.start] + [w.start for w in balance.windows])
            plan = timeline.pieces(
                [self.measures.policy(metrics[name])], since - self.settle,
                balance.end, self.clock_ns() / timeline.NS_PER_S)
            refused = [(ts, v) for ts, _g, v in
                       self.measures.series(metrics[name], 'sum', plan)]
        repairs, notes = repair_mod.plan_repairs(balance, refused,
                                                 self.settle)
        result.notes.extend(notes)
        metric = metrics[result.pair.delta]
        policy = self.measures.policy(metric)
        now_ns = self.clock_ns()
        oldest = repair_mod.earliest_accepted(policy,
                                              now_ns / timeline.NS_PER_S)
        finest = timeline.granularities(policy)[0][0]
        times = repair_mod.timestamps(repairs, oldest, finest, repair_at,
                                      now_ns)
        for r, (ns, late) in zip(repairs, times):
            self.client.metric.add_measures(
                metric, [{'timestamp': timeline.iso_ns(ns),
                          'value': r.amount}])
            result.repairs.append(dataclasses.replace(
                r, ts=ns / timeline.NS_PER_S, late=late))


def repair_disks(client, resource_ids, since, mapped=None):
    """Post what the delta meters of these disks miss since ``since``.

    For an agent that restarts after a crash: its own disks, from a
    little before its last committed poll.  Idempotent; see
    :class:`Auditor` and the package docstring.

    :returns: the :class:`Result` list.
    """
    auditor = Auditor(client, mapped)
    return auditor.audit(auditor.find(resource_ids=resource_ids), since,
                         repair=True)
