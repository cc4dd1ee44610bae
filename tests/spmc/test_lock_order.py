"""The SPMC takes its locks in the documented order (``ffasim.spmc.vm.LOCK_ORDER``), but where
Hafnium v2.14 itself does not (``LOCK_ORDER_EXCEPTIONS``), and those departures are real.

A sink sees every acquisition and compares the new lock with each SPMC lock the context
already holds: of two kinds, the outer must come first in the order; of one kind, the lower
VM ID (then vCPU index) first."""

from __future__ import annotations

import re
import struct

from hypothesis import HealthCheck, settings

from ffasim import abi
from ffasim.machine import EventSink
from ffasim.machine.locks import Lockable
from ffasim.spmc import Spmc
from ffasim.spmc.vm import LOCK_ORDER, LOCK_ORDER_EXCEPTIONS

from .helpers import make, relinquish_desc, retrieve_req, txn
from .test_stateful import SpmcStateMachine

# Each kind of the documented order as a pattern of lock names ("*": a hex VM ID or an index).
_KINDS = [re.compile(re.escape(k).replace(r"\*", "([0-9a-f]+)") + r"\Z") for k in LOCK_ORDER]


def rank(name: str) -> tuple[int, ...] | None:
    """Where lock ``name`` stands in the order: its kind, then its VM ID and vCPU index."""
    for i, kind in enumerate(_KINDS):
        m = kind.match(name)
        if m is not None:
            return (i, *(int(g, 16) for g in m.groups()))
    return None  # not an SPMC lock (a partition's own, Xen's)


class OrderSink(EventSink):
    """Records each acquisition that departs from the order, as (FF-A call, the kind held,
    the kind taken); the call is the innermost SMC under way."""

    def __init__(self) -> None:
        self.held: list[tuple[str, tuple[int, ...]]] = []
        self.calls: list[str] = []
        self.departures: set[tuple[str, str, str]] = set()

    def acquired(self, lock: Lockable) -> None:
        r = rank(lock.name)
        if r is None:
            return
        for _, h in self.held:
            if not h < r:
                self.departures.add((self.calls[-1], LOCK_ORDER[h[0]], LOCK_ORDER[r[0]]))
        self.held.append((lock.name, r))

    def released(self, lock: Lockable) -> None:
        for i, (name, _) in enumerate(self.held):
            if name == lock.name:
                del self.held[i]
                return


def watch(spmc: Spmc) -> OrderSink:
    """Install an order-checking sink on ``spmc``'s machine; calls through ``spmc.entry``
    (the hypervisor's and the partitions') are named by their function ID."""
    sink = OrderSink()
    spmc.machine.sink = sink
    entry = spmc.entry

    def named_entry(caller: int, regs: abi.Regs) -> abi.Regs:
        sink.calls.append(abi.name(regs[0]))
        out = entry(caller, regs)
        sink.calls.pop()
        return out

    spmc.entry = named_entry  # type: ignore[method-assign]
    return sink


EXPECTED = {
    ("FFA_MSG_SEND2", "spmc.vm*.lock", "spmc.nwd_vms_lock"),
    ("FFA_MSG_SEND2", "spmc.vm*.lock", "spmc.vm*.lock"),
    ("FFA_RXTX_MAP_64", "spmc.mm_stage1_lock", "spmc.vm*.lock"),
    ("FFA_RXTX_UNMAP", "spmc.mm_stage1_lock", "spmc.vm*.lock"),
}


def _msg(sender: int, receiver: int, payload: bytes) -> bytes:
    return struct.pack("<IIIHHI", 0, 0, 40, receiver, sender, len(payload)) + bytes(20) + payload


def test_every_abi_keeps_the_order_but_hafnium_s_own_departures() -> None:
    spmc, hyp = make()
    sink = watch(spmc)
    _rx, tx, r = hyp.forward_rxtx(1)  # departs: VM 0's lock under mm_stage1_lock
    assert r[0] == abi.FFA_SUCCESS_32
    hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    hyp.call(abi.FFA_PARTITION_INFO_GET)
    hyp.call(abi.FFA_RX_RELEASE)
    # Memory: a lend with the clear flag in two fragments, retrieved and filled by 0x8002,
    # relinquished, reclaimed (clearing again).
    pages = hyp.vm_pages(1, 2)
    desc = txn(1, [(0x8002, 0x2)], [(f.pa, 1) for f in pages], attrs=0, flags=1)
    r = hyp.send(abi.FFA_MEM_LEND_64, desc, len(desc) - 16)
    hyp.write_tx(desc[-16:])
    r = hyp.call(abi.FFA_MEM_FRAG_TX, r[1], r[2], 16, 1 << 16)
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)
    handle = abi.make_handle(r[2], r[3])
    r = hyp.direct(1, 0x8002, 1, r[2], r[3], 0x5A, 0)
    assert r[3] == 0, abi.describe(r)
    sp = spmc.partitions[0x8002]
    req = retrieve_req(1, handle, [(0x8002, 0x2 | 0x4)])
    sp.write(sp.tx, req)
    assert sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))[0] == abi.FFA_MEM_RETRIEVE_RESP
    sp.smc(abi.FFA_RX_RELEASE)
    sp.write(sp.tx, relinquish_desc(handle, [0x8002], flags=1))
    assert sp.smc(abi.FFA_MEM_RELINQUISH)[0] == abi.FFA_SUCCESS_32
    assert hyp.call(abi.FFA_MEM_RECLAIM, handle & abi.MASK32, handle >> 32, 1)[0] == (
        abi.FFA_SUCCESS_32
    )
    # Notifications, and indirect messages both ways (partition to VM departs).
    echo = spmc.partitions[0x8001]
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)
    hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 1), 0, 1)
    echo.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 1), 0, 1)
    hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    hyp.call(abi.FFA_NOTIFICATION_GET, 1, abi.FFA_NOTIF_FLAG_BITMAP_SP)
    hyp.m.mem.write(tx.pa, _msg(1, 0x8001, b"ping"), "d0")
    assert hyp.call(abi.FFA_MSG_SEND2, 1 << 16)[0] == abi.FFA_SUCCESS_32
    echo.write(echo.tx, _msg(0x8001, 1, b"pong"))
    assert echo.smc(abi.FFA_MSG_SEND2)[0] == abi.FFA_SUCCESS_32
    echo.smc(abi.FFA_MSG_WAIT)
    hyp.call(abi.FFA_RX_ACQUIRE, 1)
    hyp.call(abi.FFA_RUN, 0x8001 << 16)
    hyp.direct(1, 0x8001, 7)
    hyp.call(abi.FFA_NOTIFICATION_GET, 1, abi.FFA_NOTIF_FLAG_BITMAP_SPM)
    hyp.call(abi.FFA_RX_RELEASE, 1)
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)
    assert hyp.call(abi.FFA_RXTX_UNMAP, 1 << 16)[0] == abi.FFA_SUCCESS_32  # departs too
    assert sink.departures == EXPECTED
    assert {call for call, _ in LOCK_ORDER_EXCEPTIONS} == {call for call, *_ in EXPECTED}
    assert sink.held == [] and spmc.machine.held == []


class OrderedSpmcStateMachine(SpmcStateMachine):
    """The random calls of ``test_stateful``, watched by the order-checking sink."""

    def __init__(self) -> None:
        super().__init__()
        self.sink = watch(self.spmc)

    def teardown(self) -> None:
        assert self.sink.departures <= EXPECTED, self.sink.departures - EXPECTED


TestOrderedSpmcStateMachine = OrderedSpmcStateMachine.TestCase
TestOrderedSpmcStateMachine.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
