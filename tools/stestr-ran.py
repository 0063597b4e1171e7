#!/usr/bin/env python3
"""Fail unless the last stestr run ran tests and skipped none.

A functional test whose real part cannot start must fail, never skip, and a
run that executed no test is not green.  Prints the plain closing line
'<label>: N passed, N failed'.
"""

import re
import subprocess
import sys


def main():
    label = sys.argv[1] if len(sys.argv) > 1 else 'tests'
    out = subprocess.run(['stestr', 'last'], capture_output=True,
                         text=True).stdout
    counts = {}
    for key in ('Passed', 'Failed', 'Skipped'):
        m = re.search(r'^ - %s: (\d+)' % key, out, re.M)
        counts[key] = int(m.group(1)) if m else 0
    print('%s: %d passed, %d failed, %d skipped' % (
        label, counts['Passed'], counts['Failed'], counts['Skipped']))
    if counts['Passed'] == 0:
        print('%s: no test ran' % label, file=sys.stderr)
        return 1
    if counts['Skipped']:
        print('%s: skipped tests are failures here' % label, file=sys.stderr)
        return 1
    return 1 if counts['Failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
