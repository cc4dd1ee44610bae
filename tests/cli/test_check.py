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
            r"^error: unknown strategy 'bfs' \(expected one of: portfolio, dfs, pct, random\) "
            r"\(did you mean 'dfs'\?\)$",
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
        "error": "unknown strategy 'bfs' (expected one of: portfolio, dfs, pct, random) "
        "(did you mean 'dfs'?)"
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


# -- against the model ------------------------------------------------------------------------


def test_check_seed_v1_reports_the_assert_and_exits_1(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert re.match(
        r"^ffasim check: partinfo-2vcpu on seed-v1, portfolio \(seed 0\): 1 finding in "
        r"\d+ executions? \(\d+\.\d\d s\)$",
        lines[0],
    )
    assert lines[2].startswith(
        "assertion: HypervisorPanic: Assertion '!spin_is_locked(&ffa_spmc_rx_lock)' failed"
    )
    assert "  contexts:  d0v0" in lines
    assert "  calls:     d0v0 FFA_PARTITION_INFO_GET" in lines
    assert "  in flight: d1v0 FFA_PARTITION_INFO_GET, d0v0 FFA_PARTITION_INFO_GET" in lines
    assert "  held:      ffa_spmc_rx_lock by d1v0" in lines
    path = tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    assert f"  schedule:  {path} (1 preemption, " in r.stdout
    assert lines[-1] == f"  replay:    ffasim replay {path}"


def test_check_json_report_and_exit_0_when_clean(tmp_path: Path) -> None:
    r = runner.invoke(app, ["check", "rxtx-map-race", "--json", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["findings"] == [] and doc["exhausted"] is True and doc["exhaustive"] is True
    assert doc["variant"] == "reference" and doc["strategy"] == "portfolio"
    t = runner.invoke(app, ["check", "rxtx-map-race", "--strategy", "dfs", "--out", str(tmp_path)])
    assert re.match(
        r"^ffasim check: rxtx-map-race on reference, dfs: nothing found in \d+ executions "
        r"\(exhaustive, \d+\.\d\d s\)\n$",
        t.stdout,
    )


def test_check_with_faults_reports_the_injected_fault(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "check",
            "partinfo-2vcpu",
            "--variant",
            "seed-v1",
            "--faults",
            "helper",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 1
    assert "lock-leak: d1v0 returns from FFA_PARTITION_INFO_GET" in r.stdout or (
        "lock-leak: d0v0 returns from FFA_PARTITION_INFO_GET" in r.stdout
    )
    assert re.search(
        r"^  faults:    helper:ffa_rxtx_spmc_rx_acquire -> forced \(step \d+\)$", r.stdout, re.M
    )


@pytest.mark.parametrize("fmt", ["text", "json", "mermaid", "chrome"])
def test_replay_prints_the_trace_in_each_format_and_exits_1(tmp_path: Path, fmt: str) -> None:
    runner.invoke(app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)])
    path = tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    r = runner.invoke(app, ["replay", str(path), "--format", fmt])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("finding: assertion: HypervisorPanic: Assertion ")
    if fmt == "text":
        assert re.search(r"^ +\d+  d[01]v0 +finding +!! assertion: ", r.stdout, re.M)
    elif fmt == "mermaid":
        assert r.stdout.startswith("sequenceDiagram\n")
    else:
        json.loads(r.stdout)


def test_replay_output_file_and_context_projection(tmp_path: Path) -> None:
    runner.invoke(app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)])
    path = tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    out = tmp_path / "trace.txt"
    r = runner.invoke(app, ["replay", str(path), "--output", str(out), "--context", "d1v0"])
    assert r.exit_code == 1 and r.stdout == ""
    text = out.read_text()
    contexts = {line.split()[1] for line in text.splitlines()}
    assert contexts == {"d0v0", "d1v0"}  # d0v0 (which panics) only for the finding line
    assert sum("d0v0" in line.split()[1] for line in text.splitlines()) == 1


def test_replay_divergence_exits_2_with_one_line(tmp_path: Path) -> None:
    runner.invoke(app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)])
    path = tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    raw = json.loads(path.read_text())
    raw["decisions"] = raw["decisions"][:-1]  # one decision short
    path.write_text(json.dumps(raw))
    r = runner.invoke(app, ["replay", str(path)])
    assert r.exit_code == 2
    assert re.match(r"^error: replay diverged at step \d+ \(decision \d+\): ", r.stderr)
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "json", "--context", "d0v0"],
            "error: --context applies to --format text only\n",
        ),
        (["--full"], "error: --full applies to --format mermaid only\n"),
    ],
)
def test_replay_options_for_another_format_are_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    p = Schedule([], scenario="partinfo-2vcpu").save(tmp_path / "s.json")
    r = runner.invoke(app, ["replay", str(p), *args])
    assert r.exit_code == 2
    assert r.stderr == message


def test_replay_full_mermaid_keeps_the_boot_probe(tmp_path: Path) -> None:
    runner.invoke(app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)])
    path = tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    short = runner.invoke(app, ["replay", str(path), "--format", "mermaid"]).stdout
    full = runner.invoke(app, ["replay", str(path), "--format", "mermaid", "--full"]).stdout
    assert "FFA_VERSION" not in short and "Xen->>SPMC: [boot] FFA_VERSION" in full


def test_replay_mermaid_to_markdown_file_is_fenced(tmp_path: Path) -> None:
    runner.invoke(app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)])
    path = tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"
    md, mmd = tmp_path / "f.md", tmp_path / "f.mmd"
    for out in (md, mmd):
        r = runner.invoke(app, ["replay", str(path), "--format", "mermaid", "--output", str(out)])
        assert r.exit_code == 1, r.output
    assert md.read_text() == "```mermaid\n" + mmd.read_text() + "```\n"
