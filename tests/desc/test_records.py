"""The memory records (NamedTuple-based) behave as the frozen dataclasses they replaced, and the
decoder's fast paths report the same first broken rule as the documented order."""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi, desc

from .test_rejections import patched, rejects

V11, V12 = abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2
RW = abi.FFA_MEM_ACC_RW

FOUR = desc.MemTransaction(
    sender=2,
    attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
    flags=0,
    handle=0,
    tag=0,
    receivers=(desc.MemAccess(0x8002, RW),),
    composite=desc.Composite.of([(0x40000000 + i * 0x10000, i + 1) for i in range(4)]),
)
BUF4 = FOUR.encode(V11)  # header 0, EMAD 48, composite 64, constituents 80 96 112 128


# -- record semantics ----------------------------------------------------------------------------


def test_records_equal_only_records_of_their_own_class() -> None:
    c = desc.Constituent(0x1000, 1)
    assert c == desc.Constituent(0x1000, 1)
    assert c != desc.Constituent(0x1000, 2)
    assert c != (0x1000, 1)
    assert (0x1000, 1) != c  # noqa: SIM300 - the reflected comparison is under test
    assert not c == (0x1000, 1)  # noqa: SIM201 - the == operator itself is under test
    assert desc.Composite(1, (c,)) != (1, (c,))
    assert desc.MemAccess(1, RW) != (1, RW, 0, 0, bytes(16))
    assert c != "not a record"


def test_records_hash_as_the_tuple_of_their_fields() -> None:
    c = desc.Constituent(0x1000, 1)
    comp = desc.Composite(1, (c,))
    assert hash(c) == hash((0x1000, 1))
    assert hash(comp) == hash((1, ((0x1000, 1),)))
    assert len({desc.MemTransaction.decode(BUF4, V11), FOUR.resolved(V11)}) == 1


@pytest.mark.parametrize("field", ["address", "page_count"])
def test_constituent_fields_cannot_be_assigned(field: str) -> None:
    c = desc.Constituent(0x1000, 1)
    with pytest.raises(AttributeError):
        setattr(c, field, 0)
    assert c == desc.Constituent(0x1000, 1)


def test_decoded_records_refuse_new_and_changed_attributes() -> None:
    t = desc.MemTransaction.decode(BUF4, V11)
    with pytest.raises(AttributeError):
        t.flags = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        t.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        t.receivers[0].permissions = 0  # type: ignore[misc]


def test_decoded_records_are_the_public_classes() -> None:
    t = desc.MemTransaction.decode(BUF4, V11)
    assert type(t) is desc.MemTransaction
    assert type(t.receivers[0]) is desc.MemAccess
    assert t.composite is not None
    assert type(t.composite) is desc.Composite
    assert {type(c) for c in t.composite.constituents} == {desc.Constituent}


def test_record_repr_names_every_field() -> None:
    assert repr(desc.Constituent(4096, 1)) == "Constituent(address=4096, page_count=1)"
    assert repr(desc.Composite(1, ())) == "Composite(total_page_count=1, constituents=())"
    assert repr(desc.MemAccess(0x8002, RW)) == (
        "MemAccess(receiver=32770, permissions=2, flags=0, composite_offset=0, impdef=b'"
        + "\\x00" * 16
        + "')"
    )


def test_mem_transaction_keywords_and_defaults() -> None:
    t = desc.MemTransaction(
        sender=1, attributes=0, flags=0, handle=0, tag=0, receivers=(), composite=None
    )
    assert (t.emad_size, t.emad_offset) == (None, None)
    assert t.layout(V11) == (48, 16, 48)


def test_mem_access_keeps_impdef_as_16_bytes() -> None:
    m = desc.MemAccess(1, RW, impdef=bytearray(range(16)))
    assert type(m.impdef) is bytes and m.impdef == bytes(range(16))
    assert m == desc.MemAccess(1, RW, 0, 0, memoryview(bytes(range(16))))
    with pytest.raises(ValueError, match="impdef is 16 bytes, got 15"):
        desc.MemAccess(1, RW, impdef=bytes(15))


def test_records_survive_pickling() -> None:
    t = desc.MemTransaction.decode(BUF4, V11)
    assert pickle.loads(pickle.dumps(t)) == t


def test_constituents_round_trip_through_encode() -> None:
    t = desc.MemTransaction.decode(BUF4, V11)
    assert t.encode(V11) == BUF4
    assert t.composite is not None
    assert [(c.address, c.page_count) for c in t.composite.constituents] == [
        (0x40000000 + i * 0x10000, i + 1) for i in range(4)
    ]


# -- the fast paths report the first broken rule --------------------------------------------------


def test_a_later_constituent_reports_its_own_offset() -> None:
    bad = patched(BUF4, 112, "<Q", 0x40020800)  # third range misaligned
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=112, field="constituent.address")
    bad = patched(BUF4, 140, "<I", 1)  # fourth range's reserved word
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=140, field="constituent.reserved")


def test_a_constituent_with_both_faults_reports_its_reserved_field() -> None:
    bad = patched(patched(BUF4, 96, "<Q", 0x40010800), 108, "<I", 1)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=108, field="constituent.reserved")


def test_the_earlier_constituent_fault_wins() -> None:
    bad = patched(patched(BUF4, 128, "<Q", 0x40030800), 92, "<I", 1)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=92, field="constituent.reserved")


@pytest.mark.parametrize(
    ("patches", "offset", "field"),
    [
        ([(2, "<H", 0x100), (4, "<I", 1 << 12)], 2, "attributes"),
        ([(40, "<Q", 1), (4, "<I", 1 << 12)], 40, "reserved"),
        ([(24, "<I", 8), (4, "<I", 1 << 12)], 24, "emad_size"),
        ([(32, "<I", 56), (4, "<I", 1 << 12)], 32, "emad_offset"),
        ([(4, "<I", 1 << 31), (28, "<I", 99)], 4, "flags"),
    ],
)
def test_header_rules_apply_in_documented_order(patches, offset: int, field: str) -> None:
    bad = BUF4
    for off, fmt, value in patches:
        bad = patched(bad, off, fmt, value)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=offset, field=field)


def test_hypervisor_retrieve_request_with_flag_bits_is_invalid() -> None:
    bad = patched(desc.hyp_retrieve_request(1), 4, "<I", 1 << 20)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=4, field="flags")
    t = desc.MemTransaction.decode(desc.hyp_retrieve_request(1), V11)
    assert (t.handle, t.receivers, t.emad_size, t.emad_offset) == (1, (), 0, 0)


def test_the_multi_emad_path_checks_each_emad() -> None:
    two = FOUR._replace(receivers=(desc.MemAccess(0x8002, RW), desc.MemAccess(0x8003, RW)))
    buf = two.encode(V12)  # 32-byte EMADs at 48 and 80, composite at 112
    assert desc.MemTransaction.decode(buf, V12) == two.resolved(V12)
    rejects(lambda: desc.MemTransaction.decode(patched(buf, 82, "<B", 3), V12), offset=82)
    rejects(lambda: desc.MemTransaction.decode(patched(buf, 104, "<Q", 1), V12), offset=104)
    rejects(
        lambda: desc.MemTransaction.decode(patched(buf, 80, "<H", 0x8002), V12),
        offset=80,
        field="receiver",
    )


def test_lenient_composite_keeps_what_strict_refuses() -> None:
    comp = patched(patched(BUF4[64:], 16, "<Q", 0x40000800), 28, "<I", 7)
    lenient = desc.Composite.decode(comp, strict=False)
    assert lenient.constituents[0] == desc.Constituent(0x40000800, 1)
    rejects(lambda: desc.Composite.decode(comp), offset=28, field="constituent.reserved")


@settings(max_examples=150, deadline=None)
@given(
    pages=st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=12),
    bad=st.integers(0, 11),
    fault=st.sampled_from(["address", "reserved"]),
)
def test_any_bad_range_is_reported_at_its_offset(pages: list[int], bad: int, fault: str) -> None:
    comp = desc.Composite.of([(0x80000000 + i * 0x100000, n) for i, n in enumerate(pages)])
    t = FOUR._replace(composite=comp)
    buf = t.encode(V11)
    assert desc.MemTransaction.decode(buf, V11) == t.resolved(V11)
    if bad >= len(pages):
        return
    off = 80 + 16 * bad
    if fault == "address":
        buf = patched(buf, off, "<Q", 0x80000000 + bad * 0x100000 + 8)
        rejects(
            lambda: desc.MemTransaction.decode(buf, V11), offset=off, field="constituent.address"
        )
    else:
        buf = patched(buf, off + 12, "<I", 1)
        e = rejects(lambda: desc.MemTransaction.decode(buf, V11), offset=off + 12)
        assert e.field == "constituent.reserved"


def test_reserved_words_are_read_as_little_endian_u32() -> None:
    # A reserved word whose only set bit is the top one is still caught (no short read).
    bad = BUF4[:140] + struct.pack("<I", 1 << 31)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=140, field="constituent.reserved")
