"""Test-wide settings.

Under CI (``CI`` set in the environment) hypothesis runs derandomized: the same examples on every
run, so a red CI always means a change broke something, never that a new random example was
drawn. Locally it keeps exploring new examples on each run, which is where new bugs are found.

ffasim's own pytest plugin is loaded from this source tree unless an installed ffasim already
registered it through its ``pytest11`` entry point (registering a plugin twice is an error);
``pytester`` runs pytest inside tests, for the plugin's tests.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

pytest_plugins = ["pytester"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.has_plugin("ffasim"):
        from ffasim import pytest_plugin

        pluginmanager.register(pytest_plugin, "ffasim")


settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
