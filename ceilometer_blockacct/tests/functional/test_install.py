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

:class:`TestReleaseArtifact` makes a release as doc/install.rst says
(``python -m build`` on a tagged commit), copies the sdist out of the
tree and installs it into a fresh virtualenv where git cannot run, with
tools/constraints.txt, as an operator would.

Needs PyPI or a warm pip cache (a cold one takes minutes: libvirt-python
and psycopg2 compile).
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

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
    # NOTE: dashboard/ is the Horizon panel: it needs the [dashboard]
    # extra (Horizon, Django), which a compute node does not install.
    dirs[:] = sorted(d for d in dirs
                     if d not in ('tests', '__pycache__', 'dashboard'))
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


def _run(argv, timeout, expect=0, **kwargs):
    try:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise AssertionError('%s did not finish within %ss' % (
            ' '.join(argv[:4]), timeout)) from None
    if result.returncode != expect:
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


# The version the test tags its release commit with.
RELEASE = '1.2.3'
# What the package installs under <prefix>/share (setup.cfg [files]).
DATA_DIRS = ('etc/ceilometer', 'etc/cloudkitty')
DATA_PREFIX = os.path.join('share', DISTRIBUTION)
# Stands in for git on PATH: every git command fails, as on a machine
# without git (pbr must find the version and metadata in the sdist).
_NO_GIT = """#!/bin/sh
echo "git: not installed" >&2
exit 127
"""


class TestReleaseArtifact(testtools.TestCase):
    """A release (sdist + wheel) installs on a machine without git."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def _release(self):
        """Build the sdist and wheel of a tagged commit of the sources.

        :returns: (source tree, sdist path, wheel path, commit id)
        """
        source = _copy_sources(os.path.join(self.tmp, 'source'))
        git = ['git', '-c', 'user.name=release', '-c',
               'user.email=release@example.invalid', '-c',
               'init.defaultBranch=main']
        _run(git + ['init', '-q'], 60, cwd=source)
        _run(git + ['add', '-A'], 60, cwd=source)
        _run(git + ['commit', '-q', '-m', 'release'], 60, cwd=source)
        _run(git + ['tag', '-a', '-m', RELEASE, RELEASE], 60, cwd=source)
        commit = _run(['git', 'rev-parse', '--short', 'HEAD'], 60,
                      cwd=source).strip()
        dist = os.path.join(self.tmp, 'dist')
        env = {k: v for k, v in os.environ.items() if k != 'PBR_VERSION'}
        _run([sys.executable, '-m', 'build', '--outdir', dist, source], 600,
             cwd=self.tmp, env=env)
        built = sorted(os.listdir(dist))
        prefix = '%s-%s' % (PACKAGE, RELEASE)
        self.assertEqual([prefix + '-py3-none-any.whl', prefix + '.tar.gz'],
                         built)
        return (source, os.path.join(dist, built[1]),
                os.path.join(dist, built[0]), commit)

    def test_sdist_installs_without_git(self):
        source, sdist, wheel, commit = self._release()
        prefix = '%s-%s' % (PACKAGE, RELEASE)
        # pbr's metadata is inside: the version and the commit it came from.
        with tarfile.open(sdist) as tar:
            names = set(tar.getnames())
            pkg_info = tar.extractfile(prefix + '/PKG-INFO').read().decode()
            pbr = json.load(tar.extractfile(
                '%s/%s.egg-info/pbr.json' % (prefix, PACKAGE)))
        self.assertIn('\nVersion: %s\n' % RELEASE, pkg_info)
        self.assertEqual({'git_version': commit, 'is_release': True}, pbr)
        self.assertIn(prefix + '/tools/constraints.txt', names)
        expected = _data_files(source)
        with zipfile.ZipFile(wheel) as whl:
            in_wheel = set(whl.namelist())
        self.assertEqual(set(), {
            '%s.data/data/%s/%s' % (prefix, DATA_PREFIX, rel)
            for rel in expected} - in_wheel)
        self.assertIn('%s.dist-info/pbr.json' % prefix, in_wheel)

        # The sdist alone, out of the tree, into a fresh virtualenv.
        release = os.path.join(self.tmp, 'release')
        os.mkdir(release)
        shutil.copy2(sdist, release)
        shutil.rmtree(source)
        venv = os.path.join(self.tmp, 'venv')
        _run([sys.executable, '-m', 'venv', venv], 120)
        shim = os.path.join(self.tmp, 'no-git')
        os.mkdir(shim)
        with open(os.path.join(shim, 'git'), 'w') as f:
            f.write(_NO_GIT)
        os.chmod(os.path.join(shim, 'git'), 0o755)
        env = {k: v for k, v in os.environ.items() if k != 'PBR_VERSION'}
        env['PATH'] = os.pathsep.join([shim, os.path.join(venv, 'bin'),
                                       env.get('PATH', os.defpath)])
        _run(['git', '--version'], 10, env=env, cwd=release,
             expect=127)
        # NOTE: doc/install.rst's commands (the constraints from the
        # sdist itself), with pip's caches; --no-compile saves a third of
        # the time (an operator's pip compiles: no difference to check).
        constraints = '%s/tools/constraints.txt' % prefix
        _run(['tar', 'xzf', os.path.basename(sdist), constraints], 60,
             cwd=release, env=env)
        _run([os.path.join(venv, 'bin', 'pip'), 'install', '--quiet',
              '--no-compile', '--retries', '5', '-c', constraints,
              os.path.basename(sdist)], 1500, cwd=release, env=env)
        command = os.path.join(venv, 'bin', 'ceilometer-blockacct')
        out = _run([command, '--help'], 120, cwd=release, env=env)
        listed = {line.split()[0] for line in
                  out.split('\nCommands:\n', 1)[1].splitlines()
                  if line.strip()}
        self.assertEqual(set(), _subcommands(REPO) - listed)
        self.assertEqual('ceilometer-blockacct %s' % RELEASE, _run(
            [command, '--version'], 120, cwd=release, env=env).strip())
        installed = os.path.join(venv, DATA_PREFIX)
        for rel in sorted(expected):
            with open(os.path.join(installed, rel), 'rb') as f:
                self.assertEqual(expected[rel], f.read(), rel)
        self.assertEqual(
            set(expected), {os.path.relpath(os.path.join(folder, name),
                                            installed)
                            for folder, _dirs, files in os.walk(installed)
                            for name in files})


def _data_files(source):
    """{path under share/ceilometer-blockacct: bytes} of a source tree."""
    found = {}
    for folder in DATA_DIRS:
        for name in sorted(os.listdir(os.path.join(source, folder))):
            path = os.path.join(source, folder, name)
            if os.path.isfile(path):
                with open(path, 'rb') as f:
                    found[os.path.join(folder, name)] = f.read()
    return found


def _subcommands(repo):
    """The ceilometer-blockacct subcommands setup.cfg declares."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(os.path.join(repo, 'setup.cfg'))
    return {line.split('=')[0].strip() for line in parser.get(
        'entry_points', 'ceilometer_blockacct.cli').splitlines()
        if line.strip()}


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
    """Modules of the work tree's package outside tests/ and dashboard/."""
    found = []
    root = os.path.join(REPO, PACKAGE)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs
                   if d not in ('tests', '__pycache__', 'dashboard')]
        found.extend(os.path.join(folder, f) for f in files
                     if f.endswith('.py'))
    return found
