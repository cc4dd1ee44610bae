"""Fidelity against Hafnium v2.14 as SPMC: each test names the Hafnium function whose behaviour
the model did not follow before the review (hafnium-spmc.md), and fails on the old behaviour."""

from __future__ import annotations

import struct

from ffasim import abi
from ffasim.spmc import DirectMessage, MailboxState, SecurePartition

from .helpers import RW, Hyp, code, make, rxtx_desc, txn

INVALID, DENIED = abi.FFA_RET_INVALID_PARAMETERS, abi.FFA_RET_DENIED
MSG_HDR = struct.Struct("<IIIHHI")  # flags, reserved, payload offset, receiver, sender, size


def _msg(sender: int, receiver: int, payload: bytes, offset: int) -> bytes:
    return MSG_HDR.pack(0, 0, offset, receiver, sender, len(payload)).ljust(offset, b"\0") + (
        payload
    )


# -- ffa_vm_init: nwd_vms slots keep the version the hypervisor had at SPMC boot ------------


def test_ffa_vm_init_vm_keeps_the_compiled_version_after_the_hypervisor_negotiates() -> None:
    spmc, hyp = make(version=abi.FFA_VERSION_1_1)
    hyp.forward_rxtx(1)
    assert spmc.endpoints[HYP].version == abi.FFA_VERSION_1_1
    assert spmc.endpoints[1].version == spmc.version == abi.FFA_VERSION_1_2


def test_api_ffa_msg_send2_copy_data_checks_the_vm_header_size_at_the_boot_version() -> None:
    # The hypervisor speaks v1.1, but the SPMC's slot for VM 1 is v1.2 (ffa_vm_init), so
    # a v1.1-sized header (payload at offset 20) overlaps the v1.2 header: INVALID.
    spmc, hyp = make(version=abi.FFA_VERSION_1_1)
    _rx, tx, _ = hyp.forward_rxtx(1)
    hyp.m.mem.write(tx.pa, _msg(1, 0x8001, b"hi", 20), "d0")
    assert code(hyp.call(abi.FFA_MSG_SEND2, 1 << 16)) == INVALID
    assert spmc.mailboxes[0x8001].state is MailboxState.EMPTY
    hyp.m.mem.write(tx.pa, _msg(1, 0x8001, b"hi", 40), "d0")
    assert hyp.call(abi.FFA_MSG_SEND2, 1 << 16)[0] == abi.FFA_SUCCESS_32
    sp = spmc.partitions[0x8001]
    assert sp.read(sp.rx + 40, 2) == b"hi"


def test_api_ffa_notification_bind_vm_receiver_version_is_not_the_hypervisors() -> None:
    # A v1.0 hypervisor still gets notifications for its VMs: the version gate of
    # api_ffa_notification_bind looks at the VM slot, which is v1.2 from boot.
    spmc, hyp = make(version=abi.FFA_VERSION_1_0)
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)[0] == abi.FFA_SUCCESS_32
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 1), 0, 1, 0)
    assert r[0] == abi.FFA_SUCCESS_32
    assert spmc.endpoints[1].notif.bindings_sp == {0: 0x8001}


# -- ffa_direct_msg_is_direct_request_supported: REQ2 needs a v1.2 receiver ------------------


def test_ffa_direct_msg_is_direct_request_supported_req2_to_v1_1_partition_denied() -> None:
    seen: list[DirectMessage] = []

    def handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        seen.append(msg)
        return ()

    req2_recv = abi.FFA_PART_PROP_DIRECT_REQ_RECV | abi.FFA_PART_PROP_DIRECT_REQ2_RECV
    old = SecurePartition(
        0x8001,
        "aaaaaaaa-0000-0000-0000-000000000001",
        properties=req2_recv,
        handler=handler,
        ffa_version=abi.FFA_VERSION_1_1,
    )
    new = SecurePartition(
        0x8002, "aaaaaaaa-0000-0000-0000-000000000002", properties=req2_recv, handler=handler
    )
    _, hyp = make([old, new])
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(1, 0x8001))
    assert code(r) == DENIED and seen == []
    r = hyp.call(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(1, 0x8002))
    assert r[0] == abi.FFA_MSG_SEND_DIRECT_RESP2 and len(seen) == 1
    # DIRECT_REQ_32 to the v1.1 partition is still fine.
    assert hyp.direct(1, 0x8001)[0] == abi.FFA_MSG_SEND_DIRECT_RESP_32


# -- reclaim_shared_state: a hypervisor retrieve request in progress does not hold memory ---


def _big_share(hyp: Hyp, n: int = 300) -> tuple[bytes, int]:
    frames = hyp.vm_pages(1, 2 * n)
    desc = txn(1, [(0x8002, RW)], [(frames[2 * i].pa, 1) for i in range(n)])
    r = hyp.send(abi.FFA_MEM_SHARE_64, desc, frag=4096)
    h = abi.make_handle(r[1], r[2])
    hyp.write_tx(desc[4096:])
    r = hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, len(desc) - 4096, 1 << 16)
    assert r[0] == abi.FFA_SUCCESS_32 and abi.make_handle(r[2], r[3]) == h
    return desc, h


def test_reclaim_shared_state_succeeds_during_a_hypervisor_retrieve_request() -> None:
    spmc, hyp = make()
    desc, h = _big_share(hyp)
    hyp.write_tx(struct.pack("<HHIQQIII", 0, 0, 0, h, 0, 0, 0, 0) + bytes(12))
    r = hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, 48, 48)
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP and r[1] == len(desc) and r[2] < r[1]
    delivered = r[2]
    assert hyp.call(abi.FFA_RX_RELEASE, 0)[0] == abi.FFA_SUCCESS_32
    # Only borrowers' retrievals count (retrieved_fragment_count): the reclaim succeeds...
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert h not in spmc.shares
    # ...and the hypervisor's continuation then names an unknown handle.
    r = hyp.call(abi.FFA_MEM_FRAG_RX, h, 0, delivered, 1 << 16)
    assert code(r) == INVALID
    assert spmc.invariant_problems() == []


def test_reclaim_shared_state_still_denied_while_a_borrower_holds_the_memory() -> None:
    spmc, hyp = make()
    frames = hyp.vm_pages(1, 2)
    r = hyp.send(abi.FFA_MEM_SHARE_64, txn(1, [(0x8002, RW)], [(frames[0].pa, 2)]))
    assert r[0] == abi.FFA_SUCCESS_32
    h = abi.make_handle(r[2], r[3])
    sp = spmc.partitions[0x8002]
    req = struct.pack("<HHIQQIII", 1, 0, 0, h, 0, 32, 1, 48) + bytes(12)
    req += struct.pack("<HBBI", 0x8002, RW, 0, 0) + bytes(24)
    sp.write(sp.tx, req)
    assert sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))[0] == abi.FFA_MEM_RETRIEVE_RESP
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)) == DENIED


HYP = abi.HYPERVISOR_ID


# -- ffa_features_function (v2.14): the function list differs from master's ------------------


def test_ffa_features_function_v2_14_does_not_advertise_rx_acquire_or_success_64() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    for fid in (abi.FFA_RX_ACQUIRE, abi.FFA_SUCCESS_64):
        assert code(hyp.call(abi.FFA_FEATURES, fid)) == abi.FFA_RET_NOT_SUPPORTED
        assert code(sp.smc(abi.FFA_FEATURES, fid)) == abi.FFA_RET_NOT_SUPPORTED
    # The call itself still works for the hypervisor and is refused to partitions.
    hyp.forward_rxtx(1)
    assert hyp.call(abi.FFA_RX_ACQUIRE, 1)[0] == abi.FFA_SUCCESS_32
    assert code(sp.smc(abi.FFA_RX_ACQUIRE, 1)) == abi.FFA_RET_NOT_SUPPORTED
    assert hyp.call(abi.FFA_FEATURES, abi.FFA_SUCCESS_32)[0] == abi.FFA_SUCCESS_32


def test_ffa_features_function_v2_14_advertises_notification_info_get_to_everyone() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    fid = abi.FFA_NOTIFICATION_INFO_GET_64
    assert hyp.call(abi.FFA_FEATURES, fid)[:3] == (abi.FFA_SUCCESS_32, 0, 0)
    assert sp.smc(abi.FFA_FEATURES, fid)[:3] == (abi.FFA_SUCCESS_32, 0, 0)
    # Advertised, but the call stays the hypervisor's (api_ffa_notification_info_get).
    assert code(sp.smc(fid)) == abi.FFA_RET_NOT_SUPPORTED


# -- api_get_rxtx_description: a forwarded descriptor naming HF_INVALID_VM_ID ---------------


def test_api_get_rxtx_description_invalid_vm_id_is_invalid_parameters() -> None:
    spmc, hyp = make()
    rx, tx = hyp.vm_pages(1, 2)
    hyp.write_tx(rxtx_desc(0x7FFF, rx.pa, tx.pa))
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)) == INVALID
    assert 0x7FFF not in spmc.endpoints and spmc.vms == []
    # The same pages for a real VM ID map fine.
    hyp.write_tx(rxtx_desc(1, rx.pa, tx.pa))
    assert hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)[0] == abi.FFA_SUCCESS_32


# -- ffa_notifications_bitmap_destroy: only partitions' pending bits block it ---------------


def test_ffa_notifications_bitmap_destroy_ignores_a_pending_rx_full_framework_bit() -> None:
    spmc, hyp = make()
    hyp.forward_rxtx(1)
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)[0] == abi.FFA_SUCCESS_32
    sp = spmc.partitions[0x8001]
    sp.write(sp.tx, _msg(0x8001, 1, b"x", 40))
    assert sp.smc(abi.FFA_MSG_SEND2)[0] == abi.FFA_SUCCESS_32
    assert spmc.endpoints[1].notif.pending_framework == 1
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)[0] == abi.FFA_SUCCESS_32
    # The framework bit is not cleared by the destroy, so the RX stays unreleasable.
    assert spmc.endpoints[1].notif.pending_framework == 1
    assert code(hyp.call(abi.FFA_RX_RELEASE, 1)) == DENIED


def test_ffa_notifications_bitmap_destroy_denied_with_a_partition_bit_pending() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)[0] == abi.FFA_SUCCESS_32
    assert hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 1), 0, 1, 0)[0] == (
        abi.FFA_SUCCESS_32
    )
    sp = spmc.partitions[0x8001]
    assert sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 1), 0, 1, 0)[0] == (
        abi.FFA_SUCCESS_32
    )
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)) == DENIED


# -- api_ffa_partition_info_get_regs: properties are not masked for a v1.0 caller -----------


def test_api_ffa_partition_info_get_regs_v1_0_caller_sees_all_property_bits() -> None:
    spmc, hyp = make(version=abi.FFA_VERSION_1_0)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET_REGS)
    assert r[0] == abi.FFA_SUCCESS_64
    props = {(r[3 + 3 * i] & 0xFFFF): r[3 + 3 * i] >> 32 for i in range(len(spmc.partitions))}
    # 0x8002 declares notifications (bit 3) and AArch64 (bit 8): both reported in registers...
    assert props[0x8002] & (abi.FFA_PART_PROP_RECV_NOTIF | abi.FFA_PART_PROP_AARCH64_STATE) == (
        abi.FFA_PART_PROP_RECV_NOTIF | abi.FFA_PART_PROP_AARCH64_STATE
    )
    # ...while the v1.0 RX-buffer entry keeps bits [2:0] only.
    r = hyp.call(abi.FFA_PARTITION_INFO_GET)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, len(spmc.partitions), 8)
    entries = hyp.read_rx(8 * r[2])
    by_id = {
        struct.unpack_from("<H", entries, 8 * i)[0]: struct.unpack_from("<I", entries, 8 * i + 4)[0]
        for i in range(r[2])
    }
    assert by_id[0x8002] == props[0x8002] & 0x7


# -- api_ffa_notification_info_get: partitions, then the hypervisor, then nwd_vms slots ------


def test_api_ffa_notification_info_get_lists_partitions_first_then_vms_in_slot_order() -> None:
    spmc, hyp = make()
    sp1, sp2 = spmc.partitions[0x8001], spmc.partitions[0x8002]
    for vm in (3, 1, 2):  # slots 0, 1, 2
        assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, vm, 1)[0] == abi.FFA_SUCCESS_32
    # VM 3 leaves slot 0; VM 4 takes it (the first free slot), ahead of VMs 1 and 2.
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 3)[0] == abi.FFA_SUCCESS_32
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 4, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.vm_slots[:3] == [4, 1, 2]
    for vm in (1, 2, 4):
        target = abi.pack_target(0x8001, vm)
        assert hyp.call(abi.FFA_NOTIFICATION_BIND, target, 0, 1, 0)[0] == abi.FFA_SUCCESS_32
        assert sp1.smc(abi.FFA_NOTIFICATION_SET, target, 0, 1, 0)[0] == abi.FFA_SUCCESS_32
    # A VM-to-partition notification makes 0x8002 pending too.
    assert sp2.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(1, 0x8002), 0, 1, 0)[0] == (
        abi.FFA_SUCCESS_32
    )
    assert hyp.call(abi.FFA_NOTIFICATION_SET, abi.pack_target(1, 0x8002), 0, 1, 0)[0] == (
        abi.FFA_SUCCESS_32
    )
    r = hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r[0] == abi.FFA_SUCCESS_64 and r[2] == 4 << 7
    ids = [(r[3] >> (16 * i)) & 0xFFFF for i in range(4)]
    assert ids == [0x8002, 4, 1, 2]
