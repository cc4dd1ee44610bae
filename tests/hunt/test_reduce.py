"""Reduction keeps the finding (same kind and message key) and shrinks the program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ffasim.check.explore import finding_key
from ffasim.hunt.generate import Program, generate
from ffasim.hunt.reduce import reduce_program, shrink_schedule_with
from ffasim.hunt.run import _Runner


def _size(p) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    sc = p.scenario
    return len(sc.vms), len(sc.threads), sum(len(t.steps) for t in sc.threads) + len(sc.setup)


def _first(runner: _Runner, kind: str, want: Callable[[Program], bool] = lambda p: True) -> Any:
    """The first program of seed 0's stream that ``want`` accepts and whose first finding
    under ``runner`` is of ``kind``, with that finding (the stream changes with the
    generator: the tests look for their program instead of naming its index)."""
    for i in range(80):
        program = generate(0, i)
        if not want(program):
            continue
        found = runner.first_finding(program)
        if found is not None and found[0].kind == kind:
            return program, found
    raise AssertionError(f"no {kind} finding in seed 0's first 80 programs")


def test_reduce_keeps_the_finding_and_shrinks() -> None:
    runner = _Runner("seed-v1", 24)
    # e.g. a SEND2 with no TX mapped dereferences NULL on seed-v1
    program, found = _first(runner, "assertion", lambda p: len(p.scenario.vms) > 1)
    reduced = reduce_program(
        program,
        found,
        runner.first_finding,
        shrink_schedule=shrink_schedule_with(runner.program_of, runner.plan_of),
    )
    assert finding_key(reduced.finding) == finding_key(found[0])
    assert _size(reduced.program) < _size(program)
    assert len(reduced.program.scenario.vms) == 1
    assert reduced.result.preemptions <= found[1].preemptions


def test_reduce_narrows_the_faults_to_the_site_injected() -> None:
    runner = _Runner("head", 24)
    # faults "smc": a failed probe call, then seed defect 4 (64 partitions fail it unaided)
    program, found = _first(
        runner, "isolation", lambda p: p.faults == ("smc",) and p.sp_set != "many"
    )
    reduced = reduce_program(program, found, runner.first_finding)
    assert finding_key(reduced.finding) == finding_key(found[0])
    (site,) = reduced.program.faults
    assert site.startswith("smc:FFA_")
    assert reduced.program.scenario.threads == ()
