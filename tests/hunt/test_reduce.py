"""Reduction keeps the finding (same kind and message key) and shrinks the program."""

from __future__ import annotations

from ffasim.check.explore import finding_key
from ffasim.hunt.generate import generate
from ffasim.hunt.reduce import reduce_program, shrink_schedule_with
from ffasim.hunt.run import _Runner


def _size(p) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    sc = p.scenario
    return len(sc.vms), len(sc.threads), sum(len(t.steps) for t in sc.threads) + len(sc.setup)


def test_reduce_keeps_the_finding_and_shrinks() -> None:
    runner = _Runner("seed-v1", 24)
    program = generate(0, 1)  # a SEND2 with no TX mapped dereferences NULL on seed-v1
    found = runner.first_finding(program)
    assert found is not None and found[0].kind == "assertion"
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
    program = generate(0, 18)  # faults "smc": a failed probe call, then seed defect 4
    assert program.faults == ("smc",)
    found = runner.first_finding(program)
    assert found is not None and found[0].kind == "isolation"
    reduced = reduce_program(program, found, runner.first_finding)
    assert finding_key(reduced.finding) == finding_key(found[0])
    (site,) = reduced.program.faults
    assert site.startswith("smc:FFA_")
    assert reduced.program.scenario.threads == ()
