"""Mutation benchmark: seed one defect of ``benchmarks/mutants.py`` at a time into a scratch copy
of ``src/`` and see whether a finder catches it, and how fast.

Finders:

- ``hunt`` (default): ``ffasim hunt --variant reference --time-limit T --seed S --json`` on the
  mutated copy: no scenario, no hint (issue 10). Seconds are the hunt's own ``elapsed`` at the
  first finding.
- ``check``: the baseline the issue describes: every built-in scenario in turn (or those named
  with ``--scenario``) under ``ffasim check SCENARIO --variant reference --faults all --json``,
  stopping at the first that reports a finding. Seconds are wall-clock, from the first
  scenario's start to the end of the one that found it (process start-up included).

A mutant whose ``old`` text does not occur exactly once in its file stops the whole run before
anything is executed (exit 2): the catalogue has rotted and must be fixed, not skipped.
``--control`` adds the unmutated tree, on which a sound finder reports nothing.

Run: ``python benchmarks/bench_mutants.py [--finder hunt|check] [--time-limit 10] [--seed 0]
[--jobs 1] [--only NAME]... [--scenario NAME]... [--control] [--json]``; ``--markdown`` prints
the catalogue as a Markdown table (docs/mutants.md) and runs nothing, and ``--markdown --results
FILE...`` sets saved ``--json`` reports side by side (the results table of docs/mutants.md).
Each run is a subprocess with ``PYTHONPATH`` at the copy; keep ``--jobs`` low on a shared
machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutants import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# ``python -m ffasim`` needs a ``__main__``; the console script's entry point works either way.
_ENTRY = "import sys; sys.argv[0] = 'ffasim'; from ffasim.cli import main; main()"
CONTROL = "(none)"
GRACE = 120.0
"""Seconds a hunt may run past its time limit (start-up, shrinking, writing the finding)."""
CHECK_TIMEOUT = 600.0
"""Seconds one ``ffasim check`` of one scenario may take before it counts as an error."""


class CatalogueError(Exception):
    """A mutant cannot be applied: its ``old`` text is missing or ambiguous in its file."""


@dataclass
class Result:
    name: str
    origin: str
    found: bool | None
    """None: the finder failed (crashed, timed out, printed no JSON); see ``detail``."""
    kind: str = ""
    seconds: float | None = None
    detail: str = ""


def mutated_text(mutant: Mutant, src_root: Path = ROOT) -> str:
    """The text of ``mutant.path`` with the mutation applied; CatalogueError unless ``old``
    occurs exactly once."""
    path = src_root / mutant.path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogueError(f"{mutant.name}: cannot read {mutant.path}: {e.strerror}") from None
    n = text.count(mutant.old)
    if n != 1:
        where = "does not occur" if n == 0 else f"occurs {n} times"
        raise CatalogueError(f"{mutant.name}: its old text {where} in {mutant.path}")
    return text.replace(mutant.old, mutant.new)


def launcher(src: Path) -> list[str]:
    """How to run the ``ffasim`` command of the tree at ``src``."""
    if (src / "ffasim" / "__main__.py").exists():
        return [sys.executable, "-m", "ffasim"]
    return [sys.executable, "-c", _ENTRY]


def _env(src: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    env.pop("PYTHONSAFEPATH", None)
    return env


def hunt_available(src: Path = SRC) -> bool:
    """Whether the tree at ``src`` has an ``ffasim hunt`` command."""
    try:
        proc = subprocess.run(
            [*launcher(src), "hunt", "--help"],
            env=_env(src),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def builtin_scenarios(src: Path = SRC) -> list[str]:
    """The built-in scenario names of the tree at ``src``."""
    return sorted(p.stem for p in (src / "ffasim" / "scenarios").glob("*.toml"))


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _run_json(cmd: list[str], src: Path, cwd: Path, timeout: float) -> tuple[int, dict, str]:
    """Run ``cmd``; (exit status, its JSON report or {}, a one-line reason when it failed)."""
    try:
        proc = subprocess.run(
            cmd,
            env=_env(src),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, {}, f"timed out after {timeout:.0f} s"
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        return proc.returncode, {}, _last_line(proc.stderr) or "no JSON on stdout"
    if not isinstance(doc, dict):
        return proc.returncode, {}, "the JSON report is not an object"
    return proc.returncode, doc, "" if proc.returncode in (0, 1) else _last_line(proc.stderr)


def run_hunt(src: Path, work: Path, time_limit: float, seed: int) -> Result:
    cmd = [*launcher(src), "hunt", "--variant", "reference", "--time-limit", str(time_limit)]
    cmd += ["--seed", str(seed), "--json", "--out", str(work / "findings")]
    rc, doc, why = _run_json(cmd, src, work, time_limit + GRACE)
    if rc not in (0, 1) or not doc:
        return Result("", "", None, detail=why or f"exit {rc}")
    findings = doc.get("findings") or []
    if not findings:
        return Result("", "", False)
    first = findings[0]
    return Result("", "", True, str(first.get("kind", "")), first.get("elapsed"))


def run_check(src: Path, work: Path, scenarios: Sequence[str]) -> Result:
    start = time.monotonic()
    for name in scenarios:
        cmd = [*launcher(src), "check", name, "--variant", "reference", "--faults", "all"]
        cmd += ["--json", "--out", str(work / "findings")]
        rc, doc, why = _run_json(cmd, src, work, CHECK_TIMEOUT)
        if rc not in (0, 1) or not doc:
            return Result("", "", None, detail=f"{name}: {why or f'exit {rc}'}")
        findings = doc.get("findings") or []
        if findings:
            kind = str(findings[0].get("kind", ""))
            return Result("", "", True, kind, time.monotonic() - start, detail=name)
    return Result("", "", False)


def run_one(mutant: Mutant | None, args: argparse.Namespace) -> Result:
    """Copy ``src/``, apply ``mutant`` (None: the control), run the finder, clean up."""
    work = Path(tempfile.mkdtemp(prefix="ffasim-mutant-"))
    try:
        src = work / "src"
        shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if mutant is not None:
            (work / mutant.path).write_text(mutated_text(mutant), encoding="utf-8")
        if args.finder == "hunt":
            result = run_hunt(src, work, args.time_limit, args.seed)
        else:
            result = run_check(src, work, args.scenario or builtin_scenarios(src))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)
    result.name = mutant.name if mutant is not None else CONTROL
    result.origin = mutant.origin if mutant is not None else "the unmutated reference"
    return result


def short_origin(origin: str) -> str:
    """``xen-history 3528248b8c`` or ``generic``: the table's origin column."""
    head, _, rest = origin.partition(": ")
    if head == "xen-history" and rest:
        return f"{head} {rest.split()[0].rstrip(':')}"
    return head


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(mutants: Sequence[Mutant]) -> str:
    """The catalogue as a Markdown table: name, origin, why."""
    rows = ["| name | origin | why it is observable |", "|---|---|---|"]
    for m in mutants:
        rows.append(f"| `{m.name}` | {_cell(m.origin)} | {_cell(m.why)} |")
    return "\n".join(rows) + "\n"


def _result_cell(r: dict[str, object] | None) -> str:
    if r is None:
        return ""
    if r.get("found") is None:
        return "error"
    if not r.get("found"):
        return "no"
    seconds = r.get("seconds")
    when = f", {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    where = f" ({r['detail']})" if r.get("detail") else ""  # check: the scenario
    return f"{r.get('kind', '')}{where}{when}"


def markdown_results(docs: Sequence[tuple[str, dict]]) -> str:
    """A Markdown table of saved ``--json`` reports side by side: one row per mutant, one
    column per report (its kind and seconds when found, ``no``, or ``error``), then the
    scores."""
    columns = []
    for label, doc in docs:
        columns.append((label, {r["name"]: r for r in doc.get("results", [])}))
    names = [m.name for m in MUTANTS if any(m.name in by for _, by in columns)]
    head = "| name | " + " | ".join(label for label, _ in columns) + " |"
    rows = [head, "|---|" + "---|" * len(columns)]
    for name in names:
        cells = " | ".join(_result_cell(by.get(name)) for _, by in columns)
        rows.append(f"| `{name}` | {cells} |")
    scores = []
    for label, doc in docs:
        s = doc.get("score", {})
        scores.append(f"{label}: {s.get('found', 0)}/{s.get('total', 0)}")
    return "\n".join(rows) + "\n\nScore: " + "; ".join(scores) + ".\n"


def _load_results(paths: Sequence[str]) -> list[tuple[str, dict]]:
    """(label, report) of each saved ``--json`` report; ValueError with a one-line reason."""
    out = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        except ValueError:
            raise ValueError(f"{path} is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            raise ValueError(f"{path} is not a bench_mutants.py --json report")
        label = str(doc.get("finder", "?"))
        if doc.get("finder") == "hunt":
            label = f"hunt {doc.get('time_limit')} s, seed {doc.get('seed')}"
        elif doc.get("scenarios"):
            label = f"check ({', '.join(doc['scenarios'])})"
        else:
            label = "check (every built-in)"
        out.append((label, doc))
    return out


def _found_cell(r: Result) -> str:
    return "error" if r.found is None else ("yes" if r.found else "no")


def table(results: Sequence[Result]) -> str:
    """A plain-text table of the results, then the score."""
    head = ("name", "origin", "found", "kind", "seconds")
    rows = [
        (
            r.name,
            short_origin(r.origin),
            _found_cell(r),
            r.kind or (r.detail if r.found is None else ""),
            "" if r.seconds is None else f"{r.seconds:.1f}",
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), *lines]
    return "\n".join(line.rstrip() for line in out) + "\n" + score_line(results) + "\n"


def score(results: Sequence[Result]) -> tuple[int, int]:
    """(found, mutants run), the control excluded."""
    mutants = [r for r in results if r.name != CONTROL]
    return sum(1 for r in mutants if r.found), len(mutants)


def score_line(results: Sequence[Result]) -> str:
    found, total = score(results)
    pct = 100.0 * found / total if total else 0.0
    errors = sum(1 for r in results if r.found is None)
    extra = f", {errors} error{'s' if errors != 1 else ''}" if errors else ""
    return f"score: {found}/{total} found ({pct:.0f}%){extra}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--finder", choices=("hunt", "check"), default="hunt")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="T", help="hunt seconds")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="hunt seed")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="parallel subprocesses")
    p.add_argument("--only", action="append", metavar="NAME", help="this mutant (repeatable)")
    p.add_argument(
        "--scenario", action="append", metavar="NAME", help="check: this scenario (repeatable)"
    )
    p.add_argument("--control", action="store_true", help="also run the unmutated tree")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markdown", action="store_true", help="print the catalogue table, run none")
    p.add_argument(
        "--results",
        action="append",
        metavar="FILE",
        help="with --markdown: a results table of these saved --json reports instead",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch copies")
    return p.parse_args(argv)


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.results and not args.markdown:
        return _usage_error("--results applies to --markdown only")
    if args.markdown:
        if args.results:
            try:
                sys.stdout.write(markdown_results(_load_results(args.results)))
            except ValueError as e:
                return _usage_error(str(e))
        else:
            sys.stdout.write(markdown(MUTANTS))
        return 0
    if args.jobs < 1:
        return _usage_error("--jobs must be at least 1")
    if not args.time_limit > 0:
        return _usage_error("--time-limit must be a positive number of seconds")
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.only or [] if n not in known]
    if unknown:
        return _usage_error(f"no mutant named {unknown[0]!r} (see benchmarks/mutants.py)")
    selected = [known[n] for n in dict.fromkeys(args.only)] if args.only else list(MUTANTS)
    if args.scenario and args.finder != "check":
        return _usage_error("--scenario applies to --finder check only")
    if args.scenario:
        names = builtin_scenarios()
        bad = [s for s in args.scenario if s not in names]
        if bad:
            return _usage_error(f"no built-in scenario {bad[0]!r} (known: {', '.join(names)})")
    broken = []
    for m in selected:  # every mutant must apply before anything runs
        try:
            mutated_text(m)
        except CatalogueError as e:
            broken.append(str(e))
    if broken:
        for line in broken:
            print(f"error: {line}", file=sys.stderr)
        return 2
    if args.finder == "hunt" and not hunt_available():
        return _usage_error(
            f"'ffasim hunt' is not available in {SRC} (the tree the benchmark copies): "
            "merge the hunt command first, or measure the baseline with --finder check"
        )
    runs: list[Mutant | None] = [None] if args.control else []
    runs += selected
    results: list[Result] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for r in pool.map(lambda m: run_one(m, args), runs):
            results.append(r)
            when = "" if r.seconds is None else f" {r.seconds:.1f} s"
            print(f"{r.name}: {_found_cell(r)} {r.kind} {r.detail}{when}".rstrip(), file=sys.stderr)
    if args.json:
        found, total = score(results)
        doc = {
            "finder": args.finder,
            "time_limit": args.time_limit if args.finder == "hunt" else None,
            "seed": args.seed if args.finder == "hunt" else None,
            "scenarios": args.scenario if args.finder == "check" else None,
            "score": {"found": found, "total": total},
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(doc, indent=1))
    else:
        sys.stdout.write(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
