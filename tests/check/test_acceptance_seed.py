"""Issue #5's acceptance on the seed: what `ffasim check` must find on seed-v1, and that the
reference variant is clean on every built-in scenario under the exhaustive strategy."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffasim.scenario import builtin_scenarios
from ffasim.scenario._check import check_scenario, replay_file


def test_seed_v1_two_vcpu_partition_info_panics_on_the_acquire_assert(tmp_path: Path) -> None:
    r = check_scenario("partinfo-2vcpu", variant="seed-v1", out_dir=tmp_path)
    assert [i.finding.kind for i in r.issues] == ["assertion"]
    issue = r.issues[0]
    assert issue.finding.message.startswith(
        "HypervisorPanic: Assertion '!spin_is_locked(&ffa_spmc_rx_lock)' failed"
    )
    # Either VM's vCPU may be the one that panics, the other holding the lock (symmetric).
    (call,) = issue.finding.calls
    panics = call.split()[0]
    assert call == f"{panics} FFA_PARTITION_INFO_GET" and panics in ("d0v0", "d1v0")
    holder = "d1v0" if panics == "d0v0" else "d0v0"
    assert issue.locks_held == [("ffa_spmc_rx_lock", holder)]
    assert issue.result.preemptions == 1  # minimised: one preemption is all it takes
    assert issue.path is not None and issue.path.parent == tmp_path
    assert issue.replay_command == f"ffasim replay {issue.path}"
    result, trace = replay_file(issue.path)
    assert [f.summary() for f in result.findings] == [issue.finding.summary()]
    assert trace[-1].kind == "finding"


def test_seed_v1_spmc_fault_exposes_the_spurious_rx_release(tmp_path: Path) -> None:
    r = check_scenario(
        "partinfo-2vcpu", variant="seed-v1", faults=["smc:PARTITION_INFO_GET"], out_dir=tmp_path
    )
    assert [i.finding.kind for i in r.issues] == ["ownership"]
    issue = r.issues[0]
    assert "RX_RELEASE" in issue.finding.message
    assert [site for _, site, _ in issue.result.faults] == ["smc:FFA_PARTITION_INFO_GET"]
    assert issue.schedule.faults == ["smc:PARTITION_INFO_GET"]


def test_seed_v1_forced_null_acquire_leaves_the_lock_held(tmp_path: Path) -> None:
    r = check_scenario("partinfo-2vcpu", variant="seed-v1", faults=["helper"], out_dir=tmp_path)
    assert [i.finding.kind for i in r.issues] in (["lock-leak"], ["deadlock"])
    issue = r.issues[0]
    assert "ffa_spmc_rx_lock" in issue.finding.message
    assert [site for _, site, _ in issue.result.faults] == ["helper:ffa_rxtx_spmc_rx_acquire"]


def test_seed_v1_spmc_destroy_frees_pages_the_spmc_still_maps(tmp_path: Path) -> None:
    # A failing PARTITION_INFO_GET at boot makes the probe call ffa_rxtx_spmc_destroy().
    r = check_scenario(
        "partinfo-2vcpu",
        variant="seed-v1",
        faults=["smc:PARTITION_INFO_GET:DENIED"],
        preemption_bound=0,
        stop_on_first=False,
        out_dir=tmp_path,
    )
    # Both frees happen in one execution: the first is the finding, the second comes with it.
    found = [f for i in r.issues for f in (i.finding, *i.also)]
    isolation = [f for f in found if f.kind == "isolation"]
    assert isolation, [f.summary() for f in found]
    messages = sorted(f.message for f in isolation)
    assert any("(xen, ffa_spmc_rx) freed by boot while spmc still maps it" in m for m in messages)
    assert any("(xen, ffa_spmc_tx) freed by boot while spmc still maps it" in m for m in messages)
    assert all(f.threads == ("boot",) for f in isolation)


BUDGETS = {"default": 25}
"""Executions per scenario: the rest are exhausted well within CI time."""


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_reference_is_clean_on_every_builtin_scenario(name: str) -> None:
    r = check_scenario(
        name,
        variant="reference",
        strategy="dfs",
        budget=BUDGETS.get(name, 400),
        stop_on_first=False,
        out_dir=None,
        minimise_findings=False,
    )
    assert [i.finding.summary() for i in r.issues] == []
    assert r.executions >= 1
    if name not in BUDGETS:
        assert r.exhausted and r.exhaustive


@pytest.mark.parametrize("strategy", [None, "pct", "random"])
@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_reference_is_clean_under_the_sampling_strategies(name: str, strategy: str | None) -> None:
    # The default portfolio and the randomised strategies reach schedules with many
    # preemptions that dfs with a small budget does not: no false finding there either.
    r = check_scenario(
        name,
        variant="reference",
        strategy=strategy,
        budget=BUDGETS.get(name, 150),
        stop_on_first=False,
        out_dir=None,
        minimise_findings=False,
    )
    assert [i.finding.summary() for i in r.issues] == []
