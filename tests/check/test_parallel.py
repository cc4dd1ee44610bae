"""Parallel exploration: the same findings and verdict for the same seed whatever the number
of workers (``check/parallel.py``), through the engine, ``ffasim.check_scenario`` and the CLI.

``workers=1`` goes through the inline pool (one process, each task pickled as a worker would
get it); 2 and 3 through spawned local processes, shared by the tests of this module.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ffasim.check.explore import ExploreReport, finding_key
from ffasim.check.parallel import explore_parallel
from ffasim.check.pools import InlinePool, Pool, open_pool, run_shards
from ffasim.cli import app
from ffasim.scenario._check import ScenarioSource, check_scenario


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[int, Pool]]:
    two, three = open_pool(2, "local"), open_pool(3, "local")
    try:
        yield {1: InlinePool(), 2: two, 3: three}
    finally:
        two.close()
        three.close()


def _summary(report: ExploreReport) -> dict[str, Any]:
    return {
        "executions": report.executions,
        "findings": [
            (finding_key(f), part)
            for (f, _), part in zip(report.findings, report.found_by, strict=True)
        ],
        "notes": report.notes,
        "stopped": report.stopped,
        "exhausted": report.exhausted,
        "exhaustive": report.exhaustive,
        "covered_bound": report.covered_bound,
        "steps": report.steps,
    }


CASES = [
    # the portfolio stops at its first finding: the first in key order, whoever ran it
    ("portfolio", "partinfo-2vcpu", "seed-v1", (), {}),
    # DPOR to the end: the same tree, the same verdict
    ("dfs", "partinfo-2vcpu", "reference", (), {}),
    ("random", "partinfo-2vcpu", "seed-v1", (), {"budget": 60, "stop_on_first": False}),
    ("pct", "partinfo-2vcpu", "seed-v1", ("smc:PARTITION_INFO_GET",), {"budget": 50}),
    # faults and a bound: the levels of the portfolio end where they would
    (
        "portfolio",
        "partinfo-2vcpu",
        "seed-v1",
        ("helper",),
        {"preemption_bound": 1, "budget": 80, "stop_on_first": False},
    ),
]


@pytest.mark.parametrize(("strategy", "scenario", "variant", "faults", "kw"), CASES)
def test_the_same_seed_finds_the_same_whatever_the_workers(
    pools: dict[int, Pool],
    strategy: str,
    scenario: str,
    variant: str,
    faults: tuple[str, ...],
    kw: dict[str, Any],
) -> None:
    source = ScenarioSource(scenario, variant, faults=faults)
    kw = {"budget": 1000, **kw}
    got = {
        n: _summary(explore_parallel(source, strategy, pool=pool, seed=3, **kw)[0])
        for n, pool in pools.items()
    }
    assert got[1] == got[2] == got[3]
    assert got[1]["executions"] > 0


def test_dpor_in_shards_proves_what_the_sequential_search_proves(pools: dict[int, Pool]) -> None:
    source = ScenarioSource("partinfo-2vcpu", "reference")
    report, _ = explore_parallel(source, "dfs", pool=pools[2], stop_on_first=False)
    assert report.exhaustive and not report.findings
    report, _ = explore_parallel(ScenarioSource("partinfo-2vcpu", "seed-v1"), "dfs", pool=pools[2])
    assert report.stopped == "finding"
    assert [f.kind for f, _ in report.findings] == ["assertion"]


def test_stop_at_first_reports_the_first_finding_in_key_order(pools: dict[int, Pool]) -> None:
    # Random on seed-v1 finds the ASSERT in many executions; whichever worker finishes first,
    # the report stops after the first of them in index order, with the executions before it.
    source = ScenarioSource("partinfo-2vcpu", "seed-v1")
    every, _ = explore_parallel(
        source, "random", pool=pools[1], budget=40, stop_on_first=False, chunk=4
    )
    runs: list[Any] = []
    explore_parallel(
        source, "random", pool=pools[1], budget=40, stop_on_first=False, chunk=4, keep_runs=runs
    )
    first = next(i for i, r in enumerate(runs) if r.findings)
    for n in (2, 3):
        report, _ = explore_parallel(source, "random", pool=pools[n], budget=40, chunk=4)
        assert report.stopped == "finding"
        assert report.executions == first + 1
        assert finding_key(report.findings[0][0]) == finding_key(every.findings[0][0])


def test_check_scenario_with_workers_saves_schedules_that_replay(tmp_path: Path) -> None:
    report = check_scenario("partinfo-2vcpu", variant="seed-v1", workers=2, out_dir=tmp_path)
    assert [i.finding.kind for i in report.issues] == ["assertion"]
    path = report.issues[0].path
    assert path is not None
    r = CliRunner().invoke(app, ["replay", str(path)])
    assert r.exit_code == 1, r.output


def test_cli_check_with_workers(tmp_path: Path) -> None:
    args = ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--workers", "2", "--json"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert [f["kind"] for f in doc["findings"]] == ["assertion"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "error: --workers must be at least 1, not 0"),
        (["--backend", "mpi"], "error: unknown --backend 'mpi' (expected one of: local, ray)"),
        (["--ray-address", "x:1"], "error: --ray-address applies to --backend ray only"),
    ],
)
def test_cli_rejects_bad_worker_options(args: list[str], message: str) -> None:
    r = CliRunner().invoke(app, ["check", "partinfo-2vcpu", *args])
    assert r.exit_code == 2
    assert r.stderr.strip() == message


def test_cli_names_the_extra_when_ray_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = builtins.__import__

    def no_ray(name: str, *a: Any, **k: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    r = CliRunner().invoke(
        app, ["check", "partinfo-2vcpu", "--backend", "ray", "--out", str(tmp_path)]
    )
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: the ray backend needs Ray: pip install 'ffasim[ray]'"


def _square(x: int) -> int:
    return x * x


def test_run_shards_returns_results_in_task_order(pools: dict[int, Pool]) -> None:
    from functools import partial

    tasks = [partial(_square, i) for i in range(7)]
    assert run_shards(tasks, pool=pools[3]) == [i * i for i in range(7)]
    assert run_shards(tasks, workers=1, backend="inline") == [i * i for i in range(7)]


def test_ctrl_c_stops_the_workers_and_keeps_the_findings(pools: dict[int, Pool]) -> None:
    import os
    import signal
    import threading

    source = ScenarioSource("partinfo-2vcpu", "seed-v1")
    explore_parallel(source, "random", pool=pools[2], budget=8, stop_on_first=False, chunk=1)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        report, _ = explore_parallel(
            source, "random", pool=pools[2], budget=None, stop_on_first=False, catch_interrupt=True
        )
    finally:
        timer.cancel()
    assert report.stopped == "interrupted"
    assert report.executions > 0
    assert [f.kind for f, _ in report.findings] == ["assertion"]
    # the pool is still usable: nothing was left running in it
    again, _ = explore_parallel(source, "random", pool=pools[2], budget=4, stop_on_first=False)
    assert again.executions == 4


def test_fault_sites_the_workers_met_count_for_unmatched_specs(tmp_path: Path) -> None:
    report = check_scenario(
        "partinfo-2vcpu",
        faults=["smc:PARTITION_INFO_GET", "smc:MEM_SHARE"],
        budget=12,
        workers=2,
        out_dir=tmp_path,
    )
    # Only the workers ran executions: the sites they met come back to the coordinator.
    assert report.unmatched_faults == ("smc:MEM_SHARE",)


def test_the_python_api_takes_workers(tmp_path: Path) -> None:
    import ffasim

    report = ffasim.check_scenario("partinfo-2vcpu", variant="seed-v1", workers=2, out=tmp_path)
    assert [f.kind for f in report.findings] == ["assertion"]
    assert report.findings[0].schedule is not None
