"""PhysMem throughput: reading and writing one whole 4 KiB page, as a mediator copies buffers.

Prints one JSON object per line: {"name": ..., "value": ..., "unit": ...}. The goal is at
least 1 GB/s for each; every access still goes through the machine's event sink (the default
one, which ignores it), so this is the cost the model pays per page copy.

Run: python benchmarks/bench_memory.py [--quick]
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable

from ffasim.machine import PAGE_SIZE, Machine


def best_seconds(
    fns: dict[str, Callable[[], object]], number: int, repeat: int
) -> dict[str, float]:
    """Best per-call time of each function over interleaved rounds (least disturbed run)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number)
    return best


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


def main() -> None:
    quick = "--quick" in sys.argv
    number, repeat = (500, 3) if quick else (5000, 9)
    m = Machine()
    frame = m.heap.alloc_page("d0", tag="bench")
    assert frame is not None
    pa = frame.pa
    page = bytes(range(256)) * (PAGE_SIZE // 256)
    mem = m.mem
    mem.write(pa, page, "d0")
    assert mem.read(pa, PAGE_SIZE, "d0") == page
    # A 4 KiB copy that straddles two frames: the mediator's worst case for one page.
    other = m.heap.alloc_page("d0", tag="bench2")
    assert other is not None and other.mfn == frame.mfn + 1
    straddle = pa + PAGE_SIZE // 2
    t = best_seconds(
        {
            "read": lambda: mem.read(pa, PAGE_SIZE, "d0"),
            "write": lambda: mem.write(pa, page, "d0"),
            "read_straddling": lambda: mem.read(straddle, PAGE_SIZE, "d0"),
            "write_straddling": lambda: mem.write(straddle, page, "d0"),
        },
        number,
        repeat,
    )
    for name, seconds in t.items():
        emit(f"physmem.{name}_4k", PAGE_SIZE / seconds / 1e9, "GB/s")
    emit("physmem.read_4k_latency", t["read"] * 1e6, "us")
    emit("physmem.write_4k_latency", t["write"] * 1e6, "us")


if __name__ == "__main__":
    main()
