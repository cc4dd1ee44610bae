"""``ffasim check`` / ``ffasim replay``: exit codes and one-line messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffasim.check.schedule import Schedule
from ffasim.cli import app

runner = CliRunner()


def test_check_list_names_every_builtin_scenario_and_variant() -> None:
    r = runner.invoke(app, ["check", "--list"])
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "Built-in scenarios:"
    for name in (
        "default",
        "partinfo-2vcpu",
        "rxtx-map-race",
        "share-vs-partinfo",
        "destroy-during-call",
        "sri-vs-notification-get",
    ):
        assert any(line.startswith(f"  {name} ") for line in lines), name
    i = lines.index("Variants:")
    assert any(line.startswith("  reference ") for line in lines[i:])
    assert any(line.startswith("  seed-v1 ") for line in lines[i:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "no-such-scenario"], r"^error: unknown scenario 'no-such-scenario': "),
        (
            ["check", "partinfo-2vcpu", "--variant", "v9"],
            r"^error: unknown variant 'v9' \(known: .*reference.*\)$",
        ),
        (
            ["check", "--faults", "smc:*:LATER"],
            r"^error: fault spec 'smc:\*:LATER': unknown error "
            r"code 'LATER' \(injectable: ",
        ),
        (
            ["check", "--strategy", "bfs"],
            r"^error: unknown strategy 'bfs' \(expected one of: dfs, pct, random\)$",
        ),
        (["check", "--budget", "0"], r"^error: --budget must be at least 1, not 0$"),
        (["check", "--max-faults", "-1"], r"^error: --max-faults must be 0 or more, not -1$"),
        (["check", "--time-limit", "0"], r"^error: --time-limit must be positive, not 0.0$"),
    ],
)
def test_check_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1
    assert re.match(message, r.stderr.rstrip("\n"))
    assert "Traceback" not in r.output


def test_check_bad_input_under_json_prints_a_json_error() -> None:
    r = runner.invoke(app, ["check", "--json", "--strategy", "bfs"])
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {
        "error": "unknown strategy 'bfs' (expected one of: dfs, pct, random)"
    }


def test_replay_missing_file_exits_2(tmp_path: Path) -> None:
    r = runner.invoke(app, ["replay", str(tmp_path / "nope.json")])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: cannot read {tmp_path / 'nope.json'}: ")


def test_replay_not_a_schedule_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"format": 7}')
    r = runner.invoke(app, ["replay", str(p)])
    assert r.exit_code == 2
    assert r.stderr == "error: unsupported schedule format 7 (expected 1)\n"


def test_replay_unknown_format_exits_2(tmp_path: Path) -> None:
    p = Schedule([], scenario="partinfo-2vcpu").save(tmp_path / "s.json")
    r = runner.invoke(app, ["replay", str(p), "--format", "svg"])
    assert r.exit_code == 2
    assert r.stderr == (
        "error: unknown --format 'svg' (expected one of: text, json, mermaid, chrome)\n"
    )


def test_replay_schedule_without_scenario_exits_2(tmp_path: Path) -> None:
    p = Schedule([]).save(tmp_path / "s.json")
    r = runner.invoke(app, ["replay", str(p)])
    assert r.exit_code == 2
    assert r.stderr == "error: the schedule names no scenario\n"
