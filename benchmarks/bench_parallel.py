"""Parallel exploration: executions per second with 1 and 2 local workers, and on Ray.

Two workloads, each run to the same end with every backend (so the executions match):

- ``partinfo-2vcpu`` under ``reference``, DFS with DPOR to exhaustion (a proof);
- ``default`` under ``reference``, the default portfolio (preemption bounding, PCT, random)
  for ``--budget`` executions.

``workers 1`` is ``ffasim check`` as it runs by default (in this process); ``workers 2`` runs
two spawned local processes; ``ray 2`` a local Ray with two CPUs (when Ray is installed).
The pools are started and warmed before the clock starts: the rate is what a long check
sees (the start-up cost is printed apart). Besides wall-clock executions per second, the
table gives the CPU seconds spent (this process and its workers) and those of the busiest
worker, so that the overhead and the balance of sharding can be read even on a busy machine,
where wall-clock speed-ups are not reached.

Run: ``python benchmarks/bench_parallel.py [--budget N] [--no-ray]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from ffasim.check.explore import explore
from ffasim.check.monitors import default_monitors
from ffasim.check.parallel import explore_parallel
from ffasim.check.pools import Pool, open_pool
from ffasim.scenario._check import ScenarioSource, load_scenario, make_strategy, scenario_program


def _workers_cpu(pool: Pool) -> dict[int, float]:
    """CPU seconds each worker process of a local pool used so far (Linux ``/proc``)."""
    ex = getattr(pool, "_ex", None)
    out = {}
    for pid in list(getattr(ex, "_processes", {}) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _sequential(scenario: str, strategy: str, budget: int | None) -> tuple[int, float, float]:
    program = scenario_program(load_scenario(scenario), "reference")
    cpu, wall = time.process_time(), time.perf_counter()
    r = explore(
        program,
        make_strategy(strategy),
        monitors_factory=default_monitors,
        budget=budget,
        stop_on_first=False,
    )
    return r.executions, time.perf_counter() - wall, time.process_time() - cpu


def _pooled(
    backend: str, scenario: str, strategy: str, budget: int | None
) -> tuple[int, float, float | None, float | None, float]:
    """Executions, wall seconds, CPU seconds and the busiest worker's (``None`` on Ray: not
    our children), start-up seconds."""
    t0 = time.perf_counter()
    pool: Pool = open_pool(2, backend)
    source = ScenarioSource(scenario, "reference")
    # Warm every worker: each imports ffasim and builds the program once.
    explore_parallel(source, "random", pool=pool, budget=8, stop_on_first=False, chunk=1)
    startup = time.perf_counter() - t0
    cpu0, kids0, wall = time.process_time(), _workers_cpu(pool), time.perf_counter()
    r, _ = explore_parallel(source, strategy, pool=pool, budget=budget, stop_on_first=False)
    elapsed = time.perf_counter() - wall
    kids = {pid: t - kids0.get(pid, 0.0) for pid, t in _workers_cpu(pool).items()}
    pool.close()
    if backend == "ray" or not kids:
        return r.executions, elapsed, None, None, startup
    cpu = time.process_time() - cpu0 + sum(kids.values())
    return r.executions, elapsed, cpu, max(kids.values()), startup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=600, help="executions of the default run")
    ap.add_argument("--no-ray", action="store_true", help="skip Ray even when installed")
    args = ap.parse_args()
    try:
        import ray  # noqa: F401

        backends = ["local", "ray"] if not args.no_ray else ["local"]
    except ImportError:
        backends = ["local"]

    workloads: list[tuple[str, str, int | None]] = [
        ("partinfo-2vcpu", "dfs", None),
        ("default", "portfolio", args.budget),
    ]
    rows: list[tuple[Any, ...]] = []
    for scenario, strategy, budget in workloads:
        n, wall, cpu = _sequential(scenario, strategy, budget)
        base = n / wall
        rows.append((scenario, strategy, "workers 1", n, wall, base, 1.0, cpu, cpu, 0.0))
        for backend in backends:
            n2, wall2, cpu2, busiest, startup = _pooled(backend, scenario, strategy, budget)
            rate = n2 / wall2
            name = "workers 2" if backend == "local" else "ray 2"
            rows.append(
                (scenario, strategy, name, n2, wall2, rate, rate / base, cpu2, busiest, startup)
            )
    head = ("scenario", "strategy", "run", "executions", "wall s", "exec/s", "x w1", "CPU s")
    print(" | ".join((*head, "busiest CPU s", "start s")))
    print(" | ".join("---" for _ in range(len(head) + 2)))
    for sc, st, name, n, wall, rate, speed, cpu, busiest, startup in rows:
        cpu_s = "-" if cpu is None else f"{cpu:.2f}"
        busy_s = "-" if busiest is None else f"{busiest:.2f}"
        print(
            f"{sc} | {st} | {name} | {n} | {wall:.2f} | {rate:.0f} | {speed:.2f} | {cpu_s} | "
            f"{busy_s} | {startup:.1f}"
        )
    print(
        "\nbusiest CPU s: the CPU time of the busiest worker; on idle cores a run takes at least"
        " that long, so the CPU s of workers 1 over it bounds the speed-up there."
    )
    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} while measuring")


if __name__ == "__main__":
    main()
