"""The scenario-free oracles raise no false alarm: every built-in scenario stays clean on the
reference mediator under the default portfolio with every monitor."""

from __future__ import annotations

import pytest

from ffasim.check.monitors import MONITORS
from ffasim.scenario import BUILTIN_NAMES, check_scenario


def test_the_oracles_are_in_the_default_monitor_set() -> None:
    assert {"lock-order", "wire", "answer", "framework"} <= set(MONITORS)


@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES))
def test_builtin_scenario_is_clean_on_reference(name: str) -> None:
    report = check_scenario(name, variant="reference", budget=300, out_dir=None)
    assert [i.finding.summary() for i in report.issues] == []
