"""The checker's fast paths keep what monitors see: step-kind filters, the hypercall stack the
execution keeps for every ``CallTracking`` monitor, and identical runs of the built-in
scenarios whatever the monitors skip."""

from __future__ import annotations

from typing import Any

from ffasim import abi
from ffasim.check.explore import explore, replay
from ffasim.check.monitor import Monitor
from ffasim.check.monitors import default_monitors
from ffasim.check.monitors._base import CallTracking
from ffasim.check.scheduler import Execution, _hooks_of
from ffasim.check.strategies import DFSStrategy
from ffasim.machine import Atomic, Machine, Spinlock, Thread, spin_lock, spin_unlock
from ffasim.scenario._check import load_scenario, scenario_program


def _program(m: Machine) -> Any:
    lock = Spinlock(m, "l")
    x = Atomic(m, "x")

    def body() -> None:
        m.sink.call("hvc", m.current, abi.regs(abi.FFA_VERSION))
        spin_lock(lock)
        x.inc()
        spin_unlock(lock)
        m.sink.ret("hvc", m.current, abi.success())

    return [Thread("d0v0", body), Thread("d1v0", body)], None


class StepLog(Monitor):
    def __init__(self, kinds: frozenset[str] | None) -> None:
        self.step_kinds = kinds
        self.seen: list[tuple[str, str]] = []

    def on_step(self, thread: str, kind: str, key: object, write: bool) -> None:
        self.seen.append((thread, kind))


def _run(monitors: list[Monitor]) -> Execution:
    strategy = DFSStrategy()
    strategy.new_execution()
    ex = Execution(_program, strategy, monitors)
    ex.run()
    return ex


def test_on_step_is_called_only_for_the_step_kinds_a_monitor_asks_for() -> None:
    every, atomics = StepLog(None), StepLog(frozenset({"atomic"}))
    _run([every, atomics])
    assert {k for _, k in every.seen} == {"lock", "atomic"}
    assert atomics.seen == [(t, k) for t, k in every.seen if k == "atomic"]
    assert atomics.seen == [("d0v0", "atomic"), ("d1v0", "atomic")]


class CallSeen(CallTracking):
    """Records what ``current_call`` says while a call and its return are delivered."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, str | None]] = []

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        self.log.append(("call", caller, self.current_call(self.context(caller))))

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        self.log.append(("ret", caller, self.current_call(self.context(caller))))
        super().ret(layer, caller, result)


def test_call_tracking_monitors_share_the_executions_hypercall_stack() -> None:
    a, b = CallSeen(), CallSeen()
    ex = _run([a, b])
    assert a.in_call is ex.hvc_calls and b.in_call is ex.hvc_calls
    # The call is on the stack while every monitor sees it and its return, then popped
    # (both threads enter their call while primed, before their first scheduling point).
    want = [
        ("call", "d0v0", "FFA_VERSION"),
        ("call", "d1v0", "FFA_VERSION"),
        ("ret", "d0v0", "FFA_VERSION"),
        ("ret", "d1v0", "FFA_VERSION"),
    ]
    assert a.log == want and b.log == want
    assert ex.hvc_calls == {"d0v0": [], "d1v0": []}


def test_call_tracking_only_monitors_get_no_call_or_ret_hook() -> None:
    ex = Execution(_program, DFSStrategy(), [CallTracking(), CallSeen()])
    hooks = _hooks_of(ex.monitors)
    assert [h.__self__ for h in hooks["call"]] == [ex.monitors[1]]
    assert [h.__self__ for h in hooks["ret"]] == [ex.monitors[1]]


def test_call_tracking_keeps_its_own_stack_under_another_sink() -> None:
    m = CallSeen()

    class Bare:
        machine = Machine()

    m.attach(Bare())  # type: ignore[arg-type]
    m.call("hvc", "d0v0", abi.regs(abi.FFA_MEM_SHARE_64))
    assert m.current_call("d0v0") == "FFA_MEM_SHARE_64"
    m.ret("hvc", "d0v0", abi.success())
    assert m.current_call("d0v0") is None


def test_partinfo_exploration_replays_bit_for_bit_with_the_default_monitors() -> None:
    prog = scenario_program(load_scenario("partinfo-2vcpu"), "seed-v1")
    report = explore(prog, DFSStrategy(), monitors_factory=default_monitors, budget=40)
    assert report.findings
    finding, first = report.findings[0]
    again = replay(prog, first.decisions, monitors_factory=default_monitors)
    assert again.trace == first.trace
    assert [f.summary() for f in again.findings] == [f.summary() for f in first.findings]
    assert finding.kind == "assertion"
