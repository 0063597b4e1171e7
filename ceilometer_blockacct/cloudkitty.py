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
"""CloudKitty's metrics.yml for the billable meters of the table.

:func:`metrics_config` turns every billable row of
:data:`ceilometer_blockacct.meters.METERS` (the ``.delta`` meters) into one
metric of CloudKitty's gnocchi collector, i.e. one hashmap service, so a
provider prices (or zeroes) each of them on its own:

* ``aggregation_method: sum`` (kept by ``blockacct-delta``, checked
  against :data:`.gnocchi.policies.AGGREGATION_METHODS`) and
  ``re_aggregation_method: sum``: the quantity of a period is the sum of
  the reset-safe deltas published in it;
* ``force_granularity: 3600``: the collector keeps only the FIRST point
  Gnocchi returns per group, so the granularity must equal CloudKitty's
  ``[collect] period`` (3600 by default) -- one bucket per period;
* ``groupby``: the resource ``id`` (``<instance uuid>-<target dev>``), the
  Gnocchi attributes ``instance_id`` and ``name`` (target dev), and
  ``project_id`` / ``user_id`` (``project_id`` is CloudKitty's default
  ``[collect] scope_key``, which the collector needs in the groupby).
  They are grouped on rather than fetched as ``metadata``: the values are
  fixed for a disk, and metadata costs one more resource search per
  metric and period;
* ``metadata``: ``volume_id`` (the Cinder volume of the disk, see
  :data:`.gnocchi.resource_type.RESOURCE_ATTRIBUTES`), so a rated disk
  names its volume.  The collector reads it from the resource as it
  is when it rates (one resource search per metric and period; empty for
  a disk without a serial).  A target reused by another volume keeps its
  resource id, so a period rated after the swap names the new volume;
* units: bytes are billed in GiB, completed requests in millions; failed
  and invalid requests, which are rare, per request.

``ceilometer-blockacct gen-cloudkitty`` writes it (the shipped
``etc/cloudkitty/metrics.yml``; a unit test checks it is current).
"""

import fractions

import yaml

from ceilometer_blockacct.gnocchi import policies
from ceilometer_blockacct.gnocchi import resource_type
from ceilometer_blockacct import meters

PERIOD = 3600
AGGREGATION = 'sum'
RE_AGGREGATION = 'sum'
GROUPBY = ('id', 'instance_id', 'name', 'project_id', 'user_id')
METADATA = tuple(resource_type.RESOURCE_ATTRIBUTES)


def billable_meters():
    """The billable rows of the meter table, in table order."""
    return [m for m in meters.METERS if m.billable]


def billing_units(meter):
    """(CloudKitty unit, factor) of ``meter``, from its table row.

    A meter rated without being billable (an audit extra) keeps its unit.
    """
    return meter.rating or raw_units(meter)


def raw_units(meter):
    """The meter's own unit and factor 1: quantities as Gnocchi sums."""
    return meter.unit, 1


def _factor(value):
    """A factor as CloudKitty reads it: int, or 'n/d' (a Fraction)."""
    value = fractions.Fraction(value)
    if value.denominator == 1:
        return int(value)
    return '%d/%d' % (value.numerator, value.denominator)


def metric_entry(meter, granularity=PERIOD, units=None,
                 aggregation=AGGREGATION):
    """One metric of metrics.yml for ``meter``."""
    methods = policies.AGGREGATION_METHODS[meter.archive_policy]
    if aggregation not in methods:
        # NOTE: Gnocchi answers 400 for a method the policy does not keep,
        # and CloudKitty then rates nothing for the whole scope.
        raise ValueError('%s is kept with %s, not %s' % (
            meter.name, ', '.join(methods), aggregation))
    unit, factor = (units or billing_units)(meter)
    return {
        'unit': unit,
        'factor': _factor(factor),
        'description': meter.description,
        'groupby': list(GROUPBY),
        'metadata': list(METADATA),
        'extra_args': {
            'resource_type': meters.RESOURCE_TYPE,
            'resource_key': 'id',
            'aggregation_method': aggregation,
            're_aggregation_method': RE_AGGREGATION,
            'force_granularity': granularity,
        },
    }


def metrics_config(granularity=PERIOD, units=None, extra=None):
    """The metrics.yml content: ``{'metrics': {meter name: entry}}``.

    :param granularity: ``force_granularity``; must equal CloudKitty's
        ``[collect] period`` (tests use 60 with a 60 s period).
    :param units: :func:`billing_units` (default) or :func:`raw_units`
        (factor 1: quantities are exactly what Gnocchi sums).
    :param extra: ``{meter name: aggregation method}`` of non-billable
        meters to add (e.g. a cumulative counter with ``rate:sum``).
    """
    out = {}
    for meter in billable_meters():
        out[meter.name] = metric_entry(meter, granularity, units)
    for name, aggregation in (extra or {}).items():
        out[name] = metric_entry(meters.BY_NAME[name], granularity, units,
                                 aggregation)
    return {'metrics': out}


def dump_metrics_config(data=None):
    """YAML text of :func:`metrics_config`, with a header."""
    if data is None:
        data = metrics_config()
    header = (
        '# CloudKitty metrics.yml for ceilometer-blockacct\'s billable '
        'meters.\n'
        '# Generated by `ceilometer-blockacct gen-cloudkitty` from the '
        'meter table;\n'
        '# do not edit: regenerate it (a unit test checks it is current).\n'
        '# force_granularity must equal [collect] period in '
        'cloudkitty.conf.\n'
        '# Each metric is one hashmap service (see doc/cloudkitty.rst).\n')
    return header + yaml.safe_dump(data, default_flow_style=False,
                                   sort_keys=False, width=79)
