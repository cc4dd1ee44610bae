"""``ffasim.check_scenario`` / ``ffasim.replay_file`` and ``ffasim replay --variant``: what
the user-facing tests (tests/test_user_api.py) do not pin one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ffasim
from ffasim.api import same_finding
from ffasim.check.schedule import ReplayDivergence, ScheduleError
from ffasim.cli import app
from ffasim.scenario import Scenario, ThreadSpec, VmSpec, python_step, step
from ffasim.scenario._check import CheckError

runner = CliRunner()


@pytest.fixture(scope="module")
def seed_schedule(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("found")
    (finding,) = ffasim.check_scenario("partinfo-2vcpu", variant="seed-v1", out=out).findings
    assert finding.schedule is not None
    return finding.schedule


def test_same_finding_ignores_line_numbers_and_on_another_variant_where_it_was_raised() -> None:
    a = "assertion: Boom (at xen/variants/seed_v1.py:483 f <- xen/ffa.py:9 g)"
    b = "assertion: Boom (at xen/variants/seed_v1.py:490 f <- xen/ffa.py:12 g)"
    c = "assertion: Boom (at xen/variants/reference.py:77 f)"
    assert same_finding(a, b) and not same_finding(a, c)
    assert same_finding(a, c, other_variant=True)
    assert not same_finding("assertion: Boom", "assertion: Bang", other_variant=True)
    assert not same_finding("data-race: Boom", "assertion: Boom", other_variant=True)


def test_replay_on_its_own_variant_must_follow_the_schedule(seed_schedule: Path) -> None:
    raw = json.loads(seed_schedule.read_text())
    raw["decisions"] = raw["decisions"][:3]  # the execution outlives its schedule
    edited = seed_schedule.with_name("edited.json")
    edited.write_text(json.dumps(raw))
    with pytest.raises(ReplayDivergence):
        ffasim.replay_file(edited)
    # On another variant the same file is followed as far as it fits.
    run = ffasim.replay_file(edited, variant="reference")
    assert not run.reproduced and not run.followed


def test_replay_names_what_it_cannot_use(seed_schedule: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckError, match=r"unknown variant 'refrence'.*reference"):
        ffasim.replay_file(seed_schedule, variant="refrence")
    not_a_schedule = tmp_path / "x.json"
    not_a_schedule.write_text("[]")
    with pytest.raises(ScheduleError):
        ffasim.replay_file(not_a_schedule)


def test_a_scenario_a_file_cannot_hold_is_checked_and_replayed_in_this_process(
    tmp_path: Path,
) -> None:
    def ask_twice(env) -> None:  # type: ignore[no-untyped-def]
        env.drv.partition_info()
        env.drv.partition_info()

    sc = Scenario(
        "python-partinfo",
        "two VMs ask for partition information, one from Python",
        vms=[VmSpec(), VmSpec()],
        setup=[step(op, vm=vm) for vm in (0, 1) for op in ("negotiate", "map")],
        threads=[
            ThreadSpec((python_step(ask_twice, "ask twice"),), vm=0),
            ThreadSpec((step("partition_info"),), vm=1),
        ],
    )
    (finding,) = ffasim.check_scenario(sc, variant="seed-v1", out=tmp_path).findings
    assert (tmp_path / "python-partinfo.py").is_file()
    assert finding.schedule is not None
    assert ffasim.replay_file(finding.schedule).reproduced


def test_cli_replay_on_a_variant_exits_by_whether_the_finding_happens_again(
    seed_schedule: Path,
) -> None:
    fixed = runner.invoke(app, ["replay", str(seed_schedule), "--variant", "reference"])
    assert fixed.exit_code == 0, fixed.output
    assert "not reproduced on reference" in fixed.stderr
    same = runner.invoke(app, ["replay", str(seed_schedule), "--variant", "seed-v1"])
    assert same.exit_code == 1
    assert same.stderr.splitlines()[-1] == "reproduced on seed-v1"
    typo = runner.invoke(app, ["replay", str(seed_schedule), "--variant", "v9"])
    assert typo.exit_code == 2
    assert typo.stderr.startswith("error: unknown variant 'v9'")
