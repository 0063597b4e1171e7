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
"""Plausibility: how much a counter can have grown, and what to bill if more.

QEMU's counters live in a process a guest could compromise, so every
increase is held against bounds from the ``[blockacct] max_*`` options: a
rate per second of its quantity (bytes, requests, request time) and, for
bytes, the requests that carried them.  ``[blockacct] implausible_policy``
says what an increase beyond them bills.
"""

import dataclasses

from ceilometer_blockacct import meters

NS_PER_S = 1e9

# [blockacct] implausible_policy: what an implausible increase bills.
REFUSE = 'refuse'   # nothing
CAP = 'cap'         # up to the bound
BILL = 'bill'       # all of it (still logged as an error)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Plausibility bounds and policy (see the [blockacct] options)."""

    bytes_per_second: int
    requests_per_second: int
    queue_depth: int
    bytes_per_request: int = None
    policy: str = REFUSE

    @classmethod
    def from_conf(cls, conf):
        o = conf.blockacct
        return cls(o.max_bytes_per_second, o.max_requests_per_second,
                   o.max_queue_depth, o.max_bytes_per_request,
                   o.implausible_policy)


def rate_limit(field, limits):
    """The most counter ``field`` can grow in one second."""
    quantity = meters.COUNTERS[field].quantity
    if quantity == meters.BYTES:
        return limits.bytes_per_second
    if quantity in (meters.TIME, meters.IDLE):
        # Request time accrues at most queue_depth ns per ns of wall time.
        return limits.queue_depth * NS_PER_S
    return limits.requests_per_second


def plausible(field, increase, seconds, limits):
    """Whether ``field`` can have grown by ``increase`` in ``seconds``."""
    return increase <= rate_limit(field, limits) * seconds


def bound(meter, seconds, d_ops, limits):
    """The most ``meter.source`` can have grown in ``seconds``.

    By rate, and for bytes also by the requests that carried them
    (``d_ops``, None when unknown).
    """
    bound = rate_limit(meter.source, limits) * seconds
    if (meter.ops_source and d_ops is not None
            and limits.bytes_per_request is not None):
        bound = min(bound, d_ops * limits.bytes_per_request)
    return int(bound)
