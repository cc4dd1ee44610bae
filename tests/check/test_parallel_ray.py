"""The Ray backend explores as local workers do: the same findings, executions and verdict.

Skipped when Ray is not installed (``pip install 'ffasim[ray]'``; CI installs it). Few tests:
starting Ray costs seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ffasim.check.explore import finding_key
from ffasim.check.parallel import explore_parallel
from ffasim.check.pools import Pool, open_pool
from ffasim.scenario._check import ScenarioSource

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_pool() -> Iterator[Pool]:
    pool = open_pool(2, "ray")
    try:
        yield pool
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("strategy", "variant", "faults"),
    [("portfolio", "seed-v1", ("helper",)), ("dfs", "reference", ())],
)
def test_ray_explores_as_local_workers_do(
    ray_pool: Pool, strategy: str, variant: str, faults: tuple[str, ...]
) -> None:
    source = ScenarioSource("partinfo-2vcpu", variant, faults=faults)
    local = open_pool(2, "local")
    try:
        want, _ = explore_parallel(source, strategy, pool=local, budget=300, stop_on_first=False)
    finally:
        local.close()
    got, _ = explore_parallel(source, strategy, pool=ray_pool, budget=300, stop_on_first=False)
    assert got.executions == want.executions > 0
    assert (got.stopped, got.exhaustive) == (want.stopped, want.exhaustive)
    assert [finding_key(f) for f, _ in got.findings] == [finding_key(f) for f, _ in want.findings]
    assert got.notes == want.notes


def test_an_unreachable_cluster_is_one_line_not_minutes_of_retries(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ffasim.cli import app

    args = ["check", "partinfo-2vcpu", "--backend", "ray", "--ray-address", "127.0.0.1:1"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: cannot reach Ray at 127.0.0.1:1: ")
