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
"""Values as Gnocchi writes and reads them: timespans, JSON in messages."""

import math
import re

_UNITS = (('day', 86400), ('hour', 3600), ('minute', 60), ('second', 1))


def human(seconds):
    """Spell a whole number of seconds as Gnocchi accepts it: '7 days'."""
    for unit, size in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return '%d %s%s' % (count, unit, '' if count == 1 else 's')
    raise ValueError('not a whole number of seconds: %r' % seconds)


def to_seconds(value):
    """Seconds of a Gnocchi timespan as Gnocchi writes or reads it.

    Accepts numbers, '5 minutes' (the resources file) and Python's
    timedelta spelling that the REST API returns ('1 day, 0:00:00').

    :raises ValueError: for anything else, and for NaN, infinities and
        booleans (JSON ``true`` is no number of seconds).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError('not a Gnocchi timespan: %s' % show(value))
    if isinstance(value, str):
        value = _parse_seconds(value.strip())
    try:
        value = float(value)
    except OverflowError:
        raise ValueError('not a timespan: %s' % show(value)) from None
    if not math.isfinite(value):
        raise ValueError('not a finite timespan: %s' % show(value))
    return value


def _parse_seconds(text):
    match = re.fullmatch(
        r'(?:(\d+) days?,\s*)?(\d+):(\d\d):(\d\d(?:\.\d+)?)', text)
    if match:
        days, hours, minutes, secs = match.groups()
        return (int(days or 0) * 86400 + int(hours) * 3600
                + int(minutes) * 60 + float(secs))
    match = re.fullmatch(r'(\d+(?:\.\d+)?)\s*([a-z]+?)s?', text)
    if match:
        for unit, size in _UNITS:
            if match.group(2) == unit:
                return float(match.group(1)) * size
    if re.fullmatch(r'\d+(?:\.\d+)?', text):
        return float(text)
    raise ValueError('cannot read Gnocchi timespan %s' % show(text))


def show(value, width=60):
    """A short repr for messages, even of a 10,000-digit integer."""
    try:
        text = repr(value)
    except ValueError:
        # NOTE: Python refuses repr() of integers over 4300 digits.
        return 'an integer of %d bits' % value.bit_length()
    return text if len(text) <= width else text[:width - 3] + '...'


def kind(value):
    """What a JSON value is, for a message: 'a list', 'null'..."""
    return {dict: 'an object', list: 'a list', str: 'a string',
            type(None): 'null'}.get(type(value), type(value).__name__)


def whole(value):
    """Whether a JSON value is a whole number (``true`` is not)."""
    return isinstance(value, int) and not isinstance(value, bool)
