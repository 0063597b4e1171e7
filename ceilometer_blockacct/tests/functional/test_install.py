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
"""The installed package is the product: it works with requirements.txt.

Builds this repository's package and installs it into a fresh virtualenv
with requirements.txt only (Ceilometer comes with it; no test requirement,
pinned by tools/constraints.txt), as on a compute node, then imports every
installed module outside ``tests/`` and loads every entry point the package
declares.  A module that needs a test requirement (the old harness needed
``fixtures``) fails here with its import error.

Needs PyPI or a warm pip cache (a cold one takes minutes: libvirt-python
and psycopg2 compile).
"""

import os
import shutil
import subprocess
import sys

import fixtures
import testtools

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PACKAGE = 'ceilometer_blockacct'
DISTRIBUTION = 'ceilometer-blockacct'

# Run in the fresh virtualenv: every module of the installed package outside
# tests/, then every entry point of the distribution; prints what fails.
_CHECK = r'''
import importlib
from importlib import metadata
import os
import sys
import traceback

import %(package)s

root = os.path.dirname(%(package)s.__file__)
names, failed = [], []
for folder, dirs, files in os.walk(root):
    rel = os.path.relpath(folder, os.path.dirname(root))
    dirs[:] = sorted(d for d in dirs if d not in ('tests', '__pycache__'))
    for name in sorted(files):
        if name.endswith('.py'):
            module = rel.replace(os.sep, '.')
            if name != '__init__.py':
                module += '.' + name[:-3]
            names.append(module)
for module in names:
    try:
        importlib.import_module(module)
    except BaseException:
        failed.append('%%s: %%s' %% (module, traceback.format_exc(limit=1)))
points = metadata.distribution('%(distribution)s').entry_points
for point in points:
    try:
        point.load()
    except BaseException:
        failed.append('entry point %%s = %%s: %%s' %% (
            point.name, point.value, traceback.format_exc(limit=1)))
print('MODULES %%d' %% len(names))
print('ENTRY POINTS %%d' %% len(points))
for line in failed:
    print('FAILED ' + line.replace('\n', ' | '))
'''


def _run(argv, timeout, **kwargs):
    try:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise AssertionError('%s did not finish within %ss' % (
            ' '.join(argv[:4]), timeout)) from None
    if result.returncode != 0:
        raise AssertionError('%s failed (%s): %s' % (
            ' '.join(argv[:4]), result.returncode,
            (result.stdout + result.stderr)[-3000:]))
    return result.stdout


class TestInstalledPackage(testtools.TestCase):

    def test_requirements_alone_import_every_module(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        venv = os.path.join(tmp, 'venv')
        _run([sys.executable, '-m', 'venv', venv], 120)
        python = os.path.join(venv, 'bin', 'python')
        source = _copy_sources(os.path.join(tmp, 'source'))
        # NOTE: pip's caches make the requirements cheap after the first
        # run; PBR_VERSION because the copy has no git metadata.
        _run([python, '-m', 'pip', 'install', '--quiet', '--retries', '5',
              '-c', os.path.join(source, 'tools', 'constraints.txt'),
              '-r', os.path.join(source, 'requirements.txt'), source], 1500,
             cwd=tmp, env=dict(os.environ, PBR_VERSION='0.0.1.dev0'))
        out = _run([python, '-c', _CHECK % {
            'package': PACKAGE, 'distribution': DISTRIBUTION}], 300, cwd=tmp)
        failed = [line for line in out.splitlines()
                  if line.startswith('FAILED ')]
        self.assertEqual([], failed)
        counts = dict(line.rsplit(' ', 1) for line in out.splitlines()
                      if line.startswith(('MODULES ', 'ENTRY POINTS ')))
        # What this repository ships, counted from the work tree.
        self.assertEqual(str(len(_product_modules())), counts['MODULES'])
        self.assertGreater(int(counts['ENTRY POINTS']), 30)
        # Nothing of the test harness is installed outside tests/.
        site = _run([python, '-c', 'import %s, os; print(os.path.dirname('
                     '%s.__file__))' % (PACKAGE, PACKAGE)], 60,
                    cwd=tmp).strip()
        self.assertTrue(site.startswith(venv + os.sep), site)
        self.assertFalse(os.path.exists(os.path.join(site, 'harness')))


def _copy_sources(dest):
    """Copy what git would ship (tracked and new, not ignored) to dest.

    NOTE: not the work tree itself: an in-tree build reuses build/ and
    would ship stale modules left there by an earlier build.
    """
    listed = _run(['git', 'ls-files', '-z', '--cached', '--others',
                   '--exclude-standard'], 60, cwd=REPO)
    for rel in filter(None, listed.split('\0')):
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)),
                        exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
    return dest


def _product_modules():
    """Modules of the work tree's package outside tests/."""
    found = []
    root = os.path.join(REPO, PACKAGE)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ('tests', '__pycache__')]
        found.extend(os.path.join(folder, f) for f in files
                     if f.endswith('.py'))
    return found
