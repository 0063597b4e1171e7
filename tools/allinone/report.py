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
"""What the all-in-one read back from Gnocchi: measures and a plot.

:func:`print_measures` runs ``gnocchi measures show`` (the real CLI) for
the main meters at 1 s and 1 min; :func:`print_customer_view` runs the
same CLI with the guest's owner's Keystone credentials beside the admin's
(and another customer's), and says how a customer runs it; :func:`plot`
draws bytes/s, average latency and queue depth per operation from what
Gnocchi returns.
"""

from concurrent import futures
import datetime
import os
import shlex
import subprocess
import sys

from ceilometer_blockacct import meters
from ceilometer_blockacct.tests.functional.fixtures import allinone
from ceilometer_blockacct.tests.functional.fixtures import services

DISKS = allinone.DISKS
OPS = allinone.OPS

# (meter, aggregation) printed with `gnocchi measures show`, and the disks.
MAIN_MEASURES = (
    ('disk.device.write.bytes.delta', 'sum', ('vda', 'hda')),
    ('disk.device.read.bytes.delta', 'sum', ('vda',)),
    ('disk.device.write.latency.avg', 'mean', ('vda',)),
    ('disk.device.write.queue.depth', 'mean', ('vda',)),
    ('disk.device.flush.requests.delta', 'sum', ('hda',)),
    ('disk.device.read.requests.failed.delta', 'sum', ('vdb',)),
    ('disk.device.write.requests.invalid.delta', 'sum', ('vda',)),
)
# (op, disk) whose average latency per minute is printed with
# `gnocchi aggregates` and meters.LATENCY_QUERY.
LATENCY_MEASURES = (('write', 'vda'), ('read', 'vdb'))


# -- reading back from Gnocchi ------------------------------------------------

def _measures(client, resource_id, meter, aggregation, granularity,
              start=None):
    """[(timestamp, value)] of one metric of one resource, [] if none."""
    from gnocchiclient import exceptions as g_exc

    try:
        rows = client.metric.get_measures(
            meter, resource_id=resource_id, aggregation=aggregation,
            granularity=granularity, start=start)
    except (g_exc.NotFound, g_exc.MetricNotFound):
        return []
    return [(ts, value) for ts, _gran, value in rows]


def series(client, resource_id, op, interval=1):
    """What the plot shows for one disk and op, read back from Gnocchi.

    ``{(quantity, granularity): [(timestamp, value)]}`` with quantity in
    bytes/s (read and write only), latency ms and queue depth.  At 1 s:
    the per-poll values (``*.bytes.delta`` sums, ``latency.avg`` and
    ``queue.depth`` means).  At 1 min: ratios of sums, never means of
    gauges: Σ Δbytes / seconds polled, Σ Δtime / Σ completed requests,
    Σ Δtime / seconds polled, where seconds polled = the minute's count of
    polls x ``interval`` (the first and last minutes of a run are partial).
    """
    prefix = 'disk.device.%s' % op
    result = {}
    polled = {ts: n * interval for ts, n in _measures(
        client, resource_id, prefix + '.requests.delta', 'count', 60)}
    if op != 'flush':
        result[('bytes', 1)] = [
            (ts, v / 1.0) for ts, v in _measures(
                client, resource_id, prefix + '.bytes.delta', 'sum', 1)]
        result[('bytes', 60)] = [
            (ts, v / polled[ts]) for ts, v in _measures(
                client, resource_id, prefix + '.bytes.delta', 'sum', 60)
            if polled.get(ts)]
    result[('latency', 1)] = _measures(client, resource_id,
                                       prefix + '.latency.avg', 'mean', 1)
    result[('queue', 1)] = _measures(client, resource_id,
                                     prefix + '.queue.depth', 'mean', 1)
    # NOTE: ratios of sums of reset-safe deltas over the same minute, in
    # ms: meters.LATENCY_QUERY, the query of every doc.
    time_ns = dict(_measures(client, resource_id,
                             prefix + '.total.time.delta', 'sum', 60))
    done = dict(_measures(client, resource_id, prefix + '.requests.delta',
                          'sum', 60))
    result[('latency', 60)] = sorted(
        (ts, time_ns[ts] / (1e6 * done[ts])) for ts in time_ns
        if done.get(ts))
    result[('queue', 60)] = sorted((ts, v / 1e9 / polled[ts])
                                   for ts, v in time_ns.items()
                                   if polled.get(ts))
    return result


def plot(client, aio, path):
    """Write the PNG: bytes/s, latency, queue depth at 1 s and 1 min."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import dates as mdates
    from matplotlib import pyplot

    rows = (('bytes', 'bytes/s'), ('latency', 'average latency (ms)'),
            ('queue', 'queue depth (requests)'))
    fig, axes = pyplot.subplots(len(rows), 2, figsize=(15, 11),
                                sharex='col', squeeze=False)
    styles = {'read': '-', 'write': '--', 'flush': ':'}
    colors = {'vda': 'tab:blue', 'vdb': 'tab:orange', 'hda': 'tab:green'}
    for disk in DISKS:
        rid = aio.resource_id(disk.target)
        for op in OPS:
            data = series(client, rid, op, aio.interval)
            for row, (quantity, _label) in enumerate(rows):
                for col, gran in enumerate((1, 60)):
                    points = data.get((quantity, gran)) or []
                    if not points or not any(v for _ts, v in points):
                        continue
                    xs, ys = map(list, zip(*points))
                    if gran == 60:
                        # NOTE: one value per minute, drawn over its minute.
                        xs.append(xs[-1] + datetime.timedelta(seconds=60))
                        ys.append(ys[-1])
                    axes[row][col].plot(
                        xs, ys, styles[op], color=colors[disk.target],
                        drawstyle='steps-post' if gran == 60 else 'default',
                        linewidth=1.2, label='%s %s' % (disk.target, op))
    for row, (_quantity, label) in enumerate(rows):
        for col, title in enumerate(('1 s granularity', '1 min '
                                     'granularity (ratios of sums)')):
            ax = axes[row][col]
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(title)
            if ax.lines:
                ax.legend(fontsize=7, ncol=3, loc='upper left')
            ax.xaxis.set_major_formatter(mdates.DateFormatter('%H:%M:%S'))
    fig.suptitle('ceilometer-blockacct all-in-one: guest %s, read back '
                 'from Gnocchi (vda throttled to %s IOPS; vdb with failing '
                 'I/O; hda IDE with flushes)' % (
                     aio.guest.uuid, DISKS[0].iotune['total_iops_sec']),
                 fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)
    return path


#: seconds one ``gnocchi`` command may take
CLI_TIMEOUT = 120


def _cli_env(values):
    """The environment, its own OS_* and GNOCCHI_* replaced by values."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('OS_', 'GNOCCHI_'))}
    env.update(values)
    return env


def _run_cli(argv, env):
    """The CLI's output, or 'ERROR: <its error line>'."""
    try:
        result = subprocess.run(argv, env=env, capture_output=True,
                                text=True, timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        # NOTE: seen with a load average of 29 on 2 cores: one slow query
        # must not end the report (and skip the plot).
        return 'ERROR: no answer within %d s' % CLI_TIMEOUT
    lines = result.stderr.strip().splitlines() or ['(nothing on stderr)']
    # NOTE: the last line is the CLI's error; imports warn before it.
    return result.stdout if result.returncode == 0 else (
        'ERROR (exit %d): %s' % (result.returncode, lines[-1]))


def print_measures(aio, out=sys.stdout, last_seconds=8, end=None):
    """``gnocchi measures show`` (the CLI) for :data:`MAIN_MEASURES`.

    At 1 s granularity only the ``last_seconds`` before ``end`` (now).
    """
    gnocchi = os.path.join(services.VENV_BIN, 'gnocchi')
    env = _cli_env(aio.stack.env)
    end = end or datetime.datetime.now(datetime.timezone.utc)
    start = (end - datetime.timedelta(seconds=last_seconds)).replace(
        microsecond=0).isoformat()
    commands = []
    for meter, aggregation, targets in MAIN_MEASURES:
        for target in targets:
            rid = aio.resource_id(target)
            for gran, extra in ((1, ['--start', start]), (60, [])):
                commands.append([gnocchi, 'measures', 'show', '--resource-id',
                                 rid, '--aggregation', aggregation,
                                 '--granularity', str(gran)] + extra
                                + [meter])

    # The average latency of each minute, in ms: THE query of the docs.
    for op, target in LATENCY_MEASURES:
        commands.append([gnocchi, 'aggregates', '--resource-type',
                         meters.RESOURCE_TYPE, '--granularity', '60',
                         meters.latency_query(op),
                         'original_resource_id="%s"'
                         % aio.resource_id(target)])

    def show(argv):
        return _run_cli(argv, env)

    # NOTE: the CLI takes ~2 s to start; run a few at once, print in order.
    with futures.ThreadPoolExecutor(4) as pool:
        for argv, text in zip(commands, pool.map(show, commands)):
            # NOTE: quoted as a shell needs it: the query is copy-paste.
            print('$ gnocchi %s' % shlex.join(argv[1:]), file=out)
            print(text.rstrip() + '\n', file=out, flush=True)


# The customer's view: what a tenant reads with its own credentials.
CUSTOMER_METER = ('disk.device.write.bytes.delta', 'sum', 'vda')
# What the openrc of a customer exports (the password is theirs to type).
OPENRC = ('OS_AUTH_TYPE', 'OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD',
          'OS_PROJECT_NAME', 'OS_USER_DOMAIN_NAME', 'OS_PROJECT_DOMAIN_NAME',
          'OS_REGION_NAME', 'OS_INTERFACE')


def customer_queries(aio):
    """``[(title, gnocchi CLI arguments)]`` of the customer's view."""
    meter, aggregation, target = CUSTOMER_METER
    return [
        ('their disks', ['resource', 'list', '--type', 'instance_disk',
                         '-c', 'id', '-c', 'original_resource_id',
                         '-c', 'project_id']),
        ('%s of %s, 1 min' % (meter, target),
         ['measures', 'show', '--resource-id', aio.gnocchi_id(target),
          '--aggregation', aggregation, '--granularity', '60', meter]),
    ]


def print_customer_view(aio, out=sys.stdout):
    """The guest owner's view beside the admin's and another tenant's.

    Each runs the real ``gnocchi`` CLI with its own Keystone credentials
    (``OS_*``): the owner sees its disks, the other customer nothing of
    them, the admin everything.  Ends with the commands a customer types.
    """
    if aio.customer is None:
        print('(basic auth: no Keystone, no customers)', file=out)
        return
    gnocchi = os.path.join(services.VENV_BIN, 'gnocchi')
    viewers = (
        ('admin', aio.stack.env),
        ('customer %s (owns the guest)' % aio.customer.username,
         aio.stack.env_for(aio.customer)),
        ('customer %s (owns nothing)' % aio.other.username,
         aio.stack.env_for(aio.other)),
    )
    jobs = [(title, who, [gnocchi] + args, _cli_env(env))
            for title, args in customer_queries(aio)
            for who, env in viewers]
    with futures.ThreadPoolExecutor(3) as pool:
        texts = list(pool.map(lambda job: _run_cli(job[2], job[3]), jobs))
    for (title, who, argv, _env), text in zip(jobs, texts):
        print('== %s, as %s:\n$ gnocchi %s' % (title, who,
                                               ' '.join(argv[1:])), file=out)
        print(text.rstrip() + '\n', file=out, flush=True)
    env = aio.stack.env_for(aio.customer)
    print('== how customer %s runs the same queries (their openrc, then '
          'the gnocchi CLI or Horizon):' % aio.customer.username, file=out)
    print('# a disk is named by the id Gnocchi gave it (the "id" column of '
          'the list), not by Ceilometer\'s <instance>-<dev>, which Gnocchi '
          'resolves only for Ceilometer\'s own user', file=out)
    for key in OPENRC:
        value = '<their password>' if key == 'OS_PASSWORD' else env[key]
        print('export %s=%s' % (key, value), file=out)
    for _title, args in customer_queries(aio):
        print('gnocchi %s' % ' '.join(args), file=out)
    print(file=out, flush=True)
