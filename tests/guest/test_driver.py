"""The guest FF-A driver against the real System: every method, and errors never hidden."""

from __future__ import annotations

import re

import pytest

from ffasim import abi, desc
from ffasim.guest import (
    DriverError,
    FfaCallError,
    FfaDriver,
    NotificationInfo,
    parse_notification_info,
)
from ffasim.system import System

SP_IDS = (0x8001, 0x8002, 0x8003)


def _driver(variant: str = "reference", *, mapped: bool = True, **kw: bool) -> FfaDriver:
    system = System(variant=variant, **kw)
    drv = FfaDriver(system.create_vm(vcpus=2))
    drv.negotiate()
    if mapped:
        drv.map_buffers()
    return drv


# -- version, id, features ------------------------------------------------------------------


def test_negotiate_keeps_the_lower_minor_of_guest_and_mediator() -> None:
    assert _driver("reference", mapped=False).state.version == abi.FFA_VERSION_1_2
    assert _driver("seed-v1", mapped=False).state.version == abi.FFA_VERSION_1_1


def test_negotiate_another_major_is_refused() -> None:
    drv = FfaDriver(System().create_vm())
    with pytest.raises(FfaCallError, match=r"^FFA_VERSION returned .*: incompatible version$"):
        drv.negotiate(abi.make_version(2, 0))
    assert drv.state.version is None
    r = drv.negotiate(abi.make_version(2, 0), check=False)
    assert isinstance(r, tuple) and len(r) == abi.NUM_REGS


def test_call_before_negotiation_raises_not_supported() -> None:
    drv = FfaDriver(System().create_vm())
    with pytest.raises(FfaCallError) as info:
        drv.id_get()
    assert info.value.code == abi.FFA_RET_NOT_SUPPORTED
    assert info.value.fid == abi.FFA_ID_GET
    assert str(info.value) == "FFA_ID_GET returned FFA_ERROR(NOT_SUPPORTED)"


def test_check_false_returns_the_raw_error_registers() -> None:
    drv = FfaDriver(System().create_vm())
    r = drv.id_get(check=False)
    assert isinstance(r, tuple)
    assert abi.error_code(r) == abi.FFA_RET_NOT_SUPPORTED
    assert drv.last == r and drv.last_fid == abi.FFA_ID_GET


def test_id_get_is_domid_plus_one() -> None:
    drv = _driver(mapped=False)
    assert drv.id_get() == drv.vm.id == drv.vm.domid + 1


def test_features_of_a_supported_and_an_unsupported_function() -> None:
    drv = _driver(mapped=False)
    assert drv.features(abi.FFA_MEM_SHARE_64) == (0, 0)
    with pytest.raises(FfaCallError) as info:
        drv.features(abi.FFA_MSG_POLL)
    assert info.value.code == abi.FFA_RET_NOT_SUPPORTED


# -- RX/TX buffers ---------------------------------------------------------------------------


def test_map_twice_is_denied() -> None:
    drv = _driver()
    with pytest.raises(FfaCallError) as info:
        drv.map_buffers()
    assert info.value.code == abi.FFA_RET_DENIED
    assert drv.state.rx_page == 0 and drv.state.tx_page == 1


def test_unmap_without_buffers_is_invalid_parameters() -> None:
    drv = _driver(mapped=False)
    r = drv.unmap_buffers(check=False)
    assert r is not None and abi.error_code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_unmap_then_map_again_at_other_pages() -> None:
    drv = _driver()
    assert drv.unmap_buffers() is None
    assert drv.state.rx_page is None
    assert drv.map_buffers(rx_page=6, tx_page=7, bits=32) is None
    assert (drv.state.rx_page, drv.state.tx_page) == (6, 7)
    assert drv.state.next_page == 8


def test_rx_release_when_the_guest_does_not_own_rx_is_denied() -> None:
    drv = _driver()
    with pytest.raises(FfaCallError) as info:
        drv.rx_release()
    assert info.value.code == abi.FFA_RET_DENIED


# -- discovery -------------------------------------------------------------------------------


def test_partition_info_lists_the_partitions_and_releases_rx() -> None:
    drv = _driver()
    infos = drv.partition_info()
    assert [i.id for i in infos] == [*SP_IDS, drv.id]  # v1.2: the caller's own entry last
    assert all(i.uuid != abi.NIL_UUID for i in infos[:3])
    # The driver gave RX back: a second call succeeds, and another release is refused.
    assert [i.id for i in drv.partition_info()] == [i.id for i in infos]
    assert abi.error_code(drv.rx_release(check=False) or abi.regs()) == abi.FFA_RET_DENIED


def test_partition_info_of_a_v1_1_guest_omits_itself() -> None:
    drv = _driver("seed-v1")
    assert [i.id for i in drv.partition_info()] == list(SP_IDS)


def test_partition_info_by_uuid_and_count_only() -> None:
    drv = _driver()
    echo = drv.partition_info()[0]
    only = drv.partition_info(uuid=echo.uuid)
    assert [i.id for i in only] == [0x8001]
    assert drv.partition_info(count_only=True) == 4


def test_partition_info_without_rx_buffer_is_denied() -> None:
    drv = _driver(mapped=False)
    with pytest.raises(FfaCallError) as info:
        drv.partition_info()
    assert info.value.code == abi.FFA_RET_DENIED


def test_partition_info_regs_matches_partition_info() -> None:
    drv = _driver()
    assert drv.partition_info_regs() == drv.partition_info()


def test_partition_info_regs_is_not_supported_below_v1_2() -> None:
    drv = _driver("seed-v1")
    with pytest.raises(FfaCallError) as info:
        drv.partition_info_regs()
    assert info.value.code == abi.FFA_RET_NOT_SUPPORTED


# -- messaging -------------------------------------------------------------------------------


def test_direct_req_echo_32_masks_and_64_keeps_words_whole() -> None:
    drv = _driver(mapped=False)
    assert drv.direct_req(0x8001, [1, 2, 3, 4, 5]) == (1, 2, 3, 4, 5)
    big = 0x1122_3344_5566_7788
    assert drv.direct_req(0x8001, [big, 2], bits=64) == (big, 2, 0, 0, 0)
    assert drv.direct_req(0x8001, [big, 2], bits=32) == (0x5566_7788, 2, 0, 0, 0)


def test_direct_req_to_a_partition_that_takes_none_is_denied() -> None:
    drv = _driver(mapped=False)
    with pytest.raises(FfaCallError) as info:
        drv.direct_req(0x8003, [1])
    assert info.value.code == abi.FFA_RET_DENIED
    assert info.value.error_name == "DENIED"


def test_direct_req_to_a_vm_is_not_supported() -> None:
    drv = _driver(mapped=False)
    r = drv.direct_req(0x2, [1], check=False)
    assert isinstance(r, tuple) and abi.error_code(r) == abi.FFA_RET_NOT_SUPPORTED


def test_direct_req_rejects_more_than_five_words() -> None:
    drv = _driver(mapped=False)
    with pytest.raises(ValueError, match=r"^a direct request carries 5 payload registers, got 6$"):
        drv.direct_req(0x8001, [0] * 6)


def test_direct_req2_echo() -> None:
    drv = _driver(mapped=False)
    assert drv.direct_req2(0x8001, None, [1, 2, 3]) == (1, 2, 3) + (0,) * 11


def test_send2_between_vms_and_receive() -> None:
    system = System(vm_to_vm=True)
    a, b = FfaDriver(system.create_vm()), FfaDriver(system.create_vm())
    for d in (a, b):
        d.negotiate()
        d.map_buffers()
    assert a.send2(b.id, b"hello vm") is None
    assert b.receive() == (a.id, b"hello vm")
    info = b.notification_info_get()
    assert isinstance(info, NotificationInfo) and info.lists == ((b.id,),)


# -- memory sharing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "version", "emad_size"),
    [("reference", abi.FFA_VERSION_1_2, 32), ("seed-v1", abi.FFA_VERSION_1_1, 16)],
)
def test_share_writes_the_descriptor_of_the_negotiated_version(
    variant: str, version: int, emad_size: int
) -> None:
    drv = _driver(variant)
    pages = (3, 4, 6)
    buf = drv.mem_transaction(0x8002, pages)
    tx = desc.MemTransaction.decode(buf, version)
    assert tx.sender == drv.id
    assert tx.attributes == abi.FFA_NORMAL_MEM_REG_ATTR
    assert tx.emad_size == emad_size
    assert [(m.receiver, m.permissions) for m in tx.receivers] == [(0x8002, abi.FFA_MEM_ACC_RW)]
    assert tx.composite is not None and tx.composite.total_page_count == 3
    ipa = drv.vm.ipa
    assert [(c.address, c.page_count) for c in tx.composite.constituents] == [
        (ipa(3), 2),
        (ipa(6), 1),
    ]
    handle = drv.share(0x8002, pages)
    assert isinstance(handle, int)
    assert drv.vm.read(ipa(1), len(buf)) == buf  # what went through the TX buffer
    assert drv.state.shares == {handle: pages}


def test_share_then_memory_service_sums_and_reclaim() -> None:
    drv = _driver()
    pages = drv.alloc_pages(2)
    for p in pages:
        drv.vm.write(drv.vm.ipa(p), b"\x03" * abi.FFA_PAGE_SIZE)
    h = drv.share(0x8002, pages)
    assert isinstance(h, int)
    status, total = drv.direct_req(0x8002, (2, abi.handle_lo(h), abi.handle_hi(h), 0, 0))[:2]
    assert (status, total) == (0, 2 * abi.FFA_PAGE_SIZE * 3)
    assert drv.reclaim(h) is None
    assert drv.state.shares == {}


def test_reclaim_of_an_unknown_handle_is_invalid_parameters() -> None:
    drv = _driver()
    with pytest.raises(FfaCallError) as info:
        drv.reclaim(0x1234)
    assert info.value.code == abi.FFA_RET_INVALID_PARAMETERS


def test_share_without_tx_buffer_is_a_driver_error() -> None:
    drv = _driver(mapped=False)
    with pytest.raises(ValueError, match=r"^the driver has no TX buffer mapped: call map_buffers"):
        drv.share(0x8002, 1)


def test_alloc_pages_stops_at_the_end_of_ram() -> None:
    drv = _driver()
    drv.alloc_pages(drv.vm.pages - 2)
    with pytest.raises(ValueError, match=r"^cannot hand out 1 more pages: the VM has 64$"):
        drv.alloc_pages(1)


def test_drivers_of_one_vm_share_its_state() -> None:
    drv = _driver()
    other = drv.on_vcpu(1)
    assert other.vcpu == 1 and other.state is drv.state
    assert [i.id for i in other.partition_info()][:3] == list(SP_IDS)


# -- notifications ---------------------------------------------------------------------------


def test_notification_info_get_with_nothing_pending_is_no_data() -> None:
    drv = _driver(mapped=False)
    with pytest.raises(FfaCallError) as info:
        drv.notification_info_get()
    assert info.value.code == abi.FFA_RET_NO_DATA


def test_notification_bind_set_by_partition_then_get() -> None:
    drv = _driver(mapped=False)
    assert drv.notification_bind(0x8001, 0b101) is None
    sp = drv.vm.system.spmc.partitions[0x8001]
    r = sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, drv.id), 0, 0b100, 0)
    assert abi.is_success(r)
    bitmaps = drv.notification_get()
    assert bitmaps.sp == 0b100 and bitmaps.spm == 0 and bitmaps.hyp == 0
    assert drv.notification_get().sp == 0  # GET consumed it
    assert drv.notification_unbind(0x8001, 0b101) is None


def test_notification_bind_with_flags_is_denied() -> None:
    drv = _driver(mapped=False)
    with pytest.raises(FfaCallError) as info:
        drv.notification_bind(0x8001, 1, flags=1)
    assert info.value.code == abi.FFA_RET_DENIED


def test_parse_notification_info_unpacks_lists() -> None:
    # Two lists: endpoint 1 with vCPUs 0 and 1, then endpoint 2 alone; more pending.
    x2 = abi.FFA_NOTIF_INFO_GET_MORE_FLAG | (2 << 7) | (2 << 12) | (0 << 14)
    x3 = 1 | (0 << 16) | (1 << 32) | (2 << 48)
    info = parse_notification_info(abi.success(x2, x3, fid=abi.FFA_SUCCESS_64))
    assert info == NotificationInfo(True, ((1, 0, 1), (2,)))


def test_ffa_call_error_describes_unexpected_answers() -> None:
    e = FfaCallError(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.regs(abi.FFA_INTERRUPT, 0x80010000))
    assert e.code == 0
    assert re.fullmatch(
        r"FFA_MSG_SEND_DIRECT_REQ_32 returned FFA_INTERRUPT\(w1=0x80010000\)", str(e)
    )
    assert e.error_name == "FFA_INTERRUPT(w1=0x80010000)"


def test_receive_without_a_message_is_a_driver_error() -> None:
    drv = _driver()
    with pytest.raises(
        DriverError, match=r"^no valid message in the RX buffer: .*payload offset 0"
    ):
        drv.receive()
