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
"""The state directory: safe to trust, and held by one agent at a time.

The baselines in it decide what is billed: a directory others can write,
or a symlink, would let them change it; two agents on it would both bill.
"""

import fcntl
import os
import stat


class StateDirError(Exception):
    """The state directory cannot be used; the text names the option."""


def check_state_dir(path):
    """Create ``path`` 0700 if missing; refuse an unsafe one.

    :raises StateDirError: naming the option and what is wrong.
    """
    opt = '[blockacct] state_dir %s' % path
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as e:
        raise StateDirError('%s is unusable: %s' % (opt, e))
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StateDirError('%s must be a directory, not a symlink or a file'
                            % opt)
    if st.st_uid != os.geteuid():
        raise StateDirError('%s must be owned by the agent\'s user (uid %d), '
                            'not uid %d' % (opt, os.geteuid(), st.st_uid))
    if st.st_mode & 0o022:
        raise StateDirError('%s must not be writable by group or others (mode '
                            '%o; chmod 0700 it)' % (opt, st.st_mode & 0o777))


def take_lock(state_dir, name='lock'):
    """Hold ``state_dir/name`` with flock for this process; return its fd.

    :raises StateDirError: when another agent holds it (naming its pid).
    """
    path = os.path.join(state_dir, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise StateDirError('cannot create %s: %s ([blockacct] state_dir)'
                            % (path, e))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode('ascii', 'replace').strip()
        os.close(fd)
        raise StateDirError('[blockacct] state_dir %s is in use by another '
                            'agent (pid %s): two agents on one state would '
                            'both bill; give each its own state_dir'
                            % (state_dir, holder or '?'))
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
