"""The hunt loop through the Python API: deterministic, coverage-guided, finds seed-v1's
defects, and every finding is a TOML scenario and a schedule that reproduce it."""

from __future__ import annotations

import json
from pathlib import Path

from ffasim.check.schedule import Schedule
from ffasim.hunt import hunt
from ffasim.hunt.coverage import Corpus, CoverageMonitor
from ffasim.hunt.generate import generate
from ffasim.hunt.run import _Runner
from ffasim.scenario._check import replay_schedule


def test_hunt_is_deterministic_from_the_seed(tmp_path: Path) -> None:
    a = hunt("reference", seed=5, max_programs=6, time_limit=300, out_dir=tmp_path / "a")
    b = hunt("reference", seed=5, max_programs=6, time_limit=300, out_dir=tmp_path / "b")
    assert (a.programs, a.executions, a.coverage) == (b.programs, b.executions, b.coverage)
    assert [f.message for f in a.findings] == [f.message for f in b.findings]


def test_coverage_grows_and_keeps_parents() -> None:
    runner = _Runner("reference", 8)
    corpus = Corpus()
    sizes = []
    for i in range(6):
        reached: set[tuple[str, str, str, str]] = set()
        runner.explore(generate(0, i), reached)
        corpus.add(generate(0, i), reached)
        sizes.append(len(corpus.seen))
    assert sizes[0] > 0 and sizes[-1] > sizes[0]
    assert corpus.parents and corpus.parents[0].index == 0
    assert {layer for layer, *_ in corpus.seen} <= {"hvc", "smc", "sp"}
    assert ("hvc", "FFA_VERSION") in {c[:2] for c in corpus.seen}


def test_coverage_monitor_never_reports() -> None:
    mon = CoverageMonitor(set())
    mon.call("hvc", "d0v0", (0x84000063,))
    mon.ret("hvc", "d0v0", (0x84000061, 0, 0))
    assert {c[:3] for c in mon.seen} == {("hvc", "FFA_VERSION", "success")}


def test_hunt_finds_seed_v1_assertion_and_saves_replayable_files(tmp_path: Path) -> None:
    report = hunt(
        "seed-v1",
        seed=0,
        max_programs=25,
        time_limit=300,
        stop_at_first=False,
        out_dir=tmp_path,
        reduce=False,
    )
    kinds = {f.kind for f in report.findings}
    assert "assertion" in kinds and "isolation" in kinds
    for f in report.findings:
        assert Path(f.scenario).is_file() and Path(f.schedule).is_file()
        assert f.reproduced
        sched = Schedule.load(f.schedule)
        assert sched.scenario == str(Path(f.scenario).resolve())
        again = replay_schedule(sched)
        assert any(g.kind == f.kind for g in again.findings)
    assert json.loads(json.dumps(report.to_json()))["variant"] == "seed-v1"


def test_hunt_stops_at_the_first_finding(tmp_path: Path) -> None:
    report = hunt("seed-v1", seed=0, max_programs=20, time_limit=300, out_dir=tmp_path)
    assert report.stopped == "finding" and len(report.findings) == 1
    assert report.programs == report.findings[0].program + 1


def test_known_artefacts_are_notes_not_findings() -> None:
    from ffasim.check.monitor import Finding
    from ffasim.hunt.run import artefact

    aliased = Finding(
        "double-fetch",
        "xen reads bytes 0x4..0x7 of guest-writable frame 0x80043 (d1, d1 RAM) twice in "
        "d1v1's FFA_MEM_SHARE_64 (steps 445 and 456)",
    )
    hafnium = Finding(
        "deadlock",
        "d0v0 waits for spmc.vm8001.lock held by toolstack; toolstack waits for spmc.vm1.lock "
        "held by d0v0",
    )
    payload = Finding(
        "double-fetch",
        "xen reads bytes 0x14..0x18 of guest-writable frame 0x80003 (d0, d0 RAM) twice in "
        "d0v0's FFA_MSG_SEND2 (steps 171 and 191)",
    )
    header = Finding(
        "double-fetch",
        "xen reads bytes 0xc..0xf of guest-writable frame 0x80003 (d0, d0 RAM) twice in "
        "d0v0's FFA_MSG_SEND2 (steps 171 and 191)",
    )
    xen_lock = Finding("deadlock", "d0v0 waits for d0.ffa.rx_lock held by d0v1; ...")
    assert artefact(aliased) is not None and artefact(hafnium) is not None
    assert artefact(payload) is not None
    assert artefact(header) is None and artefact(xen_lock) is None
    stage1 = Finding(
        "deadlock",
        "d0v0 waits for spmc.mm_stage1_lock held by d0v2; d0v2 waits for spmc.vm0.lock held "
        "by d0v0",
    )
    mixed = Finding(
        "deadlock",
        "d0v0 waits for spmc.vm0.lock held by d0v2; d0v2 waits for ffa_spmc_tx_lock held by d0v0",
    )
    assert artefact(stage1) is not None and artefact(mixed) is None


def test_hunt_finds_a_head_defect_that_reference_fixes(tmp_path: Path) -> None:
    from ffasim.api import replay_file

    report = hunt("head", seed=0, max_programs=6, time_limit=300, out_dir=tmp_path)
    (f,) = report.findings
    assert f.reproduced
    again = replay_file(f.schedule, variant="reference")
    assert not again.reproduced


def test_ctrl_c_reports_what_was_found_so_far(tmp_path: Path) -> None:
    seen = []

    def progress(report: object, program: object) -> None:
        seen.append(program)
        if len(seen) == 2:
            raise KeyboardInterrupt

    report = hunt("reference", seed=0, time_limit=300, out_dir=tmp_path, progress=progress)
    assert report.stopped == "interrupted" and report.programs == 2
