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
"""Configuration of a subcommand: the agent's files, then the command line.

The order is oslo.config's defaults < the config files < options given on
the command line.  A command-line option therefore has no argparse default
(None): only a value the operator typed overrides the files.
"""

from ceilometer.compute.virt.libvirt import utils as libvirt_utils
from oslo_config import cfg

from ceilometer_blockacct.cmd import base
from ceilometer_blockacct import opts


class ConfigError(base.CommandError):
    """A config file is missing, unreadable or holds a bad value."""


def add_config_file_argument(parser):
    """``--config-file`` and ``--config-dir``, as Ceilometer's agents."""
    parser.add_argument(
        '--config-file', action='append', default=[], metavar='PATH',
        help='configuration file, as the polling agent reads it; '
             'repeatable, later files win (default: the ceilometer.conf '
             'oslo.config finds, e.g. /etc/ceilometer/ceilometer.conf)')
    parser.add_argument(
        '--config-dir', action='append', default=[], metavar='DIR',
        help='directory of *.conf files read after the config files, as '
             'the polling agent reads it; repeatable')


def load(config_files, overrides=None, config_dirs=()):
    """A ConfigOpts read like ceilometer-polling's, then ``overrides``.

    :param config_files: paths given with ``--config-file``; empty means
        oslo.config's search for ``ceilometer.conf``, as for the agent.
    :param overrides: ``{[blockacct] option name: value}``; None values
        (an option not given on the command line) are ignored.
    :param config_dirs: directories given with ``--config-dir``.
    :raises ConfigError: on a missing or unparsable file, or a bad value.
    """
    conf = cfg.ConfigOpts()
    # [DEFAULT] libvirt_uri / libvirt_type: the reader falls back to them.
    conf.register_opts(libvirt_utils.OPTS)
    opts.register_opts(conf)
    args = []
    for path in config_files:
        args += ['--config-file', path]
    for path in config_dirs:
        args += ['--config-dir', path]
    try:
        conf(args, project='ceilometer', validate_default_values=True)
        for name, value in (overrides or {}).items():
            if value is not None:
                conf.set_override(name, value, opts.GROUP)
        # NOTE: oslo.config checks a value when it is read: read them all
        # now, so a bad one is one clear error before anything starts.
        for opt in libvirt_utils.OPTS:
            conf[opt.dest]
        for opt in opts.OPTS:
            conf[opts.GROUP][opt.dest]
    except (cfg.Error, ValueError) as exc:
        raise ConfigError('configuration: %s' % exc) from exc
    return conf
