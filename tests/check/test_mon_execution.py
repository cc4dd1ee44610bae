"""The monitors and fault plans under the real scheduler, on small synthetic programs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ffasim import abi
from ffasim.check.faults import parse_faults
from ffasim.check.monitors import default_monitors
from ffasim.check.scheduler import Execution, ExecutionResult
from ffasim.machine import Guarded, Machine, Thread, grant, spin_lock, spin_unlock
from ffasim.scenario._check import scenario_program


class Scripted:
    """Picks threads and fault options from lists (then the first runnable / no fault)."""

    name = "scripted"

    def __init__(self, threads: Sequence[str] = (), choices: Sequence[int] = ()) -> None:
        self.threads = list(threads)
        self.choices = list(choices)

    def new_execution(self) -> bool:
        return True

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        if self.threads and self.threads[0] in runnable:
            return self.threads.pop(0)
        return current if current in runnable else runnable[0]

    def next_choice(self, kind: str, site: str, n: int) -> int:
        return self.choices.pop(0) if self.choices else 0

    def end_execution(self, result: ExecutionResult) -> None:
        return None


def run(
    program: Callable[[Machine], Any], strategy: Scripted | None = None, faults: Sequence[str] = ()
) -> ExecutionResult:
    return Execution(
        program, strategy or Scripted(), default_monitors(), faults=parse_faults(list(faults))
    ).run()


def acquire_program(machine: Machine) -> tuple[list[Thread], None]:
    """Two vCPUs each take the SPMC RX lock through a helper whose NULL path (forced by the
    fault ``helper:ffa_rxtx_spmc_rx_acquire``) returns with the lock held: seed defect 2."""
    lock = machine.spinlock("ffa_spmc_rx_lock")

    def vcpu(ctx: str) -> Callable[[], None]:
        def body() -> None:
            machine.current = ctx
            machine.sink.call("hvc", ctx, abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2))
            machine.sink.ret("hvc", ctx, abi.regs(abi.FFA_VERSION_1_2))
            machine.sink.call("hvc", ctx, abi.regs(abi.FFA_PARTITION_INFO_GET))
            spin_lock(lock)
            if machine.sink.fault("helper:ffa_rxtx_spmc_rx_acquire", (1,)) is None:
                spin_unlock(lock)
                result = abi.success()
            else:
                result = abi.error(abi.FFA_RET_DENIED)
            machine.sink.ret("hvc", ctx, result)

        return body

    return [Thread("d0v0", vcpu("d0v0")), Thread("d1v0", vcpu("d1v0"))], None


def test_forced_null_helper_is_reported_as_lock_leak_with_the_fault() -> None:
    r = run(acquire_program, Scripted(choices=[1]), faults=["helper"])
    assert r.faults and r.faults[0][1:] == ("helper:ffa_rxtx_spmc_rx_acquire", 1)
    assert [f.kind for f in r.findings] == ["lock-leak"]
    assert r.findings[0].message == (
        "d0v0 returns from FFA_PARTITION_INFO_GET (FFA_ERROR(DENIED)) still holding "
        "ffa_spmc_rx_lock"
    )
    assert r.findings[0].calls == ("d0v0 FFA_PARTITION_INFO_GET",)
    assert r.trace[r.findings[0].step].kind == "finding"


def test_helper_not_in_the_fault_plan_is_never_forced() -> None:
    r = run(acquire_program, Scripted(choices=[1, 1]), faults=["alloc"])
    assert r.findings == [] and r.faults == []


def race_program(machine: Machine) -> tuple[list[Thread], None]:
    lock = machine.spinlock("ctx->lock")
    count = Guarded(machine, "ctx->shm_count", 0, guard=lock)

    def locked() -> None:
        spin_lock(lock)
        count.set(count.get() + 1)
        spin_unlock(lock)

    def unlocked() -> None:
        count.set(count.get() + 1)

    return [Thread("d0v0", locked), Thread("d0v1", unlocked)], None


def test_unlocked_guarded_update_races_under_the_real_scheduler() -> None:
    r = run(race_program)
    assert [f.kind for f in r.findings] == ["data-race"]
    assert r.findings[0].threads == ("d0v0", "d0v1")
    assert "d0v1 did not hold it" in r.findings[0].message


def free_program(machine: Machine) -> tuple[list[Thread], None]:
    def destroy() -> None:
        f = machine.heap.alloc_page("xen", site="ffa_spmc_rx", tag="ffa_spmc_rx")
        assert f is not None
        grant(f, "spmc")
        machine.heap.free_page(f)

    return [Thread("boot2", destroy)], None


def test_free_of_a_page_the_spmc_maps_is_isolation() -> None:
    r = run(free_program)
    assert [f.kind for f in r.findings] == ["isolation"]
    assert r.findings[0].message.endswith(
        "(xen, ffa_spmc_rx) freed by boot2 while spmc still maps it"
    )


def test_allocation_fault_makes_alloc_return_none() -> None:
    r = run(free_program, Scripted(choices=[1]), faults=["alloc:ffa_spmc_*"])
    assert [f.kind for f in r.findings] == ["crash"]  # the program asserts it got a page
    assert r.faults[0][1] == "alloc:ffa_spmc_rx"


@dataclass
class FakeInstance:
    system: Any
    threads: list[Thread]
    lines: list[str]

    def finish(self) -> list[str]:
        return list(self.lines)


class FakeScenario:
    """The scenario interface the runner relies on: instantiate(variant, machine=)."""

    name = "fake"

    def __init__(self, lines: list[str], fault_site: str | None = None) -> None:
        self.lines = lines
        self.fault_site = fault_site

    def instantiate(self, variant: str | None = None, *, machine: Machine) -> FakeInstance:
        def body() -> None:
            machine.sink.point("smc", "spmc", True)
            if self.fault_site:
                machine.sink.fault(self.fault_site, (abi.FFA_RET_DENIED,))

        return FakeInstance(object(), [Thread("d0v0", body)], self.lines)


def test_spec_lines_are_dropped_for_executions_with_injected_faults() -> None:
    lines = ["leak: page 0x80001 still referenced", "d0v0: PARTITION_INFO_GET gave DENIED"]
    sc = FakeScenario(lines, "smc:FFA_PARTITION_INFO_GET")
    clean = run(scenario_program(sc, "reference"), faults=["smc"])
    assert [(f.kind, f.message) for f in clean.findings] == [
        ("leak", "page 0x80001 still referenced"),
        ("spec", "d0v0: PARTITION_INFO_GET gave DENIED"),
    ]
    faulted = run(scenario_program(sc, "reference"), Scripted(choices=[1]), faults=["smc"])
    assert faulted.faults
    assert [(f.kind, f.message) for f in faulted.findings] == [
        ("leak", "page 0x80001 still referenced")
    ]


def test_scenario_program_exposes_the_system_to_the_monitors() -> None:
    sc = FakeScenario([])
    seen: list[Any] = []

    def program(machine: Machine) -> Any:
        out = scenario_program(sc, "reference")(machine)
        seen.append(machine.system)  # type: ignore[attr-defined]
        return out

    run(program)
    assert seen and seen[0] is not None


def test_dfs_is_exhaustive_over_fault_points_and_codes() -> None:
    from ffasim.check.explore import explore
    from ffasim.check.strategies import DFSStrategy
    from ffasim.machine import FAULT_CODES, SmcConduit

    seen: list[tuple[int, ...]] = []

    def program(machine: Machine) -> tuple[list[Thread], None]:
        conduit = SmcConduit(machine, lambda caller, regs: abi.success())
        answers: list[int] = []

        def body() -> None:
            for fid in (abi.FFA_VERSION, abi.FFA_RX_RELEASE):
                answers.append(abi.error_code(conduit.smc(fid)))
            seen.append(tuple(answers))

        return [Thread("d0v0", body)], None

    rep = explore(
        program,
        DFSStrategy(),
        monitors_factory=default_monitors,
        faults=parse_faults(["smc:RX_RELEASE:DENIED,BUSY", "smc:VERSION"]),
        max_faults=2,
        stop_on_first=False,
    )
    assert rep.exhausted
    expected = {
        (a, b) for a in (0, *FAULT_CODES) for b in (0, abi.FFA_RET_BUSY, abi.FFA_RET_DENIED)
    }
    assert set(seen) == expected and len(seen) == len(expected)
