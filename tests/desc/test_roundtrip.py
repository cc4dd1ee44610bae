"""Property tests: every structure survives encode -> decode unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi, desc

VERSIONS = (abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2)
SETTINGS = settings(max_examples=120, deadline=None)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
uuid16 = st.binary(min_size=16, max_size=16)


@st.composite
def composites(draw, max_ranges: int = 6) -> desc.Composite:
    n = draw(st.integers(0, max_ranges))
    ranges = [
        (draw(st.integers(0, (1 << 52) - 1)) << 12, draw(st.integers(0, 0xFFFF))) for _ in range(n)
    ]
    return desc.Composite.of(ranges)


# A valid permissions byte: data and instruction access each 0..2.
permissions = st.builds(lambda d, i: d | (i << 2), st.integers(0, 2), st.integers(0, 2))


@st.composite
def transactions(draw, version: int) -> desc.MemTransaction:
    minor = version & 0xFFFF
    ids = draw(st.lists(u16, min_size=0, max_size=4, unique=True))
    composite = draw(st.none() | composites()) if ids else None
    receivers = tuple(
        desc.MemAccess(
            ep,
            draw(permissions),
            draw(st.integers(0, 1)),
            0,
            draw(uuid16) if minor >= 2 else bytes(16),
        )
        for ep in ids
    )
    emad_size = None
    emad_offset = None
    if minor:
        if minor >= 2:
            emad_size = draw(st.sampled_from([None, 16, 32]))
        else:
            emad_size = draw(st.sampled_from([None, 16]))
        emad_offset = draw(st.none() | st.integers(3, 8).map(lambda k: 16 * k))
    return desc.MemTransaction(
        sender=draw(u16),
        attributes=draw(st.integers(0, 0x7F)),
        flags=draw(st.integers(0, 0x7FF)),
        handle=draw(u64),
        tag=draw(u64),
        receivers=receivers,
        composite=composite,
        emad_size=emad_size,
        emad_offset=emad_offset,
    )


@SETTINGS
@given(st.data(), st.sampled_from(VERSIONS))
def test_mem_transaction_round_trips_in_every_version(data, version):
    t = data.draw(transactions(version))
    buf = t.encode(version)
    assert desc.MemTransaction.decode(buf, version) == t.resolved(version)
    assert desc.MemTransaction.decode(buf, version, length=len(buf)).encode(version) == buf


@SETTINGS
@given(st.data(), st.sampled_from(VERSIONS), st.sampled_from(VERSIONS))
def test_mem_transaction_converts_between_versions(data, src, dst):
    t = data.draw(transactions(src))
    back = desc.MemTransaction.decode(t.encode(src), src).relaid()
    out = desc.MemTransaction.decode(back.encode(dst), dst)
    assert out.composite == t.composite
    assert [m.receiver for m in out.receivers] == [m.receiver for m in t.receivers]
    assert (out.sender, out.attributes, out.flags, out.handle, out.tag) == (
        t.sender,
        t.attributes,
        t.flags,
        t.handle,
        t.tag,
    )


@SETTINGS
@given(composites(), st.integers(0, 64))
def test_composite_round_trips_at_any_offset(comp, pad):
    buf = b"\x55" * pad + comp.encode()
    assert desc.Composite.decode(buf, pad) == comp
    assert comp.size == len(buf) - pad


@SETTINGS
@given(u16, u16, u32, uuid16)
def test_partition_info_round_trips(pid, ctx, props, uuid):
    p = desc.PartitionInfo(pid, ctx, props, uuid)
    assert desc.PartitionInfo.decode(p.encode(24)) == p
    assert desc.PartitionInfo.decode(p.encode(8), size=8) == desc.PartitionInfo(pid, ctx, props)
    assert desc.PartitionInfo.from_regs(*p.to_regs()) == p
    r0, r1, r2 = p.to_regs()
    assert r0 >> 64 == 0 and r1 >> 64 == 0 and r2 >> 64 == 0


@SETTINGS
@given(u16, composites(max_ranges=3), composites(max_ranges=3), st.booleans(), st.integers(0, 4))
def test_rxtx_descriptor_round_trips(ep, rx, tx, legacy, gap):
    first = (12 if legacy else 16) + 8 * gap
    r = desc.RxTxDescriptor(ep, rx, tx, first, first + rx.size + 8 * gap)
    assert desc.RxTxDescriptor.decode(r.encode()) == r
    swapped = desc.RxTxDescriptor(ep, rx, tx, first + tx.size, first)
    assert desc.RxTxDescriptor.decode(swapped.encode()) == swapped


@SETTINGS
@given(u64, st.integers(0, 3), st.lists(u16, max_size=8).map(tuple))
def test_relinquish_round_trips(handle, flags, endpoints):
    r = desc.Relinquish(handle, flags, endpoints)
    buf = r.encode()
    assert len(buf) == 16 + 2 * len(endpoints)
    assert desc.Relinquish.decode(buf) == r


@SETTINGS
@given(st.sampled_from(VERSIONS[1:]), u32, u16, u16, st.integers(1, 64), st.integers(0, 32), uuid16)
def test_indirect_message_round_trips(version, flags, sender, receiver, size, gap, uuid):
    hsize = desc.indirect_msg_header_size(version)
    uuid = uuid if version >= abi.FFA_VERSION_1_2 else bytes(16)
    m = desc.IndirectMessage(flags, hsize + gap, sender, receiver, size, uuid)
    header = m.encode(version)
    assert len(header) == hsize
    buf = header + b"\0" * gap + b"\x77" * size
    assert desc.IndirectMessage.decode(buf, version, length=len(buf)) == m
    assert desc.IndirectMessage.decode(header, version) == m


@SETTINGS
@given(st.integers(0, 0xFF), st.booleans())
def test_framework_w2_round_trips(msg_type, framework):
    w2 = desc.framework_w2(msg_type) if framework else msg_type
    assert desc.framework_msg(w2) == (framework, msg_type)
