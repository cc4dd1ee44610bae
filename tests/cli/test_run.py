"""``ffasim run``: the call trace, the summary, the verdict and the exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffasim.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _has(lines: list[str], pattern: str) -> bool:
    return any(re.fullmatch(pattern, ln) for ln in lines)


SCENARIO = """\
[scenario]
name = "cli"
description = "one VM maps twice"

[[vm]]

[[setup]]
op = "negotiate"
vm = 0

[[thread]]
vm = 0
steps = [
  { op = "map" },
  { op = "map", expect = "DENIED" },
  { op = "rx_release", expect = "%s" },
]
"""


def test_default_run_prints_the_calls_and_succeeds() -> None:
    r = runner.invoke(app, ["run"])
    assert r.exit_code == 0, r.output
    lines = _lines(r.stdout)
    assert lines[0] == (
        "scenario default on reference: two VMs x two vCPUs: negotiate, map, discover, echo, "
        "share/fill/sum/reclaim, unmap, destroy one VM"
    )
    assert _has(lines, r"d0v0 +FFA_VERSION\(1\.2\) +-> 1\.2")
    assert _has(
        lines, r"d0v0 +FFA_RXTX_MAP_64\(tx=0x40001000, rx=0x40000000, pages=1\) +-> FFA_SUCCESS"
    )
    # The forwarded map is indented under the guest call that caused it.
    assert _has(lines, r"xen {6}FFA_RXTX_MAP_64\(tx=0x0, rx=0x0, pages=0\) +-> FFA_SUCCESS")
    assert _has(lines, r"d0v0 +FFA_PARTITION_INFO_GET\(nil\) +-> FFA_SUCCESS\(count=4, size=24\)")
    assert _has(
        lines,
        r"sp8001 {5}FFA_MSG_SEND_DIRECT_REQ_32\(0x1->0x8001, 0x1, 0x2, 0x3, 0x4, 0x5\) +-> "
        r"FFA_MSG_SEND_DIRECT_RESP_32\(0x8001->0x1, 0x1, 0x2, 0x3, 0x4, 0x5\)",
    )
    for title in (
        "-- setup",
        "-- thread d0v0",
        "-- thread d0v1",
        "-- thread d1v0",
        "-- thread d1v1",
        "-- finish",
    ):
        assert title in lines
    assert not _has(lines, r"-- boot")
    assert re.fullmatch(
        r"summary: \d+ FF-A calls \(19 from guests\), 20 steps, 0 expected errors, 0 unexpected",
        lines[-2],
    )
    assert lines[-1] == "verdict: ok"


def test_variant_changes_the_mediator() -> None:
    r = runner.invoke(app, ["run", "partinfo-2vcpu", "--variant", "seed-v1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].startswith("scenario partinfo-2vcpu on seed-v1: ")
    assert _has(_lines(r.stdout), r"d0v0 +FFA_VERSION\(1\.2\) +-> 1\.1")


def test_boot_calls_on_request() -> None:
    r = runner.invoke(app, ["run", "rxtx-map-race", "--boot"])
    assert r.exit_code == 0
    lines = _lines(r.stdout)
    assert lines[1] == "-- boot"
    assert _has(lines, r"xen +FFA_VERSION\(1\.2\) +-> 1\.2")


def test_expected_errors_are_counted_and_accepted() -> None:
    Path("s.toml").write_text(SCENARIO % "DENIED")
    r = runner.invoke(app, ["run", "s.toml"])
    assert r.exit_code == 0, r.output
    lines = _lines(r.stdout)
    assert _has(lines, r"d0v0 +FFA_RXTX_MAP_64\(.*\) +-> FFA_ERROR\(DENIED\)")
    assert re.fullmatch(
        r"summary: \d+ FF-A calls \(4 from guests\), 4 steps, 2 expected errors, 0 unexpected",
        lines[-2],
    )
    assert lines[-1] == "verdict: ok"


def test_unexpected_answer_fails_with_exit_1() -> None:
    Path("s.toml").write_text(SCENARIO % "BUSY")
    r = runner.invoke(app, ["run", "s.toml"])
    assert r.exit_code == 1
    lines = _lines(r.stdout)
    assert re.fullmatch(
        r"summary: \d+ FF-A calls \(4 from guests\), 4 steps, 1 expected error, 1 unexpected",
        lines[-3],
    )
    assert lines[-2:] == [
        "  d0v0: rx_release(): FFA_RX_RELEASE returned FFA_ERROR(DENIED), expected BUSY "
        "[s.toml:16]",
        "verdict: FAILED",
    ]


def test_json_record() -> None:
    Path("s.toml").write_text(SCENARIO % "BUSY")
    r = runner.invoke(app, ["run", "s.toml", "--json"])
    assert r.exit_code == 1
    rec = json.loads(r.stdout)
    assert (rec["scenario"], rec["variant"], rec["ok"], rec["crash"]) == (
        "cli",
        "reference",
        False,
        None,
    )
    assert rec["summary"]["calls"] == len(rec["calls"])
    assert rec["summary"] == {
        "calls": len(rec["calls"]),
        "guest_calls": 4,
        "steps": 4,
        "expected_errors": 1,
        "unexpected": 1,
        "skipped": 0,
    }
    assert [s["outcome"] for s in rec["steps"]] == ["success", "success", "DENIED", "DENIED"]
    assert rec["steps"][3]["function"] == "FFA_RX_RELEASE"
    assert rec["problems"] == [
        "d0v0: rx_release(): FFA_RX_RELEASE returned FFA_ERROR(DENIED), expected BUSY [s.toml:16]"
    ]
    first = next(c for c in rec["calls"] if c["layer"] == "hvc")
    assert (first["depth"], first["context"], first["function"], first["answer"]) == (
        0,
        "d0v0",
        "FFA_VERSION",
        "1.2",
    )
    assert any(c["depth"] == 1 and c["caller"] == "xen" for c in rec["calls"])


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        ("json", lambda text: isinstance(json.loads(text), (list, dict))),
        ("mermaid", lambda text: text.startswith("sequenceDiagram")),
        ("text", lambda text: "FFA_VERSION" in text),
    ],
)
def test_trace_file_in_each_format(fmt: str, check: object) -> None:
    r = runner.invoke(app, ["run", "rxtx-map-race", "--trace", "t.out", "--trace-format", fmt])
    assert r.exit_code == 0, r.output
    text = Path("t.out").read_text()
    assert callable(check) and check(text)


def test_crash_of_the_model_is_reported_and_fails() -> None:
    Path("s.py").write_text(
        "from ffasim import HypervisorPanic\n"
        "from ffasim.scenario import Scenario, ThreadSpec, python_step\n\n"
        "def panic(env):\n"
        "    raise HypervisorPanic(\"Assertion 'x' failed\")\n\n"
        "SCENARIO = Scenario('crash', threads=[ThreadSpec((python_step(panic),), vm=0)])\n"
    )
    r = runner.invoke(app, ["run", "s.py"])
    assert r.exit_code == 1
    lines = _lines(r.stdout)
    assert lines[-2:] == ["crash: HypervisorPanic in d0v0: Assertion 'x' failed", "verdict: FAILED"]


def test_unknown_scenario_is_a_usage_error() -> None:
    r = runner.invoke(app, ["run", "nope"])
    assert r.exit_code == 2
    assert re.fullmatch(
        r"error: unknown scenario 'nope': not a built-in \(default, .*\) nor a \.toml or \.py "
        r"file\n",
        r.stderr,
    )
    assert r.stdout == ""


def test_bad_scenario_file_names_the_line() -> None:
    Path("s.toml").write_text(SCENARIO.replace('op = "map" }', 'op = "map", rx = 3 }', 1) % "OK")
    r = runner.invoke(app, ["run", "s.toml"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: s.toml:14: thread 1, step 1, rx: map has no key 'rx' ")


def test_unknown_variant_is_a_usage_error() -> None:
    r = runner.invoke(app, ["run", "--variant", "seed-v9"])
    assert r.exit_code == 2
    assert re.fullmatch(r"error: unknown variant 'seed-v9' \(known: .*reference.*\)\n", r.stderr)


def test_unknown_trace_format_is_a_usage_error() -> None:
    r = runner.invoke(app, ["run", "--trace", "x", "--trace-format", "svg"])
    assert r.exit_code == 2
    assert r.stderr == (
        "error: unknown trace format 'svg' (expected one of: text, json, mermaid, chrome)\n"
    )


def test_skipped_steps_are_listed_in_the_summary() -> None:
    Path("s.toml").write_text(
        '[scenario]\nname = "skip"\n\n[[vm]]\nvcpus = 2\n\n'
        '[[thread]]\ntoolstack = "destroy"\nvm = 0\n\n'
        '[[thread]]\nvm = 0\nvcpu = 1\nsteps = [{ op = "negotiate" }]\n'
    )
    r = runner.invoke(app, ["run", "s.toml"])
    assert r.exit_code == 0, r.output
    lines = _lines(r.stdout)
    assert re.fullmatch(r"summary: .*, 0 unexpected, 1 skipped", lines[-3])
    assert lines[-2:] == ["  skipped: d0v1 negotiate(1.2) (d0 was destroyed)", "verdict: ok"]


def test_vms_refused_by_xen_fail_the_run() -> None:
    Path("s.toml").write_text(
        '[scenario]\nname = "refuse"\n\n[[partitions]]\nid = 0x8001\n'
        'uuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n'
        'properties = ["direct_req_recv", "notif_created", "aarch64"]\nvm_created = "DENIED"\n\n'
        '[[vm]]\n\n[[thread]]\nvm = 0\nsteps = [{ op = "negotiate" }]\n'
    )
    r = runner.invoke(app, ["run", "s.toml"])
    assert r.exit_code == 1
    # No description: the title line stops at the variant, with no dangling colon.
    assert _lines(r.stdout)[0] == "scenario refuse on reference"
    assert _lines(r.stdout)[-2:] == [
        "the scenario could not create its VMs: Xen refused to create d0: -EIO (-5), "
        "a partition answered VM created with an error (see the calls above)",
        "verdict: FAILED",
    ]
