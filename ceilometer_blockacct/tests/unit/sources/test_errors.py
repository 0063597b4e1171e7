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
"""Typed errors: decided by libvirt error codes, logged once per episode."""

import errno
import logging

import fixtures
import libvirt
import testtools

from ceilometer_blockacct.sources import backoff
from ceilometer_blockacct.sources import errors
from ceilometer_blockacct.tests.unit.sources import fakes

E = fakes.lv_error


class TestClassify(testtools.TestCase):

    def kind(self, exc, scope=errors.DOMAIN):
        return type(errors.classify(exc, 'u1', scope)).__name__

    def test_by_code_and_domain(self):
        cases = [
            (E(libvirt.VIR_ERR_NO_DOMAIN), 'DomainGone'),
            (E(libvirt.VIR_ERR_OPERATION_INVALID), 'DomainGone'),
            (E(libvirt.VIR_ERR_OPERATION_DENIED), 'ConnectionRefused'),
            (E(libvirt.VIR_ERR_ACCESS_DENIED), 'QMPRefused'),
            (E(libvirt.VIR_ERR_AUTH_FAILED), 'ConnectionRefused'),
            (E(libvirt.VIR_ERR_AUTH_UNAVAILABLE), 'ConnectionRefused'),
            (E(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC,
               int1=errno.EACCES), 'ConnectionRefused'),
            (E(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC,
               int1=errno.ECONNREFUSED), 'ConnectionLost'),
            (E(libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_REMOTE),
             'ConnectionLost'),
            # The EPIPE case of Ceilometer's disconnection test.
            (E(errno.EPIPE, libvirt.VIR_FROM_RPC), 'ConnectionLost'),
            (E(libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_FROM_NONE),
             'ConnectionLost'),
            (E(libvirt.VIR_ERR_OPERATION_TIMEOUT), 'Busy'),
            (E(libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU),
             'LibvirtFailed'),
            (ValueError('x'), 'Unexpected'),
            (errors.ReplyMalformed('u1', 'x'), 'ReplyMalformed'),
        ]
        self.assertEqual([k for _e, k in cases],
                         [self.kind(e) for e, _k in cases])

    def test_access_denied_on_the_connection_concerns_every_domain(self):
        self.assertEqual('ConnectionRefused', self.kind(
            E(libvirt.VIR_ERR_ACCESS_DENIED), errors.CONNECTION))

    def test_message_text_is_never_read(self):
        denied = E(libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU,
                   msg='read only access prevents: Permission denied')
        self.assertEqual('LibvirtFailed', self.kind(denied))

    def test_every_error_has_a_policy(self):
        kinds = {c for c in vars(errors).values() if isinstance(c, type)
                 and issubclass(c, errors.ReadError)} - {errors.ReadError}
        self.assertEqual(kinds, set(errors.POLICY))
        self.assertEqual(logging.DEBUG,
                         errors.POLICY[errors.DomainGone].level)


class TestReporter(testtools.TestCase):

    def test_once_per_episode(self):
        logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, format='%(levelname)s %(message)s'))
        report = errors.Reporter(logging.getLogger('t'))
        for _ in range(3):
            report.failed(('qmp', 'u1'), errors.ReplyMalformed('u1', 'x'))
        report.failed(('qmp', 'u1'), errors.Busy('u1'))
        report.succeeded(('qmp', 'u1'), 'QMP read of u1')
        report.succeeded(('qmp', 'u1'), 'QMP read of u1')
        self.assertEqual([
            'WARNING u1: unusable answer (x)',
            'DEBUG u1: unusable answer (x) [2 times in a row]',
            'DEBUG u1: unusable answer (x) [3 times in a row]',
            'WARNING u1: domain busy (libvirt job lock timed out)',
            'INFO QMP read of u1 works again after 1 failed attempt(s) '
            '(Busy)'], logger.output.splitlines())

    def test_gone_needs_no_recovery_line(self):
        logger = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)s %(message)s'))
        report = errors.Reporter(logging.getLogger('t'))
        report.failed(('qmp', 'u1'), errors.DomainGone('u1'))
        report.succeeded(('qmp', 'u1'), 'QMP read of u1')
        self.assertEqual('', logger.output)


class TestBackoff(testtools.TestCase):

    def test_doubles_to_the_maximum(self):
        now = [0.0]
        b = backoff.Backoff(60, 3600, clock=lambda: now[0])
        self.assertTrue(b.allowed('k'))
        self.assertEqual([60, 120, 240, 480, 960, 1920, 3600, 3600],
                         [b.failed('k') for _ in range(8)])
        now[0] = 3599
        self.assertFalse(b.allowed('k'))
        now[0] = 3600
        self.assertTrue(b.allowed('k'))
        b.succeeded('k')
        self.assertEqual(60, b.failed('k'))
        b.forget(lambda key: key != 'k')
        self.assertTrue(b.allowed('k'))
