"""The SecurePartition API, the default partitions, and the SPMC lock discipline."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import AccessFault, EventSink, Machine
from ffasim.machine.locks import Lockable
from ffasim.spmc import DirectMessage, SecurePartition, Spmc, default_partitions
from ffasim.spmc.defaults import ECHO_UUID, MEMSVC_UUID, QUIET_UUID

from .helpers import Hyp, code, make


def test_constructor_fields_are_attributes() -> None:
    def handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        return ()

    sp = SecurePartition(id=0x8005, uuid=ECHO_UUID, exec_ctx=2, properties=0x101, handler=handler)
    assert (sp.id, sp.uuid, sp.exec_ctx, sp.properties, sp.handler) == (
        0x8005,
        ECHO_UUID,
        2,
        0x101,
        handler,
    )
    assert sp.on_vm_created is None and sp.on_vm_destroyed is None
    with pytest.raises(ValueError):
        SecurePartition(id=0x0005, uuid=ECHO_UUID)


def test_default_partitions_are_fresh_and_documented() -> None:
    a, b = default_partitions(), default_partitions()
    assert [p.id for p in a] == [0x8001, 0x8002, 0x8003]
    assert [p.uuid for p in a] == [ECHO_UUID, MEMSVC_UUID, QUIET_UUID]
    assert [p.properties for p in a] == [0x3CD, 0x309, 0x10C]
    assert all(x is not y for x, y in zip(a, b, strict=True))
    assert a[0].vms_created == [] and a[0].vms_destroyed == []  # type: ignore[attr-defined]


def test_partition_buffers_and_pages_are_its_own_memory() -> None:
    spmc, _ = make()
    sp = spmc.partitions[0x8001]
    for addr in (sp.rx, sp.tx, *sp.pages):
        assert spmc.machine.mem.frame_at(addr).owner == "sp8001"
        sp.write(addr, b"ok")
        assert sp.read(addr, 2) == b"ok"
    other = spmc.partitions[0x8002]
    with pytest.raises(AccessFault):
        sp.read(other.pages[0], 1)
    with pytest.raises(AccessFault):
        sp.write(other.rx, b"x")
    with pytest.raises(AccessFault):
        sp.read(1 << 40, 1)  # outside physical memory
    with pytest.raises(AccessFault):
        sp.read(sp.pages[-1] + 4095, 2)  # the range runs into a page it does not own


def test_partition_cannot_be_adopted_twice_or_duplicated() -> None:
    parts = default_partitions()
    Spmc(Machine(), parts)
    with pytest.raises(ValueError):
        Spmc(Machine(), parts)
    with pytest.raises(ValueError):
        Spmc(Machine(), [SecurePartition(0x8001, ECHO_UUID), SecurePartition(0x8001, ECHO_UUID)])


def test_unattached_partition_cannot_call() -> None:
    with pytest.raises(RuntimeError):
        SecurePartition(0x8001, ECHO_UUID).smc(abi.FFA_ID_GET)


class LockLog(EventSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def acquired(self, lock: Lockable) -> None:
        self.events.append(("acquire", lock.name))

    def released(self, lock: Lockable) -> None:
        self.events.append(("release", lock.name))


def test_direct_request_locks_as_hafnium_and_runs_the_handler_with_no_lock_held() -> None:
    held_in_handler: list[list[str]] = []

    def handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        assert sp.spmc is not None
        held_in_handler.append([lock.name for lock in sp.spmc.machine.held])
        assert sp.smc(abi.FFA_ID_GET)[2] == sp.id  # its own call takes locks afresh
        return ()

    sink = LockLog()
    spmc = Spmc(Machine(sink), [SecurePartition(0x8001, ECHO_UUID, handler=handler)])
    hyp = Hyp(spmc)
    sink.events.clear()
    assert hyp.direct(1, 0x8001)[0] == abi.FFA_MSG_SEND_DIRECT_RESP_32
    assert held_in_handler == [[]]
    assert sink.events == [
        # api_ffa_msg_send_direct_req: the receiver's VM, then both vCPUs, lowest first.
        ("acquire", "spmc.vm8001.lock"),
        ("acquire", "spmc.vm0.vcpu0.lock"),
        ("acquire", "spmc.vm8001.vcpu0.lock"),
        ("release", "spmc.vm8001.vcpu0.lock"),
        ("release", "spmc.vm8001.lock"),
        ("release", "spmc.vm0.vcpu0.lock"),
        # The partition's first call marks its version negotiated, under its VM lock.
        ("acquire", "spmc.vm8001.lock"),
        ("release", "spmc.vm8001.lock"),
        # api_ffa_msg_send_direct_resp: the partition's vCPU, then both to hand back.
        ("acquire", "spmc.vm8001.vcpu0.lock"),
        ("release", "spmc.vm8001.vcpu0.lock"),
        ("acquire", "spmc.vm0.vcpu0.lock"),
        ("acquire", "spmc.vm8001.vcpu0.lock"),
        ("release", "spmc.vm0.vcpu0.lock"),
        ("release", "spmc.vm8001.vcpu0.lock"),
    ]
    assert spmc.machine.held == [] and spmc.invariant_problems() == []


def test_sri_hook_runs_after_the_outermost_call_with_no_lock_held() -> None:
    spmc, hyp = make()
    seen: list[list[str]] = []
    spmc.on_sri = lambda: seen.append([lock.name for lock in spmc.machine.held])
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)
    hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 1), 0, 1)
    sp = spmc.partitions[0x8001]
    assert sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 1), 0, 1)[0] == (
        abi.FFA_SUCCESS_32
    )
    assert seen == [[]]


def test_memory_service_unknown_op_answers_invalid_in_w3() -> None:
    _, hyp = make()
    r = hyp.direct(1, 0x8002, 9, 0, 0, 0, 0)
    assert r[0] == abi.FFA_MSG_SEND_DIRECT_RESP_32
    assert r[3] == abi.to_u32(abi.FFA_RET_INVALID_PARAMETERS)
    assert code(hyp.direct(1, 0x8003)) == abi.FFA_RET_DENIED


def test_shared_objects_are_one_per_name_and_kind() -> None:
    spmc, _ = make([SecurePartition(0x8004, ECHO_UUID)])
    sp = spmc.partitions[0x8004]
    counter = sp.atomic("counter", 5)
    assert sp.atomic("counter") is counter and counter.value == 5
    assert counter.name == "sp8004.counter"
    lock = sp.spinlock("lock")
    field = sp.guarded("total", 0, guard=lock)
    assert sp.guarded("total") is field and field.guard is lock and sp.machine is spmc.machine
    mismatch = r"\Asp8004\.counter was made as Atomic, asked for as Spinlock\Z"
    with pytest.raises(TypeError, match=mismatch):
        sp.spinlock("counter")


def test_shared_objects_need_an_spmc() -> None:
    with pytest.raises(RuntimeError, match=r"is not attached to an SPMC\Z"):
        SecurePartition(0x8004, ECHO_UUID).atomic("counter")
