"""answer (protocol state): answers held to what the VM's earlier answers established."""

from __future__ import annotations

from collections.abc import Sequence

from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import MONITORS, ProtocolMonitor

Regs = tuple[int, ...]
OK = abi.success()
V12 = abi.regs(abi.FFA_VERSION_1_2)


def _err(code: int) -> Regs:
    return abi.error(code)


Call = tuple[str, Regs, Regs]
"""(vCPU, the call's registers, Xen's answer)."""


def _run(calls: Sequence[Call], *, versioned: bool = True) -> Harness:
    """Each call runs alone, in order; the VM first negotiates unless ``versioned`` is off."""
    h = Harness(ProtocolMonitor())
    prefix: list[Call] = [("d0v0", abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12)]
    for ctx, args, answer in [*(prefix if versioned else []), *calls]:
        with h.thread(ctx):
            h.call("hvc", ctx, args)
            h.ret("hvc", ctx, answer)
    return h


MAP = abi.regs(abi.FFA_RXTX_MAP_64, 0x40001000, 0x40000000, 1)
UNMAP = abi.regs(abi.FFA_RXTX_UNMAP, 1 << 16)
RELEASE = abi.regs(abi.FFA_RX_RELEASE)
PARTINFO = abi.regs(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 0)
SHARE = abi.regs(abi.FFA_MEM_SHARE_64, 0x50, 0x50)


def _messages(h: Harness) -> list[str]:
    return [f.message for f in h.findings]


def test_protocol_is_in_the_default_set() -> None:
    assert MONITORS["answer-state"] is ProtocolMonitor


def test_protocol_a_well_behaved_session_is_clean() -> None:
    h = _run(
        [
            ("d0v0", MAP, OK),
            ("d0v0", PARTINFO, abi.success(3)),
            ("d0v1", PARTINFO, _err(abi.FFA_RET_BUSY)),  # the guest still owns its RX
            ("d0v0", RELEASE, OK),
            ("d0v0", SHARE, abi.success(0x10, 0x1)),
            ("d0v0", abi.regs(abi.FFA_MEM_RECLAIM, 0x10, 0x1), OK),
            ("d0v0", UNMAP, OK),
            ("d0v0", RELEASE, _err(abi.FFA_RET_DENIED)),
        ]
    )
    assert h.findings == []


def test_protocol_call_before_version_must_be_not_supported() -> None:
    h = _run([("d0v0", abi.regs(abi.FFA_ID_GET), abi.success(1))], versioned=False)
    assert _messages(h) == [
        "xen FFA_ID_GET answers FFA_SUCCESS_32(w2=0x1) before the VM called FFA_VERSION, "
        "where NOT_SUPPORTED is due (d0v0)"
    ]
    clean = _run(
        [("d0v0", abi.regs(abi.FFA_ID_GET), _err(abi.FFA_RET_NOT_SUPPORTED))], versioned=False
    )
    assert clean.findings == []


def test_protocol_version_with_bit_31_set_first() -> None:
    bad = abi.regs(abi.FFA_VERSION, 1 << 31 | abi.FFA_VERSION_1_2)
    assert _run([("d0v0", bad, V12)], versioned=False).kinds() == ["answer"]
    refused = abi.regs(abi.MASK32)
    assert _run([("d0v0", bad, refused)], versioned=False).findings == []
    # Once a version was answered, Xen answers its own to any later FFA_VERSION.
    assert _run([("d0v0", bad, V12)]).findings == []


def test_protocol_map_twice_and_map_of_zero_pages() -> None:
    h = _run([("d0v0", MAP, OK), ("d0v0", MAP, OK)])
    assert _messages(h) == [
        "xen FFA_RXTX_MAP_64 succeeds while the VM's pair is already mapped (d0v0)"
    ]
    zero = abi.regs(abi.FFA_RXTX_MAP_64, 0x40001000, 0x40000000, 0)
    assert "page count of 0" in _messages(_run([("d0v0", zero, OK)]))[0]


def test_protocol_unmap_rules() -> None:
    assert "no pair mapped" in _messages(_run([("d0v0", UNMAP, OK)]))[0]
    owned = _run([("d0v0", MAP, OK), ("d0v0", PARTINFO, abi.success(3)), ("d0v0", UNMAP, OK)])
    assert "owns its RX" in _messages(owned)[0]


def test_protocol_release_of_a_free_rx() -> None:
    assert "does not own" in _messages(_run([("d0v0", MAP, OK), ("d0v0", RELEASE, OK)]))[0]


def test_protocol_failed_call_keeps_the_rx_free() -> None:
    # A PARTITION_INFO_GET that failed must not leave the RX taken: the next one is not BUSY.
    bad_uuid = abi.regs(abi.FFA_PARTITION_INFO_GET, 1, 2, 3, 4, 0)
    h = _run(
        [
            ("d0v0", MAP, OK),
            ("d0v0", bad_uuid, _err(abi.FFA_RET_INVALID_PARAMETERS)),
            ("d0v0", PARTINFO, _err(abi.FFA_RET_BUSY)),
        ]
    )
    assert _messages(h) == [
        "xen FFA_PARTITION_INFO_GET answers BUSY while the VM's RX buffer is free (d0v0)"
    ]
    count_only = abi.regs(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)
    h = _run(
        [
            ("d0v0", MAP, OK),
            ("d0v0", count_only, abi.success(3)),
            ("d0v0", PARTINFO, _err(abi.FFA_RET_BUSY)),
        ]
    )
    assert h.kinds() == ["answer"]


def test_protocol_busy_after_an_spmc_refusal_is_the_spmcs_word() -> None:
    h = Harness(ProtocolMonitor())
    for ctx, args, answer, smc in [
        ("d0v0", abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12, None),
        ("d0v0", MAP, OK, None),
        ("d0v0", PARTINFO, _err(abi.FFA_RET_BUSY), _err(abi.FFA_RET_BUSY)),
    ]:
        with h.thread(ctx):
            h.call("hvc", ctx, args)
            if smc is not None:
                h.call("smc", "xen", abi.regs(abi.FFA_RX_ACQUIRE))
                h.ret("smc", "xen", smc)
            h.ret("hvc", ctx, answer)
    assert h.findings == []


def test_protocol_a_message_makes_the_rx_unknown() -> None:
    send2 = abi.regs(abi.FFA_MSG_SEND2)
    h = _run(
        [
            ("d0v0", MAP, OK),
            ("d1v0", abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12),
            ("d1v0", send2, OK),  # may have landed in d0's RX
            ("d0v0", PARTINFO, _err(abi.FFA_RET_BUSY)),
        ]
    )
    assert h.findings == []
    # A partition's message too.
    h = Harness(ProtocolMonitor())
    with h.thread("d0v0"):
        for args, answer in [(abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12), (MAP, OK)]:
            h.call("hvc", "d0v0", args)
            h.ret("hvc", "d0v0", answer)
    with h.thread("sp1"):
        h.call("smc", "sp8001", send2)
        h.ret("smc", "sp8001", OK)
    with h.thread("d0v0"):
        h.call("hvc", "d0v0", PARTINFO)
        h.ret("hvc", "d0v0", _err(abi.FFA_RET_BUSY))
    assert h.findings == []


def test_protocol_overlapping_calls_are_not_judged_and_forget_the_state() -> None:
    h = Harness(ProtocolMonitor())
    with h.thread("d0v0"):
        h.call("hvc", "d0v0", abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2))
        h.ret("hvc", "d0v0", V12)
        h.call("hvc", "d0v0", MAP)
    with h.thread("d0v1"):
        h.call("hvc", "d0v1", UNMAP)
        h.ret("hvc", "d0v1", OK)  # overlapped the MAP: not judged
    with h.thread("d0v0"):
        h.ret("hvc", "d0v0", OK)
        h.call("hvc", "d0v0", RELEASE)
        h.ret("hvc", "d0v0", OK)  # the RX state is unknown after the overlap
    assert h.findings == []


def test_protocol_shares_and_reclaims() -> None:
    reclaim = abi.regs(abi.FFA_MEM_RECLAIM, 0x77, 0)
    h = _run([("d0v0", reclaim, OK)])
    assert _messages(h) == [
        "xen FFA_MEM_RECLAIM succeeds for handle 0x77, which the VM does not hold (d0v0)"
    ]
    shares: list[Call] = [("d0v0", SHARE, abi.success(i, 0)) for i in range(33)]
    h = _run(shares)
    assert _messages(h) == [
        "xen FFA_MEM_SHARE_64 succeeds while the VM holds 32 shares, Xen's maximum (d0v0)"
    ]
    assert _run(shares[:32]).findings == []


def test_protocol_a_well_formed_map_of_a_mapped_pair_is_denied() -> None:
    h = _run([("d0v0", MAP, OK), ("d0v0", MAP, _err(abi.FFA_RET_INVALID_PARAMETERS))])
    assert _messages(h) == [
        "xen FFA_RXTX_MAP_64 answers FFA_ERROR(INVALID_PARAMETERS) while the VM's pair is "
        "already mapped, where DENIED is due (d0v0)"
    ]
    assert _run([("d0v0", MAP, OK), ("d0v0", MAP, _err(abi.FFA_RET_DENIED))]).findings == []
    misaligned = abi.regs(abi.FFA_RXTX_MAP_64, 0x40001008, 0x40000000, 1)
    invalid = _err(abi.FFA_RET_INVALID_PARAMETERS)
    assert _run([("d0v0", MAP, OK), ("d0v0", misaligned, invalid)]).findings == []


def test_protocol_smccc_not_supported_before_version_is_clean() -> None:
    unknown = abi.regs(0x84000099)
    assert _run([("d0v0", unknown, abi.regs(abi.MASK64))], versioned=False).findings == []


def _as_v11(calls: Sequence[Call]) -> Harness:
    v11 = ("d0v0", abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_1), V12)
    return _run([v11, *calls], versioned=False)


def test_protocol_v1_2_interfaces_are_not_offered_to_an_older_vm() -> None:
    features = abi.regs(abi.FFA_FEATURES, abi.FFA_MSG_SEND_DIRECT_REQ2)
    (msg,) = _messages(_as_v11([("d0v0", features, OK)]))
    assert "offers FFA_MSG_SEND_DIRECT_REQ2 to a VM of FF-A 1.1" in msg
    assert _as_v11([("d0v0", features, _err(abi.FFA_RET_NOT_SUPPORTED))]).findings == []
    assert _run([("d0v0", features, OK)]).findings == []  # a v1.2 VM
    req2 = abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ2, (1 << 16) | 0x8001)
    assert _as_v11([("d0v0", req2, abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP2))]).kinds() == ["answer"]


def test_protocol_notifications_with_a_partition_are_asked_of_the_spmc() -> None:
    def run(
        answer: Regs, *, created: bool = True, forwarded: bool = False, version: bool = True
    ) -> Harness:
        h = Harness(ProtocolMonitor())
        if created:
            with h.thread("toolstack"):
                h.call("smc", "xen", abi.regs(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1))
                h.ret("smc", "xen", OK)
        set_ = abi.regs(abi.FFA_NOTIFICATION_SET, (1 << 16) | 0x8001, 0, 1)
        with h.thread("d0v0"):
            calls = [(abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12)] if version else []
            for args, ans in [*calls, (set_, answer)]:
                h.call("hvc", "d0v0", args)
                if forwarded and args is set_:
                    h.call("smc", "xen", set_)
                    h.ret("smc", "xen", answer)
                h.ret("hvc", "d0v0", ans)
        return h

    unsupported = _err(abi.FFA_RET_NOT_SUPPORTED)
    assert (
        "answers NOT_SUPPORTED for partition 0x8001 without asking the SPMC"
        in (_messages(run(unsupported))[0])
    )
    assert run(unsupported, created=False).findings == []  # Xen serves no notifications
    assert run(unsupported, version=False).findings == []  # no version: NOT_SUPPORTED is due
    assert run(unsupported, forwarded=True).findings == []  # the SPMC's answer
    assert run(OK, forwarded=True).findings == []


def test_protocol_a_failure_path_whose_cleanup_the_spmc_refused_may_keep_the_rx() -> None:
    h = Harness(ProtocolMonitor())
    bad_uuid = abi.regs(abi.FFA_PARTITION_INFO_GET, 1, 2, 3, 4, 0)
    with h.thread("d0v0"):
        for args, answer in [(abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12), (MAP, OK)]:
            h.call("hvc", "d0v0", args)
            h.ret("hvc", "d0v0", answer)
        h.call("hvc", "d0v0", bad_uuid)
        h.call("smc", "xen", abi.regs(abi.FFA_RX_RELEASE, 1))
        h.ret("smc", "xen", _err(abi.FFA_RET_RETRY))  # Xen's release refused
        h.ret("hvc", "d0v0", _err(abi.FFA_RET_INVALID_PARAMETERS))
        h.call("hvc", "d0v0", PARTINFO)
        h.ret("hvc", "d0v0", _err(abi.FFA_RET_BUSY))
    assert h.findings == []


def test_protocol_a_message_under_way_makes_the_rx_unknown() -> None:
    # d1's SEND2 to d0 is under way (it has filled d0's RX) when d0's RX_RELEASE returns.
    h = Harness(ProtocolMonitor())
    with h.thread("d0v0"):
        for args, answer in [(abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2), V12), (MAP, OK)]:
            h.call("hvc", "d0v0", args)
            h.ret("hvc", "d0v0", answer)
    with h.thread("d1v0"):
        h.call("hvc", "d1v0", abi.regs(abi.FFA_VERSION, abi.FFA_VERSION_1_2))
        h.ret("hvc", "d1v0", V12)
        h.call("hvc", "d1v0", abi.regs(abi.FFA_MSG_SEND2))
    with h.thread("d0v0"):
        h.call("hvc", "d0v0", RELEASE)
        h.ret("hvc", "d0v0", OK)
    with h.thread("d1v0"):
        h.ret("hvc", "d1v0", OK)
    assert h.findings == []
