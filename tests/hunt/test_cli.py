"""``ffasim hunt`` on the command line: exit codes, the JSON report's shape, the files it
writes, and that ``ffasim check`` and ``ffasim replay`` reproduce a finding from them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ffasim.cli import app

runner = CliRunner()


def test_hunt_seed_v1_json_finds_and_writes_files(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["hunt", "--variant", "seed-v1", "--time-limit", "60", "--json", "--out", str(tmp_path)],
    )
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert set(doc) >= {
        "variant",
        "seed",
        "programs",
        "executions",
        "elapsed",
        "coverage",
        "findings",
    }
    assert doc["variant"] == "seed-v1" and doc["seed"] == 0
    assert doc["coverage"]["combinations"] > 0
    (f,) = doc["findings"]
    assert set(f) >= {"kind", "message", "scenario", "schedule", "program", "elapsed"}
    assert Path(f["scenario"]).suffix == ".toml" and Path(f["schedule"]).suffix == ".json"
    # ffasim replay reproduces it...
    again = runner.invoke(app, ["replay", f["schedule"]])
    assert again.exit_code == 1
    assert f"!! {f['kind']}: " in again.stdout
    # ... and so does ffasim check on the scenario, with the faults the hunt injected.
    faults = [a for spec in f["faults"] for a in ("--faults", spec)]
    check = runner.invoke(
        app,
        [
            "check",
            f["scenario"],
            "--variant",
            "seed-v1",
            "--json",
            "--out",
            str(tmp_path / "c"),
            *faults,
        ],
    )
    assert check.exit_code == 1, check.output
    assert json.loads(check.stdout)["findings"][0]["kind"] == f["kind"]


def test_hunt_text_output_names_the_commands(tmp_path: Path) -> None:
    r = runner.invoke(app, ["hunt", "--variant", "seed-v1", "--out", str(tmp_path)])
    assert r.exit_code == 1
    assert re.match(r"^ffasim hunt: seed-v1 \(seed 0\): 1 finding in \d+ programs?, ", r.stdout)
    assert "  replay:    ffasim replay " in r.stdout
    assert "  check:     ffasim check " in r.stdout


def test_hunt_reference_briefly_finds_nothing(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["hunt", "--time-limit", "2", "--json", "--out", str(tmp_path), "--seed", "3"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["findings"] == [] and doc["programs"] >= 1
    assert not list(tmp_path.glob("*"))


def test_hunt_unknown_variant_is_exit_2_with_one_line() -> None:
    r = runner.invoke(app, ["hunt", "--variant", "refrence"])
    assert r.exit_code == 2
    assert re.fullmatch(
        r"error: unknown variant 'refrence'.*\(did you mean 'reference'\?\)\n", r.stderr
    )


def test_hunt_bad_time_limit_is_exit_2() -> None:
    r = runner.invoke(app, ["hunt", "--time-limit", "0", "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {"error": "--time-limit must be positive, not 0.0"}
