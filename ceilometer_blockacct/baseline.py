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
"""What one (disk, meter) remembers of its last placed reading."""

import dataclasses

from ceilometer_blockacct.sources import records


@dataclasses.dataclass
class Baseline:
    """What one (disk, meter) remembers of its last placed reading."""

    epoch: records.Epoch
    device_id: str
    mono_ns: int
    values: list
    # A reading refused as implausible, kept aside: [mono_ns, values].
    refused: list = None

    def same_identity(self, point):
        """Whether ``point`` reads the same device of the same process."""
        if not self.epoch.same_process(point.epoch):
            return False
        if self.device_id is None or point.device_id is None:
            return True
        return self.device_id == point.device_id

    def to_json(self):
        return {'epoch': self.epoch.key, 'device': self.device_id,
                'mono_ns': self.mono_ns, 'values': self.values,
                'refused': self.refused}

    @classmethod
    def from_json(cls, data):
        """Inverse of :meth:`to_json`; :raises ValueError: if malformed."""
        try:
            epoch = records.Epoch.from_key(data['epoch'])
            device, mono_ns = data['device'], data['mono_ns']
            values, refused = data['values'], data.get('refused')
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError('malformed baseline %r: %s' % (data, e))
        if not (isinstance(mono_ns, int) and isinstance(values, list)
                and (device is None or isinstance(device, str))
                and all(counter_or_none(v) for v in values)):
            raise ValueError('malformed baseline %r' % (data,))
        if refused is not None and not (
                isinstance(refused, list) and len(refused) == 2
                and isinstance(refused[0], int)
                and isinstance(refused[1], list)
                and all(counter_or_none(v) for v in refused[1])):
            raise ValueError('malformed refused reading %r' % (refused,))
        return cls(epoch, device, mono_ns, values, refused)


def counter_or_none(v):
    """Whether ``v`` is None or a counter value (an int in [0, 2^64))."""
    return v is None or (isinstance(v, int) and not isinstance(v, bool)
                         and 0 <= v <= records.COUNTER_MAX)
