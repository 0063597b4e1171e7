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
"""What the audit reads from Gnocchi: the disks, policies and measures."""

import uuid

from ceilometer_blockacct.audit import timeline
from ceilometer_blockacct import meters


def find_disks(client, project=None, resource_ids=(), start=None):
    """``instance_disk`` resources to audit.

    :param client: a gnocchiclient v1 Client.
    :param resource_ids: Ceilometer's ids (``<instance>-<dev>``) or
        Gnocchi's; given, only these.
    :param project: else, every disk of this project (of every project
        when None) that had not ended by ``start``.
    """
    if resource_ids:
        # NOTE: by query, not GET: Gnocchi's own id of a resource
        # whose id is no UUID depends on who created it.
        found = []
        for rid in resource_ids:
            field = 'id' if _is_uuid(rid) else 'original_resource_id'
            found.extend(_search(client, {'=': {field: rid}}))
        return found
    query = []
    if project:
        query.append({'=': {'project_id': project}})
    if start is not None:
        query.append({'or': [{'=': {'ended_at': None}},
                             {'>=': {'ended_at': timeline.iso(start)}}]})
    return _search(client, {'and': query} if query else None)


def _search(client, query, page_size=500):
    found, marker = [], None
    while True:
        page = client.resource.search(
            resource_type=meters.RESOURCE_TYPE, query=query,
            limit=page_size, marker=marker, sorts=['id:asc'])
        found.extend(page)
        if len(page) < page_size:
            return found
        marker = page[-1]['id']


def _is_uuid(text):
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class Measures:
    """Metrics' archive policies (each read once) and measures."""

    def __init__(self, client):
        self.client = client
        self._policies = {}

    def policy(self, metric_id):
        """The archive policy of a metric, as Gnocchi returns it."""
        if metric_id not in self._policies:
            self._policies[metric_id] = self.client.metric.get(
                metric_id)['archive_policy']
        return self._policies[metric_id]

    def series(self, metric_id, aggregation, plan):
        """``[(ts, granularity, whole value)]`` of the pieces of ``plan``.

        :param plan: :func:`.timeline.pieces`'s answer; each piece is read
            at its granularity, and only its own buckets are kept.
        """
        out = []
        for g, begin, stop in plan:
            rows = self.client.metric.get_measures(
                metric_id, start=timeline.iso(begin),
                stop=timeline.iso(stop), aggregation=aggregation,
                granularity=g, refresh=True)
            for when, granularity, value in rows:
                ts = timeline.epoch(when)
                if begin <= ts < stop and granularity == g:
                    out.append((ts, g, int(round(value))))
        return out
