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
"""The billing audit: what the delta meters billed against what grew.

Every delta meter has a cumulative meter of the same counter (ours, or
upstream's ``disk.device.{read,write}.{bytes,requests}``):
:func:`.pairs.pairs`.  Per disk and pair, the audit reads from Gnocchi
(:mod:`.measures`) the ``sum`` of the delta meter and the ``last`` of the
cumulative one per bucket (the finest granularity that still holds each
part of the range: :func:`.timeline.pieces`), turns the latter into
increases (a counter that went down is a new QEMU process counting from 0)
and follows the running balance ``increase - billed``
(:func:`.balance.walk`).

One poll's two samples are stamped apart (each pollster has its own time)
and may fall into two buckets, so the balance moves for a bucket and comes
back; a delta lost on its way (a crash between the agent's commit and
Ceilometer's send) moves it for good, since the cumulative meter heals at
its next point.  The balance is exact only at moments when no poll is on
its way (an empty bucket, or an idle disk, after them): the difference of
a range is its change between such moments.  The windows where it moved
come from its settled level (the value it held longest over ``settle``
seconds).  A ``lead_in`` before the range is read so that a disk's
previous counter value is known.

The repair (:func:`.repair.plan_repairs`) posts, once, what is missing: no
more than the exact difference and the settled one both say, never a
surplus, and never where the counter went down (the audit cannot tell a
new process from a glitch there) or where the disk's refused meter of that
quantity counted something (the agent refused it on purpose).  A repair
lands inside the span between the two exact moments that lost it (a
:class:`.balance.Segment`: in its settled window that lost something,
else where billed trailed most), so every such span adds up afterwards
and an audit between any two exact moments posts nothing again.  It goes
at a nanosecond no poll uses (samples are stamped to the microsecond and
Gnocchi keeps one value per timestamp), or -- when Gnocchi's
``back_window`` no longer accepts that time -- at the current time,
billed late: the next audit sees the two as offsetting windows.  Run one
repair at a time: two at once can both post.

:class:`.auditor.Auditor` does it all for a set of disks.
"""
