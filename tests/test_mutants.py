"""The mutation benchmark's catalogue cannot rot silently: every mutant still applies (its ``old``
text occurs exactly once), still compiles, and still lands in code that ``reference`` runs; and
``bench_mutants.py`` reports a mutant that a built-in scenario is known to catch."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


catalogue = _load("mutants")
bench = _load("bench_mutants")
MUTANTS = catalogue.MUTANTS
IDS = [m.name for m in MUTANTS]

# share-too-long expects DENIED or BUSY from an over-long MEM_SHARE: the mutant answers SUCCESS.
KNOWN_CAUGHT = ("share-frag-longer-than-tx", "share-too-long", "answer")


def test_catalogue_has_at_least_45_mutants() -> None:
    assert len(MUTANTS) >= 45


def test_mutant_names_are_unique() -> None:
    assert len(set(IDS)) == len(IDS)


def test_issue10_defects_are_all_in_the_catalogue() -> None:
    assert len(catalogue.ISSUE10) == 12
    assert set(catalogue.ISSUE10) <= set(IDS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_mutant_is_described(mutant: Any) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", mutant.name)
    assert mutant.path.startswith("src/ffasim/")
    assert re.match(r"(xen-history|generic): \S", mutant.origin)
    assert mutant.why and "\n" not in mutant.why and "\n" not in mutant.origin
    assert mutant.old != mutant.new


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_mutant_old_text_occurs_exactly_once(mutant: Any) -> None:
    text = (ROOT / mutant.path).read_text(encoding="utf-8")
    assert text.count(mutant.old) == 1


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_mutated_file_compiles(mutant: Any) -> None:
    compile(bench.mutated_text(mutant), mutant.path, "exec")


def _enclosing_method(path: Path, line: int) -> tuple[str, str] | None:
    """(class, method) of the method whose body holds ``line``; None at module level."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.lineno <= line <= (fn.end_lineno or 0):
                    return node.name, fn.name
    return None


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_mutant_lands_in_code_reference_runs(mutant: Any) -> None:
    """A mutant in a method that ``ReferenceFfa`` overrides (without calling up to it) would
    change nothing the benchmark runs, and count as a survivor that no finder could catch."""
    from ffasim.xen.variants.reference import ReferenceFfa

    path = ROOT / mutant.path
    text = path.read_text(encoding="utf-8")
    where = _enclosing_method(path, text[: text.index(mutant.old)].count("\n") + 1)
    if where is None:
        return  # a module-level helper: its callers are what matter, and they are shared
    cls, method = where
    impl = getattr(ReferenceFfa, method)
    if impl.__qualname__ == f"{cls}.{method}":
        return
    assert f"super().{method}(" in inspect.getsource(impl), (
        f"{mutant.name}: {cls}.{method} is overridden by {impl.__qualname__}"
    )


def test_mutated_text_refuses_a_missing_snippet() -> None:
    rotten = catalogue.Mutant("rotten", catalogue.RXTX, "no such text", "x", "why", "generic: x")
    with pytest.raises(bench.CatalogueError, match=r"^rotten: its old text does not occur in "):
        bench.mutated_text(rotten)


def test_bench_rejects_an_unknown_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--finder", "check", "--only", "nope"]) == 2
    assert re.fullmatch(
        r"error: no mutant named 'nope' \(see benchmarks/mutants.py\)\n", capsys.readouterr().err
    )


def test_bench_markdown_lists_every_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--markdown"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "| name | origin | why it is observable |"
    assert [r.split("`")[1] for r in rows[2:]] == IDS


def test_bench_check_reports_a_mutant_a_builtin_catches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, scenario, kind = KNOWN_CAUGHT
    args = ["--finder", "check", "--only", name, "--scenario", scenario]
    assert bench.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"name +origin +found +kind +seconds", out[0])
    assert re.fullmatch(rf"{name} +xen-history 3528248b8c +yes +{kind} +\d+\.\d", out[1])
    assert out[2] == "score: 1/1 found (100%)"
    assert bench.main([*args, "--json", "--control"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["score"] == {"found": 1, "total": 1}
    control, result = doc["results"]
    assert (control["name"], control["found"]) == ("(none)", False)
    assert (result["name"], result["found"], result["kind"]) == (name, True, kind)


def test_bench_markdown_results_sets_reports_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = IDS[0], IDS[1]
    check = {
        "finder": "check",
        "scenarios": None,
        "score": {"found": 1, "total": 2},
        "results": [
            {"name": first, "found": True, "kind": "crash", "seconds": 3.25, "detail": "s"},
            {"name": second, "found": False, "kind": "", "seconds": None},
        ],
    }
    hunt = {
        "finder": "hunt",
        "time_limit": 10.0,
        "seed": 0,
        "score": {"found": 0, "total": 1},
        "results": [{"name": second, "found": None, "kind": "", "seconds": None}],
    }
    paths = []
    for n, doc in enumerate((check, hunt)):
        paths += ["--results", str(tmp_path / f"{n}.json")]
        (tmp_path / f"{n}.json").write_text(json.dumps(doc))
    assert bench.main(["--markdown", *paths]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| name | check (every built-in) | hunt 10.0 s, seed 0 |",
        "|---|---|---|",
        f"| `{first}` | crash (s), 3.2 s |  |",
        f"| `{second}` | no | error |",
        "",
        "Score: check (every built-in): 1/2; hunt 10.0 s, seed 0: 0/1.",
    ]


def test_bench_markdown_results_refuses_a_file_that_is_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    assert bench.main(["--markdown", "--results", str(bad)]) == 2
    assert capsys.readouterr().err == f"error: {bad} is not a bench_mutants.py --json report\n"
