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
"""Ceilometer pollsters: one small module-level class per meter.

The classes are generated from the meter table (:mod:`meters`) and
registered under ``ceilometer.poll.compute`` with the meter name as entry
point name.  All of them share one reading per VM per cycle.
"""

import uuid

from ceilometer.polling import plugin_base
from ceilometer import sample as sample_mod
from oslo_log import log

from ceilometer_blockacct import cycle as cycle_mod
from ceilometer_blockacct import derive
from ceilometer_blockacct import meters
from ceilometer_blockacct import state as state_mod

LOG = log.getLogger(__name__)


class _LocalInstancesPollster(plugin_base.PollsterBase):
    """What every pollster of ours polls: this host's instances."""

    @property
    def default_discovery(self):
        return 'local_instances'


class BlockAcctPollster(_LocalInstancesPollster):
    """Base of every generated pollster; ``meter`` is its table row."""

    meter = None

    def setup_environment(self):
        super().setup_environment()
        # NOTE: a StateError here is logged once (cycle.agent) and makes
        # Ceilometer drop the pollster, which it logs at DEBUG only.
        self.agent = cycle_mod.agent(self.conf)

    def get_samples(self, manager, cache, resources):
        """Build this meter's samples from the cycle's shared readings."""
        cyc = cycle_mod.cycle(cache, self.agent)
        readings = cyc.read(resources)
        if self.meter.kind not in cycle_mod.STATEFUL:
            return self._samples(cyc, resources, readings, None, {})
        try:
            state = self.agent.store.meter(self.meter.name)
        except state_mod.StateError as e:
            LOG.error('%(meter)s: cannot load its state (%(err)s): nothing '
                      'published this cycle', {'meter': self.meter.name,
                                               'err': e})
            return []
        # NOTE: derive and commit under one lock: two sources polling this
        # meter must not both bill the growth since one baseline.
        with state.lock:
            updates = {}
            samples = self._samples(cyc, resources, readings, state, updates)
            try:
                # NOTE: saved before Ceilometer publishes anything: a crash
                # after this line loses one poll, never bills one twice.
                state.commit(updates)
            except state_mod.StateError as e:
                LOG.error('%(meter)s: cannot save state to %(path)s '
                          '(%(err)s): nothing published this cycle; the next '
                          'successful cycle covers it',
                          {'meter': self.meter.name, 'path': state.path,
                           'err': e})
                return []
        return samples

    def _samples(self, cyc, resources, readings, state, updates):
        samples = []
        for instance in resources:
            reading = readings.get(instance.id)
            if reading is None:
                continue
            for dev, disk in list(reading.disks.items()):
                try:
                    s = self._disk_sample(cyc, instance, reading, disk,
                                          state, updates)
                except Exception as e:  # noqa: one disk never stops a cycle
                    LOG.exception('%(meter)s: cannot derive disk %(dev)s of '
                                  '%(uuid)s: %(err)s',
                                  {'meter': self.meter.name, 'dev': dev,
                                   'uuid': instance.id, 'err': e})
                    continue
                if s is not None:
                    samples.append(s)
        return samples

    def _disk_sample(self, cyc, instance, reading, disk, state, updates):
        key = meters.resource_id(instance.id, disk.dev)
        if self.meter.kind == meters.KIND_REFUSED:
            # NOTE: published every cycle (0 most of the time) so that a
            # sum over any period says how much was refused in it.
            volume = self.agent.take_refused(key, self.meter.refused_of)
        else:
            mark = state.mark if state is not None else None
            point = cyc.point(key, instance.id, reading, disk, mark)
            baseline = state.get(key) if state is not None else None
            volume, new = derive.compute(self.meter, point, baseline,
                                         self.agent.limits)
            if new is not None:
                updates[key] = new
        if volume is None:
            return None
        return sample_mod.Sample(
            name=self.meter.name,
            type=self.meter.type,
            unit=self.meter.unit,
            volume=volume,
            user_id=instance.user_id,
            project_id=instance.tenant_id,
            resource_id=key,
            resource_metadata=dict(cyc.metadata(self.conf, instance, disk)),
            monotonic_time=reading.mono_ns / derive.NS_PER_S,
            # NOTE: Sample's default id is uuid1(), ~35 us here (libuuid's
            # time-safe clock); uuid4() is as unique for a fraction of that.
            id=str(uuid.uuid4()),
        )


def _make_class(meter):
    return type(meter.class_name, (BlockAcctPollster,), {
        'meter': meter,
        '__doc__': '%s (%s, %s): %s' % (
            meter.name, meter.type, meter.unit, meter.description),
        '__module__': __name__,
    })


# NOTE: module-level names, so that each entry point in setup.cfg points at
# a real class (a test checks the installed entry points against METERS).
POLLSTERS = {}
for _meter in meters.METERS:
    POLLSTERS[_meter.name] = globals()[_meter.class_name] = _make_class(
        _meter)
del _meter


class ProfilePollster(_LocalInstancesPollster):
    """Every meter of one profile (:data:`meters.PROFILES`) in one pollster.

    ceilometer-polling sends each pollster's samples of a cycle in messages
    of their own (``[polling] batch_size`` samples at most) and the
    notification agent publishes each message to Gnocchi in a request of
    its own: a pollster per meter costs a request per meter per cycle
    whatever the number of disks, a pollster per profile one request per
    ``batch_size`` samples.  Each meter keeps its own state: a meter
    polled both alone and through a profile bills its growth once.
    """

    profile = None

    def setup_environment(self):
        super().setup_environment()
        self.members = [POLLSTERS[m.name](self.conf)
                        for m in meters.profile(self.profile)]

    def get_samples(self, manager, cache, resources):
        """The samples of every meter of the profile, in table order."""
        samples = []
        for member in self.members:
            try:
                samples.extend(member.get_samples(manager, cache, resources))
            except Exception:  # noqa: one meter never stops the others
                LOG.exception('%(meter)s: cannot poll; the other meters of '
                              'profile %(profile)s go on',
                              {'meter': member.meter.name,
                               'profile': self.profile})
        return samples


PROFILE_POLLSTERS = {}
for _profile in meters.PROFILES:
    _name = '%sProfilePollster' % _profile.capitalize()
    PROFILE_POLLSTERS[_profile] = globals()[_name] = type(
        _name, (ProfilePollster,), {
            'profile': _profile, '__module__': __name__,
            '__doc__': 'Profile %s: %s.' % (_profile,
                                            meters.PROFILES[_profile])})
del _profile, _name
