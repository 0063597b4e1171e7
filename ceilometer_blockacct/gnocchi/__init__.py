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
"""What Gnocchi holds for our meters, all derived from the meter table.

Everything here derives from :data:`ceilometer_blockacct.meters.METERS`:

* :mod:`.policies` -- our archive policies (:func:`.policies.
  archive_policies`, in the shape both Gnocchi's REST API and Ceilometer's
  resources file use) and what ``gnocchi-setup`` must do about one given
  what Gnocchi already has (:func:`.policies.plan_archive_policy`);
* :mod:`.resources` -- the complete resources definition for Ceilometer's
  gnocchi publisher: upstream's whole file (the one of the *installed*
  Ceilometer) plus our policies and meters;
* :mod:`.resource_type` -- the optional attributes we add to
  ``instance_disk`` (``volume_id``), and how ``gnocchi-setup`` adds them;
* :mod:`.values` -- timespans and JSON values as Gnocchi writes them.
"""
