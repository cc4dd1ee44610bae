"""The default search: iterative preemption bounding, PCT and random, taking turns."""

from __future__ import annotations

import pytest
from synthetic import build

from ffasim.check.explore import explore
from ffasim.check.monitors import default_monitors
from ffasim.check.strategies import DFSStrategy, PortfolioStrategy
from ffasim.scenario import check_scenario, load
from ffasim.scenario._check import scenario_program


def _lost_update_oracle(m: object, reads: dict[str, list[int]]) -> list[str]:
    return ["lost update"] if reads["t0"] == [0] and reads["t1"] == [0] else []


LOST_UPDATE = [[("r", "x"), ("w", "x")], [("r", "x"), ("w", "x")]]


def test_portfolio_parts_take_turns_in_the_documented_rotation() -> None:
    p = PortfolioStrategy(seed=0)
    parts = []
    program = build([[("w", "x")] * 3, [("r", "x")] * 3, [("w", "x")] * 3])
    report = explore(
        program,
        _Recording(p, parts),
        monitors_factory=list,
        budget=8,
        stop_on_first=False,
    )
    assert report.executions == 8
    assert parts[:4] == ["dfs (bound 0)", "pct", "dfs (bound 0)", "random"]


class _Recording:
    """Delegates to a portfolio and records which part ran each execution."""

    def __init__(self, inner: PortfolioStrategy, parts: list[str]) -> None:
        self.inner = inner
        self.parts = parts
        self.name = inner.name

    def new_execution(self) -> bool:
        ok = self.inner.new_execution()
        if ok:
            self.parts.append(self.inner.part)
        return ok

    def begin(self, execution: object) -> None:
        self.inner.begin(execution)  # type: ignore[arg-type]

    def next_thread(self, runnable, current):  # type: ignore[no-untyped-def]
        return self.inner.next_thread(runnable, current)

    def next_choice(self, kind, site, n):  # type: ignore[no-untyped-def]
        return self.inner.next_choice(kind, site, n)

    def end_execution(self, result) -> None:  # type: ignore[no-untyped-def]
        self.inner.end_execution(result)


def test_portfolio_is_exhaustive_when_a_level_covers_every_schedule() -> None:
    # Two threads on private variables: the bound never matters, so level 0 covers everything.
    program = build([[("w", "x"), ("r", "x")], [("w", "y"), ("r", "y")]])
    p = PortfolioStrategy()
    report = explore(program, p, monitors_factory=list, stop_on_first=False)
    assert report.exhausted and report.exhaustive
    assert p.exhaustive


def test_portfolio_finds_a_one_preemption_bug_and_says_which_part_did() -> None:
    report = explore(
        build(LOST_UPDATE, _lost_update_oracle),
        PortfolioStrategy(seed=3),
        monitors_factory=list,
    )
    assert [f.message for f, _ in report.findings] == ["lost update"]
    assert report.found_by[0] in ("pct", "random") or report.found_by[0].startswith("dfs")
    assert report.executions <= 20


def test_portfolio_with_a_bound_stops_bounding_there_and_goes_on_sampling() -> None:
    program = build([[("w", "x"), ("r", "x"), ("w", "x")], [("w", "x"), ("r", "x"), ("w", "x")]])
    p = PortfolioStrategy(max_bound=0)
    report = explore(program, p, monitors_factory=list, stop_on_first=False, budget=200)
    assert not report.exhausted and not report.exhaustive
    assert report.covered_bound == 0
    assert p.dfs is None  # the bounded levels are done; PCT and random fill the budget


def test_portfolio_is_deterministic_from_its_seed() -> None:
    def run(seed: int) -> list[object]:
        r = explore(
            build(LOST_UPDATE, _lost_update_oracle),
            PortfolioStrategy(seed=seed),
            monitors_factory=list,
            stop_on_first=False,
            budget=40,
        )
        return [(f.message, res.decisions) for f, res in r.findings] + [r.found_by]

    assert run(5) == run(5)


@pytest.mark.parametrize("scenario", ["default", "partinfo-2vcpu"])
def test_default_options_find_the_seed_assert_within_a_hundred_executions(scenario: str) -> None:
    r = check_scenario(scenario, variant="seed-v1", out_dir=None, minimise_findings=False)
    assert r.strategy == "portfolio"
    assert [i.finding.kind for i in r.issues] == ["assertion"]
    assert "spin_is_locked(&ffa_spmc_rx_lock)" in r.issues[0].finding.message
    assert r.executions <= 100


def test_portfolio_proves_a_small_scenario_clean() -> None:
    r = check_scenario("destroy-during-call", variant="reference", out_dir=None)
    assert r.issues == [] and r.exhaustive and r.stopped == "exhausted"


def test_dfs_under_a_bound_that_never_mattered_is_exhaustive() -> None:
    program = scenario_program(load("destroy-during-call"), "reference")
    tight = DFSStrategy(preemption_bound=0)
    explore(program, tight, monitors_factory=default_monitors, stop_on_first=False)
    assert tight.bound_hit and not tight.exhaustive
    loose = DFSStrategy(preemption_bound=50)
    explore(program, loose, monitors_factory=default_monitors, stop_on_first=False)
    assert not loose.bound_hit and loose.exhaustive
