"""double-fetch bounds: a write by Xen between two reads of guest memory forgets exactly the
bytes it wrote, no byte more or less.

Each case reads bytes [0x10, 0x20) of a guest frame, lets Xen write [a, b), then re-reads one
byte: a re-read of a byte read before and not rewritten is a double fetch, any other is not.
Probing every byte from 0x0f to 0x20 catches a reset one byte too wide or too narrow on either
side of the write and of the read.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_monitors import Harness, guest_frame, xen_frame

from ffasim import abi
from ffasim.check.monitors import DoubleFetchMonitor

READ = (0x10, 0x20)

# Xen's writes [a, b): inside the range read, over either edge, adjacent to it, over all of it.
WRITES = [
    (0x14, 0x18),
    (0x10, 0x11),
    (0x1F, 0x20),
    (0x08, 0x14),
    (0x1C, 0x28),
    (0x00, 0x10),
    (0x20, 0x30),
    (0x10, 0x20),
    (0x00, 0x40),
]


def reread_after_write(write: tuple[int, int], probe: int) -> list[str]:
    """The double-fetch messages when d0v0's call reads READ, writes ``write`` and re-reads
    byte ``probe`` of its guest frame."""
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    lo, hi = READ
    a, b = write
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(f.pa + lo, hi - lo, "xen")
        h.machine.mem.write(f.pa + a, bytes(b - a), "xen")
        h.machine.mem.read(f.pa + probe, 1, "xen")
    assert h.kinds() in ([], ["double-fetch"])
    return [x.message for x in h.findings]


@pytest.mark.parametrize("write", WRITES, ids=[f"{a:#x}-{b:#x}" for a, b in WRITES])
def test_double_fetch_write_resets_exactly_the_bytes_written(write: tuple[int, int]) -> None:
    a, b = write
    lo, hi = READ
    for probe in range(lo - 1, hi + 1):
        expected = lo <= probe < hi and not a <= probe < b
        messages = reread_after_write(write, probe)
        assert bool(messages) == expected, (hex(probe), messages)
        if expected:
            assert messages[0].startswith(f"xen reads bytes {probe:#x}..{probe:#x} of ")


def test_double_fetch_message_names_the_overlap_left_after_a_write() -> None:
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        h.machine.mem.read(f.pa + 0x10, 16, "xen")  # step numbers: none (no scheduling points)
        h.machine.mem.write(f.pa + 0x10, bytes(12), "xen")
        h.machine.mem.read(f.pa, 0x40, "xen")
    assert [x.message for x in h.findings] == [
        f"xen reads bytes 0x1c..0x1f of guest-writable frame 0x{f.mfn:x} (d0, ram) twice in "
        "d0v0's FFA_MEM_SHARE_64 (steps 0 and 0)"
    ]
    assert h.findings[0].calls == ("d0v0 FFA_MEM_SHARE_64",)


def test_double_fetch_bytes_read_again_after_a_write_are_tracked_afresh() -> None:
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(f.pa, 8, "xen")
        h.machine.mem.write(f.pa, bytes(8), "xen")
        h.machine.mem.read(f.pa + 4, 4, "xen")  # Xen's own answer: not a double fetch
        assert h.findings == []
        h.machine.mem.read(f.pa + 7, 1, "xen")  # but that read counts: now it is one
    assert h.kinds() == ["double-fetch"]
    assert h.findings[0].message.startswith("xen reads bytes 0x7..0x7 of ")


def test_double_fetch_write_to_another_frame_resets_nothing() -> None:
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    g = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        h.machine.mem.read(f.pa, 8, "xen")
        h.machine.mem.write(g.pa, bytes(8), "xen")
        h.machine.mem.read(f.pa, 8, "xen")
    assert h.kinds() == ["double-fetch"]


def test_double_fetch_guest_write_between_reads_resets_nothing() -> None:
    # Only Xen's own writes make the bytes Xen's: the guest rewriting them is the attack.
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    with h.thread("d0v0"):
        h.call("hvc", "d0v0", abi.regs(abi.FFA_MEM_SHARE_64))
        h.machine.mem.read(f.pa, 8, "xen")
    with h.thread("d0v1"):
        h.machine.mem.write(f.pa, bytes(8), "d0")
    with h.thread("d0v0"):
        h.machine.mem.read(f.pa, 8, "xen")
        h.ret("hvc", "d0v0", abi.success())
    assert h.kinds() == ["double-fetch"]


def test_double_fetch_each_call_is_reported_once_per_frame() -> None:
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    with h.thread("d0v0"):
        with h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
            for _ in range(3):
                h.machine.mem.read(f.pa, 8, "xen")
        with h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
            h.machine.mem.read(f.pa, 8, "xen")
    assert h.kinds() == ["double-fetch"]


def test_double_fetch_reads_outside_a_hypercall_are_not_tracked() -> None:
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    own = xen_frame(h)
    with h.thread("toolstack"):
        h.machine.mem.read(f.pa, 8, "xen")
        h.machine.mem.read(f.pa, 8, "xen")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        h.machine.mem.read(own.pa, 8, "xen")
        h.machine.mem.read(own.pa, 8, "xen")
    assert h.findings == []


_ops = st.lists(
    st.tuples(st.booleans(), st.integers(0, 40), st.integers(1, 16)), min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_ops)
def test_double_fetch_agrees_with_a_byte_by_byte_oracle(ops: list[tuple[bool, int, int]]) -> None:
    """Any sequence of Xen reads and writes of one guest frame in one call: the monitor
    reports at the first read of a byte read before and not rewritten since, and only there."""
    h = Harness(DoubleFetchMonitor())
    f = guest_frame(h)
    seen: set[int] = set()
    expected = None
    for i, (write, offset, size) in enumerate(ops):
        span = set(range(offset, offset + size))
        if write:
            seen -= span
        elif span & seen:
            expected = i
            break
        else:
            seen |= span
    fired = None
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        for i, (write, offset, size) in enumerate(ops):
            if write:
                h.machine.mem.write(f.pa + offset, bytes(size), "xen")
            else:
                h.machine.mem.read(f.pa + offset, size, "xen")
            if h.findings and fired is None:
                fired = i
    assert fired == expected
