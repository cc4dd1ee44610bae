"""The wire constants and register helpers of ``ffasim.abi``, against ffa-abi.md §0-§2."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi

OPTEE = "486178e0-e7f8-11e3-bc5e-0002a5d5c51b"


@pytest.mark.parametrize(
    ("fid", "value"),
    [
        (abi.FFA_ERROR, 0x84000060),
        (abi.FFA_SUCCESS_32, 0x84000061),
        (abi.FFA_SUCCESS_64, 0xC4000061),
        (abi.FFA_VERSION, 0x84000063),
        (abi.FFA_FEATURES, 0x84000064),
        (abi.FFA_RX_RELEASE, 0x84000065),
        (abi.FFA_RXTX_MAP_64, 0xC4000066),
        (abi.FFA_RXTX_UNMAP, 0x84000067),
        (abi.FFA_PARTITION_INFO_GET, 0x84000068),
        (abi.FFA_MSG_SEND_DIRECT_REQ_64, 0xC400006F),
        (abi.FFA_MEM_SHARE_32, 0x84000073),
        (abi.FFA_MEM_SHARE_64, 0xC4000073),
        (abi.FFA_MEM_RETRIEVE_RESP, 0x84000075),
        (abi.FFA_MEM_RECLAIM, 0x84000077),
        (abi.FFA_MEM_FRAG_TX, 0x8400007B),
        (abi.FFA_NOTIFICATION_INFO_GET_64, 0xC4000083),
        (abi.FFA_RX_ACQUIRE, 0x84000084),
        (abi.FFA_MSG_SEND2, 0x84000086),
        (abi.FFA_PARTITION_INFO_GET_REGS, 0xC400008B),  # SMC64 only (§8 item 11)
        (abi.FFA_MSG_SEND_DIRECT_REQ2, 0xC400008D),
        (abi.FFA_MSG_SEND_DIRECT_RESP2, 0xC400008E),
    ],
)
def test_function_ids_match_the_spec_table(fid, value):
    assert fid == value


def test_bare_names_alias_the_32_bit_forms():
    assert abi.FFA_MEM_SHARE == abi.FFA_MEM_SHARE_32
    assert abi.FFA_RXTX_MAP == abi.FFA_RXTX_MAP_32
    assert abi.FFA_MSG_SEND_DIRECT_REQ == abi.FFA_MSG_SEND_DIRECT_REQ_32
    assert abi.FFA_SUCCESS == abi.FFA_SUCCESS_32


def test_name_prefers_the_spelled_out_form_and_falls_back_to_hex():
    assert abi.name(abi.FFA_MEM_SHARE_32) == "FFA_MEM_SHARE_32"
    assert abi.name(abi.FFA_MEM_SHARE_64) == "FFA_MEM_SHARE_64"
    assert abi.name(abi.FFA_VERSION) == "FFA_VERSION"
    assert abi.name(0x8400FFFF) == "0x8400ffff"
    assert abi.name(0xFFFFFFFF_84000063) == "FFA_VERSION"  # only the low 32 bits count


def test_fid_by_name_accepts_short_names():
    assert abi.fid_by_name("ffa_version") == abi.FFA_VERSION
    assert abi.fid_by_name("MEM_SHARE_64") == abi.FFA_MEM_SHARE_64
    with pytest.raises(KeyError):
        abi.fid_by_name("RET_DENIED")
    with pytest.raises(KeyError):
        abi.fid_by_name("NOPE")


def test_every_named_fid_is_in_the_ffa_range():
    for fid in abi.FUNCTION_IDS:
        assert abi.is_ffa_fid(fid), hex(fid)
        assert abi.is_64bit_fid(fid) == (fid >> 30 & 1 == 1)
    assert not abi.is_ffa_fid(0x84000000)  # PSCI_VERSION's range, not FF-A
    assert not abi.is_ffa_fid(0x84000091)


@pytest.mark.parametrize(
    ("name", "code", "u32"),
    [
        ("NOT_SUPPORTED", -1, 0xFFFFFFFF),
        ("INVALID_PARAMETERS", -2, 0xFFFFFFFE),
        ("NO_MEMORY", -3, 0xFFFFFFFD),
        ("BUSY", -4, 0xFFFFFFFC),
        ("INTERRUPTED", -5, 0xFFFFFFFB),
        ("DENIED", -6, 0xFFFFFFFA),
        ("RETRY", -7, 0xFFFFFFF9),
        ("ABORTED", -8, 0xFFFFFFF8),
        ("NO_DATA", -9, 0xFFFFFFF7),
        ("NOT_READY", -10, 0xFFFFFFF6),
    ],
)
def test_error_codes_and_their_u32_forms(name, code, u32):
    assert getattr(abi, f"FFA_RET_{name}") == code
    assert abi.to_u32(code) == u32
    assert abi.to_s32(u32) == code
    assert abi.error_name(code) == name
    assert abi.error_name(u32) == name


def test_error_name_of_zero_and_unknown_codes():
    assert abi.error_name(0) == "OK"
    assert abi.error_name(-42) == "-42"


def test_version_words():
    assert abi.FFA_VERSION_1_0 == 0x00010000
    assert abi.FFA_VERSION_1_1 == 0x00010001
    assert abi.FFA_VERSION_1_2 == 0x00010002
    assert abi.make_version(1, 2) == abi.FFA_VERSION_1_2
    assert abi.version_major(0x00010002) == 1 and abi.version_minor(0x00010002) == 2
    assert abi.version_str(abi.FFA_VERSION_1_1) == "1.1"
    assert abi.version_major(0x80010000) == 1  # bit 31 is MBZ and not part of the major


def test_version_compatibility_rule():
    assert abi.versions_compatible(abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_2)
    assert abi.versions_compatible(abi.FFA_VERSION_1_2, abi.FFA_VERSION_1_2)
    assert not abi.versions_compatible(abi.FFA_VERSION_1_2, abi.FFA_VERSION_1_1)
    assert not abi.versions_compatible(abi.make_version(2, 0), abi.FFA_VERSION_1_2)


def test_optee_uuid_packs_into_the_words_of_the_reference():
    assert abi.uuid_to_regs32(OPTEE) == (0xE0786148, 0xE311F8E7, 0x02005EBC, 0x1BC5D5A5)
    assert (
        abi.uuid_from_regs32(0xE0786148, 0xE311F8E7, 0x02005EBC, 0x1BC5D5A5)
        == uuid.UUID(OPTEE).bytes
    )


def test_optee_uuid_packs_into_64_bit_registers():
    lo, hi = abi.uuid_to_regs64(OPTEE)
    assert (lo, hi) == (0xE311F8E7E0786148, 0x1BC5D5A502005EBC)
    assert abi.uuid_str(abi.uuid_from_regs64(lo, hi)) == OPTEE


def test_uuid_accepts_text_bytes_and_uuid_objects():
    b = uuid.UUID(OPTEE).bytes
    assert abi.uuid_bytes(OPTEE) == abi.uuid_bytes(b) == abi.uuid_bytes(uuid.UUID(OPTEE)) == b
    with pytest.raises(ValueError, match="a UUID is 16 bytes, got 3"):
        abi.uuid_bytes(b"abc")
    assert bytes(16) == abi.NIL_UUID


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_uuid_register_packings_round_trip(b):
    assert abi.uuid_from_regs32(*abi.uuid_to_regs32(b)) == b
    assert abi.uuid_from_regs64(*abi.uuid_to_regs64(b)) == b


def test_target_packing_puts_the_sender_high():
    w1 = abi.pack_target(0x0002, 0x8001)
    assert w1 == 0x00028001
    assert abi.ffa_sender(w1) == 0x0002 and abi.ffa_receiver(w1) == 0x8001
    assert abi.pack_target(0x1FFFF, 0x18001) == 0xFFFF8001  # each half masked to 16 bits


def test_secure_ids_have_bit_15():
    assert abi.is_secure_id(0x8001)
    assert not abi.is_secure_id(0x0002)
    assert not abi.is_secure_id(abi.HYPERVISOR_ID)


def test_handle_halves():
    h = 0x8000_0000_0000_0007
    assert (abi.handle_lo(h), abi.handle_hi(h)) == (7, 0x80000000)
    assert abi.make_handle(7, 0x80000000) == h
    assert h & abi.FFA_HANDLE_HYP_FLAG


def test_regs_pads_to_18_and_masks_to_64_bits():
    r = abi.regs(abi.FFA_VERSION, -1)
    assert len(r) == abi.NUM_REGS == 18
    assert r[1] == (1 << 64) - 1 and r[2:] == (0,) * 16
    with pytest.raises(ValueError, match="at most 18 registers, got 19"):
        abi.regs(*range(19))


def test_success_builder_places_w1_and_results():
    r = abi.success(0x1234, 0x5678, 9, w1=abi.pack_target(0, 0x8001))
    assert r[:5] == (abi.FFA_SUCCESS_32, 0x8001, 0x1234, 0x5678, 9)
    assert abi.is_success(r) and not abi.is_error(r)
    assert abi.error_code(r) == 0
    assert abi.success(fid=abi.FFA_SUCCESS_64)[0] == abi.FFA_SUCCESS_64


def test_error_builder_zero_extends_the_code():
    r = abi.error(abi.FFA_RET_DENIED)
    assert r[:3] == (abi.FFA_ERROR, 0, 0xFFFFFFFA)
    assert abi.is_error(r) and abi.error_code(r) == abi.FFA_RET_DENIED


def test_sign_extended_error_compares_on_the_low_32_bits():
    # pKVM sign-extends; the model rule compares w2 only (§0, §8 item 5).
    r = abi.regs(abi.FFA_ERROR, 0, (1 << 64) - 2)
    assert abi.error_code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_describe_reads_results():
    assert abi.describe(abi.error(abi.FFA_RET_BUSY)) == "FFA_ERROR(BUSY)"
    assert abi.describe(abi.success(1)) == "FFA_SUCCESS_32(w2=0x1)"
    assert abi.describe(abi.regs(abi.FFA_VERSION_1_2)) == "0x10002"
    assert abi.describe(abi.regs(0xFFFFFFFF)) == "NOT_SUPPORTED"


def test_framework_message_constants():
    assert abi.FFA_MSG_FLAG_FRAMEWORK == 0x80000000
    assert (
        abi.FFA_MSG_SEND_VM_CREATED,
        abi.FFA_MSG_RESP_VM_CREATED,
        abi.FFA_MSG_SEND_VM_DESTROYED,
        abi.FFA_MSG_RESP_VM_DESTROYED,
    ) == (4, 5, 6, 7)


def test_partition_property_bits():
    assert abi.FFA_PART_PROP_DIRECT_REQ_RECV == 1
    assert abi.FFA_PART_PROP_NOTIF_CREATED == 1 << 6
    assert abi.FFA_PART_PROP_NOTIF_DESTROYED == 1 << 7
    assert abi.FFA_PART_PROP_AARCH64_STATE == 1 << 8
    assert abi.FFA_PART_PROP_DIRECT_REQ2_SEND == 1 << 10
