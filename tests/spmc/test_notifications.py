"""Notifications and the SRI (hafnium-spmc.md §5.5)."""

from __future__ import annotations

from ffasim import abi

from .helpers import code, make

INVALID, DENIED = abi.FFA_RET_INVALID_PARAMETERS, abi.FFA_RET_DENIED
SP_FLAG = abi.FFA_NOTIF_FLAG_BITMAP_SP


def test_info_get_with_nothing_pending_is_no_data() -> None:
    spmc, hyp = make()
    assert code(hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)) == abi.FFA_RET_NO_DATA
    assert code(spmc.partitions[0x8001].smc(abi.FFA_NOTIFICATION_INFO_GET_64)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )


def test_bitmap_create_destroy_and_errors() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    assert code(sp.smc(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 0x8001, 1)) == INVALID
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 2)[0] == abi.FFA_SUCCESS_32
    assert spmc.vms == [1]
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 2)) == DENIED
    assert code(sp.smc(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 0x8001)) == INVALID
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 2)) == DENIED
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.vms == []
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)) == DENIED


def test_bitmap_create_with_table_full_is_no_memory() -> None:
    spmc, hyp = make()
    for vm in range(1, spmc.max_vms + 1):
        assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, vm, 1)[0] == abi.FFA_SUCCESS_32
    r = hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, spmc.max_vms + 1, 1)
    assert code(r) == abi.FFA_RET_NO_MEMORY


def test_partition_to_vm_notification_cycle_raises_sri() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    fired: list[int] = []
    spmc.on_sri = lambda: fired.append(1)
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)
    bind = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 1), 0, 0x5, 1)
    assert bind[0] == abi.FFA_SUCCESS_32
    assert spmc.endpoints[1].notif.bindings_sp == {0: 0x8001, 2: 0x8001, 32: 0x8001}
    assert sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 1), 0, 0x4)[0] == (
        abi.FFA_SUCCESS_32
    )
    assert fired == [1] and spmc.sri_pending
    r = hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r[0] == abi.FFA_SUCCESS_64 and r[2] == 1 << 7 and r[3] == 1
    assert not spmc.sri_pending
    # Reported once: a second INFO_GET has nothing new.
    assert code(hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)) == abi.FFA_RET_NO_DATA
    # Pending bits block unbind and bitmap destruction.
    r = hyp.call(abi.FFA_NOTIFICATION_UNBIND, abi.pack_target(0x8001, 1), 0, 0x4)
    assert code(r) == DENIED
    assert code(hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)) == DENIED
    r = hyp.call(abi.FFA_NOTIFICATION_GET, 1, SP_FLAG)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 0x4, 0)
    assert hyp.call(abi.FFA_NOTIFICATION_GET, 1, SP_FLAG)[2] == 0  # reading cleared it
    r = hyp.call(abi.FFA_NOTIFICATION_UNBIND, abi.pack_target(0x8001, 1), 0, 0x5, 1)
    assert r[0] == abi.FFA_SUCCESS_32
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, 1)[0] == abi.FFA_SUCCESS_32


def test_vm_to_partition_notification() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8002]
    assert sp.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(3, 0x8002), 0, 0x10)[0] == (
        abi.FFA_SUCCESS_32
    )
    assert hyp.call(abi.FFA_NOTIFICATION_SET, abi.pack_target(3, 0x8002), 0, 0x10)[0] == (
        abi.FFA_SUCCESS_32
    )
    r = hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r[3] == 0x8002
    r = sp.smc(abi.FFA_NOTIFICATION_GET, 0x8002, abi.FFA_NOTIF_FLAG_BITMAP_VM)
    assert r[4:6] == (0x10, 0)
    # From the hypervisor: only a VM may be the sender of a SET.
    r = hyp.call(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 0x8002), 0, 0x10)
    assert code(r) == INVALID
    # A VM sender whose bits are not bound to it.
    r = hyp.call(abi.FFA_NOTIFICATION_SET, abi.pack_target(4, 0x8002), 0, 0x10)
    assert code(r) == DENIED


def test_bind_errors_in_order() -> None:
    spmc, hyp = make()
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)
    t = abi.pack_target(0x8001, 1)
    assert code(hyp.call(abi.FFA_NOTIFICATION_BIND, t, 1, 1)) == INVALID  # per-vCPU
    assert code(hyp.call(abi.FFA_NOTIFICATION_BIND, t, 4, 1)) == INVALID  # other flags
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(1, 1), 0, 1)
    assert code(r) == INVALID  # sender = receiver
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0xFFC1, 1), 0, 1)
    assert code(r) == INVALID  # SPMD logical partition
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(2, 1), 0, 1)
    assert code(r) == INVALID  # VM sender from the hypervisor
    assert code(hyp.call(abi.FFA_NOTIFICATION_BIND, t, 0, 0, 0)) == INVALID  # empty bitmap
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 5), 0, 1)
    assert code(r) == INVALID  # unknown receiver
    hyp.forward_rxtx(6)
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, 6), 0, 1)
    assert code(r) == abi.FFA_RET_NOT_SUPPORTED  # known VM without notifications
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8009, 1), 0, 1)
    assert code(r) == INVALID  # unknown partition
    assert hyp.call(abi.FFA_NOTIFICATION_BIND, t, 0, 1)[0] == abi.FFA_SUCCESS_32
    r = hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8002, 1), 0, 1)
    assert code(r) == DENIED  # bound to another sender
    assert code(hyp.call(abi.FFA_NOTIFICATION_BIND, t, 0, 1)) == DENIED  # even to itself
    r = hyp.call(abi.FFA_NOTIFICATION_UNBIND, abi.pack_target(0x8002, 1), 0, 1)
    assert code(r) == DENIED  # not bound to this sender
    sp = spmc.partitions[0x8001]
    r = sp.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(1, 0x8002), 0, 1)
    assert code(r) == INVALID  # a partition binds only its own bits
    quiet = spmc.partitions[0x8002]
    quiet.properties &= ~abi.FFA_PART_PROP_RECV_NOTIF
    spmc.endpoints[0x8002].notif.enabled = False
    r = quiet.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(1, 0x8002), 0, 1)
    assert code(r) == abi.FFA_RET_NOT_SUPPORTED


def test_set_errors_in_order() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)
    t = abi.pack_target(0x8001, 1)
    assert code(sp.smc(abi.FFA_NOTIFICATION_SET, t, 1, 1)) == INVALID  # per-vCPU
    assert code(sp.smc(abi.FFA_NOTIFICATION_SET, t, 1 << 16, 1)) == INVALID  # vCPU ID
    assert code(sp.smc(abi.FFA_NOTIFICATION_SET, t, 4, 1)) == INVALID  # MBZ
    r = sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8002, 1), 0, 1)
    assert code(r) == INVALID  # sender is not the caller
    r = hyp.call(abi.FFA_NOTIFICATION_SET, abi.pack_target(1, 0x8001), 2, 1)
    assert code(r) == INVALID  # delay SRI from a VM
    assert code(sp.smc(abi.FFA_NOTIFICATION_SET, t, 0, 0, 0)) == INVALID  # empty
    r = sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 9), 0, 1)
    assert code(r) == INVALID  # unknown receiver
    hyp.forward_rxtx(7)
    r = sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 7), 0, 1)
    assert code(r) == DENIED  # receiver without notifications
    assert code(sp.smc(abi.FFA_NOTIFICATION_SET, t, 0, 1)) == DENIED  # not bound
    hyp.call(abi.FFA_NOTIFICATION_BIND, t, 0, 1)
    assert sp.smc(abi.FFA_NOTIFICATION_SET, t, 2, 1)[0] == abi.FFA_SUCCESS_32  # delayed SRI


def test_get_errors() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 2)
    assert code(hyp.call(abi.FFA_NOTIFICATION_GET, 1, 0x10)) == INVALID
    assert code(hyp.call(abi.FFA_NOTIFICATION_GET, 1, abi.FFA_NOTIF_FLAG_BITMAP_VM)) == INVALID
    assert code(hyp.call(abi.FFA_NOTIFICATION_GET, 1, abi.FFA_NOTIF_FLAG_BITMAP_HYP)) == (INVALID)
    assert code(hyp.call(abi.FFA_NOTIFICATION_GET, 0x8001, SP_FLAG)) == INVALID
    assert code(hyp.call(abi.FFA_NOTIFICATION_GET, 3, SP_FLAG)) == INVALID  # unknown VM
    assert code(hyp.call(abi.FFA_NOTIFICATION_GET, 2 << 16 | 1, SP_FLAG)) == INVALID  # vCPU
    assert hyp.call(abi.FFA_NOTIFICATION_GET, 1 << 16 | 1, SP_FLAG)[0] == abi.FFA_SUCCESS_32
    assert code(sp.smc(abi.FFA_NOTIFICATION_GET, 0x8002, SP_FLAG)) == INVALID


def test_info_get_lists_at_most_twenty_ids_and_sets_more_flag() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    spmc.max_vms = 32
    for vm in range(1, 23):
        hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, vm, 1)
        hyp.call(abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, vm), 0, 1)
        assert sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, vm), 0, 1)[0] == (
            abi.FFA_SUCCESS_32
        )
    r = hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r[2] == 1 | (20 << 7)
    ids = [(r[3 + i // 4] >> (16 * (i % 4))) & 0xFFFF for i in range(20)]
    assert ids == list(range(1, 21))
    r = hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r[2] == 2 << 7 and r[3] == 21 | (22 << 16)


def test_vm_and_partition_senders_have_separate_bitmaps() -> None:
    spmc, _hyp = make()
    sp = spmc.partitions[0x8002]
    bind = abi.FFA_NOTIFICATION_BIND
    assert sp.smc(bind, abi.pack_target(3, 0x8002), 0, 1)[0] == abi.FFA_SUCCESS_32
    # Bit 0 of the from-partitions bitmap is still free for a partition sender.
    assert sp.smc(bind, abi.pack_target(0x8001, 0x8002), 0, 1)[0] == abi.FFA_SUCCESS_32
    assert code(sp.smc(bind, abi.pack_target(4, 0x8002), 0, 1)) == DENIED  # VM bit 0 taken
    echo = spmc.partitions[0x8001]
    assert echo.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, 0x8002), 0, 1)[0] == (
        abi.FFA_SUCCESS_32
    )
    # A pending from-partition bit does not block the VM sender's unbind of its bit 0.
    r = sp.smc(abi.FFA_NOTIFICATION_UNBIND, abi.pack_target(3, 0x8002), 0, 1)
    assert r[0] == abi.FFA_SUCCESS_32
    r = sp.smc(abi.FFA_NOTIFICATION_GET, 0x8002, SP_FLAG | abi.FFA_NOTIF_FLAG_BITMAP_VM)
    assert r[2:6] == (1, 0, 0, 0)
