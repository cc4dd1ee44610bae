"""Checker benchmarks: one JSON object per line, ``{"name", "value", "unit"}``.

- executions per second exploring ``partinfo-2vcpu`` (reference) exhaustively with DPOR;
- executions per second (CPU time, best of three) exploring each built-in scenario under
  ``reference`` with DPOR, up to ``--per-scenario`` executions (``default`` is far from
  exhausted there: it is the rate that matters);
- seconds to the first finding on ``partinfo-2vcpu`` under ``seed-v1`` (the ASSERT);
- executions DPOR needs to exhaust a scenario against plain depth-first search (capped);
- the machine-independent rate (issue 13): executions per CPU second on ``partinfo-2vcpu`` and
  ``default`` divided by FFA_ID_GET round trips per CPU second, both measured in this run,
  best of three each, taken in turns so that a change in the machine's load hits both;
- ``default`` under DFS with ``--preemption-bound 2``: executions in 60 s and whether the
  search is exhausted by then.

Run: ``python benchmarks/bench_check.py [--budget N] [--only ratio|bound]``.
"""

from __future__ import annotations

import argparse
import json
import time

from ffasim import abi
from ffasim.check.explore import explore
from ffasim.check.monitors import default_monitors
from ffasim.check.strategies import DFSStrategy
from ffasim.scenario import BUILTIN_NAMES
from ffasim.scenario._check import load_scenario, scenario_program
from ffasim.system import System


def emit(name: str, value: float, unit: str) -> None:
    # Four significant digits: a ratio to FFA_ID_GET calls is about 1e-4.
    print(json.dumps({"name": name, "value": float(f"{value:.4g}"), "unit": unit}), flush=True)


def id_get_rate(seconds: float) -> float:
    """FFA_ID_GET round trips per CPU second (as bench_mediator.py measures them)."""
    vm = System().create_vm()
    vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    smc, fid = vm.smc, abi.FFA_ID_GET
    n = 0
    start = time.process_time()
    while True:
        for _ in range(64):
            smc(fid)
        n += 64
        now = time.process_time()
        if now - start >= seconds:
            return n / (now - start)


def exec_rate(scenario: str, executions: int) -> float:
    """Executions per CPU second exploring ``scenario`` (reference) with DPOR."""
    prog = scenario_program(load_scenario(scenario), "reference")
    t0 = time.process_time()
    rep = explore(
        prog,
        DFSStrategy(),
        monitors_factory=default_monitors,
        budget=executions,
        stop_on_first=False,
    )
    return rep.executions / (time.process_time() - t0)


def bench_ratio(executions: int, rounds: int = 3) -> None:
    """Executions/s over FFA_ID_GET calls/s: the machine-independent figure of issue 13."""
    for scenario in ("partinfo-2vcpu", "default"):
        best_exec = best_call = 0.0
        for _ in range(rounds):
            best_call = max(best_call, id_get_rate(0.5))
            best_exec = max(best_exec, exec_rate(scenario, executions))
        emit(f"check.{scenario}.reference.dpor.executions_per_cpu_s", best_exec, "executions/s")
        emit("ffa_id_get_round_trips", best_call, "calls/s")
        emit(f"check.{scenario}.reference.dpor.ratio_to_id_get", best_exec / best_call, "ratio")


def bench_bound(seconds: float = 60.0) -> None:
    """``default`` under DFS with preemption bound 2: executions, exhausted within the time?"""
    prog = scenario_program(load_scenario("default"), "reference")
    rep = explore(
        prog,
        DFSStrategy(preemption_bound=2),
        monitors_factory=default_monitors,
        time_limit=seconds,
        stop_on_first=False,
    )
    emit("check.default.reference.dfs_bound2.executions", rep.executions, "executions")
    emit("check.default.reference.dfs_bound2.elapsed_s", rep.elapsed, "s")
    emit("check.default.reference.dfs_bound2.exhausted", float(rep.exhausted), "bool")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=5000, help="cap on executions per measure")
    ap.add_argument(
        "--per-scenario", type=int, default=150, help="executions per built-in scenario rate"
    )
    ap.add_argument("--only", choices=("ratio", "bound"), help="run one measure only")
    args = ap.parse_args()
    if args.only == "ratio":
        bench_ratio(args.per_scenario)
        return
    if args.only == "bound":
        bench_bound()
        return
    bench_ratio(args.per_scenario)
    bench_bound()

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
