"""DPOR reaches every outcome that every schedule reaches: the checker's soundness, tested.

Each test runs a program under the naive enumeration (``DFSStrategy("none")``: every schedule
within the bound) and under DPOR with the same bound and faults, and compares the outcomes
(findings, and a fingerprint of the terminal state): see ``ffasim.check.crosscheck``. The
programs are generated over the machine's primitives and over a whole system (FF-A calls
through Xen into the SPMC, guest memory, a toolstack destroying a VM), and the built-in
scenarios are cross-checked on every variant with one preemption.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from programs import primitive_program, primitive_specs, state_of, system_program, system_specs

from ffasim.check.crosscheck import CrossCheck, cross_check
from ffasim.check.explore import explore
from ffasim.check.faults import parse_faults
from ffasim.check.monitors import default_monitors
from ffasim.check.strategies import DFSStrategy
from ffasim.scenario import builtin_scenarios, load
from ffasim.scenario._check import scenario_program, scenario_state
from ffasim.xen import variants


def _fast(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


def _alloc_faults(site: str) -> tuple[int, ...] | None:
    return (1,) if site.startswith("alloc:") else None


def _agree(x: CrossCheck, what: Any) -> None:
    assert x.naive.exhausted and x.dpor.exhausted, what
    missed = [o.describe() for o in x.missed]
    extra = [o.describe() for o in x.extra]
    assert not missed and not extra, (what, missed, extra)


@_fast(300)
@given(primitive_specs())
def test_dpor_reaches_every_outcome_of_primitive_programs(spec: Any) -> None:
    x = cross_check(
        primitive_program(spec),
        state_of,
        monitors_factory=default_monitors,
        faults=_alloc_faults,
    )
    _agree(x, spec)


@pytest.mark.parametrize("bound", [0, 1, 2])
def test_bounded_dpor_reaches_every_outcome_within_the_bound(bound: int) -> None:
    @_fast(120)
    @given(primitive_specs())
    def check(spec: Any) -> None:
        x = cross_check(
            primitive_program(spec),
            state_of,
            preemption_bound=bound,
            monitors_factory=default_monitors,
            faults=_alloc_faults,
        )
        _agree(x, spec)

    check()


@_fast(30)
@given(system_specs)
def test_dpor_reaches_every_outcome_of_system_programs_with_one_preemption(spec: Any) -> None:
    x = cross_check(
        system_program(spec), state_of, preemption_bound=1, monitors_factory=default_monitors
    )
    _agree(x, spec)


@_fast(12)
@given(system_specs)
def test_dpor_reaches_every_outcome_of_system_programs_with_injected_smc_faults(spec: Any) -> None:
    x = cross_check(
        system_program(spec),
        state_of,
        preemption_bound=0,
        monitors_factory=default_monitors,
        faults=parse_faults("smc:*:DENIED"),
    )
    _agree(x, spec)


_SCENARIOS = [n for n in builtin_scenarios() if n != "default"]


@pytest.mark.parametrize("variant", variants.names())
@pytest.mark.parametrize("scenario", _SCENARIOS)
def test_builtin_scenarios_agree_with_one_preemption(scenario: str, variant: str) -> None:
    x = cross_check(
        scenario_program(load(scenario), variant),
        scenario_state,
        preemption_bound=1,
        monitors_factory=default_monitors,
    )
    _agree(x, (scenario, variant))


# -- regressions: each was a dependence DPOR could not see -------------------------------------


def test_a_step_whose_fault_skipped_an_allocation_does_not_hide_it_from_the_sleep_set() -> None:
    # t0's step reads x then allocates (or, with the fault, does not); t1 allocates then
    # writes x. The sleep set kept t0's footprint from the faulty branch, without the heap.
    spec = [[("r", "x"), ("alloc",)], [("alloc",), ("w", "x")]]
    x = cross_check(
        primitive_program(spec), state_of, monitors_factory=default_monitors, faults=_alloc_faults
    )
    _agree(x, spec)


def test_a_panic_does_not_hide_the_schedules_where_another_thread_comes_first() -> None:
    # t0 asserts that x is still its own; t1 writes x. The panicking execution ends before t1
    # runs: DPOR must still try t1's write between t0's two steps.
    spec = [[("w", "x"), ("assert", "x")], [("w", "x")]]
    x = cross_check(primitive_program(spec), state_of, monitors_factory=default_monitors)
    _agree(x, spec)
    kinds = {k for o in x.naive.outcomes for k, _ in o.findings}
    assert kinds == {"assertion"}
    assert any(not o.findings for o in x.naive.outcomes)


def test_one_vcpu_unmapping_while_another_uses_the_buffers_is_explored_fully() -> None:
    # The guest driver's per-VM state (is TX mapped?) is shared by both vCPUs: undeclared,
    # DPOR took an unmap before or after a SEND2 for equivalent schedules.
    spec = [("d0v0", ["partinfo", "send2"]), ("d0v1", ["unmap", "map"])]
    x = cross_check(
        system_program(spec), state_of, preemption_bound=1, monitors_factory=default_monitors
    )
    _agree(x, spec)


def test_released_xen_unmapping_without_the_rx_lock_is_explored_fully() -> None:
    # Xen 4.21's RXTX_UNMAP clears page_count without the RX lock: a plain attribute that
    # partition info reads under the lock. Every schedule reaches the data abort.
    x = cross_check(
        scenario_program(load("partinfo-vs-unmap"), "xen-4.21"),
        scenario_state,
        preemption_bound=1,
        monitors_factory=default_monitors,
    )
    _agree(x, "partinfo-vs-unmap xen-4.21")
    kinds = {k for o in x.dpor.outcomes for k, _ in o.findings}
    assert "assertion" in kinds


def test_the_issue_scenario_is_found_by_exhaustive_search() -> None:
    # vCPU 0: partition info, release, SEND2, share; vCPU 1: unmap, release, map, on one VM.
    # dfs said "exhaustive, nothing found" while pct found an ownership finding.
    from ffasim.scenario import Scenario, ThreadSpec, VmSpec, step

    sc = Scenario(
        "unmap-vs-calls",
        vms=[VmSpec(vcpus=2)],
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec(
                vm=0,
                vcpu=0,
                steps=(
                    step("partition_info", expect="any"),
                    step("rx_release", expect="any"),
                    step("send2", dst=0x8003, data="hi", expect="any"),
                    step("share", receiver=0x8002, pages=[2], expect="any"),
                ),
            ),
            ThreadSpec(
                vm=0,
                vcpu=1,
                steps=(
                    step("unmap", expect="any"),
                    step("rx_release", expect="any"),
                    step("map", expect="any"),
                ),
            ),
        ],
    )
    # What pct found is real: Xen fills the RX after the guest released it (docs/findings.md,
    # 1). head has it; the reference, which fills the RX under rx_lock, provably does not.
    program = scenario_program(sc, "head")
    found = explore(program, DFSStrategy(), monitors_factory=default_monitors)
    assert [f.kind for f, _ in found.findings] == ["ownership"]
    x = cross_check(program, scenario_state, preemption_bound=1, monitors_factory=default_monitors)
    _agree(x, sc.name)
    fixed = explore(
        scenario_program(sc, "reference"), DFSStrategy(), monitors_factory=default_monitors
    )
    assert fixed.findings == [] and fixed.exhausted
