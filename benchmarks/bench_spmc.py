"""SPMC throughput: one JSON object per line ({"name", "value", "unit"}).

- ``spmc_share_cycle``: a 1-page FFA_MEM_SHARE_64 -> partition FFA_MEM_RETRIEVE_REQ_64 ->
  FFA_RX_RELEASE -> FFA_MEM_RELINQUISH -> FFA_MEM_RECLAIM cycle at the SPMC, per second;
- ``spmc_partition_info_get_64``: FFA_PARTITION_INFO_GET (nil UUID) + FFA_RX_RELEASE with 64
  partitions, per second.

Rates are per second of this process's CPU time (``time.process_time``), so that a machine
shared with other jobs still gives comparable numbers.

Run: ``python benchmarks/bench_spmc.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable

from ffasim import abi
from ffasim.machine import Machine
from ffasim.spmc import SecurePartition, Spmc


def _rate(fn: Callable[[], None], seconds: float) -> float:
    fn()  # warm up
    n = 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.process_time()
        if now >= deadline:
            return n / (now - start)


def _hypervisor(spmc: Spmc) -> tuple[int, int]:
    m = spmc.machine
    rx = m.heap.alloc_page("xen")
    tx = m.heap.alloc_page("xen")
    assert rx is not None and tx is not None
    r = spmc.entry(0, abi.regs(abi.FFA_RXTX_MAP_64, tx.pa, rx.pa, 1))
    assert abi.is_success(r), abi.describe(r)
    return rx.pa, tx.pa


def bench_share_cycle(seconds: float) -> float:
    m = Machine()
    sp = SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001", properties=0x109)
    spmc = Spmc(m, [sp])
    _rx, tx = _hypervisor(spmc)
    page = m.heap.alloc_contiguous(1, "d0")
    assert page is not None
    share = (
        struct.pack("<HHIQQIII12s", 1, 0x2F, 0, 0, 0, 32, 1, 48, bytes(12))
        + struct.pack("<HBBI24s", 0x8001, 2, 0, 80, bytes(24))
        + struct.pack("<IIQQII", 1, 1, 0, page[0].pa, 1, 0)
    )
    m.mem.write(tx, share, "xen")
    entry = spmc.entry
    share_regs = abi.regs(abi.FFA_MEM_SHARE_64, len(share), len(share))
    retrieve_hdr = struct.Struct("<HHIQQIII12sHBBI24s")
    release = abi.regs(abi.FFA_RX_RELEASE)
    relinquish = abi.regs(abi.FFA_MEM_RELINQUISH)
    retrieve = abi.regs(abi.FFA_MEM_RETRIEVE_REQ_64, 80, 80)

    def cycle() -> None:
        r = entry(0, share_regs)
        handle = r[2]
        req = retrieve_hdr.pack(
            1, 0, 0, handle, 0, 32, 1, 48, bytes(12), 0x8001, 2, 0, 0, bytes(24)
        )
        sp.write(sp.tx, req)
        r = entry(0x8001, retrieve)
        assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
        entry(0x8001, release)
        sp.write(sp.tx, struct.pack("<QIIH", handle, 0, 1, 0x8001))
        assert entry(0x8001, relinquish)[0] == abi.FFA_SUCCESS_32
        assert entry(0, abi.regs(abi.FFA_MEM_RECLAIM, handle, 0, 0))[0] == abi.FFA_SUCCESS_32

    return _rate(cycle, seconds)


def bench_partition_info(seconds: float) -> float:
    m = Machine()
    parts = [SecurePartition(0x8001 + i, f"cccccccc-0000-0000-0000-{i:012x}") for i in range(64)]
    spmc = Spmc(m, parts)
    _hypervisor(spmc)
    entry = spmc.entry
    get = abi.regs(abi.FFA_PARTITION_INFO_GET)
    release = abi.regs(abi.FFA_RX_RELEASE)

    def call() -> None:
        r = entry(0, get)
        assert r[2] == 64
        entry(0, release)

    return _rate(call, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per benchmark")
    args = parser.parse_args()
    results = [
        ("spmc_share_cycle", bench_share_cycle(args.seconds), "cycles/s"),
        ("spmc_partition_info_get_64", bench_partition_info(args.seconds), "calls/s"),
    ]
    for name, value, unit in results:
        print(json.dumps({"name": name, "value": round(value, 1), "unit": unit}))


if __name__ == "__main__":
    main()
