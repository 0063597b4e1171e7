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
"""Our attributes of Gnocchi's ``instance_disk`` resource type."""

import contextlib

from ceilometer_blockacct.gnocchi import values
from ceilometer_blockacct import meters

# Attributes of instance_disk that Ceilometer's resource type lacks, in
# Gnocchi's resource-type form (:data:`.resources.SAMPLE_ATTRIBUTES` says
# which sample metadata each is read from).
# NOTE: optional, so a disk without a <serial> (a local disk) has none, and
# resources created before the attribute existed stay valid; string, not
# uuid, because a <serial> set outside Nova need not be a uuid, and a value
# Gnocchi refuses makes the publisher drop that disk's measures.
RESOURCE_ATTRIBUTES = {
    'volume_id': {'type': 'string', 'required': False,
                  'min_length': 0, 'max_length': 255},
}


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
                                    % values.kind(existing))
    have = existing.get('attributes')
    if not isinstance(have, dict):
        raise MalformedResourceType('its attributes are %s, not an object'
                                    % values.kind(have))
    patch, conflicts = [], []
    for name, definition in sorted(wanted.items()):
        found = have.get(name)
        if found is None:
            patch.append({'op': 'add', 'path': '/attributes/%s' % name,
                          'value': dict(definition)})
            continue
        if not isinstance(found, dict):
            raise MalformedResourceType('attribute %s is %s, not an object'
                                        % (name, values.kind(found)))
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
                   % (values.show(found.get('type')), wanted['type']))
        return out
    if found.get('required') and not wanted['required']:
        # NOTE: a disk without a <serial> could not be created at all.
        out.append('is required, expected optional')
    if wanted['type'] == 'string':
        longest = found.get('max_length')
        if not values.whole(longest) or longest < wanted['max_length']:
            out.append('holds %s characters at most, expected %d'
                       % (values.show(longest), wanted['max_length']))
        shortest = found.get('min_length', 0)
        if not values.whole(shortest) or shortest > wanted['min_length']:
            out.append('needs %s characters at least, expected %d'
                       % (values.show(shortest), wanted['min_length']))
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
