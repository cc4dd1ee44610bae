"""FFA_PARTITION_INFO_GET and _GET_REGS (hafnium-spmc.md §3)."""

from __future__ import annotations

import struct

from ffasim import abi
from ffasim.spmc import MailboxState, SecurePartition
from ffasim.spmc.defaults import ECHO_UUID, MEMSVC_UUID

from .helpers import code, make


def _entries(raw: bytes, size: int, count: int) -> list[tuple[int, int, int, bytes]]:
    out = []
    for i in range(count):
        chunk = raw[i * size : (i + 1) * size]
        pid, ctx, props = struct.unpack_from("<HHI", chunk)
        out.append((pid, ctx, props, chunk[8:24]))
    return out


def test_nil_uuid_lists_every_partition_in_id_order_with_uuids() -> None:
    spmc, hyp = make()
    r = hyp.call(abi.FFA_PARTITION_INFO_GET)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 3, 24)
    entries = _entries(hyp.read_rx(72), 24, 3)
    assert [e[0] for e in entries] == [0x8001, 0x8002, 0x8003]
    assert entries[0][3] == abi.uuid_bytes(ECHO_UUID)
    # Seen from the normal world: no send bits, VM availability bits kept (direct req recv).
    assert entries[0][2] == 0x3CD
    assert entries[1][2] == 0x309
    assert entries[2][2] == 0x10C
    assert spmc.mailboxes[0].state is MailboxState.FULL


def test_specific_uuid_matches_with_zero_uuid_field() -> None:
    _, hyp = make()
    r = hyp.call(abi.FFA_PARTITION_INFO_GET, *abi.uuid_to_regs32(MEMSVC_UUID))
    assert r[2:4] == (1, 24)
    (entry,) = _entries(hyp.read_rx(24), 24, 1)
    assert entry[0] == 0x8002 and entry[3] == bytes(16)


def test_unknown_uuid_is_invalid() -> None:
    _, hyp = make()
    r = hyp.call(abi.FFA_PARTITION_INFO_GET, 1, 2, 3, 4)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_reserved_flags_are_invalid() -> None:
    _, hyp = make()
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 2)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )


def test_count_only_leaves_rx_alone_and_works_without_buffers() -> None:
    spmc, hyp = make(map_buffers=False)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 3, 0)
    assert spmc.mailboxes[0].state is MailboxState.EMPTY


def test_second_query_before_release_is_busy_and_no_rx_is_busy() -> None:
    _, hyp = make()
    assert hyp.call(abi.FFA_PARTITION_INFO_GET)[0] == abi.FFA_SUCCESS_32
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_BUSY
    _, hyp = make(map_buffers=False)
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_BUSY


def test_v1_0_caller_gets_8_byte_entries_with_masked_properties() -> None:
    _, hyp = make(version=abi.FFA_VERSION_1_0)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET)
    assert r[2:4] == (3, 8)
    assert [e[2] for e in _entries(hyp.read_rx(24), 8, 3)] == [0x5, 0x1, 0x4]


def test_properties_follow_the_partition_version_not_the_caller() -> None:
    _, hyp = make(version=abi.FFA_VERSION_1_1)
    hyp.call(abi.FFA_PARTITION_INFO_GET)
    assert _entries(hyp.read_rx(24), 24, 1)[0][2] == 0x3CD
    old = SecurePartition(0x8001, ECHO_UUID, properties=0x3CD, ffa_version=abi.FFA_VERSION_1_1)
    _, hyp = make([old])
    hyp.call(abi.FFA_PARTITION_INFO_GET)
    assert _entries(hyp.read_rx(24), 24, 1)[0][2] == 0x1CD  # a v1.1 partition: no REQ2 bit


def test_partition_caller_sees_send_bits_but_no_vm_availability_bits() -> None:
    sender = SecurePartition(0x8004, "11111111-2222-3333-4444-555555555555", properties=0x30F)
    make([sender])
    r = sender.smc(abi.FFA_PARTITION_INFO_GET)
    assert r[2:4] == (1, 24)
    assert _entries(sender.read(sender.rx, 24), 24, 1)[0][2] == 0x30F
    assert sender.smc(abi.FFA_RX_RELEASE)[0] == abi.FFA_SUCCESS_32
    # Without direct-request receipt the VM availability bits are not shown to the NW.
    quiet = SecurePartition(0x8005, "11111111-2222-3333-4444-666666666666", properties=0xC0)
    # (bits 6/7 without bit 0: not advertised; unknown high bits are never reported)
    _spmc, hyp = make([quiet])
    hyp.call(abi.FFA_PARTITION_INFO_GET)
    assert _entries(hyp.read_rx(24), 24, 1)[0][2] == 0x100


def test_more_than_64_matches_is_no_memory() -> None:
    parts = [SecurePartition(0x8001 + i, "aaaaaaaa-0000-0000-0000-000000000001") for i in range(65)]
    _, hyp = make(parts)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET, *abi.uuid_to_regs32(parts[0].uuid))
    assert code(r) == abi.FFA_RET_NO_MEMORY


def test_regs_packs_five_entries_per_call() -> None:
    parts = [SecurePartition(0x8001 + i, f"aaaaaaaa-0000-0000-0000-{i:012x}") for i in range(7)]
    _, hyp = make(parts)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, 0)
    assert r[0] == abi.FFA_SUCCESS_64
    assert r[2] == 6 | (4 << 16) | (24 << 48)
    assert r[3] == 0x8001 | (1 << 16) | (0x101 << 32)
    assert (r[4], r[5]) == abi.uuid_to_regs64(parts[0].uuid)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, 5)
    assert r[2] & 0xFFFFFFFF == 6 | (6 << 16)
    assert r[3] & 0xFFFF == 0x8006 and r[9] == 0


def test_regs_specific_uuid_has_no_uuid_and_errors() -> None:
    _, hyp = make()
    lo, hi = abi.uuid_to_regs64(ECHO_UUID)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET_REGS, lo, hi, 0)
    assert r[2] == (24 << 48) and r[4:6] == (0, 0)
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, 1 << 16)) == abi.FFA_RET_RETRY
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, 3)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET_REGS, 1, 2, 0)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )


def test_regs_answers_older_callers_too() -> None:
    _, hyp = make(version=abi.FFA_VERSION_1_1)
    r = hyp.call(abi.FFA_PARTITION_INFO_GET_REGS)
    assert r[0] == abi.FFA_SUCCESS_64 and r[2] & 0xFFFF == 2
