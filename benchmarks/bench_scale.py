"""Scaling: the cost of one call as the system grows. One JSON object per line
({"name", "value", "unit"}), then, with ``--table``, a Markdown table.

- 64 partitions and 10 / 100 / 1,000 VMs (VM-to-VM on, so that guests see each other):
  ``FFA_ID_GET`` (the floor: trap, dispatch, answer),
  ``FFA_PARTITION_INFO_GET`` through Xen (64 SP entries from Xen's cache plus one per VM, then
  ``FFA_RX_RELEASE``), and the whole ``FFA_PARTITION_INFO_GET_REGS`` walk (five entries per
  call, as Linux pages it: quadratic in the VM count, as in Xen, which re-walks its VM list for
  every page);
- shares of 1 / 16 / 256 pages, as one address range and as that many ranges (every other page),
  ``FFA_MEM_SHARE`` + ``FFA_MEM_RECLAIM`` through Xen into the SPMC (Hafnium's overlap scan of the
  ranges is quadratic too). 256 ranges do not fit Xen's one-page TX buffer, and Xen takes no
  fragmented share from a guest: that line says so instead of a figure.

Costs are microseconds of this process's CPU time per call (``time.process_time``), the median
of ``--repeat`` runs, so that a shared machine still gives comparable numbers.

Run: ``python benchmarks/bench_scale.py [--repeat N] [--vms 10,100,1000] [--table]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from ffasim import SecurePartition, System, abi, default_partitions
from ffasim.guest import FfaDriver

SPS = 64


def partitions() -> list[SecurePartition]:
    """The default partitions, then plain ones up to ``SPS`` in all."""
    parts = list(default_partitions())
    for i in range(len(parts), SPS):
        sp_id = 0x8001 + i
        parts.append(SecurePartition(sp_id, f"5ca1e000-0000-4000-8000-{sp_id:012x}"))
    return parts


def cost_us(fn: Callable[[], object], repeat: int, at_least: float = 0.2) -> float:
    """Median CPU microseconds per call of ``fn``, each run lasting ``at_least`` seconds."""
    fn()  # warm up
    runs = []
    for _ in range(repeat):
        n = 0
        start = time.process_time()
        while True:
            fn()
            n += 1
            spent = time.process_time() - start
            if spent >= at_least:
                break
        runs.append(spent / n * 1e6)
    return statistics.median(runs)


def with_vms(count: int) -> tuple[System, FfaDriver]:
    # Hafnium stages partition info in a table of its VM-table size: room for every partition.
    system = System(partitions=partitions(), spmc_max_vms=max(count, SPS) + 8, vm_to_vm=True)
    drivers = [FfaDriver(system.create_vm(pages=4), 0) for _ in range(count)]
    for d in drivers:  # Xen lists a VM to the others once its version is final: at the
        d.negotiate()  # first call after FFA_VERSION
        d.call(abi.FFA_ID_GET)
    first = drivers[0]
    first.map_buffers()
    return system, first


def sharer(pages: int) -> FfaDriver:
    system = System(partitions=partitions(), spmc_max_vms=SPS + 8)
    driver = FfaDriver(system.create_vm(pages=2 * pages + 8), 0)
    driver.negotiate()
    driver.map_buffers()  # Xen maps one page of RX and TX (FFA_MAX_RXTX_PAGE_COUNT)
    return driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vms", default="10,100,1000")
    ap.add_argument("--table", action="store_true", help="also print a Markdown table")
    args = ap.parse_args()
    rows: list[tuple[str, float | str]] = []

    def emit(name: str, value: float) -> None:
        rows.append((name, value))
        print(json.dumps({"name": name, "value": round(value, 1), "unit": "us/call"}))

    for count in (int(v) for v in args.vms.split(",")):
        _, d = with_vms(count)
        size = f"[{SPS}sp,{count}vm]"
        emit(f"id_get{size}", cost_us(lambda d=d: d.call(abi.FFA_ID_GET), args.repeat))
        # Past ~165 entries the list does not fit the one-page RX: the answer is NO_MEMORY,
        # after Xen has walked the whole list (that is the cost shown).
        fits = isinstance(d.partition_info(check=False), list)
        info = f"partition_info_get{size}" + ("" if fits else " (NO_MEMORY)")
        emit(info, cost_us(lambda d=d: d.partition_info(check=False), args.repeat))
        emit(f"partition_info_get_regs_walk{size}", cost_us(d.partition_info_regs, args.repeat))

    for pages in (1, 16, 256):
        for spread, page_list in (
            ("1 range", list(range(8, 8 + pages))),
            (f"{pages} ranges", list(range(8, 8 + 2 * pages, 2))),
        ):
            if pages == 1 and spread != "1 range":
                continue
            d = sharer(pages)
            size = len(d.mem_transaction(0x8002, page_list))
            if size > abi.FFA_PAGE_SIZE:  # Xen takes no fragmented share from a guest
                note = f"a {size}-byte descriptor does not fit Xen's TX page"
                name = f"share_reclaim[{pages}p,{spread}]"
                rows.append((name, note))
                print(json.dumps({"name": name, "value": None, "note": note}))
                continue

            def cycle(d: FfaDriver = d, page_list: list[int] = page_list) -> None:
                handle = d.share(0x8002, page_list)
                assert isinstance(handle, int)
                d.reclaim(handle)

            emit(f"share_reclaim[{pages}p,{spread}]", cost_us(cycle, args.repeat))

    if args.table:
        print("\n| call | us per call |\n|---|---|")
        for name, value in rows:
            shown = value if isinstance(value, str) else f"{value:,.1f}"
            print(f"| `{name}` | {shown} |")


if __name__ == "__main__":
    main()
