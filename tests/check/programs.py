"""Small concurrent programs over the machine's primitives, generated for the cross-check.

A program is a list of threads, each a list of operations on a small shared world:

- ``("r", v)``, ``("w", v)``, ``("inc", v)``, ``("cas", v)``: atomics ``x``/``y`` (a write
  stores the thread's token; ``cas`` swaps 0 for the token);
- ``("lock", l, ops)``, ``("try", l, ops)``: spinlocks ``A``/``B`` around inner ops (nested
  sections may take them in either order: some programs deadlock);
- ``("rlock", ops)``, ``("wlock", ops)``: rwlock ``R``;
- ``("gr",)``, ``("gw",)``: the guarded field ``f`` (guard ``A``, held or not);
- ``("mem", page, write)``: 8 bytes of shared physical page 0 or 1, as the hypervisor;
- ``("alloc",)``, ``("free",)``: a page from the heap (the thread records which), freed again;
- ``("grant", page)``, ``("revoke", page)``: a grant of a shared page to the SPMC;
- ``("hr", k)``, ``("hw", k)``: hidden state (a plain dict), declared with ``access``;
- ``("assert", v)``: a hypervisor ASSERT that ``v`` is not the other thread's token (a panic
  ends the execution: what the others would have done must still be explored).

System programs (:func:`system_program`) run vCPU threads of two VMs against Xen and the SPMC:
FF-A calls, guest memory accesses, and a toolstack thread that destroys a VM.

Every read is recorded per thread; :func:`state_of` fingerprints the world, so that the
cross-check can compare terminal states.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from ffasim import abi, desc
from ffasim.check.digest import fingerprint
from ffasim.machine import (
    ASSERT,
    Atomic,
    Guarded,
    Machine,
    Thread,
    grant,
    read_lock,
    read_unlock,
    revoke,
    spin_lock,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)

Op = tuple[Any, ...]
Spec = Sequence[Sequence[Op]]

SHARED_BASE_MFN = 0x90000
HIDDEN = "hidden"

_WORLDS: weakref.WeakKeyDictionary[Machine, dict[str, Any]] = weakref.WeakKeyDictionary()


def state_of(m: Machine) -> str:
    """The fingerprint of the world built on ``m`` (values, locks, reads, frames, heap)."""
    w = _WORLDS[m]
    frames = {mfn: f for mfn, f in m.mem.frames.items()}
    return fingerprint(w, frames, m.heap.free_list, m.heap.next_mfn)


def primitive_program(spec: Spec) -> Callable[[Machine], Any]:
    """A program running ``spec`` on bare machine primitives."""

    def program(m: Machine) -> Any:
        lock_a = m.spinlock("A")
        world: dict[str, Any] = {
            "x": Atomic(m, "x"),
            "y": Atomic(m, "y"),
            "A": lock_a,
            "B": m.spinlock("B"),
            "R": m.rwlock("R"),
            "f": Guarded(m, "f", 0, lock_a),
            "hidden": {},
            "reads": {},
            "pages": {},
        }
        _WORLDS[m] = world
        for page in (0, 1):
            m.mem.frame(SHARED_BASE_MFN + page).owner = "xen"

        def run(name: str, token: int, ops: Sequence[Op]) -> None:
            reads = world["reads"][name]
            for op in ops:
                kind = op[0]
                if kind == "r":
                    reads.append(world[op[1]].read())
                elif kind == "w":
                    world[op[1]].set(token)
                elif kind == "inc":
                    reads.append(world[op[1]].inc())
                elif kind == "cas":
                    reads.append(world[op[1]].cmpxchg(0, token))
                elif kind in ("lock", "try"):
                    lock = world[op[1]]
                    if kind == "lock":
                        spin_lock(lock)
                    elif not spin_trylock(lock):
                        reads.append(-1)
                        continue
                    run(name, token, op[2])
                    spin_unlock(lock)
                elif kind == "rlock":
                    read_lock(world["R"])
                    run(name, token, op[1])
                    read_unlock(world["R"])
                elif kind == "wlock":
                    write_lock(world["R"])
                    run(name, token, op[1])
                    write_unlock(world["R"])
                elif kind == "gr":
                    reads.append(world["f"].get())
                elif kind == "gw":
                    world["f"].set(token)
                elif kind == "mem":
                    pa = (SHARED_BASE_MFN + op[1]) << 12
                    if op[2]:
                        m.mem.write(pa, token.to_bytes(8, "little"), "xen")
                    else:
                        reads.append(int.from_bytes(m.mem.read(pa, 8, "xen"), "little"))
                elif kind == "alloc":
                    f = m.heap.alloc_page("xen", site=name)
                    reads.append(f.mfn if f is not None else 0)
                    if f is not None:
                        world["pages"].setdefault(name, []).append(f)
                elif kind == "free":
                    mine = world["pages"].get(name)
                    if mine:
                        m.heap.free_page(mine.pop())
                elif kind == "grant":
                    grant(m.mem.frame(SHARED_BASE_MFN + op[1]), "spmc")
                elif kind == "revoke":
                    revoke(m.mem.frame(SHARED_BASE_MFN + op[1]), "spmc")
                elif kind == "hr":
                    m.sink.access(HIDDEN, op[1], False)
                    reads.append(world["hidden"].get(op[1], 0))
                elif kind == "hw":
                    m.sink.access(HIDDEN, op[1], True)
                    world["hidden"][op[1]] = token
                elif kind == "assert":
                    v = world[op[1]].read()
                    ASSERT(v in (0, token), f"{op[1]} == {v}")
                else:
                    raise ValueError(f"bad op {op!r}")

        threads = []
        for i, ops in enumerate(spec):
            name = f"t{i}"
            world["reads"][name] = []
            threads.append(Thread(name, lambda n=name, t=i + 1, o=ops: run(n, t, o)))
        return threads, None

    return program


def steps(ops: Sequence[Op]) -> int:
    """An upper bound on the scheduling points ``ops`` make (for sizing programs)."""
    n = 0
    for op in ops:
        if op[0] in ("lock", "try"):
            n += 2 + steps(op[2])
        elif op[0] in ("rlock", "wlock"):
            n += 2 + steps(op[1])
        elif op[0] in ("hr", "hw", "grant", "revoke", "free"):
            n += 0
        else:
            n += 1
    return n


_simple = st.one_of(
    st.tuples(st.sampled_from(["r", "w", "inc", "cas", "assert"]), st.sampled_from(["x", "y"])),
    st.tuples(st.sampled_from(["gr", "gw", "alloc", "free"])),
    st.tuples(st.just("mem"), st.integers(0, 1), st.booleans()),
    st.tuples(st.sampled_from(["grant", "revoke"]), st.integers(0, 1)),
    st.tuples(st.sampled_from(["hr", "hw"]), st.sampled_from(["k", "l"])),
)
_inner = st.one_of(
    _simple,
    st.tuples(
        st.sampled_from(["lock", "try"]), st.sampled_from(["A", "B"]), st.lists(_simple, max_size=1)
    ),
)
_op = st.one_of(
    _simple,
    st.tuples(
        st.sampled_from(["lock", "try"]), st.sampled_from(["A", "B"]), st.lists(_inner, max_size=2)
    ),
    st.tuples(st.sampled_from(["rlock", "wlock"]), st.lists(_simple, max_size=2)),
)


def primitive_specs(max_points: int = 9, max_threads: int = 3) -> st.SearchStrategy[list[list[Op]]]:
    """Small programs of 2..``max_threads`` threads with at most ``max_points`` points."""
    return st.lists(st.lists(_op, min_size=1, max_size=3), min_size=2, max_size=max_threads).filter(
        lambda spec: sum(steps(t) for t in spec) <= max_points
    )


# -- system programs ---------------------------------------------------------------------------

# What a vCPU thread may do: FF-A calls through Xen (the RX buffer at RAM page 0, TX at 1),
# guest memory accesses, and (on the toolstack thread) destroying VM 0.
SYSTEM_OPS = (
    "id_get",
    "partinfo",
    "rx_release",
    "unmap",
    "map",
    "direct",
    "send2",
    "share",
    "touch_rx",
    "touch_tx",
)


def system_program(spec: Sequence[tuple[str, Sequence[str]]], variant: str = "reference") -> Any:
    """A program whose threads are ``(context, ops)``: a vCPU (``"d0v0"``, ``"d0v1"``,
    ``"d1v0"``) making ``SYSTEM_OPS``, or ``"toolstack"`` making ``"destroy"`` (of VM 0)."""
    from ffasim import System

    def program(m: Machine) -> Any:
        system = System(variant=variant, machine=m)
        vms = [system.create_vm(vcpus=2, pages=8), system.create_vm(vcpus=1, pages=8)]
        for vm in vms:
            vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
            vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(1), vm.ipa(0), 1)
        world: dict[str, Any] = {"system": system, "reads": {}}
        _WORLDS[m] = world

        def call(vm: Any, vcpu: int, reads: list[Any], *regs: int) -> abi.Regs:
            r = vm.smc(*regs, vcpu=vcpu)
            reads.append((abi.name(regs[0]), r[0] & 0xFFFFFFFF, r[2] & 0xFFFFFFFF))
            return r

        def run(ctx: str, ops: Sequence[str]) -> None:
            reads = world["reads"][ctx]
            if ctx == "toolstack":
                for _ in ops:
                    if not vms[0].destroyed:
                        system.destroy_vm(vms[0])
                return
            vm = vms[int(ctx[1])]
            vcpu = int(ctx[3])
            for op in ops:
                if op == "id_get":
                    call(vm, vcpu, reads, abi.FFA_ID_GET)
                elif op == "partinfo":
                    r = call(vm, vcpu, reads, abi.FFA_PARTITION_INFO_GET)
                    if r[0] == abi.FFA_SUCCESS_32:
                        call(vm, vcpu, reads, abi.FFA_RX_RELEASE)
                elif op == "rx_release":
                    call(vm, vcpu, reads, abi.FFA_RX_RELEASE)
                elif op == "unmap":
                    call(vm, vcpu, reads, abi.FFA_RXTX_UNMAP, vm.id << 16)
                elif op == "map":
                    call(vm, vcpu, reads, abi.FFA_RXTX_MAP_64, vm.ipa(1), vm.ipa(0), 1)
                elif op == "direct":
                    call(
                        vm,
                        vcpu,
                        reads,
                        abi.FFA_MSG_SEND_DIRECT_REQ_32,
                        (vm.id << 16) | 0x8001,
                        0,
                        7,
                    )
                elif op == "send2":
                    vm.write(vm.ipa(1), _send2_message(vm.id, 0x8003))
                    call(vm, vcpu, reads, abi.FFA_MSG_SEND2, 0, 0)
                elif op == "share":
                    desc = _share_descriptor(vm.id, vm.ipa(4))
                    vm.write(vm.ipa(1), desc)
                    r = call(vm, vcpu, reads, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
                    if r[0] == abi.FFA_SUCCESS_32:
                        call(vm, vcpu, reads, abi.FFA_MEM_RECLAIM, r[2], r[3], 0)
                elif op == "touch_rx":
                    reads.append(vm.read(vm.ipa(0), 8))
                elif op == "touch_tx":
                    vm.write(vm.ipa(1), bytes([vcpu + 1]) * 8)
                else:
                    raise ValueError(f"bad op {op!r}")

        threads = []
        for ctx, ops in spec:
            world["reads"][ctx] = []
            threads.append(Thread(ctx, lambda c=ctx, o=ops: run(c, o)))
        return threads, None

    return program


def _send2_message(sender: int, receiver: int) -> bytes:
    """A v1.2 indirect message header and a 4-byte payload."""
    head = desc.INDIRECT_MSG_V1_2.size
    hdr = desc.IndirectMessage(flags=0, offset=head, sender=sender, receiver=receiver, size=4)
    return hdr.encode(abi.FFA_VERSION_1_2) + b"ping"


def _share_descriptor(sender: int, ipa: int) -> bytes:
    """A v1.2 transaction descriptor sharing one page at ``ipa`` with partition 0x8002."""
    tx = desc.MemTransaction(
        sender=sender,
        attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
        flags=0,
        handle=0,
        tag=0,
        receivers=(desc.MemAccess(0x8002, abi.FFA_MEM_ACC_RW),),
        composite=desc.Composite(1, (desc.Constituent(ipa, 1),)),
    )
    return tx.encode(abi.FFA_VERSION_1_2)


system_specs = (
    st.lists(
        st.tuples(
            st.sampled_from(["d0v0", "d0v1", "d1v0"]),
            st.lists(st.sampled_from(SYSTEM_OPS), min_size=1, max_size=2),
        ),
        min_size=1,
        max_size=2,
        unique_by=lambda t: t[0],
    )
    .flatmap(
        lambda threads: st.one_of(
            st.just(threads),
            st.just([*threads, ("toolstack", ["destroy"])]),
        )
    )
    .filter(lambda threads: len(threads) >= 2)
)
