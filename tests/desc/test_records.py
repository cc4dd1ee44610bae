"""The records (NamedTuple-based) behave as the frozen dataclasses they replaced, the containers
keep nested records as plain tuples and build them when read, and the decoder's fast paths
agree with the general path: same records, same first broken rule."""

from __future__ import annotations

import copy
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi, desc
from ffasim.desc import _mem_rules, mem

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


def test_containers_keep_nested_records_as_plain_tuples() -> None:
    t = desc.MemTransaction.decode(BUF4, V11)
    ranges = tuple((0x40000000 + i * 0x10000, i + 1) for i in range(4))
    assert t.emads == ((0x8002, RW, 0, 64, bytes(16)),)
    assert t.region == (10, ranges)
    assert {type(x) for x in (t.emads[0], t.region, *t.region[1])} == {tuple}
    assert t.composite is not None and t.composite.ranges == ranges
    assert tuple(t) == (2, abi.FFA_NORMAL_MEM_REG_ATTR, 0, 0, 0, t.emads, t.region, 16, 48)


def test_typed_fields_are_built_at_each_read() -> None:
    t = desc.MemTransaction.decode(BUF4, V11)
    assert t.receivers == t.receivers and t.receivers[0] is not t.receivers[0]
    assert t.composite == t.composite and t.composite is not t.composite


def test_plain_and_typed_nested_fields_make_equal_records() -> None:
    c = desc.Constituent(0x1000, 1)
    assert desc.Composite(1, (c,)) == desc.Composite(1, [(0x1000, 1)]) == desc.Composite.of([c])
    m = desc.MemAccess(0x8002, RW)
    typed = FOUR._replace(receivers=(m,), composite=desc.Composite(1, (c,)))
    plain = FOUR._replace(receivers=(tuple(m),), composite=(1, ((0x1000, 1),)))
    assert typed == plain and hash(typed) == hash(plain)
    assert FOUR.__replace__(tag=7) == FOUR._replace(tag=7) == copy.copy(FOUR)._replace(tag=7)


def test_replace_takes_the_constructor_names() -> None:
    comp = desc.Composite.of([(0x1000, 1)])
    assert comp._replace(constituents=[(0x2000, 1)]).constituents == (desc.Constituent(0x2000, 1),)
    assert comp._replace(total_page_count=3) == desc.Composite(3, comp.constituents)
    with pytest.raises(TypeError):
        FOUR._replace(emads=())


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


# -- the fast path agrees with the general path -----------------------------------------------


def _general(buf: bytes, version: int, *, length: int) -> desc.MemTransaction:
    """The general path alone: what MemTransaction.decode gives for any layout."""
    fields = _mem_rules.decode_transaction(buf, length, version & 0xFFFF)
    return tuple.__new__(desc.MemTransaction, fields)


def _outcomes(buf: bytes | bytearray, version: int, length: int) -> tuple[object, object]:
    """What MemTransaction.decode and the general path alone give: a record or an error."""
    out: list[object] = []
    for decode in (desc.MemTransaction.decode, _general):
        try:
            out.append(decode(bytes(buf), version, length=length))
        except desc.DescriptorError as e:
            out.append((e.code, e.offset, e.field, e.message))
    return out[0], out[1]


@pytest.mark.parametrize("version", [abi.FFA_VERSION_1_0, V11, V12])
@pytest.mark.parametrize("pages", [[1], [2, 1, 4]])
def test_every_bit_flip_decodes_as_the_general_path(version: int, pages: list[int]) -> None:
    comp = desc.Composite.of([(0x80000000 + i * 0x100000, n) for i, n in enumerate(pages)])
    good = FOUR._replace(composite=comp).encode(version)
    for off in range(len(good)):
        for bit in range(8):
            buf = bytearray(good)
            buf[off] ^= 1 << bit
            for length in (len(buf), len(buf) - 16):
                fast, general = _outcomes(buf, version, length)
                assert fast == general, (off, bit, length)


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from([abi.FFA_VERSION_1_0, V11, V12]),
    pages=st.lists(st.integers(0, 3), min_size=0, max_size=3),
    patches=st.lists(st.tuples(st.integers(0, 127), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 16),
)
def test_patched_descriptors_decode_as_the_general_path(version, pages, patches, cut) -> None:
    comp = desc.Composite.of([(0x80000000 + i * 0x100000, n) for i, n in enumerate(pages)])
    buf = bytearray(FOUR._replace(composite=comp).encode(version))
    for off, value in patches:
        if off < len(buf):
            buf[off] = value
    fast, general = _outcomes(buf, version, max(0, len(buf) - cut))
    assert fast == general


@pytest.mark.parametrize("version", [abi.FFA_VERSION_1_0, V11, V12])
def test_common_layout_skips_the_general_path(monkeypatch, version: int) -> None:
    buf = FOUR.encode(version)

    def refuse(*args: object) -> None:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(mem, "decode_transaction", refuse)
    assert desc.MemTransaction.decode(buf, version) == FOUR.resolved(version)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_fast_paths_read_any_buffer_type(kind) -> None:
    for t in (FOUR, FOUR._replace(composite=desc.Composite.of([(0x1000, 1)]))):
        for version in (abi.FFA_VERSION_1_0, V11, V12):
            buf = t.encode(version)
            assert desc.MemTransaction.decode(kind(buf), version) == t.resolved(version)
    raw = desc.encode_partinfo_array(INFOS)
    assert desc.decode_partinfo_array(kind(raw), 2) == INFOS


def test_arrays_longer_than_the_prebuilt_mask_are_checked_whole() -> None:
    comp = desc.Composite.of([(0x80000000 + i * 0x1000, 1) for i in range(300)])
    buf = FOUR._replace(composite=comp).encode(V11)
    assert desc.MemTransaction.decode(buf, V11).composite == comp
    bad = patched(buf, 80 + 16 * 299 + 12, "<I", 1)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=80 + 16 * 299 + 12)
    bad = patched(buf, 80 + 16 * 257, "<Q", 0x80101800)
    rejects(lambda: desc.MemTransaction.decode(bad, V11), offset=80 + 16 * 257)


# -- partition information and record arrays --------------------------------------------------

INFOS = (
    desc.PartitionInfo(0x8001, 1, 0x33, bytes(range(16))),
    desc.PartitionInfo(0x8002, 4, 0x7, "e7f8118e-7861-4e0d-b0c5-8d36d1abc2b7"),
)


def test_partition_info_is_a_record() -> None:
    p = INFOS[0]
    assert p == desc.PartitionInfo(0x8001, 1, 0x33, bytes(range(16)))
    assert p != tuple(p) and hash(p) == hash(tuple(p))
    assert repr(desc.PartitionInfo(1, 2, 3)) == (
        "PartitionInfo(id=1, exec_ctx=2, properties=3, uuid=b'" + "\\x00" * 16 + "')"
    )
    assert INFOS[1].uuid_str == "e7f8118e-7861-4e0d-b0c5-8d36d1abc2b7"
    with pytest.raises(AttributeError):
        p.id = 2  # type: ignore[misc]


def test_partinfo_array_behaves_as_the_tuple_of_records() -> None:
    arr = desc.decode_partinfo_array(desc.encode_partinfo_array(INFOS), 2)
    assert isinstance(arr, desc.RecordArray)
    assert arr == INFOS and INFOS == arr and arr != tuple(map(tuple, INFOS))  # noqa: SIM300
    assert arr != list(INFOS)
    assert hash(arr) == hash(INFOS) and len(arr) == 2
    assert (arr[0], arr[-1], arr[1:]) == (INFOS[0], INFOS[1], INFOS[1:])
    assert type(arr[0]) is desc.PartitionInfo and list(arr) == list(INFOS)
    assert INFOS[1] in arr and arr.index(INFOS[1]) == 1
    assert arr.fields == tuple(map(tuple, INFOS))
    assert repr(arr) == f"RecordArray({INFOS!r})"
    v1_0 = desc.decode_partinfo_array(desc.encode_partinfo_array(INFOS, 8), 2, 8)
    assert v1_0 == tuple(desc.PartitionInfo(p.id, p.exec_ctx, p.properties) for p in INFOS)
    assert v1_0 != arr
