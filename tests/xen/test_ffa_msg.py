"""Direct requests 32/64 and REQ2, FFA_RUN, FFA_MSG_SEND2 (ffa_msg.c)."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi
from ffasim.machine import Machine
from ffasim.system import VM, System

from .helpers import RX_PAGE, TX_PAGE, FaultSink, code, negotiate, ready

ECHO = 0x8001
QUIET = 0x8003


def test_direct_req_32_is_answered_and_masked(vm: VM) -> None:
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, ECHO), 0, 1 << 40 | 7, 2)
    assert r == abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32, abi.pack_target(ECHO, vm.id), 0, 7, 2)


def test_direct_req_64_keeps_whole_values(vm: VM) -> None:
    big = (1 << 63) | 5
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, abi.pack_target(vm.id, ECHO), 0, big, 1, 2, 3, 4)
    assert r[0] == abi.FFA_MSG_SEND_DIRECT_RESP_64 and r[3:8] == (big, 1, 2, 3, 4)


@pytest.mark.parametrize("sender_delta", [1, -1])
def test_direct_req_wrong_sender_is_invalid(vm: VM, sender_delta: int) -> None:
    w1 = abi.pack_target(vm.id + sender_delta, ECHO)
    assert code(vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, w1)) == abi.FFA_RET_INVALID_PARAMETERS


def test_direct_req_to_self_is_invalid(vm: VM) -> None:
    w1 = abi.pack_target(vm.id, vm.id)
    assert code(vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, w1)) == abi.FFA_RET_INVALID_PARAMETERS


def test_direct_req_to_a_vm_is_not_supported(vm: VM) -> None:
    w1 = abi.pack_target(vm.id, vm.id + 1)
    assert code(vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, w1)) == abi.FFA_RET_NOT_SUPPORTED


def test_direct_req_spmc_refusal_is_passed_through(vm: VM) -> None:
    # 0x8003 takes no direct requests: the SPMC answers DENIED.
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, QUIET))
    assert code(r) == abi.FFA_RET_DENIED


def test_direct_req_unexpected_reply_is_aborted(vm: VM, system: System) -> None:
    entry = system.conduit.entry
    system.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_MSG_WAIT) if r[0] == abi.FFA_MSG_SEND_DIRECT_REQ_32 else entry(c, r)
    )
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, ECHO))
    assert r == abi.error(abi.FFA_RET_ABORTED)


def test_direct_req_interrupt_reply_is_passed_through(vm: VM, system: System) -> None:
    entry = system.conduit.entry
    system.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_INTERRUPT, abi.pack_target(ECHO, 0), 3)
        if r[0] == abi.FFA_MSG_SEND_DIRECT_REQ_32
        else entry(c, r)
    )
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, ECHO))
    assert r == abi.regs(abi.FFA_INTERRUPT, abi.pack_target(ECHO, 0), 3)


def test_direct_req2_carries_14_payload_registers(vm: VM) -> None:
    payload = list(range(100, 114))
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(vm.id, ECHO), 0, 0, *payload)
    assert r[0] == abi.FFA_MSG_SEND_DIRECT_RESP2
    assert list(r[4:18]) == payload


def test_direct_req_without_firmware_support_is_not_supported() -> None:
    sink = FaultSink({"smc:FFA_FEATURES": abi.FFA_RET_NOT_SUPPORTED})
    system = System(machine=Machine(sink), vm_to_vm=True)
    vm = system.create_vm()
    negotiate(vm)
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, ECHO))
    assert code(r) == abi.FFA_RET_NOT_SUPPORTED


def test_run_answered_with_msg_wait_is_aborted(vm: VM) -> None:
    # The idle partition answers FFA_MSG_WAIT, which Xen does not pass back: ABORTED.
    r = vm.smc(abi.FFA_RUN, abi.pack_target(ECHO, 0))
    assert r == abi.error(abi.FFA_RET_ABORTED)


def test_run_of_a_partition_is_forwarded(vm: VM, system: System) -> None:
    seen: list[abi.Regs] = []
    entry = system.conduit.entry

    def spy(c: int, r: abi.Regs) -> abi.Regs:
        if r[0] == abi.FFA_RUN:
            seen.append(r)
            return abi.regs(abi.FFA_YIELD, abi.pack_target(ECHO, 0))
        return entry(c, r)

    system.conduit.entry = spy
    r = vm.smc(abi.FFA_RUN, abi.pack_target(ECHO, 0))
    assert r == abi.regs(abi.FFA_YIELD, abi.pack_target(ECHO, 0))
    assert seen == [abi.regs(abi.FFA_RUN, abi.pack_target(ECHO, 0))]


def test_run_of_a_vm_is_not_supported(vm: VM) -> None:
    assert code(vm.smc(abi.FFA_RUN, abi.pack_target(vm.id, 0))) == abi.FFA_RET_NOT_SUPPORTED


def test_run_spmc_error_is_passed_through(vm: VM) -> None:
    assert code(vm.smc(abi.FFA_RUN, abi.pack_target(ECHO, 5))) == abi.FFA_RET_INVALID_PARAMETERS


# -- FFA_MSG_SEND2 -----------------------------------------------------------------------------


def send2(vm: VM, dst: int, payload: bytes, *, offset: int = 40, sender: int | None = None) -> int:
    src = vm.id if sender is None else sender
    hdr = struct.pack("<IIIII", 0, 0, offset, (src << 16) | dst, len(payload))
    vm.write(vm.ipa(TX_PAGE), hdr.ljust(offset, b"\0") + payload)
    return code(vm.smc(abi.FFA_MSG_SEND2))


def test_send2_to_partition_is_forwarded(vm: VM, system: System) -> None:
    assert send2(vm, ECHO, b"hello") == 0
    mbox = system.spmc.mailboxes[ECHO]
    assert system.machine.mem.read(mbox.rx + 40, 5, "spmc") == b"hello"


def test_send2_without_buffers_is_denied(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_MSG_SEND2)) == abi.FFA_RET_DENIED


def test_send2_wrong_sender_is_invalid(vm: VM) -> None:
    assert send2(vm, ECHO, b"x", sender=vm.id + 1) == abi.FFA_RET_INVALID_PARAMETERS


def test_send2_to_self_is_invalid(vm: VM) -> None:
    assert send2(vm, vm.id, b"x") == abi.FFA_RET_INVALID_PARAMETERS


@pytest.mark.parametrize(("offset", "size"), [(20, 4), (40, 0), (4096, 1), (4000, 200)])
def test_send2_bad_offset_or_size_is_invalid(vm: VM, offset: int, size: int) -> None:
    hdr = struct.pack("<IIIII", 0, 0, offset, (vm.id << 16) | ECHO, size)
    vm.write(vm.ipa(TX_PAGE), hdr)
    assert code(vm.smc(abi.FFA_MSG_SEND2)) == abi.FFA_RET_INVALID_PARAMETERS


def test_send2_v1_1_sender_may_use_a_20_byte_header(system: System) -> None:
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    seen: list[abi.Regs] = []
    entry = system.conduit.entry

    def spy(c: int, r: abi.Regs) -> abi.Regs:
        if r[0] == abi.FFA_MSG_SEND2:
            seen.append(r)
            return abi.success()
        return entry(c, r)

    system.conduit.entry = spy
    assert send2(vm, ECHO, b"abc", offset=20) == 0
    assert seen == [abi.regs(abi.FFA_MSG_SEND2, vm.id << 16)]


def test_send2_v1_2_sender_needs_a_40_byte_header(vm: VM) -> None:
    assert send2(vm, ECHO, b"abc", offset=20) == abi.FFA_RET_INVALID_PARAMETERS


def test_send2_to_vm_without_vm_to_vm_is_invalid(vm: VM, system: System) -> None:
    other = ready(system.create_vm())
    assert send2(vm, other.id, b"x") == abi.FFA_RET_INVALID_PARAMETERS


def test_send2_between_vms_delivers_and_raises_rx_full() -> None:
    system = System(vm_to_vm=True)
    a = ready(system.create_vm())
    b = ready(system.create_vm(vcpus=2))
    assert send2(a, b.id, b"payload") == 0
    hdr = b.read(b.ipa(RX_PAGE), 40)
    assert struct.unpack_from("<III", hdr, 8) == (40, (a.id << 16) | b.id, 7)
    assert b.read(b.ipa(RX_PAGE) + 40, 7) == b"payload"
    assert b.pending_virqs(0) == [8]
    # The receiver owns its RX now: a second message waits.
    assert send2(a, b.id, b"again") == abi.FFA_RET_BUSY
    r = b.smc(abi.FFA_NOTIFICATION_GET, b.id, abi.FFA_NOTIF_FLAG_BITMAP_HYP)
    assert r == abi.regs(abi.FFA_SUCCESS_32, 0, 0, 0, 0, 0, 0, abi.FFA_NOTIF_RX_BUFFER_FULL)
    assert code(b.smc(abi.FFA_RX_RELEASE)) == 0
    assert send2(a, b.id, b"again") == 0


def test_send2_to_unknown_or_unnegotiated_vm_is_invalid() -> None:
    system = System(vm_to_vm=True)
    a = ready(system.create_vm())
    b = system.create_vm()
    assert send2(a, b.id, b"x") == abi.FFA_RET_INVALID_PARAMETERS
    assert send2(a, 0x7F, b"x") == abi.FFA_RET_INVALID_PARAMETERS
    assert send2(a, 0, b"x") == abi.FFA_RET_INVALID_PARAMETERS


def test_send2_to_vm_without_rx_is_denied() -> None:
    system = System(vm_to_vm=True)
    a = ready(system.create_vm())
    b = system.create_vm()
    negotiate(b)
    assert send2(a, b.id, b"x") == abi.FFA_RET_DENIED


def test_send2_too_big_for_destination_is_no_memory() -> None:
    system = System(vm_to_vm=True)
    a = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    b = ready(system.create_vm())
    # A v1.1 sender's 20-byte header leaves room for 4076 bytes; the receiver's 40-byte one not.
    assert send2(a, b.id, b"x" * 4076, offset=20) == abi.FFA_RET_NO_MEMORY
    assert code(b.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED  # Xen gave it back
