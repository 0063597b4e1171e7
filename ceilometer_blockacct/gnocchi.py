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
"""Gnocchi archive policies and the resources definition of our meters.

Everything here derives from :data:`ceilometer_blockacct.meters.METERS`:

* :func:`archive_policies` -- our three archive policies, in the shape both
  Gnocchi's REST API and Ceilometer's resources file use;
* :func:`build_resources_definition` -- the complete resources definition
  for Ceilometer's gnocchi publisher: upstream's whole file (the one of the
  *installed* Ceilometer) plus our policies and meters;
* :func:`plan_archive_policy` -- what ``ceilometer-blockacct gnocchi-setup``
  must do about one policy given what Gnocchi already has;
* :data:`RESOURCE_ATTRIBUTES` -- the optional attributes we add to
  ``instance_disk`` (``volume_id``), :func:`plan_resource_attributes` and
  :func:`ensure_resource_attributes`, which ``gnocchi-setup`` calls.

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

import contextlib
import copy
import importlib.metadata
import importlib.resources
import math
import re

import yaml

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

# Attributes of instance_disk that Ceilometer's resource type lacks, in
# Gnocchi's resource-type form, and the sample metadata each is read from.
# NOTE: optional, so a disk without a <serial> (a local disk) has none, and
# resources created before the attribute existed stay valid; string, not
# uuid, because a <serial> set outside Nova need not be a uuid, and a value
# Gnocchi refuses makes the publisher drop that disk's measures.
RESOURCE_ATTRIBUTES = {
    'volume_id': {'type': 'string', 'required': False,
                  'min_length': 0, 'max_length': 255},
}
SAMPLE_ATTRIBUTES = {
    'volume_id': 'resource_metadata.volume_id',
}

UPSTREAM_PACKAGE = 'ceilometer.publisher'
UPSTREAM_RESOURCE = 'data/gnocchi_resources.yaml'

_UNITS = (('day', 86400), ('hour', 3600), ('minute', 60), ('second', 1))


def _human(seconds):
    """Spell a whole number of seconds as Gnocchi accepts it: '7 days'."""
    for unit, size in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return '%d %s%s' % (count, unit, '' if count == 1 else 's')
    raise ValueError('not a whole number of seconds: %r' % seconds)


def to_seconds(value):
    """Seconds of a Gnocchi timespan as Gnocchi writes or reads it.

    Accepts numbers, '5 minutes' (the resources file) and Python's
    timedelta spelling that the REST API returns ('1 day, 0:00:00').

    :raises ValueError: for anything else, and for NaN, infinities and
        booleans (JSON ``true`` is no number of seconds).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError('not a Gnocchi timespan: %s' % _show(value))
    if isinstance(value, str):
        value = _parse_seconds(value.strip())
    try:
        value = float(value)
    except OverflowError:
        raise ValueError('not a timespan: %s' % _show(value)) from None
    if not math.isfinite(value):
        raise ValueError('not a finite timespan: %s' % _show(value))
    return value


def _parse_seconds(text):
    match = re.fullmatch(
        r'(?:(\d+) days?,\s*)?(\d+):(\d\d):(\d\d(?:\.\d+)?)', text)
    if match:
        days, hours, minutes, secs = match.groups()
        return (int(days or 0) * 86400 + int(hours) * 3600
                + int(minutes) * 60 + float(secs))
    match = re.fullmatch(r'(\d+(?:\.\d+)?)\s*([a-z]+?)s?', text)
    if match:
        for unit, size in _UNITS:
            if match.group(2) == unit:
                return float(match.group(1)) * size
    if re.fullmatch(r'\d+(?:\.\d+)?', text):
        return float(text)
    raise ValueError('cannot read Gnocchi timespan %s' % _show(text))


def _show(value, width=60):
    """A short repr for messages, even of a 10,000-digit integer."""
    try:
        text = repr(value)
    except ValueError:
        # NOTE: Python refuses repr() of integers over 4300 digits.
        return 'an integer of %d bits' % value.bit_length()
    return text if len(text) <= width else text[:width - 3] + '...'


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
         'definition': [{'granularity': _human(g), 'timespan': _human(t)}
                        for g, t in DEFINITION]}
        for name, methods in AGGREGATION_METHODS.items() if name in used]


def upstream_resources_text():
    """Text of the installed Ceilometer's gnocchi_resources.yaml."""
    ref = importlib.resources.files(UPSTREAM_PACKAGE).joinpath(
        UPSTREAM_RESOURCE)
    return ref.read_text(encoding='utf-8')


def load_upstream_resources():
    """Upstream's resources definition, parsed."""
    return yaml.safe_load(upstream_resources_text())


def build_resources_definition(upstream=None):
    """The complete resources definition for Ceilometer's gnocchi publisher.

    The publisher reads one file that REPLACES upstream's, and it creates
    the archive policies listed in it, so we keep upstream's whole content
    (``archive_policy_default``, ``archive_policies``, ``resources``) and add
    our policies, our meters and :data:`SAMPLE_ATTRIBUTES` to the
    ``instance_disk`` resource (whose ``name`` and ``instance_id``
    attributes upstream already maps from ``disk_name`` and
    ``instance_id``).

    :param upstream: parsed upstream definition (default: the installed
        Ceilometer's); it is not modified.
    :raises ValueError: if upstream lacks ``instance_disk`` or already
        defines one of our meter, attribute or policy names.
    """
    data = copy.deepcopy(
        load_upstream_resources() if upstream is None else upstream)
    policies = data.setdefault('archive_policies', [])
    ours = archive_policies()
    clash = {p['name'] for p in policies} & {p['name'] for p in ours}
    if clash:
        raise ValueError('upstream already defines archive policies %s'
                         % ', '.join(sorted(clash)))
    policies.extend(ours)

    disks = [r for r in data.get('resources', [])
             if r.get('resource_type') == meters.RESOURCE_TYPE]
    if len(disks) != 1:
        raise ValueError('upstream resources file has %d %s entries, '
                         'expected 1' % (len(disks), meters.RESOURCE_TYPE))
    attributes = disks[0].setdefault('attributes', {})
    for name, path in SAMPLE_ATTRIBUTES.items():
        if name in attributes:
            raise ValueError('upstream already maps attribute %s' % name)
        attributes[name] = path
    metrics = disks[0].setdefault('metrics', {})
    if isinstance(metrics, list):
        metrics = disks[0]['metrics'] = dict.fromkeys(metrics)
    for meter in meters.METERS:
        if meter.name in metrics:
            # NOTE: a second mapping of an upstream meter would change its
            # archive policy (and a second pollster would double it).
            raise ValueError('upstream already maps meter %s' % meter.name)
        metrics[meter.name] = {'archive_policy_name': meter.archive_policy}
    return data


def dump_resources_definition(data=None):
    """YAML text of :func:`build_resources_definition`, with a header."""
    if data is None:
        data = build_resources_definition()
    header = (
        '# Generated by `ceilometer-blockacct gen-resources`: ceilometer '
        '%s\'s\n# %s\n# plus the policies and meters of '
        'ceilometer_blockacct.\n'
        '# Do not edit: regenerate it (a unit test checks it is current).\n'
        % (importlib.metadata.version('ceilometer'),
           'publisher/' + UPSTREAM_RESOURCE))
    return header + yaml.safe_dump(data, default_flow_style=False,
                                   sort_keys=False, width=79)


class MalformedPolicy(ValueError):
    """Gnocchi's answer is not an archive policy we can compare."""


def _kind(value):
    return {dict: 'an object', list: 'a list', str: 'a string',
            type(None): 'null'}.get(type(value), type(value).__name__)


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _span(item, key):
    try:
        seconds = to_seconds(item.get(key))
    except ValueError:
        raise MalformedPolicy('%s %s is no length of time'
                              % (key, _show(item.get(key)))) from None
    if seconds <= 0:
        raise MalformedPolicy('%s %s is not > 0'
                              % (key, _show(item.get(key))))
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
                              % _kind(answer))
    definition = answer.get('definition')
    if definition is None or definition == []:
        raise MalformedPolicy('it has no definition')
    if not isinstance(definition, list):
        raise MalformedPolicy('its definition is %s, not a list'
                              % _kind(definition))
    pairs = []
    for item in definition:
        if not isinstance(item, dict):
            raise MalformedPolicy('a definition entry is %s, not an object'
                                  % _kind(item))
        granularity = _span(item, 'granularity')
        if item.get('timespan') is not None:
            timespan = _span(item, 'timespan')
        elif item.get('points') is None:
            # NOTE: Gnocchi's way to keep points forever; shortening it
            # would delete data, which is the operator's decision.
            raise MalformedPolicy(
                'granularity %s has neither a timespan nor a number of '
                'points (kept forever?)' % _show(item.get('granularity')))
        elif _whole(item['points']) and 0 < item['points'] < 2 ** 53:
            timespan = granularity * item['points']
        else:
            raise MalformedPolicy('points %s is not a whole number in 1..2**53'
                                  % _show(item['points']))
        pairs.append((granularity, timespan))
    methods = answer.get('aggregation_methods')
    if not isinstance(methods, list) or not all(
            isinstance(m, str) for m in methods):
        raise MalformedPolicy('aggregation_methods %s is not a list of '
                              'names' % _show(methods))
    back_window = answer.get('back_window')
    if not _whole(back_window) or back_window < 0:
        raise MalformedPolicy('back_window %s is not a whole number >= 0'
                              % _show(back_window))
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
    want_def = sorted((to_seconds(d['granularity']), to_seconds(d['timespan']))
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


# -- resource type attributes -------------------------------------------------

class MalformedResourceType(ValueError):
    """Gnocchi's answer is not a resource type we can check."""


class AttributeConflict(Exception):
    """An attribute of ours exists in another form (not changed in place)."""


def plan_resource_attributes(existing, wanted=None):
    """Decide what to do about our attributes of one resource type.

    :param existing: Gnocchi's answer for the resource type (any JSON).
    :param wanted: ``{name: definition}``, default
        :data:`RESOURCE_ATTRIBUTES`.
    :returns: ``(action, details)``: ``('ok', None)``, ``('update', JSON
        patch operations adding the missing ones)`` or ``('conflict',
        human-readable differences)``.
    :raises MalformedResourceType: if ``existing`` is not a resource type.
    """
    wanted = RESOURCE_ATTRIBUTES if wanted is None else wanted
    if not isinstance(existing, dict):
        raise MalformedResourceType('the answer is %s, not an object'
                                    % _kind(existing))
    have = existing.get('attributes')
    if not isinstance(have, dict):
        raise MalformedResourceType('its attributes are %s, not an object'
                                    % _kind(have))
    patch, conflicts = [], []
    for name, definition in sorted(wanted.items()):
        found = have.get(name)
        if found is None:
            patch.append({'op': 'add', 'path': '/attributes/%s' % name,
                          'value': dict(definition)})
            continue
        if not isinstance(found, dict):
            raise MalformedResourceType('attribute %s is %s, not an object'
                                        % (name, _kind(found)))
        differences = _attribute_differences(found, definition)
        if differences:
            conflicts.append('attribute %s %s' % (name,
                                                  ', '.join(differences)))
    if conflicts:
        return 'conflict', conflicts
    if patch:
        return 'update', patch
    return 'ok', None


def _attribute_differences(found, wanted):
    """What makes an existing attribute unfit to hold our values."""
    out = []
    if found.get('type') != wanted['type']:
        out.append('is of type %s, expected %s'
                   % (_show(found.get('type')), wanted['type']))
        return out
    if found.get('required') and not wanted['required']:
        # NOTE: a disk without a <serial> could not be created at all.
        out.append('is required, expected optional')
    if wanted['type'] == 'string':
        longest = found.get('max_length')
        if not _whole(longest) or longest < wanted['max_length']:
            out.append('holds %s characters at most, expected %d'
                       % (_show(longest), wanted['max_length']))
        shortest = found.get('min_length', 0)
        if not _whole(shortest) or shortest > wanted['min_length']:
            out.append('needs %s characters at least, expected %d'
                       % (_show(shortest), wanted['min_length']))
    return out


def ensure_resource_attributes(client, name=meters.RESOURCE_TYPE,
                               request=None, wanted=None):
    """Add the attributes of :data:`RESOURCE_ATTRIBUTES` that ``name`` lacks.

    Idempotent; an attribute another run added meanwhile is checked like
    one that was there.

    :param client: a gnocchiclient v1 Client (admin: changing a resource
        type is Gnocchi's ``update resource type`` policy).
    :param request: ``request(what)`` -> a context manager around each
        request that turns its failures into the caller's errors (by
        default they propagate as they are).  A malformed answer raises
        :class:`MalformedResourceType` (a ValueError) inside it.
    :returns: the names of the attributes added (empty when all were
        there as wanted).
    :raises AttributeConflict: when one exists in a form that cannot hold
        our values (another type, required, too short): Gnocchi cannot
        change an attribute in place.
    """
    from gnocchiclient import exceptions as g_exc

    request = request or (lambda what: contextlib.nullcontext())
    get_what = 'GET resource type %s' % name
    with request(get_what):
        action, details = plan_resource_attributes(
            client.resource_type.get(name), wanted)
    added = []
    if action == 'update':
        with request('PATCH resource type %s' % name):
            try:
                client.resource_type.update(name, details)
                added = [op['path'].rpartition('/')[2] for op in details]
            except g_exc.BadRequest:
                # NOTE: most likely another run added them first: check
                # what is there now, like any existing attribute.
                with request(get_what):
                    action, details = plan_resource_attributes(
                        client.resource_type.get(name), wanted)
                if action == 'update':
                    raise
    if action == 'conflict':
        raise AttributeConflict(
            'resource type %s: %s; Gnocchi cannot change an attribute in '
            'place: delete it (gnocchi resource-type update %s -r NAME, '
            'which drops its values) and run gnocchi-setup again'
            % (name, '; '.join(details), name))
    return added
