"""The published JSON Schemas: ``ffasim schema NAME`` prints what ``schemas/`` holds, the
scenario schema accepts every built-in and documented file and rejects what the loader
rejects, and each command's ``--json`` output is what its model (and so its schema) says."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from ffasim.cli import app
from ffasim.cli._outputs import SCHEMA_VERSION, decode
from ffasim.cli._schema import SCHEMAS, schema_text

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("name", SCHEMAS)
def test_committed_schema_is_the_generated_one(name: str) -> None:
    committed = (ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(name), f"regenerate: ffasim schema {name} > schemas/..."
    r = runner.invoke(app, ["schema", name])
    assert r.exit_code == 0 and r.stdout == committed
    jsonschema.Draft202012Validator.check_schema(json.loads(committed))


def test_unknown_schema_name_suggests_one() -> None:
    r = runner.invoke(app, ["schema", "scenarios"])
    assert r.exit_code == 2
    assert r.stderr == (
        "error: unknown schema 'scenarios' (expected one of: scenario, run, check, replay, "
        "decode) (did you mean 'scenario'?)\n"
    )


def _scenario_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_text("scenario")))


def test_scenario_schema_accepts_the_builtins_and_the_documented_file() -> None:
    v = _scenario_validator()
    doc = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    documented = re.findall(r"```toml\n(.*?)```", doc, re.S)[0]
    files = [p.read_text() for p in (ROOT / "src/ffasim/scenarios").glob("*.toml")]
    for text in [*files, documented]:
        assert list(v.iter_errors(tomllib.loads(text))) == []


@pytest.mark.parametrize(
    "text",
    [
        '[scenario]\nname = "Bad Name"\n[[vm]]\n',
        '[scenario]\nname = "t"\n[[vm]]\nvcpus = 9\n',
        '[scenario]\nname = "t"\n[[vm]]\n[[thread]]\nvm = 0\nsteps = [{ op = "map", rx = 1 }]\n',
        '[scenario]\nname = "t"\n[[vm]]\n[[thread]]\nvm = 0\nsteps = [{ call = "FFA_NOPE" }]\n',
        '[scenario]\nname = "t"\n',
    ],
)
def test_scenario_schema_rejects_what_the_loader_rejects(text: str) -> None:
    assert list(_scenario_validator().iter_errors(tomllib.loads(text)))


# -- --json outputs against their models -----------------------------------------------------


def test_run_json_is_a_run_report() -> None:
    r = runner.invoke(app, ["run", "partinfo-2vcpu", "--json"])
    assert r.exit_code == 0
    report = decode("run", r.stdout)
    assert type(report).__name__ == "RunReport"
    assert json.loads(r.stdout)["schema_version"] == SCHEMA_VERSION


def test_check_json_and_its_list_are_check_documents(tmp_path: Path) -> None:
    out = tmp_path / "found"
    r = runner.invoke(
        app, ["check", "partinfo-2vcpu", "--variant", "seed-v1", "--json", "--out", str(out)]
    )
    assert r.exit_code == 1
    assert type(decode("check", r.stdout)).__name__ == "CheckReport"
    assert json.loads(r.stdout)["schema_version"] == SCHEMA_VERSION
    listed = runner.invoke(app, ["check", "--list", "--json"])
    assert type(decode("check", listed.stdout)).__name__ == "CheckList"
    # The trace of the finding's replay, as JSON.
    schedule = next(out.glob("*.json"))
    replayed = runner.invoke(app, ["replay", str(schedule), "--format", "json"])
    assert replayed.exit_code == 1
    assert type(decode("replay", replayed.stdout)).__name__ == "Trace"


def test_decode_json_is_a_decoded_descriptor() -> None:
    r = runner.invoke(app, ["decode", "--sample", "--json"])
    assert r.exit_code == 0
    assert type(decode("decode", r.stdout)).__name__ == "Decoded"
    samples = runner.invoke(app, ["decode", "--list-samples", "--json"])
    assert type(decode("decode", samples.stdout)).__name__ == "SampleList"


@pytest.mark.parametrize("command", [["run", "nope", "--json"], ["check", "nope", "--json"]])
def test_json_errors_are_error_documents(command: list[str]) -> None:
    r = runner.invoke(app, command)
    assert r.exit_code == 2
    assert type(decode(command[0], r.stdout.splitlines()[0])).__name__ == "Error"
