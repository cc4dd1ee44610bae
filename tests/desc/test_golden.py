"""Golden vectors: every field of hand-built descriptors, decoded and re-encoded byte-exact."""

from __future__ import annotations

import pytest

from ffasim import abi, desc

from .golden import (
    HYP_RETRIEVE_1234,
    MEM_SHARE_V1_0,
    MEM_SHARE_V1_1_GOLDEN,
    MEM_SHARE_V1_2_TWO_EMADS,
    MSG_V1_1,
    MSG_V1_2,
    OPTEE_UUID,
    PARTINFO_V1_0,
    PARTINFO_V1_1,
    RELINQUISH,
    RXTX_12_44,
    RXTX_16_48,
)

V10, V11, V12 = abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2


def test_layout_sizes_match_the_spec_tables():
    sizes = {
        desc.PARTINFO_V1_0: 8,
        desc.PARTINFO_V1_1: 24,
        desc.RXTX_HEADER: 16,
        desc.RXTX_HEADER_V1_1_XEN: 12,
        desc.TRANSACTION_V1_0: 32,
        desc.TRANSACTION_V1_1: 48,
        desc.EMAD_V1_0: 16,
        desc.EMAD_V1_2: 32,
        desc.COMPOSITE: 16,
        desc.CONSTITUENT: 16,
        desc.RELINQUISH_HEADER: 16,
        desc.INDIRECT_MSG_V1_1: 20,
        desc.INDIRECT_MSG_V1_2: 40,
    }
    for layout, size in sizes.items():
        assert layout.size == size, layout.format
        assert layout.format.startswith("<")


def test_mem_share_golden_vector_decodes_field_by_field():
    t = desc.MemTransaction.decode(MEM_SHARE_V1_1_GOLDEN, V11)
    assert t.sender == 0x8005
    assert t.attributes == 0x002F
    assert t.flags == 0
    assert t.handle == 0x1234567890ABCDEF
    assert t.tag == 0xDEAD0000BEEF
    assert t.emad_size == 16
    assert t.emad_offset == 0x30
    assert len(t.receivers) == 1
    m = t.receivers[0]
    assert (m.receiver, m.permissions, m.flags, m.composite_offset) == (0x8003, 0x02, 0, 0x40)
    assert m.impdef == bytes(16)
    assert t.composite == desc.Composite(1, (desc.Constituent(0x4010F000, 1),))


def test_mem_share_golden_vector_reencodes_byte_exact():
    t = desc.MemTransaction.decode(MEM_SHARE_V1_1_GOLDEN, V11)
    assert t.encode(V11) == MEM_SHARE_V1_1_GOLDEN


def test_mem_share_golden_vector_built_from_fields_matches():
    t = desc.MemTransaction(
        sender=0x8005,
        attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
        flags=0,
        handle=0x1234567890ABCDEF,
        tag=0xDEAD0000BEEF,
        receivers=(desc.MemAccess(0x8003, abi.FFA_MEM_ACC_RW),),
        composite=desc.Composite.of([(0x4010F000, 1)]),
    )
    assert t.encode(V11) == MEM_SHARE_V1_1_GOLDEN


def test_mem_share_golden_vector_is_also_a_valid_v1_2_descriptor():
    # A v1.2 writer may still send 16-byte EMADs (Hafnium accepts them).
    t = desc.MemTransaction.decode(MEM_SHARE_V1_1_GOLDEN, V12)
    assert t.emad_size == 16
    assert t.encode(V12) == MEM_SHARE_V1_1_GOLDEN


def test_v1_0_transaction_decodes_field_by_field():
    t = desc.MemTransaction.decode(MEM_SHARE_V1_0, V10)
    assert (t.sender, t.attributes, t.flags, t.handle, t.tag) == (2, 0x2F, 0, 0, 0x11)
    assert t.emad_size is None and t.emad_offset is None  # v1.0 has no such header fields
    assert t.receivers == (desc.MemAccess(0x8002, 0x02, 0, 48),)
    assert t.composite == desc.Composite(
        3, (desc.Constituent(0x40000000, 2), desc.Constituent(0x40010000, 1))
    )
    assert t.encode(V10) == MEM_SHARE_V1_0


def test_v1_0_transaction_reencoded_for_v1_1_after_relaying_out():
    t = desc.MemTransaction.decode(MEM_SHARE_V1_0, V10)
    out = t.relaid().encode(V11)
    assert len(out) == 48 + 16 + 16 + 32
    back = desc.MemTransaction.decode(out, V11)
    assert back.receivers[0].composite_offset == 64
    assert back.composite == t.composite
    assert (back.emad_size, back.emad_offset) == (16, 48)


def test_v1_2_two_emads_decode_field_by_field():
    t = desc.MemTransaction.decode(MEM_SHARE_V1_2_TWO_EMADS, V12)
    assert (t.sender, t.attributes, t.emad_size, t.emad_offset) == (3, 0x2F, 32, 48)
    assert t.receivers == (
        desc.MemAccess(0x8001, 0x06, 0, 112, b"\xaa" * 16),
        desc.MemAccess(0x8002, 0x01, 0, 112, bytes(16)),
    )
    assert t.composite == desc.Composite(1, (desc.Constituent(0x40020000, 1),))
    assert t.encode(V12) == MEM_SHARE_V1_2_TWO_EMADS


def test_v1_2_default_layout_uses_32_byte_emads():
    t = desc.MemTransaction(
        3,
        0x2F,
        0,
        0,
        0,
        (
            desc.MemAccess(0x8001, 0x06, impdef=b"\xaa" * 16),
            desc.MemAccess(0x8002, 0x01),
        ),
        desc.Composite.of([(0x40020000, 1)]),
    )
    assert t.encode(V12) == MEM_SHARE_V1_2_TWO_EMADS


def test_partition_info_v1_0_golden():
    p = desc.PartitionInfo.decode(PARTINFO_V1_0, size=8)
    assert p == desc.PartitionInfo(0x8001, 4, 0x7)
    assert p.uuid == bytes(16)
    assert p.encode(8) == PARTINFO_V1_0


def test_partition_info_v1_1_golden():
    p = desc.PartitionInfo.decode(PARTINFO_V1_1)
    assert (p.id, p.exec_ctx, p.properties) == (0x8002, 1, 0x103)
    assert p.uuid == abi.uuid_bytes(OPTEE_UUID)
    assert p.uuid_str == OPTEE_UUID
    assert p.encode() == PARTINFO_V1_1


def test_partition_info_get_regs_packing():
    p = desc.PartitionInfo.decode(PARTINFO_V1_1)
    assert p.to_regs() == (0x0000_0103_0001_8002, 0xE311F8E7E0786148, 0x1BC5D5A502005EBC)
    assert desc.PartitionInfo.from_regs(*p.to_regs()) == p


def test_partition_info_array_at_offset():
    buf = b"\xff" * 4 + PARTINFO_V1_1 + PARTINFO_V1_1
    infos = desc.decode_partinfo_array(buf, 2, 24, offset=4)
    assert [i.id for i in infos] == [0x8002, 0x8002]
    assert desc.encode_partinfo_array(infos) == PARTINFO_V1_1 * 2


def test_rxtx_descriptor_canonical_form_golden():
    r = desc.RxTxDescriptor.decode(RXTX_16_48)
    assert (r.endpoint_id, r.rx_offset, r.tx_offset) == (2, 16, 48)
    assert r.rx == desc.Composite(1, (desc.Constituent(0x40001000, 1),))
    assert r.tx == desc.Composite(1, (desc.Constituent(0x40002000, 1),))
    assert r.encode() == RXTX_16_48
    assert desc.RxTxDescriptor.for_pages(2, 0x40001000, 0x40002000).encode() == RXTX_16_48


def test_rxtx_descriptor_seed_form_golden():
    r = desc.RxTxDescriptor.decode(RXTX_12_44)
    assert (r.endpoint_id, r.rx_offset, r.tx_offset) == (2, 12, 44)
    assert r.rx.constituents[0] == desc.Constituent(0x40001000, 1)
    assert r.tx.constituents[0] == desc.Constituent(0x40002000, 1)
    assert r.encode() == RXTX_12_44
    assert (
        desc.RxTxDescriptor.for_pages(2, 0x40001000, 0x40002000, legacy=True).encode() == RXTX_12_44
    )


def test_relinquish_golden():
    r = desc.Relinquish.decode(RELINQUISH)
    assert r == desc.Relinquish(0x8000000000000007, 1, (0x8002,))
    assert r.encode() == RELINQUISH


def test_indirect_message_v1_1_golden():
    m = desc.IndirectMessage.decode(MSG_V1_1, V11)
    assert m == desc.IndirectMessage(0, 20, 2, 3, 4)
    assert m.send_recv_id == 0x0002_0003
    assert m.encode(V11) == MSG_V1_1[:20]
    assert MSG_V1_1[m.offset : m.offset + m.size] == b"ping"


def test_indirect_message_v1_2_golden():
    m = desc.IndirectMessage.decode(MSG_V1_2, V12)
    assert (m.flags, m.offset, m.sender, m.receiver, m.size) == (0, 40, 2, 0x8001, 2)
    assert m.uuid == abi.uuid_bytes(OPTEE_UUID)
    assert m.encode(V12) == MSG_V1_2[:40]


def test_hyp_retrieve_request_is_the_bare_48_byte_header():
    assert desc.hyp_retrieve_request(0x1234) == HYP_RETRIEVE_1234
    t = desc.MemTransaction.decode(HYP_RETRIEVE_1234, V11)
    assert (t.handle, t.receivers, t.composite, t.emad_size, t.emad_offset) == (
        0x1234,
        (),
        None,
        0,
        0,
    )
    assert t.encode(V11) == HYP_RETRIEVE_1234


def test_retrieve_request_names_the_handle_and_no_composite():
    buf = desc.retrieve_request(7, 2, [0x8002], V11, attributes=0x2F, flags=1 << 3)
    assert len(buf) == 48 + 16
    t = desc.MemTransaction.decode(buf, V11, length=len(buf))
    assert (t.handle, t.sender, t.flags, t.attributes) == (7, 2, 1 << 3, 0x2F)
    assert t.receivers == (desc.MemAccess(0x8002, abi.FFA_MEM_ACC_RW, 0, 0),)
    assert t.composite is None


def test_retrieve_request_v1_2_has_32_byte_emads():
    buf = desc.retrieve_request(7, 2, [desc.MemAccess(0x8002, 0x1, impdef=b"\x01" * 16)], V12)
    assert len(buf) == 48 + 32
    t = desc.MemTransaction.decode(buf, V12)
    assert t.receivers[0].impdef == b"\x01" * 16


def test_framework_message_encodings():
    assert desc.framework_w2(abi.FFA_MSG_SEND_VM_CREATED) == 0x80000004
    assert desc.framework_msg(0x80000006) == (True, 6)
    assert desc.framework_msg(0x00000006) == (False, 6)
    assert desc.framework_msg_name(0x80000005) == "VM created response"
    assert desc.framework_msg_name(0x1) == "not a framework message"
    r = desc.vm_availability_msg(0x8001, 3, destroyed=True)
    assert r[:6] == (abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, 0x80000006, 0, 0, 3)
    r = desc.vm_availability_msg(0x8001, 3, handle=abi.FFA_HANDLE_INVALID)
    assert r[2:6] == (0x80000004, 0xFFFFFFFF, 0xFFFFFFFF, 3)


def test_decoded_values_do_not_alias_the_buffer():
    # A guest may rewrite its TX page right after the mediator read it: what was decoded
    # must not change with it (the descriptor is read once).
    buf = bytearray(MEM_SHARE_V1_2_TWO_EMADS)
    t = desc.MemTransaction.decode(memoryview(buf), V12)
    p_buf = bytearray(PARTINFO_V1_1)
    p = desc.PartitionInfo.decode(p_buf)
    buf[:] = bytes(len(buf))
    p_buf[:] = bytes(len(p_buf))
    assert t == desc.MemTransaction.decode(MEM_SHARE_V1_2_TWO_EMADS, V12)
    assert t.receivers[0].impdef == b"\xaa" * 16
    assert p.uuid == abi.uuid_bytes(OPTEE_UUID)
    assert isinstance(p.uuid, bytes) and isinstance(t.receivers[0].impdef, bytes)


def test_uuids_may_be_given_as_text():
    p = desc.PartitionInfo(0x8002, 1, 0x103, OPTEE_UUID)
    assert p.encode() == PARTINFO_V1_1
    m = desc.IndirectMessage(0, 40, 2, 0x8001, 2, OPTEE_UUID)
    assert m.encode(V12) == MSG_V1_2[:40]


def test_impdef_must_be_16_bytes():
    assert desc.MemAccess(1, 2, impdef=bytearray(b"\x01" * 16)).impdef == b"\x01" * 16
    with pytest.raises(ValueError, match=r"^impdef is 16 bytes, got 1$"):
        desc.MemAccess(1, 2, impdef=b"\x01")
