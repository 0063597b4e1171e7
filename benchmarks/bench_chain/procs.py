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
"""CPU seconds of each component of the chain, from /proc/<pid>/stat.

A component is a set of processes: every fixture service runs in a session
of its own (``start_new_session``), so its workers (uwsgi's, metricd's,
cotyledon's) are found by session id; RabbitMQ's Erlang VM by its node
name on the command line, plus its children.
"""

import os

TICKS = os.sysconf('SC_CLK_TCK')


def parse_stat(text):
    """(pid, ppid, session, CPU ticks) of one /proc/<pid>/stat line.

    The command name (field 2) may hold spaces and parentheses: the fields
    after it start after the last ')'.  CPU = utime + stime (fields 14,
    15) of the process itself; children that exited are counted in its
    cutime/cstime (16, 17), so a worker that ends inside a window is not
    lost once its parent reaped it.
    """
    head, _, tail = text.rpartition(')')
    pid = int(head.split('(', 1)[0])
    fields = tail.split()
    # fields[0] is field 3 (state): ppid 4, session 6, utime 14 .. cstime 17
    ticks = sum(int(x) for x in fields[11:15])
    return pid, int(fields[1]), int(fields[3]), ticks


def snapshot(proc='/proc'):
    """{pid: (ppid, session, ticks, cmdline)} of every process now."""
    found = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, 'stat')) as f:
                pid, ppid, sid, ticks = parse_stat(f.read())
            with open(os.path.join(proc, entry, 'cmdline'), 'rb') as f:
                cmdline = f.read().replace(b'\0', b' ').decode(
                    errors='replace')
        except (OSError, ValueError, IndexError):
            continue    # gone meanwhile
        found[pid] = (ppid, sid, ticks, cmdline)
    return found


def members(snap, session=None, cmdline_has=None):
    """Pids of a session, or matching a command line, with descendants."""
    roots = {pid for pid, (_pp, sid, _t, cmd) in snap.items()
             if (session is not None and sid == session)
             or (cmdline_has is not None and cmdline_has in cmd)}
    children = {}
    for pid, (ppid, _sid, _t, _cmd) in snap.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


class Components:
    """CPU seconds per named component, by selectors fixed at start.

    :param selectors: ``{name: callable(snapshot) -> set of pids}``.
    """

    def __init__(self, selectors, proc='/proc'):
        self.selectors = dict(selectors)
        self.proc = proc

    def cpu(self):
        """{name: CPU seconds so far} (a process's whole life so far)."""
        snap = snapshot(self.proc)
        return {name: sum(snap[pid][2] for pid in select(snap)) / TICKS
                for name, select in self.selectors.items()}


def by_session(pid):
    """Selector: the session led by ``pid`` (a fixture Service)."""
    return lambda snap: members(snap, session=pid)


def by_cmdline(text):
    """Selector: processes whose command line contains ``text``."""
    return lambda snap: members(snap, cmdline_has=text)
