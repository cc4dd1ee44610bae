"""Mediator throughput: one JSON object per line ({"name", "value", "unit"}).

- FFA_ID_GET round trips through ``vm.smc`` (the dispatch path; goal >= 100,000/s);
- 1-page FFA_MEM_SHARE + FFA_MEM_RECLAIM pairs (goal >= 10,000/s);
- FFA_PARTITION_INFO_GET with 63 partitions (Xen's limit is 64, exclusive) and 256 VMs with
  VM-to-VM: the full list for a v1.0 guest (8-byte entries fit one page), the count for a v1.2
  guest, and a full walk with FFA_PARTITION_INFO_GET_REGS.

Rates are per second of CPU time. Run: ``python benchmarks/bench_mediator.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable

from ffasim import abi
from ffasim.spmc import SecurePartition
from ffasim.system import VM, System


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 1), "unit": unit}), flush=True)


def rate(fn: Callable[[], None], seconds: float) -> float:
    """Calls of ``fn`` per second of this process's CPU time, over about ``seconds`` of it
    (CPU time, so that other load on the machine does not skew the figure)."""
    n = 0
    batch = 64
    start = time.process_time()
    end = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.process_time()
        if now >= end:
            return n / (now - start)


def ready(vm: VM, vers: int = abi.FFA_VERSION_1_2) -> VM:
    vm.smc(abi.FFA_VERSION, vers)
    vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(1), 1)
    return vm


def bench_id_get(seconds: float) -> None:
    vm = System().create_vm()
    vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    smc = vm.smc
    fid = abi.FFA_ID_GET
    assert smc(fid)[2] == vm.id
    emit("ffa_id_get_round_trips", rate(lambda: smc(fid), seconds), "calls/s")


def bench_share_reclaim(seconds: float) -> None:
    vm = ready(System().create_vm())
    hdr = struct.pack("<HHIQQIII12s", vm.id, 0x2F, 0, 0, 0, 16, 1, 48, bytes(12))
    desc = hdr + struct.pack("<HBBIQ", 0x8001, 2, 0, 64, 0) + struct.pack("<IIQ", 1, 1, 0)
    desc += struct.pack("<QII", vm.ipa(4), 1, 0)
    vm.write(vm.ipa(0), desc)
    n = len(desc)

    def pair() -> None:
        r = vm.smc(abi.FFA_MEM_SHARE_64, n, n, 0, 0)
        vm.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)

    r = vm.smc(abi.FFA_MEM_SHARE_64, n, n, 0, 0)
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)
    assert vm.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)[0] == abi.FFA_SUCCESS_32
    emit("mem_share_reclaim_pairs", rate(pair, seconds), "pairs/s")


def bench_partinfo(seconds: float) -> None:
    parts = [
        SecurePartition(0x8001 + n, f"ffa5e000-0000-4000-8000-{0x9000 + n:012x}") for n in range(63)
    ]
    system = System(partitions=parts, vm_to_vm=True, spmc_max_vms=300)
    vms = [ready(system.create_vm(pages=2)) for _ in range(255)]
    old = ready(system.create_vm(pages=2), abi.FFA_VERSION_1_0)
    new = vms[0]

    def listing() -> None:
        old.smc(abi.FFA_PARTITION_INFO_GET)
        old.smc(abi.FFA_RX_RELEASE)

    r = old.smc(abi.FFA_PARTITION_INFO_GET)
    assert r == abi.success(63 + 255, 0), abi.describe(r)
    old.smc(abi.FFA_RX_RELEASE)
    emit("partition_info_get_list_63sp_256vm", rate(listing, seconds), "calls/s")

    def count() -> None:
        new.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)

    assert new.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1) == abi.success(63 + 256, 0)
    emit("partition_info_get_count_63sp_256vm", rate(count, seconds), "calls/s")

    def walk() -> None:
        r = new.smc(abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, 0)
        tag = (r[2] >> 32) & 0xFFFF
        while (r[2] >> 16) & 0xFFFF != r[2] & 0xFFFF:
            start = ((r[2] >> 16) & 0xFFFF) + 1
            r = new.smc(abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, start | tag << 16)
            assert r[0] == abi.FFA_SUCCESS_64

    emit("partition_info_get_regs_full_walk_63sp_256vm", rate(walk, seconds), "walks/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = ap.parse_args()
    bench_id_get(args.seconds)
    bench_share_reclaim(args.seconds)
    bench_partinfo(args.seconds)


if __name__ == "__main__":
    main()
