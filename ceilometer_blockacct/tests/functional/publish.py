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
"""Publish polled samples with Ceilometer's own gnocchi publisher.

What the notification agent does with a ``telemetry.polling`` message, in
this process: :class:`ceilometer.telemetry.notifications.TelemetryIpc`
turns the sample dicts :meth:`.agent.PollingAgent.poll` returns back into
:class:`ceilometer.sample.Sample` objects, and
:class:`ceilometer.publisher.gnocchi.GnocchiPublisher` (URL
``gnocchi://?resources_definition_file=...&enable_filter_project=false``)
posts them, with ``[service_credentials] auth_type = gnocchi-basic`` (no
Keystone).  Usage::

    stack = gnocchi_stack.get_shared_stack()
    publisher = self.useFixture(GnocchiPublisher(
        stack.ceilometer_config_file))
    publisher.publish(agent.poll())     # raises PublishError on a drop

The publisher logs and drops a batch Gnocchi refuses; :meth:`publish`
turns those log lines into :class:`PublishError`, so a test cannot pass on
an empty Gnocchi.
"""

import logging
import os
from unittest import mock
from urllib import parse

from ceilometer import publisher as ceilo_publisher
from ceilometer.publisher import gnocchi as gnocchi_publisher
from ceilometer import service
from ceilometer.telemetry import notifications
import fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
RESOURCES_FILE = os.path.join(REPO, 'etc', 'ceilometer',
                              'gnocchi_resources.yaml')
PUBLISHER_LOGGER = gnocchi_publisher.__name__


class PublishError(Exception):
    """Ceilometer's publisher logged an error: it dropped measures."""


def publisher_url(resources_file=RESOURCES_FILE, **options):
    """``gnocchi://`` URL as a pipeline's publishers list spells it.

    ``enable_filter_project=false`` is always set: without it the
    publisher asks Keystone for the ``service`` project and, with no
    Keystone, publishes nothing.
    """
    query = {'resources_definition_file': resources_file,
             'enable_filter_project': 'false'}
    query.update(options)
    return 'gnocchi://?' + parse.urlencode(query)


def to_samples(sample_dicts):
    """Sample objects, built as the notification agent builds them."""
    endpoint = notifications.TelemetryIpc(None, None)
    return list(endpoint.build_sample({'payload': {
        'samples': list(sample_dicts)}}))


class _Recorder(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


class GnocchiPublisher(fixtures.Fixture):
    """Ceilometer's GnocchiPublisher, configured as a deployment would.

    :param config_file: a ceilometer.conf with ``[service_credentials]``
        (e.g. :attr:`GnocchiStack.ceilometer_config_file`).
    :param resources_file: the resources definition (default: ours).
    :param url_options: more ``gnocchi://`` query options.

    After setUp: :attr:`conf`, :attr:`publisher` (the upstream object),
    :attr:`url`, and :attr:`warnings` (the publisher's warning lines so
    far, e.g. "metric X is not handled by Gnocchi").
    """

    def __init__(self, config_file, resources_file=RESOURCES_FILE,
                 **url_options):
        super().__init__()
        self.config_file = config_file
        self.url = publisher_url(resources_file, **url_options)
        self.warnings = []

    def _setUp(self):
        # NOTE: prepare_service() would reset the root logger, and with it
        # the test's log capture (as in agent.PollingAgent).
        with mock.patch('oslo_log.log.setup'):
            self.conf = service.prepare_service([], [self.config_file])
        # NOTE: loaded by URL through stevedore, as a pipeline sink does.
        self.publisher = ceilo_publisher.get_publisher(
            self.conf, self.url, 'ceilometer.sample.publisher')
        if not isinstance(self.publisher,
                          gnocchi_publisher.GnocchiPublisher):
            raise TypeError('gnocchi:// loaded %r' % self.publisher)

    def publish(self, sample_dicts):
        """Publish one batch; returns the Sample objects sent.

        :raises PublishError: if the publisher logged an error (it drops
            the batch, or a resource update, and never retries).
        """
        samples = to_samples(sample_dicts)
        recorder = _Recorder()
        logger = logging.getLogger(PUBLISHER_LOGGER)
        logger.addHandler(recorder)
        # NOTE: a test's log fixture may set the level above WARNING.
        old_level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            self.publisher.publish_samples(list(samples))
        finally:
            logger.setLevel(old_level)
            logger.removeHandler(recorder)
        errors = [r.getMessage() for r in recorder.records
                  if r.levelno >= logging.ERROR]
        self.warnings.extend(r.getMessage() for r in recorder.records
                             if r.levelno == logging.WARNING)
        if errors:
            raise PublishError('; '.join(errors))
        return samples
