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
"""Run a command as a child subreaper: ``python reaper.py CMD ARGS...``.

libvirtd daemonizes each QEMU (double fork), so a QEMU that exits becomes
a zombie of whatever reaps orphans, normally PID 1.  libvirt considers a
domain stopped only once its QEMU is reaped; where PID 1 reaps lazily
(measured here: 1.2-2 s per ``destroy()``), that delay hits every test.
This process marks itself PR_SET_CHILD_SUBREAPER, so orphans of its
descendants are reparented to it and reaped at once, forwards SIGTERM and
SIGINT to the command, and exits with the command's status when it exits.
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit('prctl(PR_SET_CHILD_SUBREAPER): %s' % os.strerror(
            ctypes.get_errno()))
    child = os.fork()
    if child == 0:
        os.execvp(argv[0], argv)

    def forward(signum, frame):
        os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 1
    while True:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        if pid == child:
            # NOTE: QEMUs still running go back to PID 1; the host
            # fixture kills them by pid once libvirtd has gone.
            status = os.waitstatus_to_exitcode(raw)
            break
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == '__main__':
    main(sys.argv[1:])
