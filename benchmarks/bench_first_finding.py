"""Executions (and seconds) until the first finding, per built-in scenario, variant and strategy.

For every built-in scenario and every mediator variant, the checker explores under the default
portfolio and under each strategy alone (``dfs``, ``pct``, ``random``), with the same budget of
executions and the same seed, and stops at the first finding. A cell of the table reads:

- ``12 assertion (0.41 s)``: the first finding (its kind) came in execution 12;
- ``none/436 exh. (3.2 s)``: nothing found, and the 436 executions covered every schedule;
- ``none/2000 (40 s)``: nothing found within the budget (PCT and random never exhaust).

Numbers are deterministic for a seed, seconds are wall-clock on the machine that ran it.

Run: ``python benchmarks/bench_first_finding.py [--budget N] [--seed N] [--scenario NAME]...
[--variant NAME]... [--strategy NAME]... [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ffasim.check.explore import explore
from ffasim.check.monitors import default_monitors
from ffasim.scenario import BUILTIN_NAMES
from ffasim.scenario._check import load_scenario, make_strategy, scenario_program
from ffasim.xen import variants as xen_variants

STRATEGIES = ("portfolio", "dfs", "pct", "random")


@dataclass(frozen=True)
class Cell:
    """One exploration: until the first finding, or the budget, or exhaustion."""

    scenario: str
    variant: str
    strategy: str
    executions: int
    seconds: float
    finding: str | None  # kind of the first finding, None when nothing was found
    found_by: str | None  # the portfolio's part that found it (the strategy itself otherwise)
    exhausted: bool

    def text(self) -> str:
        if self.finding is not None:
            return f"{self.executions} {self.finding} ({self.seconds:.2f} s)"
        exh = " exh." if self.exhausted else ""
        return f"none/{self.executions}{exh} ({self.seconds:.2f} s)"


def first_finding(scenario: str, variant: str, strategy: str, budget: int, seed: int) -> Cell:
    program = scenario_program(load_scenario(scenario), variant)
    t0 = time.perf_counter()
    report = explore(
        program,
        make_strategy(strategy, seed=seed),
        monitors_factory=default_monitors,
        budget=budget,
        stop_on_first=True,
    )
    seconds = time.perf_counter() - t0
    found = report.findings[0][0].kind if report.findings else None
    return Cell(
        scenario,
        variant,
        strategy,
        report.executions,
        round(seconds, 3),
        found,
        report.found_by[0] if report.found_by else None,
        report.exhausted,
    )


def table(cells: Sequence[Cell], strategies: Sequence[str]) -> str:
    """The cells as a plain-text table: one row per scenario and variant, a column per
    strategy."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells:
        rows.setdefault((c.scenario, c.variant), {})[c.strategy] = c.text()
    head = ["scenario", "variant", *strategies]
    body = [[s, v, *(r.get(k, "") for k in strategies)] for (s, v), r in rows.items()]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]

    def line(cols: Sequence[str]) -> str:
        return "  ".join(x.ljust(w) for x, w in zip(cols, widths, strict=True)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def _choose(
    ap: argparse.ArgumentParser, given: list[str] | None, known: Sequence[str], what: str
) -> list[str]:
    """``given`` (in ``known``'s order), all of ``known`` when none; a usage error (exit 2,
    one line) on an unknown name."""
    if not given:
        return list(known)
    bad = [g for g in given if g not in known]
    if bad:
        ap.error(f"unknown {what} {bad[0]!r} (known: {', '.join(known)})")
    return [k for k in known if k in given]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench_first_finding.py", description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=2000, help="executions per exploration cap")
    ap.add_argument("--seed", type=int, default=0, help="seed of PCT, random and the portfolio")
    ap.add_argument("--scenario", action="append", help="only this built-in scenario (repeat)")
    ap.add_argument("--variant", action="append", help="only this variant (repeat)")
    ap.add_argument("--strategy", action="append", help="only this strategy (repeat)")
    ap.add_argument("--json", action="store_true", help="one JSON object per cell")
    args = ap.parse_args(argv)
    if args.budget < 1:
        ap.error(f"--budget must be at least 1, not {args.budget}")
    scenarios = _choose(ap, args.scenario, BUILTIN_NAMES, "scenario")
    variants = _choose(ap, args.variant, xen_variants.names(), "variant")
    strategies = _choose(ap, args.strategy, STRATEGIES, "strategy")

    cells = []
    for scenario in scenarios:
        for variant in variants:
            for strategy in strategies:
                cell = first_finding(scenario, variant, strategy, args.budget, args.seed)
                cells.append(cell)
                if args.json:
                    print(json.dumps(asdict(cell)), flush=True)
                else:
                    print(f"{scenario} {variant} {strategy}: {cell.text()}", file=sys.stderr)
    if not args.json:
        print(f"Executions until the first finding (budget {args.budget}, seed {args.seed})\n")
        print(table(cells, strategies))


if __name__ == "__main__":
    main()
