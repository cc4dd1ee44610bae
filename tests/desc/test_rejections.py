"""One test per validation rule: the exact FF-A code, and the offset of the offending field."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi, desc

from .golden import (
    MEM_SHARE_V1_0,
    MEM_SHARE_V1_1_GOLDEN,
    MEM_SHARE_V1_2_TWO_EMADS,
    MSG_V1_1,
    MSG_V1_2,
    PARTINFO_V1_1,
    RELINQUISH,
    RXTX_12_44,
    RXTX_16_48,
)

V10, V11, V12 = abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2
INVALID = abi.FFA_RET_INVALID_PARAMETERS


def patched(buf: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(buf)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def rejects(fn, code: int = INVALID, offset: int | None = None, field: str | None = None):
    with pytest.raises(desc.DescriptorError) as info:
        fn()
    e = info.value
    assert e.code == code, str(e)
    if offset is not None:
        assert e.offset == offset, str(e)
    if field is not None:
        assert e.field == field, str(e)
    return e


def mem11(buf: bytes, **kw):
    return lambda: desc.MemTransaction.decode(buf, V11, **kw)


G = MEM_SHARE_V1_1_GOLDEN


# -- the transaction header ------------------------------------------------------------------


def test_mem_truncated_header_is_invalid():
    rejects(mem11(G[:47]), offset=0, field="header")


def test_mem_v1_0_truncated_header_is_invalid():
    rejects(lambda: desc.MemTransaction.decode(MEM_SHARE_V1_0[:31], V10), offset=0)


def test_mem_length_beyond_buffer_is_invalid():
    rejects(mem11(G, length=len(G) + 1), field="length")


def test_mem_length_cuts_off_the_constituents():
    rejects(mem11(G, length=90), offset=68, field="address_range_count")


def test_mem_attribute_mbz_bits_are_invalid():
    rejects(mem11(patched(G, 2, "<H", 0x2F | 0x80)), offset=2, field="attributes")
    rejects(mem11(patched(G, 2, "<H", 0x2F | 0x8000)), offset=2, field="attributes")


def test_mem_v1_0_attribute_bit_7_is_invalid():
    bad = patched(MEM_SHARE_V1_0, 2, "<B", 0xAF)
    rejects(lambda: desc.MemTransaction.decode(bad, V10), offset=2, field="attributes")


def test_mem_v1_0_reserved_byte_is_invalid():
    bad = patched(MEM_SHARE_V1_0, 3, "<B", 1)
    rejects(lambda: desc.MemTransaction.decode(bad, V10), offset=3, field="reserved")


def test_mem_v1_0_reserved_word_is_invalid():
    bad = patched(MEM_SHARE_V1_0, 24, "<I", 1)
    rejects(lambda: desc.MemTransaction.decode(bad, V10), offset=24, field="reserved")


def test_mem_header_reserved_bytes_are_invalid():
    rejects(mem11(patched(G, 36, "<I", 1)), offset=36, field="reserved")
    rejects(mem11(patched(G, 44, "<I", 1)), offset=40, field="reserved")


def test_mem_flags_above_bit_10_are_invalid():
    rejects(mem11(patched(G, 4, "<I", 1 << 11)), offset=4, field="flags")


def test_mem_defined_flags_are_accepted():
    # Operation-specific rules (SHARE may not zero) belong to the SPMC, not the layout.
    t = desc.MemTransaction.decode(patched(G, 4, "<I", 0x7FF), V11)
    assert t.flags == 0x7FF


def test_mem_emad_size_other_than_16_or_32_is_invalid():
    rejects(mem11(patched(G, 24, "<I", 24)), offset=24, field="emad_size")
    rejects(mem11(patched(G, 24, "<I", 0)), offset=24, field="emad_size")


def test_mem_32_byte_emads_from_a_v1_1_writer_are_invalid():
    rejects(mem11(MEM_SHARE_V1_2_TWO_EMADS), offset=24, field="emad_size")


def test_mem_emad_offset_inside_header_is_invalid():
    rejects(mem11(patched(G, 32, "<I", 32)), offset=32, field="emad_offset")


def test_mem_emad_offset_not_16_aligned_is_invalid():
    rejects(mem11(patched(G, 32, "<I", 56)), offset=32, field="emad_offset")


def test_mem_emad_count_overflowing_the_buffer_is_invalid():
    rejects(mem11(patched(G, 28, "<I", 0xFFFFFFFF)), offset=28, field="emad_count")
    rejects(mem11(patched(G, 28, "<I", 4)), offset=28, field="emad_count")


def test_mem_v1_0_emad_count_overflowing_the_buffer_is_invalid():
    bad = patched(MEM_SHARE_V1_0, 28, "<I", 0x10000000)
    rejects(lambda: desc.MemTransaction.decode(bad, V10), offset=28, field="emad_count")


def test_mem_zero_emads_need_zero_size_and_offset_together():
    # The hypervisor retrieve request has count, size and offset all 0; a zero count with a
    # bad size is still a bad size.
    bad = patched(patched(G, 28, "<I", 0), 24, "<I", 8)
    rejects(mem11(bad), offset=24, field="emad_size")


# -- EMADs -------------------------------------------------------------------------------------


def test_mem_permission_reserved_bits_are_invalid():
    rejects(mem11(patched(G, 50, "<B", 0x12)), offset=50, field="permissions")


def test_mem_permission_reserved_data_access_is_invalid():
    rejects(mem11(patched(G, 50, "<B", 0x03)), offset=50, field="permissions")


def test_mem_permission_reserved_instruction_access_is_invalid():
    rejects(mem11(patched(G, 50, "<B", 0x0E)), offset=50, field="permissions")


def test_mem_emad_flags_mbz_bits_are_invalid():
    rejects(mem11(patched(G, 51, "<B", 0x02)), offset=51, field="emad.flags")


def test_mem_emad_reserved_is_invalid():
    rejects(mem11(patched(G, 60, "<I", 1)), offset=56, field="emad.reserved")


def test_mem_v1_2_emad_reserved_is_invalid():
    bad = patched(MEM_SHARE_V1_2_TWO_EMADS, 80 + 24, "<Q", 1)
    rejects(lambda: desc.MemTransaction.decode(bad, V12), offset=104, field="emad.reserved")


def test_mem_duplicate_receiver_is_invalid():
    bad = patched(MEM_SHARE_V1_2_TWO_EMADS, 80, "<H", 0x8001)
    rejects(lambda: desc.MemTransaction.decode(bad, V12), offset=80, field="receiver")


def test_mem_emads_with_different_composite_offsets_are_invalid():
    bad = patched(MEM_SHARE_V1_2_TWO_EMADS, 84, "<I", 0)
    rejects(lambda: desc.MemTransaction.decode(bad, V12), offset=84, field="composite_offset")


# -- composite and constituents ----------------------------------------------------------------


def test_mem_composite_offset_into_the_emads_is_invalid():
    rejects(mem11(patched(G, 52, "<I", 48)), offset=52, field="composite_offset")


def test_mem_composite_offset_misaligned_is_invalid():
    rejects(mem11(patched(G, 52, "<I", 72)), offset=52, field="composite_offset")


def test_mem_composite_offset_outside_the_buffer_is_invalid():
    rejects(mem11(patched(G, 52, "<I", 96)), offset=96, field="composite")
    rejects(mem11(patched(G, 52, "<I", 0xFFFFFFF0)), field="composite")


def test_mem_constituent_count_overflowing_the_buffer_is_invalid():
    rejects(mem11(patched(G, 68, "<I", 2)), offset=68, field="address_range_count")
    rejects(mem11(patched(G, 68, "<I", 0xFFFFFFFF)), offset=68, field="address_range_count")


def test_mem_composite_reserved_is_invalid():
    rejects(mem11(patched(G, 72, "<Q", 1)), offset=72, field="composite.reserved")


def test_mem_constituent_address_not_page_aligned_is_invalid():
    rejects(mem11(patched(G, 80, "<Q", 0x4010F800)), offset=80, field="constituent.address")


def test_mem_constituent_reserved_is_invalid():
    rejects(mem11(patched(G, 92, "<I", 1)), offset=92, field="constituent.reserved")


def test_mem_total_page_count_disagreeing_with_constituents_is_invalid():
    rejects(mem11(patched(G, 64, "<I", 2)), offset=64, field="total_page_count")
    rejects(mem11(patched(G, 88, "<I", 0)), offset=64, field="total_page_count")


def test_mem_unknown_major_version_is_not_supported():
    rejects(
        lambda: desc.MemTransaction.decode(G, 0x20000),
        code=abi.FFA_RET_NOT_SUPPORTED,
        field="version",
    )


def test_mem_encode_for_unknown_major_version_is_not_supported():
    t = desc.MemTransaction.decode(G, V11)
    rejects(lambda: t.encode(0x20000), code=abi.FFA_RET_NOT_SUPPORTED)


# -- endpoint RX/TX descriptor -----------------------------------------------------------------


def test_rxtx_truncated_header_is_invalid():
    rejects(lambda: desc.RxTxDescriptor.decode(RXTX_16_48[:11]), offset=0, field="header")


def test_rxtx_reserved_is_invalid():
    rejects(
        lambda: desc.RxTxDescriptor.decode(patched(RXTX_16_48, 2, "<H", 1)),
        offset=2,
        field="reserved",
    )


def test_rxtx_offset_into_header_is_invalid():
    bad = patched(RXTX_16_48, 4, "<I", 8)
    rejects(lambda: desc.RxTxDescriptor.decode(bad), offset=4, field="rx_offset")
    bad = patched(RXTX_16_48, 8, "<I", 0)
    rejects(lambda: desc.RxTxDescriptor.decode(bad), offset=8, field="tx_offset")


def test_rxtx_seed_offsets_are_refused_with_hafnium_alignment():
    rejects(lambda: desc.RxTxDescriptor.decode(RXTX_12_44, align=8), offset=4, field="rx_offset")
    assert desc.RxTxDescriptor.decode(RXTX_16_48, align=8).rx_offset == 16


def test_rxtx_composite_outside_buffer_is_invalid():
    bad = patched(RXTX_16_48, 8, "<I", 72)
    rejects(lambda: desc.RxTxDescriptor.decode(bad), offset=72, field="composite")


def test_rxtx_constituents_outside_buffer_are_invalid():
    bad = patched(RXTX_16_48, 52, "<I", 2)
    rejects(lambda: desc.RxTxDescriptor.decode(bad), offset=52, field="address_range_count")


def test_rxtx_truncated_by_length_is_invalid():
    rejects(lambda: desc.RxTxDescriptor.decode(RXTX_16_48, length=79), offset=52)


# -- partition info ----------------------------------------------------------------------------


def test_partinfo_size_other_than_8_or_24_is_invalid():
    rejects(lambda: desc.PartitionInfo.decode(PARTINFO_V1_1, size=16), field="size")


def test_partinfo_overrunning_the_buffer_is_invalid():
    rejects(lambda: desc.PartitionInfo.decode(PARTINFO_V1_1, offset=1), offset=1)
    rejects(lambda: desc.PartitionInfo.decode(PARTINFO_V1_1, offset=-1), offset=-1)


def test_partinfo_array_count_overrunning_the_buffer_is_invalid():
    rejects(lambda: desc.decode_partinfo_array(PARTINFO_V1_1, 2), field="count")
    rejects(lambda: desc.decode_partinfo_array(PARTINFO_V1_1, 1 << 40), field="count")


# -- relinquish --------------------------------------------------------------------------------


def test_relinquish_truncated_header_is_invalid():
    rejects(lambda: desc.Relinquish.decode(RELINQUISH[:15]), offset=0, field="header")


def test_relinquish_flags_mbz_bits_are_invalid():
    bad = patched(RELINQUISH, 8, "<I", 4)
    rejects(lambda: desc.Relinquish.decode(bad), offset=8, field="flags")


def test_relinquish_endpoint_count_overrunning_is_invalid():
    bad = patched(RELINQUISH, 12, "<I", 2)
    rejects(lambda: desc.Relinquish.decode(bad), offset=12, field="endpoint_count")
    bad = patched(RELINQUISH, 12, "<I", 0xFFFFFFFF)
    rejects(lambda: desc.Relinquish.decode(bad), offset=12, field="endpoint_count")


# -- indirect messages -------------------------------------------------------------------------


def test_msg_truncated_header_is_invalid():
    rejects(lambda: desc.IndirectMessage.decode(MSG_V1_2[:39], V12), offset=0, field="header")


def test_msg_offset_inside_header_is_invalid():
    # A v1.2 header is 40 bytes: a payload at 20 would overlap the UUID.
    bad = patched(MSG_V1_2, 8, "<I", 20)
    rejects(lambda: desc.IndirectMessage.decode(bad, V12), offset=8, field="offset")


def test_msg_size_zero_is_invalid_in_a_buffer():
    bad = patched(MSG_V1_1, 16, "<I", 0)
    rejects(lambda: desc.IndirectMessage.decode(bad, V11, length=24), offset=16, field="size")


def test_msg_payload_overrunning_the_buffer_is_invalid():
    bad = patched(MSG_V1_1, 16, "<I", 5)
    rejects(lambda: desc.IndirectMessage.decode(bad, V11, length=24), offset=16, field="size")
    bad = patched(MSG_V1_1, 8, "<I", 0xFFFFFFFF)
    rejects(lambda: desc.IndirectMessage.decode(bad, V11, length=4096), offset=16, field="size")


def test_msg_header_alone_decodes_without_a_buffer_length():
    # A reader may fetch the header first and the payload after (the guest driver does).
    m = desc.IndirectMessage.decode(patched(MSG_V1_1, 16, "<I", 4000)[:20], V11)
    assert (m.offset, m.size) == (20, 4000)


def test_msg_in_v1_0_is_not_supported():
    rejects(lambda: desc.IndirectMessage.decode(MSG_V1_1, V10), code=abi.FFA_RET_NOT_SUPPORTED)


def test_error_message_names_offset_field_and_code():
    e = rejects(mem11(patched(G, 28, "<I", 4)))
    assert str(e).startswith("offset 28 (emad_count): 4 EMADs of 16 bytes at 48 overrun")
    assert str(e).endswith("[INVALID_PARAMETERS]")
