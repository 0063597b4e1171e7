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
"""Horizon: Project > Compute > Disk I/O."""

PANEL = 'disk_io'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'compute'
ADD_PANEL = 'ceilometer_blockacct.dashboard.project.panel.DiskIO'
# The app's templates and static files (the charts' script).
ADD_INSTALLED_APPS = ['ceilometer_blockacct.dashboard']
ADD_JS_FILES = ['blockacct_disk_io/disk_io.js']
