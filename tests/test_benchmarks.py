"""The benchmark scripts still import: they are not run by the tests (no timing in tests), so an
API they use that moved would otherwise go unnoticed until someone measures."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert len(BENCHMARKS) >= 5


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_script_imports(script: Path) -> None:
    namespace = runpy.run_path(str(script), run_name="benchmark_import_check")
    assert callable(namespace.get("main")), f"{script.name} has no main()"


def _first_finding_main() -> Any:
    script = BENCHMARKS[0].parent / "bench_first_finding.py"
    return runpy.run_path(str(script), run_name="benchmark_import_check")["main"]


def test_first_finding_benchmark_smoke_run_with_a_filter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main = _first_finding_main()
    args = ["--scenario", "partinfo-2vcpu", "--variant", "seed-v1", "--strategy", "random"]
    main([*args, "--budget", "5", "--json"])
    (line,) = capsys.readouterr().out.splitlines()
    cell = json.loads(line)
    assert (cell["scenario"], cell["variant"], cell["strategy"]) == (
        "partinfo-2vcpu",
        "seed-v1",
        "random",
    )
    assert cell["finding"] == "assertion" and 1 <= cell["executions"] <= 5
    main([*args, "--budget", "5"])
    out = capsys.readouterr().out
    assert out.startswith("Executions until the first finding (budget 5, seed 0)\n")
    assert re.search(r"^partinfo-2vcpu +seed-v1 +\d assertion \(\d+\.\d\d s\)$", out, re.M), out


def test_first_finding_benchmark_rejects_an_unknown_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as e:
        _first_finding_main()(["--variant", "xen-9"])
    assert e.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith("bench_first_finding.py: error: unknown variant 'xen-9' (known: reference, ")
    )
