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
"""Our archive policies, and what to do about one Gnocchi already has.

About ``back_window``: Gnocchi counts it in periods of the policy's
*coarsest* granularity (``ArchivePolicy.max_block_size``, used as the block
size of the unaggregated series in ``gnocchi.storage``), not in polling
intervals.  A measure is accepted when it is not older than the start of the
coarsest period holding the newest measure minus ``back_window`` such
periods; older ones are dropped silently.  With our 1 h coarsest granularity,
``back_window = 0`` drops a measure that arrives after a newer one from the
next hour (e.g. a 10:59:59.9 point processed after a 11:00:00.1 one), while
``back_window = 1`` accepts measures from 1 to 2 hours late.  That is far
more than the ~0.25 s stamping jitter at 1 s polling or one 60 s interval,
so the same value suits both intervals.  The price is memory and I/O in
metricd: the raw series keeps ``back_window + 1`` hours of points (one more
for ``rate:*`` methods), i.e. up to 10800 points per metric at 1 s polling.
"""

from ceilometer_blockacct.gnocchi import values
from ceilometer_blockacct import meters

# NOTE: counted in coarsest-granularity (1 h) periods; see the module
# docstring for why 1 is right for both 1 s and 60 s polling.
BACK_WINDOW = 1

# (granularity, timespan) in seconds: 1 s for 1 h, 1 min for 7 days, 1 h for
# 400 days (a year and a bit, so a yearly invoice can be recomputed).
DEFINITION = ((1, 3600), (60, 7 * 86400), (3600, 400 * 86400))

AGGREGATION_METHODS = {
    meters.POLICY_RATE: ('rate:sum', 'rate:mean', 'last'),
    meters.POLICY_GAUGE: ('mean', 'min', 'max', 'count'),
    meters.POLICY_DELTA: ('sum', 'count'),
}


def archive_policies():
    """Our archive policies, one dict each, for Gnocchi and the YAML file.

    Only the policies some meter of the table uses are returned, in
    :data:`AGGREGATION_METHODS` order.
    """
    used = {m.archive_policy for m in meters.METERS}
    return [
        {'name': name,
         'aggregation_methods': list(methods),
         'back_window': BACK_WINDOW,
         'definition': [{'granularity': values.human(g),
                         'timespan': values.human(t)}
                        for g, t in DEFINITION]}
        for name, methods in AGGREGATION_METHODS.items() if name in used]


class MalformedPolicy(ValueError):
    """Gnocchi's answer is not an archive policy we can compare."""


def _span(item, key):
    try:
        seconds = values.to_seconds(item.get(key))
    except ValueError:
        raise MalformedPolicy('%s %s is no length of time'
                              % (key, values.show(item.get(key)))) from None
    if seconds <= 0:
        raise MalformedPolicy('%s %s is not > 0'
                              % (key, values.show(item.get(key))))
    return seconds


def read_policy(answer):
    """Gnocchi's answer for one archive policy, checked.

    :returns: ``(definition, methods, back_window)``: sorted
        ``(granularity, timespan)`` pairs in seconds, the set of
        aggregation methods and the back window.
    :raises MalformedPolicy: saying what is wrong, when the answer is not
        an archive policy as Gnocchi's API returns one (a list, a string,
        no definition, a null or odd granularity or timespan, a back
        window that is not a whole number...).
    """
    if not isinstance(answer, dict):
        raise MalformedPolicy('the answer is %s, not an object'
                              % values.kind(answer))
    definition = answer.get('definition')
    if definition is None or definition == []:
        raise MalformedPolicy('it has no definition')
    if not isinstance(definition, list):
        raise MalformedPolicy('its definition is %s, not a list'
                              % values.kind(definition))
    pairs = []
    for item in definition:
        if not isinstance(item, dict):
            raise MalformedPolicy('a definition entry is %s, not an object'
                                  % values.kind(item))
        granularity = _span(item, 'granularity')
        if item.get('timespan') is not None:
            timespan = _span(item, 'timespan')
        elif item.get('points') is None:
            # NOTE: Gnocchi's way to keep points forever; shortening it
            # would delete data, which is the operator's decision.
            raise MalformedPolicy(
                'granularity %s has neither a timespan nor a number of '
                'points (kept forever?)'
                % values.show(item.get('granularity')))
        elif values.whole(item['points']) and 0 < item['points'] < 2 ** 53:
            timespan = granularity * item['points']
        else:
            raise MalformedPolicy('points %s is not a whole number in 1..2**53'
                                  % values.show(item['points']))
        pairs.append((granularity, timespan))
    methods = answer.get('aggregation_methods')
    if not isinstance(methods, list) or not all(
            isinstance(m, str) for m in methods):
        raise MalformedPolicy('aggregation_methods %s is not a list of '
                              'names' % values.show(methods))
    back_window = answer.get('back_window')
    if not values.whole(back_window) or back_window < 0:
        raise MalformedPolicy('back_window %s is not a whole number >= 0'
                              % values.show(back_window))
    return sorted(pairs), set(methods), back_window


def plan_archive_policy(wanted, existing):
    """Decide what to do about one archive policy.

    :param wanted: our policy dict (see :func:`archive_policies`).
    :param existing: Gnocchi's answer for that policy (any JSON value), or
        None if it is missing.
    :returns: ``(action, details)``; action is ``'create'``, ``'ok'``,
        ``'update'`` (``details`` is the PATCH body) or ``'conflict'``
        (``details`` is a list of human-readable differences Gnocchi cannot
        change in place).
    :raises MalformedPolicy: if ``existing`` is not an archive policy.
    """
    if existing is None:
        return 'create', wanted
    have_def, have_methods, have_back_window = read_policy(existing)
    conflicts = []
    want_def = sorted((values.to_seconds(d['granularity']),
                       values.to_seconds(d['timespan']))
                      for d in wanted['definition'])
    want_gran = [g for g, _t in want_def]
    have_gran = [g for g, _t in have_def]
    if want_gran != have_gran:
        # NOTE: Gnocchi refuses to add, drop or change granularities of an
        # existing policy (UnsupportedArchivePolicyChange).
        conflicts.append('granularities are %s s, expected %s s' % (
            _fmt(have_gran), _fmt(want_gran)))
    want_methods = set(wanted['aggregation_methods'])
    if have_methods != want_methods:
        # NOTE: Gnocchi's PATCH only takes `definition` and `back_window`.
        conflicts.append('aggregation methods are %s, expected %s' % (
            ', '.join(sorted(have_methods)), ', '.join(sorted(want_methods))))
    if conflicts:
        return 'conflict', conflicts
    # NOTE: a larger back_window than ours is an operator's choice that
    # loses nothing; lowering it would make Gnocchi truncate raw data.
    back_window = max(have_back_window, wanted['back_window'])
    if want_def != have_def or back_window != have_back_window:
        return 'update', {'definition': wanted['definition'],
                          'back_window': back_window}
    return 'ok', None


def _fmt(seconds):
    return '/'.join('%g' % s for s in seconds)
