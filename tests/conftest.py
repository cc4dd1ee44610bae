"""Test-wide settings.

Under CI (``CI`` set in the environment) hypothesis runs derandomized: the same examples on every
run, so a red CI always means a change broke something, never that a new random example was
drawn. Locally it keeps exploring new examples on each run, which is where new bugs are found.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
