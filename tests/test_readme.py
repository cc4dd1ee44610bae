"""The README's promises stay true: its Python examples run, its seed table names real findings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffasim.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where ./ffasim-findings goes
    blocks = _python_blocks()
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for block in blocks:  # later blocks build on names the earlier ones defined
        exec(compile(block, str(README), "exec"), namespace)


def test_readme_quick_start_has_exactly_two_commands() -> None:
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", quick, flags=re.S)
    assert block.strip().splitlines() == [
        "pip install -e . && ffasim run",
        "pip install -e '.[test]' && python -m pytest",
    ]


def _seed_table() -> list[tuple[str, str]]:
    rows = re.findall(
        r"^\| \d\. .*?\| `ffasim check (.*?)` \| `([a-z-]+)` \|$", README.read_text(), flags=re.M
    )
    assert len(rows) == 4
    return rows


@pytest.mark.parametrize("args,kind", _seed_table())
def test_readme_seed_table_commands_find_what_they_say(
    args: str, kind: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["check", *args.split(), "--json", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert kind in {f["kind"] for f in json.loads(result.stdout)["findings"]}


def _release_table() -> list[tuple[str, str, str]]:
    rows = re.findall(
        r"^\| `(head|xen-[0-9.]+|seed-v1)` \| .*?\| `ffasim check (.*?)` \| `([a-z-]+)` \|$",
        README.read_text(),
        flags=re.M,
    )
    assert len(rows) >= 20
    return rows


@pytest.mark.parametrize("variant,args,kind", _release_table())
def test_readme_release_table_commands_find_what_they_say(
    variant: str, args: str, kind: str, tmp_path: Path
) -> None:
    assert f"--variant {variant}" in args
    root = README.parent
    argv = [str(root / a) if a.endswith(".toml") else a for a in args.split()]
    result = CliRunner().invoke(app, ["check", *argv, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert kind in {f["kind"] for f in json.loads(result.stdout)["findings"]}


def test_readme_send2_header_is_read_once_on_reference(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "send2-vm", "--variant", "reference", "--json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []


def _pkvm_table() -> list[tuple[str, str, str]]:
    rows = re.findall(
        r"^\| D\d+ \| .*?\| `ffasim check (.*?)` \| `([a-z-]+)` \| `(linux-[0-9.]+)` \|$",
        README.read_text(),
        flags=re.M,
    )
    assert len(rows) == 11  # D1-D12 but D7
    return rows


@pytest.mark.parametrize("args,kind,fixed", _pkvm_table())
def test_readme_pkvm_table_finds_each_defect_until_its_fix(
    args: str, kind: str, fixed: str, tmp_path: Path
) -> None:
    argv = ["check", *args.split(), "--json", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert kind in {f["kind"] for f in json.loads(result.stdout)["findings"]}
    argv[argv.index("--variant") + 1] = fixed
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
