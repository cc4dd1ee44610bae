"""Start-up cost of the ``ffasim`` command: one JSON object per line, ``{"name", "value",
"unit", ...}``, CPU seconds (user + system) of a fresh interpreter, min and median of N runs.

- ``python -c pass`` (the floor: the interpreter and its site packages);
- ``ffasim --help`` and ``ffasim --version``;
- ``ffasim check partinfo-2vcpu --variant seed-v1`` (the first finding: the checker, the model,
  two executions, minimisation and the schedule file).

Each command runs as the console script does (``from ffasim.cli import main; main()``) in a
child process with this checkout's ``src`` first on ``PYTHONPATH``. Bytecode caching is on
(``PYTHONDONTWRITEBYTECODE`` is cleared) and one warm-up run fills the cache before the timed
runs: the figure is that of an installed ffasim, not of compiling 80 modules.

Run: ``python benchmarks/bench_startup.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAIN = "from ffasim.cli import main; main()"


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """CPU time (user + system) of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def emit(name: str, samples: list[float]) -> None:
    print(
        json.dumps(
            {
                "name": name,
                "value": round(min(samples), 4),
                "unit": "CPU s",
                "median": round(statistics.median(samples), 4),
                "runs": len(samples),
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="timed runs per command")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as out:
        commands = {
            "startup.python": [sys.executable, "-c", "pass"],
            "startup.help": [sys.executable, "-c", MAIN, "--help"],
            "startup.version": [sys.executable, "-c", MAIN, "--version"],
            "startup.check_first_finding": [
                sys.executable,
                "-c",
                MAIN,
                "check",
                "partinfo-2vcpu",
                "--variant",
                "seed-v1",
                "--out",
                out,
            ],
        }
        for name, argv in commands.items():
            cpu_seconds(argv, env)  # fills the bytecode cache
            emit(name, [cpu_seconds(argv, env) for _ in range(args.runs)])


if __name__ == "__main__":
    main()
