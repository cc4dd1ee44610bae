"""Direct messages, VM availability messages, FFA_RUN, FFA_MSG_SEND2 (hafnium-spmc.md §5.4)."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi
from ffasim.machine import FirmwarePanic
from ffasim.spmc import DirectMessage, MailboxState, SecurePartition

from .helpers import code, make

FW = abi.FFA_MSG_FLAG_FRAMEWORK


def test_echo_32_masks_and_64_keeps_values() -> None:
    _, hyp = make()
    big = 0x1_2345_6789
    r = hyp.direct(1, 0x8001, big, 2, 3, 4, 5)
    assert r[:8] == (abi.FFA_MSG_SEND_DIRECT_RESP_32, 0x80010001, 0, 0x23456789, 2, 3, 4, 5)
    r = hyp.direct(1, 0x8001, big, 2, 3, 4, 5, fid=abi.FFA_MSG_SEND_DIRECT_REQ_64)
    assert r[:8] == (abi.FFA_MSG_SEND_DIRECT_RESP_64, 0x80010001, 0, big, 2, 3, 4, 5)


def test_direct_request_errors() -> None:
    _, hyp = make()
    assert code(hyp.direct(0x8002, 0x8001)) == abi.FFA_RET_INVALID_PARAMETERS  # SP sender
    assert code(hyp.direct(1, 0x8009)) == abi.FFA_RET_INVALID_PARAMETERS  # unknown SP
    assert code(hyp.direct(1, 2)) == abi.FFA_RET_INVALID_PARAMETERS  # VM receiver
    assert code(hyp.direct(1, 0x8003)) == abi.FFA_RET_DENIED  # no direct request receipt
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(1, 0x8001), 0x10)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS  # w2 MBZ


def test_direct_response_outside_request_is_denied() -> None:
    _, hyp = make()
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_RESP_32, abi.pack_target(0x8001, 1))
    assert code(r) == abi.FFA_RET_DENIED


def test_vm_created_and_destroyed_reach_subscribed_partition() -> None:
    spmc, hyp = make()
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, FW | 4, 0, 0, 7)
    assert r[:4] == (abi.FFA_MSG_SEND_DIRECT_RESP_32, 0x80010000, FW | 5, 0)
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ_64, 0x8001, FW | 6, 0, 0, 7)
    assert r[:4] == (abi.FFA_MSG_SEND_DIRECT_RESP_64, 0x80010000, FW | 7, 0)
    echo = spmc.partitions[0x8001]
    assert echo.vms_created == [7] and echo.vms_destroyed == [7]  # type: ignore[attr-defined]


def test_vm_availability_errors() -> None:
    spmc, hyp = make()
    # 0x8002 is not subscribed; 0x8009 does not exist; func 8 / 5 are not requests from the NW.
    for target, func in ((0x8002, 4), (0x8009, 4), (0x8001, 8), (0x8001, 5)):
        r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ_32, target, FW | func, 0, 0, 7)
        assert code(r) == abi.FFA_RET_INVALID_PARAMETERS, (hex(target), func)
    # From a partition: the sender must be able to send direct requests at all.
    sp = spmc.partitions[0x8002]
    r = sp.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(0x8002, 0x8001), FW | 4)
    assert code(r) == abi.FFA_RET_DENIED
    # Subscribed but unable to receive direct requests: refused like any direct request.
    quiet = SecurePartition(0x8001, "aaaaaaaa-0000-0000-0000-000000000001", properties=0xC0)
    _, hyp = make([quiet])
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, FW | 4, 0, 0, 7)
    assert code(r) == abi.FFA_RET_DENIED


def test_vm_availability_status_is_the_hook_result() -> None:
    sp = SecurePartition(
        0x8001,
        "aaaaaaaa-0000-0000-0000-000000000001",
        properties=0x1C1,
        on_vm_created=lambda vm: abi.FFA_RET_DENIED,
    )
    _, hyp = make([sp])
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, FW | 4, 0, 0, 3)
    assert r[3] == abi.to_u32(abi.FFA_RET_DENIED)


def test_req2_echoes_fourteen_registers_and_checks_uuid() -> None:
    def handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        assert msg.fid == abi.FFA_MSG_SEND_DIRECT_REQ2 and len(msg.payload) == 14
        return tuple(v + 1 for v in msg.payload)

    uuid = "aaaaaaaa-0000-0000-0000-000000000001"
    sp = SecurePartition(0x8001, uuid, properties=0x301, handler=handler)
    _, hyp = make([sp])
    lo, hi = abi.uuid_to_regs64(uuid)
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(1, 0x8001), lo, hi, *range(14))
    assert r[0] == abi.FFA_MSG_SEND_DIRECT_RESP2 and r[1] == 0x80010001
    assert r[4:18] == tuple(range(1, 15))
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(1, 0x8001), 1, 2)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_req2_denied_without_property_or_for_v1_1() -> None:
    _, hyp = make()
    assert code(hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(1, 0x8003))) == (
        abi.FFA_RET_DENIED
    )
    _, hyp = make(version=abi.FFA_VERSION_1_1)
    assert code(hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(1, 0x8001))) == (
        abi.FFA_RET_DENIED
    )


def test_handler_error_reply_is_forwarded() -> None:
    sp = SecurePartition(
        0x8001,
        "aaaaaaaa-0000-0000-0000-000000000001",
        handler=lambda sp, msg: abi.error(abi.FFA_RET_ABORTED),
    )
    _, hyp = make([sp])
    r = hyp.direct(1, 0x8001)
    assert code(r) == abi.FFA_RET_ABORTED and r[1] == 0x80010001


def test_handler_crash_propagates_and_bad_result_is_firmware_panic() -> None:
    def boom(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        raise ZeroDivisionError("firmware bug")

    sp = SecurePartition(0x8001, "aaaaaaaa-0000-0000-0000-000000000001", handler=boom)
    _, hyp = make([sp])
    with pytest.raises(ZeroDivisionError):
        hyp.direct(1, 0x8001)
    sp = SecurePartition(
        0x8001, "aaaaaaaa-0000-0000-0000-000000000001", handler=lambda s, m: (1,) * 6
    )
    _, hyp = make([sp])
    with pytest.raises(FirmwarePanic):
        hyp.direct(1, 0x8001)


def test_partition_to_partition_request_and_cycle_is_busy() -> None:
    def a_handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        r = sp.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(0x8001, 0x8002), 0, 9)
        return (r[0] & 0xFFFF, r[3], abi.to_u32(abi.error_code(r)))

    def b_handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        r = sp.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(0x8002, 0x8001), 0, 1)
        return (abi.to_u32(abi.error_code(r)),)

    a = SecurePartition(
        0x8001, "aaaaaaaa-0000-0000-0000-000000000001", properties=0x103, handler=a_handler
    )
    b = SecurePartition(
        0x8002, "aaaaaaaa-0000-0000-0000-000000000002", properties=0x103, handler=b_handler
    )
    spmc, hyp = make([a, b])
    r = hyp.direct(1, 0x8001)
    # B's request back to A (busy in its own request) is BUSY; A sees B's response.
    assert r[3] == abi.FFA_MSG_SEND_DIRECT_RESP_32 & 0xFFFF
    assert r[4] == abi.to_u32(abi.FFA_RET_BUSY)
    assert spmc.invariant_problems() == [] and spmc.machine.held == []


def test_partition_without_send_property_is_denied() -> None:
    spmc, _ = make()
    sp = spmc.partitions[0x8002]
    r = sp.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(0x8002, 0x8001))
    assert code(r) == abi.FFA_RET_DENIED
    r = sp.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(0x8001, 0x8003))
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_run_answers_msg_wait_and_checks_target() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_RUN, 0x8001 << 16)[0] == abi.FFA_MSG_WAIT
    assert code(hyp.call(abi.FFA_RUN, 0x8001 << 16 | 1)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(hyp.call(abi.FFA_RUN, 0x8009 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(spmc.partitions[0x8001].smc(abi.FFA_RUN, 0x8002 << 16)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )


def _msg(sender: int, receiver: int, payload: bytes, v12: bool = True) -> bytes:
    hdr = struct.pack("<IIIHHI", 0, 0, 40 if v12 else 20, receiver, sender, len(payload))
    if v12:
        hdr += bytes(20)
    return hdr + payload


def test_msg_send2_vm_to_partition_fills_rx_and_sets_rx_full_notification() -> None:
    spmc, hyp = make()
    _rx, tx, _ = hyp.forward_rxtx(1)
    hyp.m.mem.write(tx.pa, _msg(1, 0x8001, b"hello"), "d0")
    fired: list[int] = []
    spmc.on_sri = lambda: fired.append(1)
    assert hyp.call(abi.FFA_MSG_SEND2, 1 << 16)[0] == abi.FFA_SUCCESS_32
    sp = spmc.partitions[0x8001]
    assert sp.read(sp.rx + 40, 5) == b"hello"
    assert spmc.mailboxes[0x8001].state is MailboxState.FULL
    assert fired == [1] and spmc.sri_pending
    # Busy until the partition collects the notification and releases its RX.
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_BUSY
    assert code(sp.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED
    r = sp.smc(abi.FFA_NOTIFICATION_GET, 0x8001, abi.FFA_NOTIF_FLAG_BITMAP_HYP)
    assert r[7] == 1
    assert sp.smc(abi.FFA_RX_RELEASE)[0] == abi.FFA_SUCCESS_32


def test_msg_send2_partition_to_vm_and_hypervisor_flow() -> None:
    spmc, hyp = make()
    rx, _tx, _ = hyp.forward_rxtx(1)
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)
    sp = spmc.partitions[0x8001]
    sp.write(sp.tx, _msg(0x8001, 1, b"pong"))
    assert sp.smc(abi.FFA_MSG_SEND2)[0] == abi.FFA_SUCCESS_32
    assert hyp.m.mem.read(rx.pa + 40, 4, "d0") == b"pong"
    r = hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r[0] == abi.FFA_SUCCESS_64 and r[3] & 0xFFFF == 1
    assert code(hyp.call(abi.FFA_RX_RELEASE, 1)) == abi.FFA_RET_DENIED  # notification pending
    r = hyp.call(abi.FFA_NOTIFICATION_GET, 1, abi.FFA_NOTIF_FLAG_BITMAP_SPM)
    assert r[6] == 1
    assert hyp.call(abi.FFA_RX_RELEASE, 1)[0] == abi.FFA_SUCCESS_32
    # RX acquired by the hypervisor: the partition's next message is BUSY.
    assert hyp.call(abi.FFA_RX_ACQUIRE, 1)[0] == abi.FFA_SUCCESS_32
    assert code(sp.smc(abi.FFA_MSG_SEND2)) == abi.FFA_RET_BUSY


def test_msg_send2_errors_in_hafnium_order() -> None:
    spmc, hyp = make()
    _rx, tx, _ = hyp.forward_rxtx(1)
    hyp.forward_rxtx(3)
    sp = spmc.partitions[0x8001]
    mem = hyp.m.mem
    assert code(sp.smc(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(hyp.call(abi.FFA_MSG_SEND2, 5 << 16)) == abi.FFA_RET_DENIED  # unknown VM
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 6, 1)
    assert code(hyp.call(abi.FFA_MSG_SEND2, 6 << 16)) == abi.FFA_RET_DENIED  # no TX buffer
    mem.write(tx.pa, _msg(2, 0x8001, b"x"), "d0")  # header sender is not the VM
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    mem.write(tx.pa, _msg(1, 1, b"x"), "d0")  # to itself
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    mem.write(tx.pa, _msg(1, 0x8001, b"x"), "d0")
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16, 2)) == abi.FFA_RET_INVALID_PARAMETERS
    sp.write(sp.tx, _msg(0x8001, 1, b"x"))
    assert code(sp.smc(abi.FFA_MSG_SEND2, 0, 4)) == abi.FFA_RET_INVALID_PARAMETERS
    mem.write(tx.pa, _msg(1, 0x8009, b"x"), "d0")  # unknown receiver
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    mem.write(tx.pa, _msg(1, 0x8002, b"x"), "d0")  # 0x8002 takes no indirect messages
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_DENIED
    mem.write(tx.pa, struct.pack("<IIIHHI", 0, 0, 8, 0x8001, 1, 1), "d0")  # offset < header
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    mem.write(tx.pa, struct.pack("<IIIHHI", 0, 0, 40, 0x8001, 1, 4096), "d0")  # too big
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    assert spmc.mailboxes[0x8001].state is MailboxState.EMPTY
    assert spmc.invariant_problems() == []


def test_msg_send2_to_vm_without_bitmap_still_marks_rx_full() -> None:
    spmc, hyp = make()
    hyp.forward_rxtx(1)
    sp = spmc.partitions[0x8001]
    sp.write(sp.tx, _msg(0x8001, 1, b"hi"))
    assert sp.smc(abi.FFA_MSG_SEND2)[0] == abi.FFA_SUCCESS_32
    assert spmc.endpoints[1].notif.pending_framework == 1
    # The hypervisor cannot release the VM's RX before the notification is collected.
    assert code(hyp.call(abi.FFA_RX_RELEASE, 1)) == abi.FFA_RET_DENIED


def test_msg_send2_vm_to_vm_forwarded_by_the_hypervisor_is_delivered() -> None:
    spmc, hyp = make()
    _rx1, tx1, _ = hyp.forward_rxtx(1)
    rx3, _tx3, _ = hyp.forward_rxtx(3)
    hyp.m.mem.write(tx1.pa, _msg(1, 3, b"vm"), "d0")
    assert hyp.call(abi.FFA_MSG_SEND2, 1 << 16)[0] == abi.FFA_SUCCESS_32
    assert hyp.m.mem.read(rx3.pa + 40, 2, "d2") == b"vm"
    assert spmc.endpoints[3].notif.pending_framework == 1 << 32  # hypervisor RX-full bit
