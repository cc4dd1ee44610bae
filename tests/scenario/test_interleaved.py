"""Scenario threads under the checker: expectations hold in every interleaving on reference,
and a destroy meets the vCPU's calls in both orders."""

from __future__ import annotations

from typing import Any

import pytest

from ffasim.check.explore import explore
from ffasim.check.strategies.dfs import DFSStrategy
from ffasim.scenario import Instance, builtin_scenarios
from ffasim.scenario._check import scenario_program


def _explore(name: str, variant: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, set[Any]]:
    outcomes: set[tuple[tuple[str, str, str], ...]] = set()
    finish = Instance.finish

    def recording_finish(self: Instance) -> list[str]:
        lines = finish(self)
        outcomes.add(tuple((r.thread, r.op, r.outcome) for r in self.results))
        return lines

    monkeypatch.setattr(Instance, "finish", recording_finish)
    program = scenario_program(builtin_scenarios()[name], variant)
    report = explore(program, DFSStrategy(), monitors_factory=list, budget=300, stop_on_first=False)
    return report, outcomes


def _spec_findings(report: Any) -> list[str]:
    """Findings of the scenario oracle (the other kinds judge other layers)."""
    return [f.summary() for f, *_ in report.findings if f.kind == "spec"]


def test_destroy_during_call_reaches_both_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    report, outcomes = _explore("destroy-during-call", "reference", monkeypatch)
    assert report.exhausted and _spec_findings(report) == []
    vcpu = {tuple(o for t, _op, o in run if t == "d0v1") for run in outcomes}
    assert ("success", "success") in vcpu  # the vCPU finished before the destroy
    assert ("skipped", "skipped") in vcpu  # the destroy came first
    assert ("success", "skipped") in vcpu  # in between


def test_sri_races_info_get(monkeypatch: pytest.MonkeyPatch) -> None:
    report, outcomes = _explore("sri-vs-notification-get", "reference", monkeypatch)
    assert report.exhausted and _spec_findings(report) == []
    info = {o for run in outcomes for t, op, o in run if op == "notification_info_get"}
    assert info == {"success", "NO_DATA"}


@pytest.mark.parametrize("name", ["partinfo-2vcpu", "rxtx-map-race", "share-vs-partinfo"])
def test_reference_meets_every_expectation(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    report, outcomes = _explore(name, "reference", monkeypatch)
    assert report.exhausted and _spec_findings(report) == []
    assert outcomes
