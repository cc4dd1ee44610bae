"""What the ``ffasim`` command loads before it works: a help screen or the version must not
import the model, the checker or rich (how long that takes is for benchmarks/bench_startup.py;
tests never time anything)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ffasim
from ffasim.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

_PROBE = """
import json, sys
sys.argv = ["ffasim", *json.loads(sys.argv[1])]
from ffasim.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

HEAVY = ("ffasim.system", "ffasim.xen", "ffasim.spmc", "ffasim.check", "ffasim.scenario", "rich")


def _modules_after(*argv: str) -> set[str]:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("check", "-h")])
def test_help_and_version_load_neither_model_nor_checker_nor_rich(argv: tuple[str, ...]) -> None:
    loaded = _modules_after(*argv)
    assert not {m for m in loaded if m.startswith(HEAVY)}


def test_lazy_exports_are_the_real_objects() -> None:
    from ffasim.spmc import SecurePartition
    from ffasim.system import System

    assert ffasim.System is System and ffasim.SecurePartition is SecurePartition
    assert set(ffasim.__all__) <= set(dir(ffasim))
    with pytest.raises(AttributeError, match=r"^module 'ffasim' has no attribute 'Sytem'$"):
        ffasim.Sytem  # noqa: B018


def test_version_is_the_package_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert r.stdout == f"ffasim {project['version']}\n" == f"ffasim {ffasim.__version__}\n"


@pytest.mark.parametrize("command", [[], ["run"], ["check"], ["replay"], ["decode"], ["schema"]])
def test_h_is_help_everywhere(command: list[str]) -> None:
    short = runner.invoke(app, [*command, "-h"])
    long = runner.invoke(app, [*command, "--help"])
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout
    assert "-h, --help" in short.stdout


def test_completion_options_are_offered() -> None:
    r = runner.invoke(app, ["--help"])
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout
