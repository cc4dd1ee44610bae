"""The reduction stays sound with the SPMC's own locks: DPOR reaches what every schedule
reaches on programs where partitions' execution contexts run at once.

Each program boots a system with the default partitions and 0x8004, a partition with two
execution contexts whose handler does what its request asks (payload ``op``): count with an
atomic read then set, or add; count in its memory, with or without its spinlock; ask the echo
partition 0x8001 (a partition-to-partition request, BUSY when its one context is taken); send
VM 1 an indirect message; set VM 1's notification. VM 1's two vCPUs make the requests. System
programs of the default partitions and the built-in scenarios that drive the SPMC most are
cross-checked too (every built-in scenario on every variant agrees; the others take longer)."""

from __future__ import annotations

import struct
import weakref
from collections.abc import Sequence
from typing import Any

import pytest
from programs import state_of as system_state_of
from programs import system_program

from ffasim import SecurePartition, System, abi, default_partitions
from ffasim.check.crosscheck import cross_check
from ffasim.check.digest import fingerprint
from ffasim.check.monitors import default_monitors
from ffasim.machine import Machine, Thread, spin_lock, spin_unlock
from ffasim.scenario import builtin_scenarios
from ffasim.scenario._check import scenario_program, scenario_state
from ffasim.spmc import DirectMessage

MP_ID = 0x8004
(COUNT, ADD, MEM, MEM_LOCKED, ECHO, SEND2, NOTIFY) = range(1, 8)
_WORLDS: weakref.WeakKeyDictionary[Machine, tuple[System, dict[str, list[Any]]]] = (
    weakref.WeakKeyDictionary()
)


def _handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
    op = msg.payload[0]
    if op == COUNT:
        counter = sp.atomic("counter")
        counter.set(counter.read() + 1)
    elif op == ADD:
        sp.atomic("counter").add(1)
    elif op in (MEM, MEM_LOCKED):
        lock = sp.spinlock("lock")
        if op == MEM_LOCKED:
            spin_lock(lock)
        v = int.from_bytes(sp.read(sp.pages[0], 8), "little")
        sp.write(sp.pages[0], (v + 1).to_bytes(8, "little"))
        if op == MEM_LOCKED:
            spin_unlock(lock)
    elif op == ECHO:
        r = sp.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(sp.id, 0x8001), 0, 5)
        return (r[0] & abi.MASK32, r[3])
    elif op == SEND2:
        head = struct.pack("<IIIHHI", 0, 0, 40, msg.sender, sp.id, 4) + bytes(20)
        sp.write(sp.tx, head + b"pong")
        return (sp.smc(abi.FFA_MSG_SEND2)[2],)
    elif op == NOTIFY:
        return (sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(sp.id, msg.sender), 0, 1)[2],)
    return ()


def mp_program(spec: Sequence[tuple[int, Sequence[int]]]) -> Any:
    """A program whose threads are VM 1's vCPUs ``(vcpu, ops)``, each op a direct request to
    0x8004; VM 1 mapped its buffers and has a notification bitmap bound to 0x8004."""

    def program(m: Machine) -> Any:
        sp = SecurePartition(MP_ID, "0b0b0b0b-0000-4000-8000-000000008004", exec_ctx=2,
                             properties=0x10f, handler=_handler)  # fmt: skip
        system = System(partitions=[*default_partitions(), sp], machine=m)
        vm = system.create_vm(vcpus=2, pages=8)
        vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
        vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(1), vm.ipa(0), 1)
        vm.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(MP_ID, vm.id), 0, 1)
        reads: dict[str, list[Any]] = {}
        _WORLDS[m] = (system, reads)

        def run(vcpu: int, ops: Sequence[int]) -> None:
            mine = reads[f"d0v{vcpu}"]
            for op in ops:
                regs = (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, MP_ID), 0, op)
                r = vm.smc(*regs, vcpu=vcpu)
                mine.append(tuple(v & abi.MASK32 for v in r[:5]))

        threads = []
        for vcpu, ops in spec:
            reads[f"d0v{vcpu}"] = []
            threads.append(Thread(f"d0v{vcpu}", lambda v=vcpu, o=ops: run(v, o)))
        return threads, None

    return program


def mp_state_of(m: Machine) -> str:
    system, reads = _WORLDS[m]
    return fingerprint(system, reads)


MP_SPECS = [
    [(0, [COUNT]), (1, [COUNT])],
    [(0, [ADD]), (1, [COUNT])],
    [(0, [MEM]), (1, [MEM_LOCKED])],
    [(0, [MEM_LOCKED]), (1, [MEM_LOCKED])],
    [(0, [ECHO]), (1, [ECHO])],
    [(0, [SEND2]), (1, [NOTIFY])],
    [(0, [ECHO, COUNT]), (1, [SEND2])],
]


def _ops(spec: list[tuple[int, list[int]]]) -> str:
    return "-".join(str(op) for _, ops in spec for op in ops)


@pytest.mark.parametrize("spec", MP_SPECS, ids=_ops)
def test_two_contexts_of_one_partition_cross_check(spec: list[tuple[int, list[int]]]) -> None:
    cc = cross_check(mp_program(spec), mp_state_of, preemption_bound=1,
                     monitors_factory=default_monitors)  # fmt: skip
    assert cc.agree, (cc.missed, cc.extra)
    assert cc.dpor.executions <= cc.naive.executions


SYSTEM_SPECS = [
    [("d0v0", ["direct"]), ("d0v1", ["direct"])],
    [("d0v0", ["direct"]), ("d1v0", ["share"])],
    [("d0v0", ["send2"]), ("d1v0", ["send2"])],
    [("d0v0", ["direct"]), ("toolstack", ["destroy"])],
]


@pytest.mark.parametrize("spec", SYSTEM_SPECS, ids=lambda s: "-".join(c for c, _ in s))
def test_default_partitions_under_two_vcpus_cross_check(spec: list[tuple[str, list[str]]]) -> None:
    cc = cross_check(system_program(spec), system_state_of, preemption_bound=1,
                     monitors_factory=default_monitors)  # fmt: skip
    assert cc.agree, (cc.missed, cc.extra)


SPMC_SCENARIOS = ["share-vs-partinfo", "destroy-during-call", "sri-vs-notification-get"]


@pytest.mark.parametrize("name", SPMC_SCENARIOS)
def test_builtin_scenarios_that_drive_the_spmc_cross_check(name: str) -> None:
    program = scenario_program(builtin_scenarios()[name], "reference")
    cc = cross_check(program, scenario_state, preemption_bound=1, monitors_factory=default_monitors)
    assert cc.agree, (cc.missed, cc.extra)
