"""Execution contexts run at once: a partition's own races, lock leaks and deadlocks are found
by the checker, as Xen's are; and what runs one at a time (a UP partition) stays clean.

The partitions here are written as a user writes one, with shared state through the
partition's helpers (``sp.atomic``, ``sp.spinlock``) and memory through ``sp.read``/``sp.write``,
and are checked with the ``ffasim_check`` fixture on Python scenarios."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from ffasim import SecurePartition, abi, default_partitions
from ffasim.machine import spin_lock, spin_unlock
from ffasim.scenario import Scenario, StepEnv, ThreadSpec, VmSpec, python_step, step
from ffasim.spmc import DirectMessage

from .helpers import code, make

UUID = "0b0b0b0b-0000-4000-8000-000000008004"
Handler = Callable[[SecurePartition, DirectMessage], Any]


def two_vcpus_call(handler: Handler, *, exec_ctx: int = 2, final: tuple[Any, ...] = ()) -> Scenario:
    """VM 0's two vCPUs each send one direct request to partition 0x8004 at once (a partition
    with one execution context may answer one of them BUSY)."""
    expect = ["success", "BUSY"] if exec_ctx == 1 else ["success"]

    def partitions() -> list[SecurePartition]:
        sp = SecurePartition(0x8004, UUID, exec_ctx=exec_ctx, properties=0x105, handler=handler)
        return [*default_partitions(), sp]

    return Scenario(
        "two-contexts",
        "two vCPUs call one partition at once",
        vms=[VmSpec(vcpus=2)],
        partitions=partitions,
        setup=[step("negotiate", vm=0)],
        threads=[
            ThreadSpec((step("direct_req", dst=0x8004, payload=[1], expect=expect),), vm=0, vcpu=v)
            for v in (0, 1)
        ],
        final=final,
    )


def counter_counts_the_requests(env: StepEnv) -> None:
    """The oracle: the partition counted every request that reached it (not BUSY)."""
    sp = next(p for p in env.instance.partitions if p.id == 0x8004)
    ran = sum(r.phase == "thread" and r.outcome == "success" for r in env.instance.results)
    n = sp.atomic("counter").value
    assert n == ran, f"lost update: counter is {n} after {ran} requests"


def read_then_set(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
    counter = sp.atomic("counter")
    v = counter.read()
    counter.set(v + 1)
    return ()


def atomic_add(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
    sp.atomic("counter").add(1)
    return ()


COUNT = (python_step(counter_counts_the_requests, "count", vm=0),)


def test_two_contexts_lose_an_update_that_the_checker_finds(ffasim_check: Any) -> None:
    report = ffasim_check(two_vcpus_call(read_then_set, final=COUNT), expect="crash")
    (finding,) = report.findings
    assert finding.message.startswith("AssertionError: lost update: counter is 1 after 2 requests")


def test_two_contexts_adding_atomically_are_clean(ffasim_check: Any) -> None:
    report = ffasim_check(two_vcpus_call(atomic_add, final=COUNT))
    assert report.exhausted


# The clean checks of the heavier handlers are bounded at two preemptions (CHESS: bugs rarely
# need more), a third of the exhaustive search's executions.
BOTH_ORDERS = 2


def test_one_context_serialises_the_requests(ffasim_check: Any) -> None:
    # A UP partition takes one request at a time: the other is BUSY, or runs after it.
    scenario = two_vcpus_call(read_then_set, exec_ctx=1, final=COUNT)
    assert ffasim_check(scenario, preemption_bound=BOTH_ORDERS).exhausted


def count_in_memory(locked: bool) -> Handler:
    """A handler counting in the partition's first private page, under its spinlock or not."""

    def handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        page = sp.pages[0]
        lock = sp.spinlock("count_lock")
        if locked:
            spin_lock(lock)
        v = int.from_bytes(sp.read(page, 8), "little")
        sp.write(page, (v + 1).to_bytes(8, "little"))
        if locked:
            spin_unlock(lock)
        return ()

    return handler


def test_two_contexts_counting_in_memory_race(ffasim_check: Any) -> None:
    report = ffasim_check(two_vcpus_call(count_in_memory(locked=False)), expect="data-race")
    (race,) = {f.message.split(":")[0] for f in report.findings}
    assert race.startswith("bytes 0x0..0x7 of frame 0x")
    assert race.endswith("(sp8004, sp8004 memory)")


def test_two_contexts_counting_under_the_partition_s_lock_are_clean(ffasim_check: Any) -> None:
    scenario = two_vcpus_call(count_in_memory(locked=True))
    assert ffasim_check(scenario, preemption_bound=BOTH_ORDERS).exhausted


def test_a_guarded_field_used_without_its_lock_races(ffasim_check: Any) -> None:
    def unguarded(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        total = sp.guarded("total", 0, guard=sp.spinlock("lock"))
        total.set(total.get() + 1)
        return ()

    report = ffasim_check(two_vcpus_call(unguarded), expect="data-race")
    assert report.findings[0].message.startswith("sp8004.total (guarded by sp8004.lock): ")
    assert report.findings[0].message.endswith(" did not hold it")


def test_a_handler_that_keeps_its_lock_is_a_lock_leak(ffasim_check: Any) -> None:
    def keeps(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        spin_lock(sp.spinlock("state_lock"))
        return ()

    report = ffasim_check(two_vcpus_call(keeps), expect="lock-leak")
    assert report.findings[0].message.endswith("still holding sp8004.state_lock")


def test_a_vm_and_a_partition_messaging_each_other_deadlock_as_in_hafnium(
    ffasim_check: Any,
) -> None:
    # Hafnium v2.14's FFA_MSG_SEND2 locks the sender's VM, then the receiver's: VM 1 -> 0x8004
    # and 0x8004 -> VM 1 at once take the two locks in opposite orders.
    def reply(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        head = struct.pack("<IIIHHI", 0, 0, 40, msg.sender, sp.id, 4) + bytes(20)
        sp.write(sp.tx, head + b"pong")
        return (abi.to_u32(abi.error_code(sp.smc(abi.FFA_MSG_SEND2))),)

    def partitions() -> list[SecurePartition]:
        sp = SecurePartition(0x8004, UUID, exec_ctx=2, properties=0x105, handler=reply)
        return [*default_partitions(), sp]

    scenario = Scenario(
        "send2-both-ways",
        "VM 1 and partition 0x8004 send each other an indirect message",
        vms=[VmSpec(vcpus=2)],
        partitions=partitions,
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec((step("send2", dst=0x8004, data="ping", expect=["success", "BUSY"]),), vm=0),
            ThreadSpec((step("direct_req", dst=0x8004, payload=[1]),), vm=0, vcpu=1),
        ],
    )
    report = ffasim_check(scenario, expect="deadlock")
    assert [f.message for f in report.findings] == [
        "d0v0 waits for spmc.vm8004.lock held by d0v1; d0v1 waits for spmc.vm1.lock held by d0v0"
    ]


# -- which execution context takes a request (sequential) -------------------------------------


def test_an_mp_partition_takes_each_cpu_s_request_on_its_own_context() -> None:
    seen: list[tuple[str, int]] = []

    def where(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        assert sp.spmc is not None
        (running,) = [v.index for v in sp.spmc.endpoints[sp.id].vcpus if v.state == "RUNNING"]
        seen.append((sp.machine.current, running))
        return ()

    sp = SecurePartition(0x8004, UUID, exec_ctx=2, properties=0x101, handler=where)
    spmc, hyp = make([sp])
    for ctx in ("d0v0", "d0v1", "d3v1"):
        spmc.machine.current = ctx
        assert hyp.direct(1, 0x8004)[0] == abi.FFA_MSG_SEND_DIRECT_RESP_32
    assert seen == [("d0v0", 0), ("d0v1", 1), ("d3v1", 1)]
    # CPU 2 has no context of this partition: Hafnium's api_ffa_get_vm_vcpu finds none.
    spmc.machine.current = "d0v2"
    assert code(hyp.direct(1, 0x8004)) == abi.FFA_RET_INVALID_PARAMETERS
    spmc.machine.current = "boot"
    assert spmc.invariant_problems() == [] and spmc.machine.held == []


@pytest.mark.parametrize("exec_ctx", [1, 2])
def test_a_context_that_is_not_waiting_answers_busy(exec_ctx: int) -> None:
    answers: list[int] = []

    def again(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        # The hypervisor's second request on this CPU meets this context still running.
        answers.append(code(hyp.direct(2, 0x8004)))
        return ()

    sp = SecurePartition(0x8004, UUID, exec_ctx=exec_ctx, properties=0x101, handler=again)
    spmc, hyp = make([sp])
    assert hyp.direct(1, 0x8004)[0] == abi.FFA_MSG_SEND_DIRECT_RESP_32
    assert answers == [abi.FFA_RET_BUSY]
    assert spmc.invariant_problems() == []
