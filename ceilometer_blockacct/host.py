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
"""Facts of this host that identify a boot and order events within it."""

import time

from oslo_log import log

LOG = log.getLogger(__name__)

UNKNOWN_BOOT = 'unknown-boot'


def boot_id():
    """This host's boot id: QEMU processes and marks of two boots differ.

    Both the readings' epochs and the state's marks use it, so they must
    come from here.
    """
    try:
        with open('/proc/sys/kernel/random/boot_id') as f:
            return f.read().strip()
    except OSError as e:
        LOG.warning('Cannot read the boot id (%s): processes are told apart '
                    'by libvirt domain ids and start times only', e)
        return UNKNOWN_BOOT


def boottime_ns():
    """CLOCK_BOOTTIME now: the clock of QEMU start times and of marks."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)
