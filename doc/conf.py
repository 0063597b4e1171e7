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
"""Sphinx configuration of ceilometer-blockacct's documentation.

``tox -e docs`` builds it with warnings as errors.  The meter table and the
sample configuration are generated while building (doc/ext/blockacct_docs.py).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# NOTE: ext/ holds this documentation's own extension; the repository root
# makes tools/meter_table.py importable by it.
sys.path.insert(0, os.path.join(HERE, 'ext'))
sys.path.insert(0, os.path.dirname(HERE))

project = 'ceilometer-blockacct'
copyright = 'ceilometer-blockacct developers'
extensions = ['blockacct_docs']
root_doc = 'index'
exclude_patterns = ['build', 'ext']
html_theme = 'alabaster'
html_static_path = []
# NOTE: the documents are plain reStructuredText read on GitHub too: no
# Sphinx-only roles, and the default role stays unset (a single-backquote
# slip would otherwise pass silently).
default_role = None
highlight_language = 'none'
