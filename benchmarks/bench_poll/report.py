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
"""The table and the chart of a run."""

import sys

from benchmarks.bench_poll import analyse


def log(msg):
    print('[bench] %s' % msg, file=sys.stderr, flush=True)


def table(result, analysis):
    lines = []
    env = result['environment']
    lines.append('Machine: %s, %d cores, %s; libvirt %s, QEMU %s (TCG), '
                 'Ceilometer %s, Python %s; state dir on %s; %d cycles '
                 '(median) after a warm-up.' % (
                     env['cpu'], env['cores'], env['os'], env['libvirt'],
                     env['qemu'], env['ceilometer'], env['python'],
                     result['args']['state_dir_fs'],
                     result['args']['cycles']))
    head = ('%-4s %-5s %-10s %9s %8s %8s %8s %8s %6s %8s %6s'
            % ('N', 'disks', 'side', 'wall ms', 'agentCPU', 'lvdCPU',
               'qemuCPU', '1Hz %', 'RPCs', 'samples', 'us/smp'))
    lines.append(head)
    lines.append('-' * len(head))
    for p in result['points']:
        for side in analyse.SIDES:
            o = p['sides'][side]
            per = ('%6.0f' % (1e3 * o['wall_ms'] / o['samples'])
                   if side.startswith(('ours', 'upstream')) and o['samples']
                   else '     -')
            lines.append('%-4d %-5d %-10s %9.1f %8.1f %8.1f %8.1f %8.1f %6d '
                         '%8s %6s' % (
                             p['vms'], p['disks_per_vm'], side, o['wall_ms'],
                             o['agent_cpu_ms'], o['libvirtd_cpu_ms'],
                             o['qemu_cpu_ms'], 100 * o['cpu_share_1hz'],
                             o['rpcs'], o['samples']
                             if side.startswith(('ours', 'upstream'))
                             else '-', per))
        d = p['discovery']
        lines.append('%-4d %-5d %-10s %9.1f %8.1f %8.1f %8.1f %8s %6d %8s '
                     '%6s' % (p['vms'], p['disks_per_vm'], 'discovery',
                              d['wall_ms'], d['agent_cpu_ms'],
                              d['libvirtd_cpu_ms'], d['qemu_cpu_ms'], '',
                              d['rpcs'], '-', '-'))
    lines.append('')
    lines.append('Ratios (wall time):')
    lines.append('%-4s %-5s %14s %14s %12s %12s %12s %12s' % (
        'N', 'disks', 'upstrm/ours-q', 'upstrm/ours-b', 'ours-q/raw',
        'ours-b/raw', 'smp ratio q', 'smp ratio b'))
    for r in analysis['per_n']:
        lines.append('%-4d %-5d %14.1f %14.1f %12.2f %12.2f %12.3f %12.3f' % (
            r['vms'], r['disks_per_vm'], r['wall_upstream_over_ours_qmp'],
            r['wall_upstream_over_ours_bulk'], r['ours_qmp_over_raw_qmp'],
            r['ours_bulk_over_raw_bulk'], r['per_sample_cost_ratio_qmp'],
            r['per_sample_cost_ratio_bulk']))
    if analysis['growth_per_vm_ms']:
        lines.append('')
        lines.append('Growth per VM (2 disks; least squares over N):')
        for side, g in analysis['growth_per_vm_ms'].items():
            lines.append('  %-10s %7.2f ms/VM  (%+.1f ms fixed, R2 %.3f; '
                         'ms/VM of the last N step / first: %s)' % (
                             side, g['slope_ms_per_vm'], g['intercept_ms'],
                             g['r2'], '%.2f' % g['superlinearity']
                             if g['superlinearity'] is not None else '-'))
    if analysis['growth_per_disk_ms']:
        lines.append('Growth per added disk (4 vs 2 disks per VM):')
        for side, g in analysis['growth_per_disk_ms'].items():
            lines.append('  %-10s %7.2f ms/disk  %+.1f RPCs/disk  '
                         '(%.2f ms per 2-disk VM)' % (
                             side, g['ms_per_added_disk'],
                             g['rpcs_per_added_disk'],
                             g['ms_per_vm_2disks']))
    g = analysis['goals']
    if g:
        lines.append('')
        lines.append('Goals at N=%d:' % g['n'])
        for key, label in (
                ('vs_upstream', 'upstream wall / ours (QMP)'),
                ('vs_upstream_bulk', 'upstream wall / ours (bulk)'),
                ('vs_raw_qmp', 'ours (QMP) / raw QMP round trips'),
                ('vs_raw_bulk', 'ours (bulk) / raw getAllDomainStats'),
                ('linear', 'ours (QMP) superlinearity'),
                ('cpu_1hz', 'ours (QMP) CPU share of a core at 1 Hz'),
                ('cpu_1hz_bulk', 'ours (bulk) CPU share of a core at 1 Hz')):
            if key not in g:
                continue
            v = g[key]
            value = v.get('ratio', v.get('share', v.get('superlinearity')))
            lines.append('  %-42s %7.3f  target %-28s %s%s' % (
                label, value, v['target'], 'MET' if v['met'] else 'NOT MET',
                ' (info)' if v.get('info') else ''))
    return '\n'.join(lines)


def chart(result, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot
    except ImportError:
        log('matplotlib is not installed: no chart (pip install matplotlib)')
        return None
    two = analyse.two_disk_points(result['points'])
    xs = [p['vms'] for p in two]
    fig, (ax1, ax2) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    styles = {'ours-qmp': 'o-', 'ours-bulk': 's-', 'upstream': '^-',
              'raw-qmp': 'o:', 'raw-qmp-8': 'x:', 'raw-bulk': 's:'}
    for side in analyse.SIDES:
        ax1.plot(xs, [p['sides'][side]['wall_ms'] for p in two],
                 styles[side], label=side)
        ax2.plot(xs, [p['sides'][side]['total_cpu_ms'] for p in two],
                 styles[side], label=side)
    ax1.plot(xs, [p['discovery']['wall_ms'] for p in two], 'k--',
             label='discovery (not in cycles)')
    ax1.set(title='Wall time of one polling cycle', xlabel='VMs (2 disks)',
            ylabel='ms', yscale='log')
    ax2.set(title='CPU of one cycle (agent + libvirtd + QEMU)',
            xlabel='VMs (2 disks)', ylabel='ms (= 0.1% of a core at 1 Hz)',
            yscale='log')
    for ax in (ax1, ax2):
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
    env = result['environment']
    fig.suptitle('ceilometer-blockacct: all meters vs Ceilometer 27 disk '
                 'pollsters (6 meters); libvirt %s, QEMU %s, %d cores' % (
                     env['libvirt'], env['qemu'], env['cores']), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
