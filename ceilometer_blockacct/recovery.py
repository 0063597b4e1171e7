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
"""After a restart, the agent repairs what its previous process lost.

The pollsters save their baselines before Ceilometer sends the samples:
an agent that ends in between (killed while it waits for a broker that is
down, SIGTERM with samples in memory) loses those deltas for good, never
bills them twice.  The cumulative meters published beside the deltas heal
at their next point, so the loss shows in Gnocchi as a gap between the
two, which :mod:`ceilometer_blockacct.audit` measures and repairs once.

A restarted agent does that for its own disks (those its state holds
baselines of), from a little before its previous process last saved
them: it waits ``repair_delay`` seconds (its first polls heal the
cumulative meters, and a difference must have held for the audit's
settle time), audits, posts what is missing, and tries again while a
difference is still moving, has no exact end yet (a disk busy at every
poll) or does not show in full in the settled level yet.  Whatever it
cannot place it logs as an ERROR with the amount.  Nothing here ever
stops polling.
"""

import os
import threading
import time

from oslo_log import log

from ceilometer_blockacct.audit import auditor
from ceilometer_blockacct.audit import balance
from ceilometer_blockacct.audit import timeline
from ceilometer_blockacct import meters

LOG = log.getLogger(__name__)

# Audited before the previous process's last save: a poll sent (or lost)
# shortly before it.
MARGIN = 300.0
# Attempts while some difference is still moving (unsettled).
ATTEMPTS = 3


def own_disks(store):
    """Resource ids of the disks ``store`` holds delta baselines of."""
    disks = set()
    for meter in meters.METERS:
        if meter.kind == meters.KIND_DELTA:
            # NOTE: store.meter loads once and keeps them for the pollsters.
            disks.update(store.meter(meter.name).baselines)
    return sorted(disks)


def last_saved(path):
    """Epoch seconds the state database was last written (None: none).

    The database is in WAL mode: its last transactions may be in the
    ``-wal`` file only.
    """
    times = []
    for name in (path, path + '-wal'):
        try:
            times.append(os.stat(name).st_mtime)
        except FileNotFoundError:
            continue        # no state yet, or no -wal file: normal
        except OSError as e:
            LOG.warning('Cannot tell when %s was last written (%s): no '
                        'repair after restart from it', name, e)
    return max(times) if times else None


def gnocchi_client(conf):
    """The client Ceilometer's gnocchi publisher would use (``conf``)."""
    from ceilometer import gnocchi_client as client

    return client.get_gnocchiclient(conf)


class Recovery:
    """One repair of the previous process's disks, in a thread of its own.

    :param conf: the agent's configuration (``[blockacct]``, and the
        ``[service_credentials]`` Ceilometer reaches Gnocchi with).
    :param disks: resource ids to audit.
    :param since: epoch seconds the previous process last saved state.
    """

    def __init__(self, conf, disks, since, make_client=gnocchi_client,
                 sleep=time.sleep):
        self.conf = conf
        self.disks = list(disks)
        self.since = since
        self.make_client = make_client
        self.sleep = sleep
        self.results = []
        self.posted = 0
        self.done = threading.Event()

    @classmethod
    def after_start(cls, conf, store, previous_save):
        """The :class:`Recovery` a new agent process needs, or None."""
        if not conf.blockacct.repair_after_restart or previous_save is None:
            return None
        disks = own_disks(store)
        if not disks:
            return None
        return cls(conf, disks, previous_save)

    def start(self):
        """Run in a daemon thread (the agent's polling goes on)."""
        thread = threading.Thread(target=self.run, daemon=True,
                                  name='blockacct-repair')
        thread.start()
        return thread

    def run(self):
        """Audit and repair; never raises."""
        try:
            self.sleep(self.conf.blockacct.repair_delay)
            client = self.make_client(self.conf)
            for attempt in range(1, ATTEMPTS + 1):
                self.results = self.attempt(client)
                self.report_posted(self.results)
                if attempt == ATTEMPTS or not any(
                        waiting(r) for r in self.results):
                    break
                self.sleep(self.conf.blockacct.repair_delay)
            self.report_left(self.results)
        except Exception as e:  # noqa: a repair never stops the agent
            LOG.error('Repair after restart failed (%s: %s): deltas lost by '
                      'the previous agent process, if any, are not posted; '
                      'run "ceilometer-blockacct audit --repair --start=%s"',
                      type(e).__name__, e, timeline.iso(self.since - MARGIN))
        finally:
            self.done.set()

    def attempt(self, client):
        return auditor.repair_disks(client, self.disks,
                                    self.since - MARGIN)

    def report_posted(self, results):
        """Log what an attempt posted (WARNING)."""
        for r in results:
            if r.repaired:
                self.posted += 1
                LOG.warning('Repair after restart: posted %(n)d to '
                            '%(meter)s of %(disk)s (lost by the previous '
                            'agent process between its save and its send): '
                            '%(at)s',
                            {'n': r.repaired, 'meter': r.pair.delta,
                             'disk': r.resource_id,
                             'at': ', '.join('%d at %s' % (
                                 p.amount, timeline.iso(p.ts))
                                 for p in r.repairs)})

    def report_left(self, results):
        """Log what the last attempt left (ERROR), and a summary."""
        for r in results:
            if r.left > 0:
                LOG.error('Repair after restart: %(meter)s of %(disk)s is '
                          '%(n)d short (%(status)s%(notes)s)',
                          {'meter': r.pair.delta, 'disk': r.resource_id,
                           'n': r.left, 'status': r.status,
                           'notes': ': ' + '; '.join(r.notes)
                           if r.notes else ''})
            elif r.left < 0:
                # NOTE: a repair posted late (at the time of its run) for
                # a loss before this range shows as a surplus in it.
                LOG.error('Repair after restart: %(meter)s of %(disk)s is '
                          '%(n)d over from %(start)s (surplus: billed '
                          'twice, or a repair posted late for a loss '
                          'before then; run "ceilometer-blockacct audit '
                          '--start=<earlier>" to tell)',
                          {'meter': r.pair.delta, 'disk': r.resource_id,
                           'n': -r.left,
                           'start': timeline.iso(self.since - MARGIN)})
        LOG.info('Repair after restart: %d disk(s) audited from %s, %d '
                 'meter(s) repaired', len(self.disks),
                 timeline.iso(self.since - MARGIN), self.posted)


def waiting(result):
    """Whether a later attempt may place what ``result`` misses.

    A difference still moving, one whose range has no moment without a
    poll on its way at an end yet (a disk busy at every poll until now),
    or one the settled level does not show in full yet (it follows the
    balance ``settle`` seconds late): the next attempt audits up to a
    later time.
    """
    if result.status == balance.UNSETTLED:
        return True
    b = result.balance
    return result.left > 0 and b is not None and (
        b.exact is None or b.settled_net < b.net)
