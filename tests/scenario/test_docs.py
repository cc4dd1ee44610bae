"""The examples of docs/scenarios.md load and run clean, so the documentation stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ffasim.scenario import load

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("lang", ["toml", "python"])
def test_documented_scenario_runs_clean(
    lang: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = "doc.toml" if lang == "toml" else "doc.py"
    Path(name).write_text(_blocks(lang)[0], encoding="utf-8")
    inst = load(name).instantiate()
    for th in inst.threads:
        th.body()
    assert inst.finish() == []


def test_documented_driver_session_runs() -> None:
    code = _blocks("python")[1]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/scenarios.md", "exec"), namespace)
    assert namespace["h"] is not None
