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
"""Horizon plugin: the "Disk I/O" panel (Project > Compute, and Admin).

Installed with the ``[dashboard]`` extra and enabled by the files in
:mod:`.enabled`; never imported on a compute node.  Every number comes
from Gnocchi, read with the logged-in user's own token, so Gnocchi's
policy decides what a user sees.  :mod:`.data` (pure, no Django) shapes
Gnocchi's answers; :mod:`.views` serves them.
"""
