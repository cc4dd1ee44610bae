"""check_scenario / replay_file: schedule files, reports, replay and its divergence, and how the
runner treats injected faults."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ffasim import abi
from ffasim.check.explore import explore
from ffasim.check.monitors import default_monitors
from ffasim.check.schedule import Decision, ReplayDivergence, Schedule
from ffasim.check.scheduler import TraceEvent
from ffasim.check.strategies import DFSStrategy
from ffasim.machine import Machine, Thread
from ffasim.scenario._check import (
    CheckError,
    calls_in_flight_at,
    check_scenario,
    locks_held_at,
    replay_file,
    resolve_variant,
    scenario_program,
)
from ffasim.system import DomainCreationError


def test_findings_are_saved_to_new_files_never_overwritten(tmp_path: Path) -> None:
    a = check_scenario("partinfo-2vcpu", variant="seed-v1", out_dir=tmp_path)
    b = check_scenario("partinfo-2vcpu", variant="seed-v1", out_dir=tmp_path)
    assert a.issues[0].path == tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    assert b.issues[0].path == tmp_path / "partinfo-2vcpu-seed-v1-assertion-2.json"
    saved = Schedule.load(a.issues[0].path)
    assert (saved.scenario, saved.variant) == ("partinfo-2vcpu", "seed-v1")
    assert saved.strategy.startswith("portfolio: ")  # which part of the default found it
    assert saved.finding == a.issues[0].finding.summary()
    assert saved.decisions == a.issues[0].result.decisions


def test_report_json_names_kind_contexts_calls_and_replay(tmp_path: Path) -> None:
    r = check_scenario("partinfo-2vcpu", variant="seed-v1", out_dir=tmp_path)
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["scenario"] == "partinfo-2vcpu" and doc["variant"] == "seed-v1"
    f = doc["findings"][0]
    assert f["kind"] == "assertion"
    assert f["threads"] == ["d0v0"] and f["calls"] == ["d0v0 FFA_PARTITION_INFO_GET"]
    assert f["locks_held"] == [["ffa_spmc_rx_lock", "d1v0"]]
    assert f["in_flight"] == ["d1v0 FFA_PARTITION_INFO_GET", "d0v0 FFA_PARTITION_INFO_GET"]
    assert f["replay"] == f"ffasim replay {f['schedule']}"
    assert Path(f["schedule"]).is_file()


def test_reference_reports_nothing_and_saves_nothing(tmp_path: Path) -> None:
    r = check_scenario("rxtx-map-race", out_dir=tmp_path / "out")
    assert r.variant == "reference" and not r.found and r.exhausted
    assert not (tmp_path / "out").exists()


def test_replay_reproduces_the_trace_bit_for_bit(tmp_path: Path) -> None:
    issue = check_scenario("partinfo-2vcpu", variant="seed-v1", out_dir=tmp_path).issues[0]
    assert issue.path is not None
    first, trace1 = replay_file(issue.path)
    second, trace2 = replay_file(issue.path)
    assert trace1 == trace2 == list(issue.result.trace)
    assert first.decisions == second.decisions


def test_replay_of_an_edited_schedule_diverges_loudly(tmp_path: Path) -> None:
    issue = check_scenario("partinfo-2vcpu", variant="seed-v1", out_dir=tmp_path).issues[0]
    assert issue.path is not None
    raw = json.loads(issue.path.read_text())
    d = Decision.from_json(raw["decisions"][0])
    other = next(a for a in d.alternatives if a != d.chosen)
    raw["decisions"][0][1] = other
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(raw))
    # The edited choice itself is valid; the rest of the schedule no longer fits.
    with pytest.raises(ReplayDivergence, match=r"^replay diverged at step \d+ \(decision \d+\)"):
        replay_file(edited)


def test_unknown_variant_is_a_check_error() -> None:
    class Sc:
        variant = None

    assert resolve_variant(Sc(), None) == "reference"
    with pytest.raises(CheckError, match=r"^unknown variant 'v0' \(known: .*seed-v1.*\)$"):
        resolve_variant(Sc(), "v0")


def test_locks_held_at_follows_lock_and_unlock_events() -> None:
    ev = [
        TraceEvent(0, "d0v0", "lock", "a"),
        TraceEvent(1, "d1v0", "lock", "b"),
        TraceEvent(2, "d0v0", "unlock", "a"),
        TraceEvent(3, "d1v0", "finding", "x"),
    ]
    assert locks_held_at(ev, 3) == [("b", "d1v0")]
    assert locks_held_at(ev, 1) == [("a", "d0v0")]
    assert locks_held_at(ev, -1) == [("b", "d1v0")]


def test_calls_in_flight_at_tracks_hypercalls_per_context() -> None:
    pig = abi.regs(abi.FFA_PARTITION_INFO_GET)
    ev = [
        TraceEvent(0, "d0v0", "call", "d0v0", ("hvc", pig)),
        TraceEvent(1, "d0v0", "call", "xen", ("smc", pig)),
        TraceEvent(2, "d1v0", "call", "d1v0", ("hvc", abi.regs(abi.FFA_RXTX_MAP_64))),
        TraceEvent(3, "d0v0", "ret", "xen", ("smc", abi.success())),
        TraceEvent(4, "d1v0", "ret", "d1v0", ("hvc", abi.success())),
        TraceEvent(5, "d0v0", "finding", "x"),
    ]
    assert calls_in_flight_at(ev, 3) == ["d0v0 FFA_PARTITION_INFO_GET", "d1v0 FFA_RXTX_MAP_64"]
    assert calls_in_flight_at(ev, 5) == ["d0v0 FFA_PARTITION_INFO_GET"]


def test_locks_held_inside_a_setup_hypercall_belong_to_its_vcpu() -> None:
    ev = [
        TraceEvent(0, "boot", "call", "d1v0", ("hvc", abi.regs(abi.FFA_RXTX_MAP_64))),
        TraceEvent(1, "boot", "lock", "ffa_spmc_tx_lock"),
        TraceEvent(2, "boot", "ret", "d1v0", ("hvc", abi.error(abi.FFA_RET_DENIED))),
        TraceEvent(3, "boot", "lock", "other"),
    ]
    assert locks_held_at(ev, -1) == [("ffa_spmc_tx_lock", "d1v0"), ("other", "boot")]
    assert calls_in_flight_at(ev, 2) == ["d1v0 FFA_RXTX_MAP_64"]


def test_findings_of_one_execution_are_reported_together(tmp_path: Path) -> None:
    # On head, a forced NULL from the TX acquire helper during setup leaks the lock: the
    # lock-leak is the finding, the teardown's complaints about the same lock come with it.
    r = check_scenario("partinfo-2vcpu", variant="head", faults=["helper"], out_dir=tmp_path)
    assert [i.finding.kind for i in r.issues] == ["lock-leak"]
    issue = r.issues[0]
    assert issue.locks_held == [("ffa_spmc_tx_lock", "d1v0")]
    assert issue.also and {f.kind for f in issue.also} == {"leak"}
    assert all("ffa_spmc_tx_lock" in f.message for f in issue.also)
    assert issue.to_json()["also"] == [f.summary() for f in issue.also]


def test_guest_program_stopping_after_an_injected_fault_is_not_a_crash() -> None:
    # An allocation fault makes d0's FFA_RXTX_MAP fail, so its later MEM_SHARE step has no TX
    # buffer: the guest program stops, the hypervisor did nothing wrong.
    r = check_scenario(
        "share-vs-partinfo",
        faults=["alloc:__map_domain_page_global@ffa_handle_rxtx_map"],
        stop_on_first=False,
        budget=300,
        out_dir=None,
        minimise_findings=False,
    )
    assert r.unmatched_faults == ()  # the site exists: the fault was injected
    assert [i.finding.summary() for i in r.issues] == []


class _Scenario:
    name = "synthetic"
    variant = None

    def __init__(self, raise_in: str) -> None:
        self.raise_in = raise_in

    def instantiate(self, variant: str | None = None, *, machine: Machine) -> Any:
        injected = machine.sink.fault("smc:FFA_VERSION", (abi.FFA_RET_DENIED,)) is not None
        if self.raise_in == "create" and injected:
            raise DomainCreationError(0, -12)

        def body() -> None:
            machine.sink.point("smc", "spmc", True)
            raise RuntimeError("model bug")

        return SimpleNamespace(system=None, threads=[Thread("d0v0", body)], finish=list)


def _explore(sc: _Scenario) -> list[str]:
    from ffasim.check.faults import parse_faults

    rep = explore(
        scenario_program(sc, "reference"),
        DFSStrategy(),
        monitors_factory=default_monitors,
        faults=parse_faults(["smc:VERSION"]),
        stop_on_first=False,
    )
    return sorted(f.summary().split(" (at ")[0] for f, _ in rep.findings)


def test_domain_refused_under_an_injected_fault_ends_quietly() -> None:
    # Without the fault the thread runs and crashes; with it Xen refuses the domain: no crash.
    assert _explore(_Scenario("create")) == ["crash: RuntimeError: model bug"]


def test_model_exception_under_an_injected_fault_is_still_a_crash() -> None:
    assert _explore(_Scenario("body")) == ["crash: RuntimeError: model bug"]


def test_an_execution_leaves_nothing_alive_once_explored() -> None:
    # A map from each execution's machine to its scenario instance kept every system alive
    # (the instance refers to its machine): memory grew by ~0.1 MB per execution.
    import gc

    from ffasim.check.strategies import RandomStrategy
    from ffasim.scenario import load

    def machines() -> int:
        gc.collect()
        return sum(isinstance(o, Machine) for o in gc.get_objects())

    before = machines()  # earlier tests in the same process may keep some alive
    program = scenario_program(load("partinfo-2vcpu"), "reference")
    explore(program, RandomStrategy(seed=1, executions=20), monitors_factory=default_monitors)
    assert machines() <= before + 1
