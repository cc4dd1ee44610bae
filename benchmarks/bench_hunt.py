"""``ffasim hunt`` benchmarks: one JSON object per line, ``{"name", "value", "unit"}``.

- programs and executions per second hunting ``reference`` (nothing to find: the steady rate,
  generation, exploration and coverage included);
- seconds to the first finding (reduction and saving included) on ``seed-v1`` and ``head``,
  and the program that found it, for seeds 0..N-1.

Run: ``python benchmarks/bench_hunt.py [--seconds S] [--seeds N]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from ffasim.hunt import hunt


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the rate run")
    ap.add_argument("--seeds", type=int, default=3, help="seeds for time to first finding")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as out:
        r = hunt("reference", time_limit=args.seconds, seed=0, out_dir=out)
        emit("hunt.reference.programs_per_s", r.programs / r.elapsed, "programs/s")
        emit("hunt.reference.executions_per_s", r.executions / r.elapsed, "executions/s")
        emit("hunt.reference.combinations", r.coverage["combinations"], "combinations")
        for variant in ("seed-v1", "head"):
            for seed in range(args.seeds):
                r = hunt(variant, time_limit=120.0, seed=seed, out_dir=out)
                first = r.findings[0] if r.findings else None
                emit(
                    f"hunt.{variant}.seed{seed}.first_finding_s",
                    first.elapsed if first else float("nan"),
                    "s",
                )
                emit(
                    f"hunt.{variant}.seed{seed}.first_finding_program",
                    first.program if first else -1,
                    "program",
                )


if __name__ == "__main__":
    main()
