"""What a user of the ``ffasim`` command runs into: help that reads well, usage mistakes named
in one line (and in JSON under ``--json``), options that do what they say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffasim.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def _one_error(r: object, pattern: str) -> None:
    """Exit 2, and stderr is exactly one line matching ``pattern`` (anchored)."""
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    err = r.stderr  # type: ignore[attr-defined]
    assert err.count("\n") == 1, err
    assert re.fullmatch(pattern, err.rstrip("\n")), err
    assert "Traceback" not in r.output  # type: ignore[attr-defined]


# -- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        (
            "run",
            "The threads run one after another in the order the scenario lists them. Exit 0: "
            "every step got an answer it accepts and nothing leaked; 1: not so, or the model "
            "crashed; 2: bad usage or scenario.",
        ),
        (
            "check",
            "Each finding is minimised and its schedule saved under --out; replay it with "
            "'ffasim replay FILE'. Exit 0: nothing found; 1: found; 2: bad usage or scenario.",
        ),
        (
            "replay",
            "Exit 1 when the replayed execution shows a finding (it reproduces), 0 when it "
            "does not, 2 on a bad file or when the execution leaves the schedule (the model "
            "changed). With --variant V: exit 1 when the recorded finding happens again on V, "
            "0 when it does not.",
        ),
    ],
)
def test_help_paragraphs_are_reflowed_not_cut_at_the_source_column(
    command: str, sentence: str
) -> None:
    r = runner.invoke(app, [command, "--help"], env=WIDE)
    assert r.exit_code == 0
    # click wraps each paragraph to the terminal (80 columns under CliRunner): a paragraph
    # joined back must be the sentence whole, not cut where the docstring's lines were.
    paragraphs = [" ".join(p.split()) for p in r.stdout.split("\n\n")]
    assert sentence in paragraphs, r.stdout


def test_help_shows_value_names_and_no_type_on_flags() -> None:
    r = runner.invoke(app, ["check", "--help"], env=WIDE)
    assert r.exit_code == 0
    rows = {m[1]: m[2] for m in re.finditer(r"^  (--[a-z-]+) (\S*) +", r.stdout, re.M)}
    assert rows["--variant"] == "NAME"
    assert rows["--budget"] == "N"
    assert rows["--faults"] == "SPEC"
    assert rows["--time-limit"] == "S"
    assert rows["--out"] == "DIR"
    # A flag takes no value: nothing in the value column (it used to say <bool>).
    for flag in ("--json", "--list", "--all"):
        assert re.search(rf"^  {flag} {{2,}}[A-Z]", r.stdout, re.M), flag
    assert re.search(r"Usage: ffasim check \[OPTIONS\] \[SCENARIO\]", r.stdout)


def test_replay_usage_names_its_argument_file() -> None:
    r = runner.invoke(app, ["replay", "--help"], env=WIDE)
    assert r.exit_code == 0
    assert re.search(r"Usage: ffasim replay \[OPTIONS\] \{?FILE\}?\s", r.stdout), r.stdout


# -- run --------------------------------------------------------------------------------------


def test_run_trace_format_without_trace_is_a_usage_error() -> None:
    r = runner.invoke(app, ["run", "--trace-format", "mermaid"])
    _one_error(r, r"error: --trace-format needs --trace FILE \(where the trace goes\)")


def test_run_json_prints_a_json_error_for_an_unknown_scenario() -> None:
    r = runner.invoke(app, ["run", "no-such", "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {
        "schema_version": 1,
        "error": "unknown scenario 'no-such': not a built-in (default, partinfo-2vcpu, "
        "rxtx-map-race, share-vs-partinfo, destroy-during-call, sri-vs-notification-get, "
        "send2-vm, map-2vcpu, partinfo-vs-unmap, send2-vs-map, version-vs-partinfo, send2-sp, "
        "share-too-long, version-mbz, partinfo-vs-release-unmap, "
        "destroy-with-pending-notification, or pKVM's pkvm-*: see ffasim check --list) "
        "nor a .toml or .py file",
    }


def test_run_json_prints_a_json_error_for_an_unknown_variant() -> None:
    r = runner.invoke(app, ["run", "--json", "--variant", "v9"])
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {
        "schema_version": 1,
        "error": "unknown variant 'v9' (known: reference, seed-v1, head, xen-4.19, xen-4.20, "
        "xen-4.21, xen-4.22)",
    }


def test_run_mermaid_trace_leaves_out_boot_and_setup_like_replay(tmp_path: Path) -> None:
    out = tmp_path / "t.mmd"
    r = runner.invoke(
        app, ["run", "partinfo-2vcpu", "--trace", str(out), "--trace-format", "mermaid"]
    )
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[:5] == [
        "sequenceDiagram",
        "    participant d0v0",
        "    participant d1v0",
        "    participant Xen",
        "    participant SPMC",
    ]
    assert re.fullmatch(r"    Note over Xen,SPMC: boot and setup: \d+ events not shown", lines[6])
    assert lines[7] == "    d0v0->>Xen: FFA_PARTITION_INFO_GET"
    assert not any("[boot]" in line for line in lines)


def test_run_mermaid_trace_to_markdown_file_is_fenced(tmp_path: Path) -> None:
    out = tmp_path / "t.md"
    r = runner.invoke(
        app, ["run", "partinfo-2vcpu", "--trace", str(out), "--trace-format", "mermaid"]
    )
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith("```mermaid\nsequenceDiagram\n") and text.endswith("\n```\n")


def test_run_text_trace_marks_each_thread(tmp_path: Path) -> None:
    out = tmp_path / "t.txt"
    r = runner.invoke(app, ["run", "partinfo-2vcpu", "--trace", str(out), "--trace-format", "text"])
    assert r.exit_code == 0, r.output
    marks = [line.split()[1:] for line in out.read_text().splitlines() if " thread-" in line]
    assert marks == [
        ["d0v0", "thread-start", "d0v0"],
        ["d0v0", "thread-end", "d0v0"],
        ["d1v0", "thread-start", "d1v0"],
        ["d1v0", "thread-end", "d1v0"],
    ]


# -- check --------------------------------------------------------------------------------------


def test_check_list_json_is_json() -> None:
    r = runner.invoke(app, ["check", "--list", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    xen = [s["name"] for s in doc["scenarios"] if s["hypervisor"] == "xen"]
    pkvm = [s["name"] for s in doc["scenarios"] if s["hypervisor"] == "pkvm"]
    assert pkvm[:2] == ["pkvm-default", "pkvm-d1-reclaim-rx"] and "pkvm-d12-stack-leak" in pkvm
    assert [v["name"] for v in doc["variants"] if v["hypervisor"] == "pkvm"] == [
        "head",
        "linux-6.5",
        "linux-6.10",
        "linux-6.11",
        "linux-6.18",
        "linux-7.2",
    ]
    assert xen == [
        "default",
        "partinfo-2vcpu",
        "rxtx-map-race",
        "share-vs-partinfo",
        "destroy-during-call",
        "sri-vs-notification-get",
        "send2-vm",
        "map-2vcpu",
        "partinfo-vs-unmap",
        "send2-vs-map",
        "version-vs-partinfo",
        "send2-sp",
        "share-too-long",
        "version-mbz",
        "partinfo-vs-release-unmap",
        "destroy-with-pending-notification",
    ]
    assert [v["name"] for v in doc["variants"] if v["hypervisor"] == "xen"] == [
        "reference",
        "seed-v1",
        "head",
        "xen-4.19",
        "xen-4.20",
        "xen-4.21",
        "xen-4.22",
    ]
    assert all(s["description"] and "\n" not in s["description"] for s in doc["scenarios"])


def test_check_time_limit_nan_is_refused() -> None:
    r = runner.invoke(app, ["check", "partinfo-2vcpu", "--time-limit", "nan"])
    _one_error(r, r"error: --time-limit must be a number of seconds, not nan")


# -- replay -------------------------------------------------------------------------------------


def _seed_assert_schedule(tmp_path: Path) -> Path:
    r = runner.invoke(
        app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1, r.output
    return tmp_path / "partinfo-2vcpu-seed-v1-assertion.json"


def test_replay_of_a_binary_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_bytes(b"\xff\xfe\x00{")
    r = runner.invoke(app, ["replay", str(p)])
    _one_error(r, rf"error: {re.escape(str(p))}: not a schedule file \(byte 0 is not UTF-8 text\)")


def test_replay_same_finding_at_moved_source_lines_reproduces_without_a_note(
    tmp_path: Path,
) -> None:
    path = _seed_assert_schedule(tmp_path)
    doc = json.loads(path.read_text())
    # The model was edited since the check: every line number in the message moved.
    doc["finding"] = re.sub(r"\.py:(\d+)", lambda m: f".py:{int(m[1]) + 7}", doc["finding"])
    path.write_text(json.dumps(doc))
    r = runner.invoke(app, ["replay", str(path), "--format", "json", "-o", str(tmp_path / "t")])
    assert r.exit_code == 1, r.output
    assert re.fullmatch(
        r"finding: assertion: HypervisorPanic: Assertion '!spin_is_locked\(&ffa_spmc_rx_lock\)' "
        r"failed \(at .*\)\n",
        r.stderr,
    ), r.stderr


def test_replay_of_another_finding_still_says_so(tmp_path: Path) -> None:
    path = _seed_assert_schedule(tmp_path)
    doc = json.loads(path.read_text())
    doc["finding"] = "deadlock: d0v0 and d1v0 wait for each other"
    path.write_text(json.dumps(doc))
    r = runner.invoke(app, ["replay", str(path), "-o", str(tmp_path / "t")])
    assert r.exit_code == 1, r.output
    assert r.stderr.splitlines()[-1] == (
        "note: the schedule recorded 'deadlock: d0v0 and d1v0 wait for each other', "
        "the replay found something else"
    )


# -- decode -------------------------------------------------------------------------------------


def test_decode_sample_and_file_together_is_a_usage_error(tmp_path: Path) -> None:
    p = tmp_path / "d.hex"
    p.write_text("00 00")
    r = runner.invoke(app, ["decode", "--sample", "--file", str(p)])
    _one_error(r, r"error: give either --sample or --file, not both")


@pytest.mark.parametrize(
    ("hex_text", "message"),
    [
        ("00", r"error: 1 byte decodes as no known descriptor; name one with --type"),
        ("0000", r"error: 2 bytes decode as no known descriptor; name one with --type"),
    ],
)
def test_decode_unknown_bytes_message_counts_in_words(hex_text: str, message: str) -> None:
    _one_error(runner.invoke(app, ["decode", hex_text]), message)


# -- scenarios ----------------------------------------------------------------------------------

EXITING_STEP = """\
from ffasim.scenario import Scenario, ThreadSpec, VmSpec, python_step


def leave(env):
    raise SystemExit(4)


SCENARIO = Scenario(
    "py-exit", vms=[VmSpec()], threads=[ThreadSpec((python_step(leave, "leave"),), vm=0)]
)
"""


def test_run_python_step_calling_exit_is_reported_as_a_crash(tmp_path: Path) -> None:
    p = tmp_path / "s.py"
    p.write_text(EXITING_STEP)
    r = runner.invoke(app, ["run", str(p)])
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert lines[-2:] == ["crash: RuntimeError in d0v0: leave called exit(4)", "verdict: FAILED"]


def test_check_python_step_calling_exit_is_a_crash_finding(tmp_path: Path) -> None:
    p = tmp_path / "s.py"
    p.write_text(EXITING_STEP)
    r = runner.invoke(app, ["check", str(p), "--out", str(tmp_path / "f"), "--json"])
    assert r.exit_code == 1, r.output
    (finding,) = json.loads(r.stdout)["findings"]
    assert finding["kind"] == "crash"
    assert re.fullmatch(r"RuntimeError: leave called exit\(4\) \(at .*\)", finding["message"])


def test_replay_unknown_context_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = _seed_assert_schedule(tmp_path)
    r = runner.invoke(app, ["replay", str(path), "--context", "d0v9"])
    _one_error(r, r"error: no context 'd0v9' in this execution \(contexts: boot, d0v0, d1v0.*\)")


def test_check_out_naming_a_file_is_refused_before_exploring(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_text("")
    r = runner.invoke(app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--out", str(p)])
    _one_error(
        r,
        rf"error: --out {re.escape(str(p))} is a file; "
        r"it must be a directory \(created if missing\)",
    )


def test_check_stopped_by_the_time_limit_says_so_not_budget(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["check", "default", "--time-limit", "1e-9", "--out", str(tmp_path), "--json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["exhausted"], doc["stopped_by"]) == (False, "time-limit")
    assert doc["executions"] < doc["budget"]
    r = runner.invoke(app, ["check", "default", "--time-limit", "1e-9", "--out", str(tmp_path)])
    assert re.fullmatch(
        r"ffasim check: default on reference, portfolio \(seed 0\): nothing found in \d+ "
        r"executions? "
        r"\(time limit reached, not exhaustive, \d+\.\d\d s\)\n",
        r.stdout,
    ), r.stdout


@pytest.mark.parametrize(
    ("extra", "scope", "stopped_by"),
    [
        ([], "", "finding"),
        (["--all", "--budget", "5"], "budget reached, not exhaustive, ", "budget"),
        (
            ["--all", "--faults", "smc:PARTITION_INFO_GET:DENIED", "--preemption-bound", "0"],
            "every schedule with at most 0 preemptions, ",
            "exhausted",
        ),
        (["--all", "--faults", "smc:PARTITION_INFO_GET:DENIED"], "exhaustive, ", "exhausted"),
    ],
)
def test_check_with_findings_says_how_far_the_search_went_under_all(
    tmp_path: Path, extra: list[str], scope: str, stopped_by: str
) -> None:
    args = ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--strategy", "dfs"]
    args += ["--out", str(tmp_path), *extra]
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    head = r.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"ffasim check: partinfo-2vcpu on seed-v1, dfs(, faults \S+)?: \d+ findings? in "
        rf"\d+ executions? \({re.escape(scope)}\d+\.\d\d s\)",
        head,
    ), head
    r = runner.invoke(app, [*args, "--json"])
    assert json.loads(r.stdout)["stopped_by"] == stopped_by


SPEC_MISS = """\
[scenario]
name = "miss"

[[vm]]

[[thread]]
vm = 0
steps = [{ op = "rx_release", expect = "BUSY" }]
"""


def test_replay_from_another_directory_of_a_relative_toml_finding_has_no_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.toml").write_text(SPEC_MISS)
    monkeypatch.chdir(work)
    r = runner.invoke(app, ["check", "s.toml", "--out", "f"])
    assert r.exit_code == 1, r.output
    schedule = work / "f" / "miss-reference-spec.json"
    assert json.loads(schedule.read_text())["finding"].endswith("[s.toml:8]")
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["replay", str(schedule), "-o", "t.txt"])
    assert r.exit_code == 1, r.output
    assert re.fullmatch(
        r"finding: spec: d0v0: rx_release\(\): FFA_RX_RELEASE returned FFA_ERROR\([A-Z_]+\), "
        rf"expected BUSY \[{re.escape(str(work / 's.toml'))}:8\]\n",
        r.stderr,
    ), r.stderr


def test_check_preemption_bound_with_pct_is_refused_not_ignored() -> None:
    r = runner.invoke(app, ["check", "--strategy", "pct", "--preemption-bound", "1"])
    _one_error(r, r"error: --preemption-bound applies to dfs and the portfolio, not pct")


def test_decode_list_samples_json_is_json() -> None:
    r = runner.invoke(app, ["decode", "--list-samples", "--json"])
    assert r.exit_code == 0, r.output
    samples = json.loads(r.stdout)["samples"]
    names = [s["name"] for s in samples]
    assert names == sorted(names) and "mem_share_v1_1" in names
    text = runner.invoke(app, ["decode", "--list-samples"]).stdout.splitlines()
    assert text == [f"{s['name']:24} {s['title']}" for s in samples]


def test_run_summary_counts_in_the_singular_when_one(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text(
        '[scenario]\nname = "one"\n\n[[vm]]\n\n[[thread]]\nvm = 0\n'
        'steps = [{ op = "rx_release", expect = "any" }]\n'
    )
    r = runner.invoke(app, ["run", str(p)])
    assert r.exit_code == 0, r.output
    summary = [line for line in r.stdout.splitlines() if line.startswith("summary:")]
    assert len(summary) == 1
    assert re.fullmatch(
        r"summary: \d+ FF-A calls \(1 from guests\), 1 step, 1 expected error, 0 unexpected",
        summary[0],
    ), summary


def test_check_faults_with_max_faults_0_is_refused() -> None:
    r = runner.invoke(app, ["check", "--faults", "helper", "--max-faults", "0"])
    _one_error(
        r, r"error: --faults with --max-faults 0 injects nothing; leave out one or the other"
    )


def test_root_help_lists_commands_in_the_order_of_use() -> None:
    r = runner.invoke(app, ["--help"], env=WIDE)
    assert r.exit_code == 0
    commands = re.findall(r"^  (\w+) {2,}\S", r.stdout.split("Commands:")[1], re.MULTILINE)
    assert commands == ["run", "check", "hunt", "replay", "decode", "schema"], r.stdout


def test_replay_divergence_says_how_to_get_a_fresh_schedule(tmp_path: Path) -> None:
    path = _seed_assert_schedule(tmp_path)
    raw = json.loads(path.read_text())
    raw["decisions"] = raw["decisions"][:3]
    path.write_text(json.dumps(raw))
    r = runner.invoke(app, ["replay", str(path)])
    _one_error(
        r,
        r"error: replay diverged at step \d+ \(decision 3\): schedule expects .*, execution "
        r"offers .* \(the model, the scenario or the schedule changed since it was recorded; "
        r"'ffasim check partinfo-2vcpu --variant seed-v1' records a fresh one\)",
    )


def test_check_notes_a_fault_spec_that_matched_no_site(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "check",
            "rxtx-map-race",
            "--faults",
            "alloc:bogus",
            "--faults",
            "helper",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert re.fullmatch(
        r"note: --faults 'alloc:bogus' matched no fault site this scenario reaches: "
        r"nothing was injected for it\n",
        r.stderr,
    )


def test_check_json_lists_unmatched_fault_specs(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["check", "rxtx-map-race", "--faults", "smc:RX_ACQUIRE", "--json", "--out", str(tmp_path)],
    )
    doc = json.loads(r.stdout)
    assert doc["unmatched_faults"] == ["smc:RX_ACQUIRE"]



def test_a_variant_that_refuses_the_vms_is_one_spec_finding_saying_why(tmp_path: Path) -> None:
    """Xen 4.19 refuses an FF-A 1.2 SPMC (fixed by da07df5558): no guest gets FF-A, whatever
    the schedule. The finding names the refusal and its cause, not a Python exception."""
    r = runner.invoke(
        app, ["check", "partinfo-2vcpu", "--variant", "xen-4.19", "--json", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1, r.output
    (f,) = json.loads(r.stdout)["findings"]
    assert f["kind"] == "spec"
    assert f["message"] == (
        "the scenario's VMs cannot use FF-A: Xen refused to create d0: -ENODEV (-19), its FF-A "
        'probe at boot failed (Xen 4.19 needs an SPMC of FF-A 1.1: spmc_version = "1.1"; head '
        "refuses 64 partitions)"
    )


def test_python_dash_m_ffasim_is_the_command_line() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "ffasim", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.startswith("ffasim "), r.stderr
