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
"""Where gnocchi-api's time goes for the publisher's batches (cProfile).

Runs Gnocchi's own WSGI application in this process, on the benchmark's
Gnocchi (same configuration, indexer and storage), and posts the batches
Ceilometer's publisher posts for one polling cycle of D disks and M meters
(``POST /v1/batch/resources/metrics/measures?create_metrics=True``, one
measure per metric), laid out as the agents send them:

- ``per-meter``: one request per meter (one pollster per meter: a
  message per pollster, a request per message), D measures each;
- ``per-profile``: the profile's one pollster, a request per
  ``[polling] batch_size`` (50) samples.

cProfile's self time is summed by where the code lives (indexer SQL,
policy checks, schema and timestamps, incoming writes, web framework...).
"""

import base64
import cProfile
import datetime
import json
import pstats
import time

BATCH_SIZE = 50
PATH = '/v1/batch/resources/metrics/measures?create_metrics=True'
# Self time by where the code lives: first match wins.
CATEGORIES = (
    ('indexer (SQL)', ('sqlalchemy', 'psycopg2', 'gnocchi/indexer')),
    ('policy checks', ('oslo_policy',)),
    ('schema + timestamps', ('voluptuous', 'numpy', 'gnocchi/utils',
                             'iso8601', 'dateutil')),
    ('incoming writes', ('gnocchi/incoming', 'posix', 'tempfile')),
    ('JSON', ('json', 'ujson')),
    ('web framework', ('pecan', 'webob', 'paste', 'routes')),
)


def bodies(resource_ids, meter_rows, layout, timestamp):
    """The request bodies of one cycle, as the publisher would post them.

    :param meter_rows: [(name, archive policy, unit)].
    """
    samples = [(rid, name, policy, unit)
               for name, policy, unit in meter_rows
               for rid in resource_ids]
    if layout == 'per-meter':
        groups = [[s for s in samples if s[1] == name]
                  for name, _p, _u in meter_rows]
    else:
        groups = [samples[i:i + BATCH_SIZE]
                  for i in range(0, len(samples), BATCH_SIZE)]
    out = []
    for group in groups:
        body = {}
        for rid, name, policy, unit in group:
            body.setdefault(rid, {})[name] = {
                'archive_policy_name': policy, 'unit': unit,
                'measures': [{'timestamp': timestamp, 'value': 1.0}]}
        out.append(json.dumps(body).encode())
    return out


def category(filename):
    for name, parts in CATEGORIES:
        if any(p in filename for p in parts):
            return name
    return 'other'


def profile(config_file, resource_ids, meter_rows, rounds=20,
            user='admin'):
    """{layout: requests, measures, seconds, ms per measure, categories}."""
    import webob

    from gnocchi.rest import app as app_mod
    from gnocchi import service

    conf = service.prepare_service(args=['--config-file', config_file],
                                   log_to_std=False)
    app = app_mod.load_app(conf, not_implemented_middleware=False)
    auth = 'Basic ' + base64.b64encode(('%s:' % user).encode()).decode()
    start = datetime.datetime.now(datetime.timezone.utc)
    results = {}
    for layout in ('per-meter', 'per-profile'):
        # NOTE: a first round outside the profile: metrics get created.
        for body in bodies(resource_ids, meter_rows, layout,
                           start.isoformat()):
            _post(app, webob, auth, body)
        prof = cProfile.Profile()
        requests = 0
        began = time.process_time()
        for r in range(rounds):
            stamp = (start + datetime.timedelta(seconds=r + 1)).isoformat()
            batch = bodies(resource_ids, meter_rows, layout, stamp)
            prof.enable()
            for body in batch:
                _post(app, webob, auth, body)
            prof.disable()
            requests += len(batch)
        cpu = time.process_time() - began
        measures = rounds * len(resource_ids) * len(meter_rows)
        cats = {}
        for (filename, _line, _func), row in pstats.Stats(
                prof).stats.items():
            cats[category(filename)] = cats.get(category(filename), 0) \
                + row[2]
        results[layout] = {
            'requests': requests, 'measures': measures,
            'cpu_s': round(cpu, 3),
            'ms_per_measure': round(1000 * cpu / measures, 3),
            'ms_per_request': round(1000 * cpu / requests, 2),
            'categories': {k: round(v, 3) for k, v in sorted(
                cats.items(), key=lambda kv: -kv[1])},
        }
    return results


def _post(app, webob, auth, body):
    request = webob.Request.blank(PATH, method='POST', body=body, headers={
        'Content-Type': 'application/json', 'Authorization': auth})
    response = request.get_response(app)
    if response.status_int != 202:
        raise RuntimeError('gnocchi-api answered %s: %s' % (
            response.status, response.text[:300]))


def lines(results):
    """The profile as text lines."""
    out = []
    for layout, r in results.items():
        out.append('%-11s %3d requests, %5d measures: %.2f ms CPU per '
                   'measure, %.1f ms per request' % (
                       layout, r['requests'], r['measures'],
                       r['ms_per_measure'], r['ms_per_request']))
        total = sum(r['categories'].values()) or 1
        out.append('            ' + ', '.join(
            '%s %.0f%%' % (k, 100 * v / total)
            for k, v in r['categories'].items()))
    return out
