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
"""The chain benchmark's table and plot."""

import sys

from benchmarks.bench_chain import analyse
from benchmarks.bench_chain import apiprofile

SHORT = {'polling': 'poll', 'notification': 'notif', 'rabbitmq': 'rabbit',
         'gnocchi-api': 'api', 'metricd': 'metricd', 'postgresql': 'pg'}


def log(text):
    print('bench_chain: %s' % text, file=sys.stderr, flush=True)


def _n(value, fmt='%.2f'):
    return '-' if value is None else fmt % value


def table(result):
    """The text table: one row per side and interval, then the ratios."""
    rows = analyse.rows(result['points'])
    head = ('side          int  disks-ok  failed syn  ' + ' '.join(
        '%7s' % SHORT[c] for c in analyse.COMPONENTS)
        + '   total  bottleneck   smp/disk/s  B/disk/day  cpu-bound')
    lines = ['CPU seconds per 1000 samples per component, at the largest '
             'N kept up with', head]
    for r in rows:
        p = r['point'] or {}
        per = p.get('cpu_per_1000') or {}
        storage = p.get('storage') or {}
        lines.append(
            '%-13s %3d  %8s  %6s %-3s  %s  %6s  %-12s %10s  %10s  %9s' % (
                r['side'], r['interval'], _n(r['max_disks_ok'], '%d'),
                _n(r['first_disks_failed'], '%d'),
                'yes' if r['synthetic'] else 'no',
                ' '.join('%7s' % _n(per.get(c)) for c in analyse.COMPONENTS),
                _n(p.get('cpu_per_1000_total')), p.get('bottleneck') or '-',
                _n(p.get('samples_per_disk_s'), '%.3f'),
                _n(storage.get('bytes_per_disk_day'), '%d'),
                _n(p.get('projected_disks'), '%.0f')))
    compared = [
        ("Against upstream's 6 disk meters (whole-chain CPU), same interval "
         'and N:', analyse.ratios(result['points'])),
        ('One pollster per profile (as shipped) against one per meter, same '
         'meters, interval and N:', analyse.before_after(result['points'])),
    ]
    for title, found in compared:
        if not found:
            continue
        lines += ['', title, 'side          int  disks  per sample  '
                  'per disk  gnocchi-api per sample']
        for (side, interval), v in sorted(found.items()):
            lines.append('%-13s %3d  %5d  %9.2fx  %7.2fx  %21s' % (
                side, interval, v['disks'], v['per_sample'], v['per_disk'],
                _n(v['api'], '%.2fx')))
    if result.get('api_profile'):
        lines += ['', "gnocchi-api's CPU for one cycle's batches (cProfile, "
                  'in process; self time by where the code lives):']
        lines += apiprofile.lines(result['api_profile'])
    lines += ['', 'Every point measured:',
              'side          int   VMs  real  syn  meters  samples  window  '
              'CPU s/1000  keeps up  drain s  batch POSTs (ms each)  '
              'other requests  errors(poll,notif)']
    for p in result['points']:
        posts, others = _requests(p.get('api_requests') or {})
        lines.append('%-13s %3d  %4d  %4d  %3d  %6d  %7d  %6.0f  %10s  '
                     '%8s  %7s  %21s  %14s  %s' % (
                         p['side'], p['interval'], p['vms'], p['real_vms'],
                         p['synthetic_vms'], p['meters'], p['samples'],
                         p['window'], _n(p['cpu_per_1000_total']),
                         p['keeps_up'], _n(p['drain_s'], '%.0f'),
                         '%d (%.1f)' % (posts[0], posts[1] / posts[0])
                         if posts[0] else '0', others,
                         '%d,%d' % (p['errors']['polling'],
                                    p['errors']['notification'])))
    for failed in result.get('failures', ()):
        lines.append('%(side)-13s %(interval)3d  %(vms)4d  FAILED: %(error)s'
                     % failed)
    return '\n'.join(lines)


def _requests(kinds):
    """(batch POSTs [count, ms], count of every other request)."""
    posts, others = [0, 0], 0
    for kind, (count, ms) in kinds.items():
        if kind.startswith('POST /v1/batch/'):
            posts[0] += count
            posts[1] += ms
        else:
            others += count
    return posts, others


def chart(result, path):
    """Stacked CPU per 1000 samples and disks kept up (None: no plot)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot
    except ImportError:
        log('matplotlib is not installed: no plot')
        return None
    rows = [r for r in analyse.rows(result['points']) if r['point']]
    labels = ['%s\n%d s' % (r['side'], r['interval']) for r in rows]
    fig, (top, bottom) = pyplot.subplots(2, 1, figsize=(11, 8))
    base = [0.0] * len(rows)
    for comp in analyse.COMPONENTS:
        values = [r['point']['cpu_per_1000'].get(comp) or 0.0 for r in rows]
        top.bar(labels, values, bottom=base, label=comp)
        base = [a + b for a, b in zip(base, values)]
    top.set_ylabel('CPU s per 1000 samples')
    top.set_title('Whole chain cost per sample (largest N measured)')
    top.legend(fontsize=8, ncol=3)
    top.tick_params(axis='x', labelsize=7)
    bottom.bar(labels, [r['max_disks_ok'] or 0 for r in rows],
               color=['tab:gray' if r['side'] == 'upstream' else 'tab:blue'
                      for r in rows])
    bottom.set_ylabel('disks, backlog not growing')
    bottom.set_title('Largest N measured that Gnocchi kept up with '
                     '(a step series; shared 2-core box)')
    bottom.tick_params(axis='x', labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)
    return path
