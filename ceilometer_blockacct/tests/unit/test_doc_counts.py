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
"""What the docs say against what the code and the test fixtures do.

Every count of meters and metrics, the storage table and the archive
policy table of doc/gnocchi.rst come from the meter table; every Gnocchi
latency query is THE one (meters.LATENCY_QUERY); the files of
doc/install.rst are those the functional fixtures write and run.
"""

import configparser
import glob
import os
import re
import textwrap
import types

import testtools
import yaml

from ceilometer_blockacct.gnocchi import policies
from ceilometer_blockacct import meters

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))
# The all-in-one's guest has 3 disks (fixtures/allinone.py).
ALLINONE_DISKS = 3
# Counts of a past measurement: they say what was measured then.
HISTORICAL = {
    ('doc/all-in-one.rst', 'the meter table had 28 meters'),
    ('doc/all-in-one.rst', 'was 84 metrics'),
    ('doc/all-in-one.rst', '(77 metrics'),
    ('doc/all-in-one.rst', 'the 77 metrics'),
}


def _docs():
    """{path relative to the repository: text} of README and doc/*.rst."""
    paths = ['README.rst'] + sorted(
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(ROOT, 'doc', '*.rst')))
    found = {}
    for rel in paths:
        with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
            found[rel] = f.read()
    return found


def _read(rel):
    with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
        return f.read()


def _flat(text):
    """Text with line breaks and indents as single spaces."""
    return re.sub(r'\s+', ' ', text)


def _block_after(text, marker):
    """The literal block (``::``) that follows ``marker`` in ``text``."""
    start = text.index(marker)
    lines = text[start:].splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith('::'):
            break
    else:
        raise AssertionError('no literal block after %r' % marker)
    block = []
    for line in lines[i + 1:]:
        if line.strip() and not line.startswith((' ', '\t')):
            break
        block.append(line)
    return textwrap.dedent('\n'.join(block)).strip('\n') + '\n'


def _ini(text):
    """{section: {key: value}} of an oslo.config file's text."""
    # NOTE: oslo.config's [DEFAULT] is a section like the others.
    parser = configparser.RawConfigParser(default_section='\0')
    parser.read_string(text)
    return {s: dict(parser.items(s)) for s in parser.sections()}


def _keys(sections):
    return {(s, k) for s, items in sections.items() for k in items}


def _queries(text):
    """Every Gnocchi operation starting with ``(/`` in ``text``."""
    found = []
    for match in re.finditer(r'\(/ ', text):
        depth, end = 0, match.start()
        for end in range(match.start(), len(text)):
            depth += {'(': 1, ')': -1}.get(text[end], 0)
            if depth == 0:
                break
        found.append(_flat(text[match.start():end + 1]))
    return found


class TestCounts(testtools.TestCase):

    def test_every_count_of_meters_is_the_table(self):
        allowed = {len(meters.METERS)} | {
            len(meters.profile(p)) for p in meters.PROFILES}
        seen = 0
        for rel, text in _docs().items():
            flat = _flat(text)
            for match in re.finditer(r'\b(\d+) meters\b', flat):
                seen += 1
                context = flat[max(0, match.start() - 40):match.end()]
                if any(rel == r and phrase in context
                       for r, phrase in HISTORICAL):
                    continue
                self.assertIn(int(match.group(1)), allowed,
                              '%s: %r' % (rel, context))
        self.assertNotEqual(0, seen)

    def test_every_count_of_metrics_is_claimed(self):
        n = len(meters.METERS)
        claims = {
            ('doc/gnocchi.rst', r'Per disk \((\d+) metrics\)'): n,
            ('doc/all-in-one.rst',
             r'the (\d+) meters of today make (\d+)\)'): (n,
                                                          n * ALLINONE_DISKS),
        }
        docs = {rel: _flat(text) for rel, text in _docs().items()}
        claimed = set()
        for (rel, pattern), want in claims.items():
            match = re.search(pattern, docs[rel])
            self.assertIsNotNone(match, '%s: no %r' % (rel, pattern))
            got = tuple(int(g) for g in match.groups())
            self.assertEqual(want if isinstance(want, tuple) else (want,),
                             got, '%s: %r' % (rel, pattern))
            claimed.add((rel, match.start(), match.end()))
        for rel, flat in docs.items():
            for match in re.finditer(r'\b(\d+) metrics\b', flat):
                context = flat[max(0, match.start() - 40):match.end()]
                if any(rel == r and phrase in context
                       for r, phrase in HISTORICAL):
                    continue
                self.assertTrue(
                    any(r == rel and s <= match.start() < e
                        for r, s, e in claimed),
                    '%s: an unchecked count: %r' % (rel, context))

    def test_storage_cost_table(self):
        flat = _flat(_read('doc/gnocchi.rst'))
        full = sum(t // g for g, t in policies.DEFINITION)
        at_60 = sum(t // max(g, 60) for g, t in policies.DEFINITION)
        spans = ' + '.join('%d (%s)' % (t // g, label) for (g, t), label in
                           zip(policies.DEFINITION,
                               ('1 s for 1 h', '1 min for 7 days',
                                '1 h for 400 days')))
        self.assertIn('%s = %d.' % (spans, full), flat)
        totals = [0, 0]
        for policy in (meters.POLICY_RATE, meters.POLICY_GAUGE,
                       meters.POLICY_DELTA):
            count = sum(1 for m in meters.METERS
                        if m.archive_policy == policy)
            methods = len(policies.AGGREGATION_METHODS[policy])
            row = (count * methods * full, count * methods * at_60)
            totals = [totals[0] + row[0], totals[1] + row[1]]
            self.assertIn('``%s`` %d %d %s %s' % (
                policy, count, methods, '{:,}'.format(row[0]),
                '{:,}'.format(row[1])), flat)
        self.assertIn('total **{:,}** **{:,}**'.format(*totals), flat)

    def test_policy_table_lists_every_meter_once(self):
        text = _read('doc/gnocchi.rst')
        start = text.index('policy              aggregation methods')
        table = text[start:text.index('\n\n', start)]
        listed = {}
        policy = None
        for line in table.splitlines()[2:]:
            if line.startswith('``blockacct-'):
                policy = line.split('``')[1]
                methods = line.split('``')[3].split()
                self.assertEqual(
                    list(policies.AGGREGATION_METHODS[policy]), methods)
            for pattern in re.findall(r'``([a-z.{},]+)``', line[45:]):
                for name in _expand(pattern):
                    self.assertNotIn(name, listed)
                    listed['disk.device.' + name] = policy
        self.assertEqual({m.name: m.archive_policy for m in meters.METERS},
                         listed)


class TestCloudKittyGuide(testtools.TestCase):

    def test_one_hashmap_service_per_billable_meter(self):
        text = _read('doc/cloudkitty.rst')
        loop = text[text.index('for m in '):text.index('     do\n')]
        names = loop.replace('\\', ' ').split()[3:]
        self.assertEqual(
            sorted(m.name for m in meters.METERS if m.billable),
            sorted('disk.device.%s.delta' % n for n in names))


def _expand(pattern):
    """``{a,b}.x`` -> ['a.x', 'b.x'] (one brace group or none)."""
    match = re.match(r'(.*)\{([^}]*)\}(.*)', pattern)
    if not match:
        return [pattern]
    head, alternatives, tail = match.groups()
    return [head + a + tail for a in alternatives.split(',')]


class TestLatencyQuery(testtools.TestCase):
    """One latency query, in ms, everywhere."""

    def test_every_doc_query_is_the_latency_query(self):
        allowed = {meters.latency_query(op) for op in meters.OPS}
        seen = 0
        for rel, text in _docs().items():
            for query in _queries(text):
                seen += 1
                self.assertIn(query, allowed, rel)
        # README, gnocchi, all-in-one, install: at least one each.
        self.assertGreaterEqual(seen, 4)

    def test_the_all_in_one_and_the_roundtrip_test_use_it(self):
        report = _read('tools/allinone/report.py')
        self.assertIn('meters.latency_query(op)', report)
        # The plot's 1 min latency: the same ratio, in ms.
        self.assertIn("time_ns[ts] / (1e6 * done[ts])", report)
        roundtrip = _read('ceilometer_blockacct/tests/functional/'
                          'test_gnocchi_roundtrip.py')
        self.assertIn('LATENCY = meters.LATENCY_QUERY', roundtrip)

    def test_query_is_a_ratio_of_sums_in_ms(self):
        self.assertEqual(
            '(/ (metric disk.device.write.total.time.delta sum) (* 1000000 '
            '(metric disk.device.write.requests.delta sum)))',
            meters.latency_query('write'))
        self.assertRaises(KeyError, meters.latency_query, 'trim')


class TestInstallGuide(testtools.TestCase):
    """doc/install.rst's files against what the fixtures write and run."""

    def setUp(self):
        super().setUp()
        from ceilometer_blockacct.tests.functional.fixtures import \
            ceilometer_agents
        from ceilometer_blockacct.tests.functional.fixtures import \
            cloudkitty_stack
        from ceilometer_blockacct.tests.functional.fixtures import \
            gnocchi_stack
        from ceilometer_blockacct.tests.functional.fixtures import keystone
        self.agents = ceilometer_agents
        self.cloudkitty = cloudkitty_stack
        self.gnocchi = gnocchi_stack
        self.keystone = keystone
        self.text = _read('doc/install.rst')
        self.account = keystone.Account(
            username='ceilometer', password='CEILOMETER_PASS',
            project_name='service', user_id='u', project_id='p')

    def _stack(self, auth_mode):
        return types.SimpleNamespace(
            auth_mode=auth_mode, url='http://gnocchi:8041',
            ceilometer=self.account, region='RegionOne',
            keystone=types.SimpleNamespace(
                auth_url='http://keystone:5000/v3'))

    def test_ceilometer_conf_with_keystone(self):
        doc = _ini(_block_after(self.text, '\nceilometer.conf\n---'))
        written = _ini(self.agents.CONF_TEMPLATE % {
            'transport_url': 'rabbit://', 'libvirt_uri': 'qemu:///system',
            'host': 'h', 'pipeline': '/p', 'polling': '/q', 'batch': 1,
            'service_credentials': self.gnocchi.GnocchiStack
            .service_credentials(self._stack('keystone'))})
        written['blockacct'] = {'state_dir': '/s'}
        # The fixtures' own tuning, not a deployment's concern.
        tuning = {('DEFAULT', 'host'), ('DEFAULT', 'debug'),
                  ('notification', 'workers'),
                  ('notification', 'batch_size'),
                  ('notification', 'batch_timeout')}
        self.assertEqual(_keys(written) - tuning, _keys(doc))
        self.assertEqual(written['service_credentials'],
                         doc['service_credentials'])
        self.assertEqual('libvirt_metadata',
                         doc['compute']['instance_discovery_method'])
        self.assertEqual('meter', doc['notification']['pipelines'])

    def test_ceilometer_conf_without_keystone(self):
        doc = _ini(_block_after(self.text, "``ceilometer.conf``: "
                                "``[service_credentials]`` becomes"))
        written = _ini(self.gnocchi.GnocchiStack.service_credentials(
            self._stack('basic')))
        self.assertEqual(written, doc)

    def test_pipeline_and_publisher_urls(self):
        resources = '/etc/ceilometer/gnocchi_resources.yaml'
        url = self.agents.PUBLISHER_TEMPLATE % {'resources': resources,
                                                'timeout': 30}
        doc = yaml.safe_load(_block_after(
            self.text, 'complete pipeline, every sample to Gnocchi'))
        self.assertEqual({
            'sources': [{'name': 'blockacct_source', 'meters': ['*'],
                         'sinks': ['blockacct_sink']}],
            'sinks': [{'name': 'blockacct_sink', 'publishers': [url]}],
        }, doc)
        lab = yaml.safe_load(_block_after(self.text, 'publisher URL gains'))
        self.assertEqual({'publishers': [url + self.agents.NO_KEYSTONE]},
                         lab)

    def _cloudkitty(self, keystone):
        user = self.keystone.Account(
            username='cloudkitty', password='CLOUDKITTY_PASS',
            project_name='service', user_id='u', project_id='p')
        stack = types.SimpleNamespace(
            keystone=types.SimpleNamespace(
                auth_url='http://keystone:5000/v3') if keystone else None,
            user=user, gnocchi=types.SimpleNamespace(region='RegionOne'))
        return _ini(self.cloudkitty.CloudKittyStack._auth_config(stack, {
            'user': 'admin', 'gnocchi': 'http://gnocchi:8041',
            'types': 'instance_disk'}))

    def test_cloudkitty_with_keystone(self):
        doc = _ini(_block_after(self.text, 'CloudKitty on Keystone'))
        written = self._cloudkitty(keystone=True)
        # The API's own token validation is CloudKitty's install guide's.
        del written['keystone_authtoken']
        collect = doc.pop('collect')
        self.assertEqual(written, doc)
        self.assertEqual({'collector': 'gnocchi', 'period': '3600',
                          'wait_periods': '1',
                          'metrics_conf': '/etc/cloudkitty/metrics.yml',
                          'scope_key': 'project_id'}, collect)

    def test_cloudkitty_without_keystone(self):
        doc = _ini(_block_after(self.text, 'the gnocchi\nfetcher finds'))
        self.assertEqual(self._cloudkitty(keystone=False), doc)

    def test_polling_file_is_the_shipped_one(self):
        self.assertIn('.. literalinclude:: ../etc/ceilometer/'
                      'polling-all.yaml', self.text)
        with open(os.path.join(ROOT, 'etc', 'ceilometer',
                               'polling-all.yaml')) as f:
            shipped = yaml.safe_load(f)
        self.assertEqual([meters.profile_pollster(meters.ALL)],
                         shipped['sources'][0]['meters'])

    def test_nova_metadata_is_the_tests_guests(self):
        from ceilometer_blockacct.tests.functional.fixtures import guest
        doc = _block_after(self.text, 'As the tests\' guests carry it')
        nova = guest.NovaMeta(name='web-1', flavor_name='m1.small',
                              user_name='alice', project_name='acme')
        written = guest._nova_xml(nova, 2048, 20)
        self.assertEqual(_flat(written).strip(), _flat(doc).strip())
