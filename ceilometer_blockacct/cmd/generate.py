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
"""``gen-resources`` and ``gen-cloudkitty``: files made from the meter table.

Each writes to stdout, or to the file named by ``--output``; the operator
installs the result (the repository ships both, and unit tests check the
shipped copies are current).
"""

from ceilometer_blockacct import cloudkitty
from ceilometer_blockacct.cmd import base
from ceilometer_blockacct import gnocchi


class OutputError(base.CommandError):
    """The output file cannot be written."""


class _Generator(base.Command):
    """A command whose whole job is one text, written to stdout or a file."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--output', '-o', metavar='PATH',
                            help='file to write (default: stdout)')
        return parser

    def text(self, parsed_args):
        raise NotImplementedError

    def take_action(self, parsed_args):
        text = self.text(parsed_args)
        if not parsed_args.output:
            self.app.stdout.write(text)
            return base.EXIT_OK
        try:
            with open(parsed_args.output, 'w', encoding='utf-8') as out:
                out.write(text)
        except OSError as exc:
            raise OutputError('cannot write %s: %s'
                              % (parsed_args.output, exc.strerror)) from exc
        return base.EXIT_OK


class GenResources(_Generator):
    """Write the Gnocchi resources definition for Ceilometer's publisher.

    The installed Ceilometer's whole gnocchi_resources.yaml plus our archive
    policies and meters (the publisher reads one file that replaces
    upstream's).
    """

    def text(self, parsed_args):
        return gnocchi.dump_resources_definition()


class GenCloudkitty(_Generator):
    """Write CloudKitty's metrics.yml for the billable meters.

    One metric of CloudKitty's gnocchi collector per billable meter.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--period', type=int, default=cloudkitty.PERIOD,
                            help="force_granularity: CloudKitty's [collect] "
                                 'period in seconds (default: %(default)s)')
        parser.add_argument('--raw-units', action='store_true',
                            help='bytes and requests with factor 1 instead '
                                 'of GiB and millions')
        return parser

    def text(self, parsed_args):
        units = (cloudkitty.raw_units if parsed_args.raw_units
                 else cloudkitty.billing_units)
        return cloudkitty.dump_metrics_config(
            cloudkitty.metrics_config(parsed_args.period, units))
