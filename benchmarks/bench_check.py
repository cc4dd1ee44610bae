"""Checker benchmarks: one JSON object per line, ``{"name", "value", "unit"}``.

- executions per second exploring ``partinfo-2vcpu`` (reference) exhaustively with DPOR;
- executions per second (CPU time, best of three) exploring each built-in scenario under
  ``reference`` with DPOR, up to ``--per-scenario`` executions (``default`` is far from
  exhausted there: it is the rate that matters);
- seconds to the first finding on ``partinfo-2vcpu`` under ``seed-v1`` (the ASSERT);
- executions DPOR needs to exhaust a scenario against plain depth-first search (capped).

Run: ``python benchmarks/bench_check.py [--budget N]``.
"""

from __future__ import annotations

import argparse
import json
import time

from ffasim.check.explore import explore
from ffasim.check.monitors import default_monitors
from ffasim.check.strategies import DFSStrategy
from ffasim.scenario import BUILTIN_NAMES
from ffasim.scenario._check import load_scenario, scenario_program


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=5000, help="cap on executions per measure")
    ap.add_argument(
        "--per-scenario", type=int, default=150, help="executions per built-in scenario rate"
    )
    args = ap.parse_args()

    partinfo = load_scenario("partinfo-2vcpu")
    ref = scenario_program(partinfo, "reference")
    r = explore(
        ref,
        DFSStrategy(),
        monitors_factory=default_monitors,
        budget=args.budget,
        stop_on_first=False,
    )
    emit("check.partinfo-2vcpu.reference.dpor.executions_per_s", r.rate, "executions/s")
    emit("check.partinfo-2vcpu.reference.dpor.executions", r.executions, "executions")
    emit(
        "check.partinfo-2vcpu.reference.dpor.steps_per_s",
        r.steps / r.elapsed if r.elapsed else 0.0,
        "steps/s",
    )

    seed = scenario_program(partinfo, "seed-v1")
    t0 = time.perf_counter()
    found = explore(seed, DFSStrategy(), monitors_factory=default_monitors, budget=args.budget)
    elapsed = time.perf_counter() - t0
    kinds = [f.kind for f, _ in found.findings]
    if kinds[:1] != ["assertion"]:
        raise SystemExit(f"expected the seed's ASSERT first, found {kinds}")
    emit("check.partinfo-2vcpu.seed-v1.first_finding_s", elapsed, "s")
    emit("check.partinfo-2vcpu.seed-v1.first_finding_executions", found.executions, "executions")

    for scenario in BUILTIN_NAMES:
        prog = scenario_program(load_scenario(scenario), "reference")
        best = 0.0
        for _ in range(3):  # best of three: the machine may be shared
            t0 = time.process_time()
            rep = explore(
                prog,
                DFSStrategy(),
                monitors_factory=default_monitors,
                budget=args.per_scenario,
                stop_on_first=False,
            )
            cpu = time.process_time() - t0
            best = max(best, rep.executions / cpu if cpu > 0 else 0.0)
        emit(f"check.{scenario}.reference.dpor.executions_per_cpu_s", best, "executions/s")

    for scenario in ("partinfo-2vcpu", "rxtx-map-race"):
        prog = scenario_program(load_scenario(scenario), "reference")
        for reduction in ("dpor", "none"):
            rep = explore(
                prog,
                DFSStrategy(reduction=reduction),
                monitors_factory=default_monitors,
                budget=args.budget,
                stop_on_first=False,
            )
            suffix = "" if rep.exhausted else "_capped"
            emit(
                f"check.{scenario}.reference.{reduction}.executions_to_exhaust{suffix}",
                rep.executions,
                "executions",
            )


if __name__ == "__main__":
    main()
