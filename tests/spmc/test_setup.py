"""FFA_VERSION, FFA_FEATURES, FFA_ID_GET, FFA_SPM_ID_GET (hafnium-spmc.md §5.1-5.3)."""

from __future__ import annotations

from ffasim import abi
from ffasim.machine import EventSink, Machine
from ffasim.spmc import Spmc

from .helpers import code, make

NOT_SUPPORTED_W0 = 0xFFFFFFFF


def test_version_returns_compiled_version_for_compatible_request() -> None:
    spmc, hyp = make(map_buffers=False)
    assert hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_2
    assert spmc.endpoints[0].version == abi.FFA_VERSION_1_1


def test_version_rejects_newer_minor_bit31_and_other_major_in_w0() -> None:
    _, hyp = make(map_buffers=False)
    for bad in (abi.FFA_VERSION_1_3, 0x80010002, 0x20000, 0x00000):
        r = hyp.call(abi.FFA_VERSION, bad)
        assert r[0] == NOT_SUPPORTED_W0, hex(bad)
        assert not abi.is_error(r)


def test_version_is_locked_after_another_call() -> None:
    _, hyp = make(map_buffers=False)
    assert hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_2
    hyp.call(abi.FFA_ID_GET)
    assert hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_2)[0] == NOT_SUPPORTED_W0
    assert hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_2


def test_version_not_locked_by_ffa_interrupt() -> None:
    _, hyp = make(map_buffers=False)
    hyp.call(abi.FFA_INTERRUPT)
    assert hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_2
    hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_2)  # not locked by VERSION itself either
    assert hyp.call(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_2


def test_id_get_and_spm_id_get() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_ID_GET)[:3] == (abi.FFA_SUCCESS_32, 0, 0)
    assert hyp.call(abi.FFA_SPM_ID_GET)[:3] == (abi.FFA_SUCCESS_32, 0, 0x8000)
    sp = spmc.partitions[0x8002]
    assert sp.smc(abi.FFA_ID_GET)[2] == 0x8002


def test_features_rxtx_map_reports_max_pages_only_from_v1_2() -> None:
    _, hyp = make()
    r = hyp.call(abi.FFA_FEATURES, abi.FFA_RXTX_MAP_64)
    assert r[0] == abi.FFA_SUCCESS_32 and r[2] == 1 << 16
    _, hyp = make(version=abi.FFA_VERSION_1_1)
    assert hyp.call(abi.FFA_FEATURES, abi.FFA_RXTX_MAP_64)[2] == 0


def test_features_rxtx_map_32_and_unknown_ids_not_supported() -> None:
    _, hyp = make()
    for fid in (abi.FFA_RXTX_MAP_32, abi.FFA_MSG_POLL, abi.FFA_MSG_SEND, 0, 0x84000000):
        assert code(hyp.call(abi.FFA_FEATURES, fid)) == abi.FFA_RET_NOT_SUPPORTED


def test_features_mem_retrieve_req_needs_ns_bit_input_from_v1_1() -> None:
    _, hyp = make()
    assert code(hyp.call(abi.FFA_FEATURES, abi.FFA_MEM_RETRIEVE_REQ_64)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )
    r = hyp.call(abi.FFA_FEATURES, abi.FFA_MEM_RETRIEVE_REQ_64, 0x2)
    assert r[0] == abi.FFA_SUCCESS_32 and r[2] == 0x6


def test_features_interrupt_ids_by_world() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_FEATURES, abi.FFA_FEAT_SCHEDULE_RECV_INTR)[2] == 8
    assert code(hyp.call(abi.FFA_FEATURES, abi.FFA_FEAT_NOTIF_PEND_INTR)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )
    assert code(hyp.call(abi.FFA_FEATURES, abi.FFA_FEAT_MANAGED_EXIT_INTR)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )
    sp = spmc.partitions[0x8001]
    assert sp.smc(abi.FFA_FEATURES, abi.FFA_FEAT_NOTIF_PEND_INTR)[2] == 5
    assert sp.smc(abi.FFA_FEATURES, abi.FFA_FEAT_MANAGED_EXIT_INTR)[2] == 4
    assert code(sp.smc(abi.FFA_FEATURES, abi.FFA_FEAT_SCHEDULE_RECV_INTR)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )


def test_features_feature_id_with_reserved_bits_or_w2_not_supported() -> None:
    _, hyp = make()
    assert code(hyp.call(abi.FFA_FEATURES, 0x102)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(hyp.call(abi.FFA_FEATURES, 0x2, 1)) == abi.FFA_RET_NOT_SUPPORTED


def test_features_v1_2_interfaces_follow_the_spmc_build_not_the_caller() -> None:
    _, hyp = make(version=abi.FFA_VERSION_1_1)
    for fid in (abi.FFA_MSG_SEND_DIRECT_REQ2, abi.FFA_PARTITION_INFO_GET_REGS):
        assert hyp.call(abi.FFA_FEATURES, fid)[0] == abi.FFA_SUCCESS_32


def test_features_lists_what_xen_probes() -> None:
    _, hyp = make()
    for fid in (
        abi.FFA_VERSION,
        abi.FFA_FEATURES,
        abi.FFA_NOTIFICATION_BITMAP_CREATE,
        abi.FFA_NOTIFICATION_BITMAP_DESTROY,
        abi.FFA_PARTITION_INFO_GET,
        abi.FFA_NOTIFICATION_GET,
        abi.FFA_RX_RELEASE,
        abi.FFA_RXTX_MAP_64,
        abi.FFA_RXTX_UNMAP,
        abi.FFA_MEM_SHARE_32,
        abi.FFA_MEM_SHARE_64,
        abi.FFA_MEM_RECLAIM,
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND2,
        abi.FFA_RUN,
    ):
        assert hyp.call(abi.FFA_FEATURES, fid)[0] == abi.FFA_SUCCESS_32, abi.name(fid)


def test_unknown_function_and_unknown_caller_not_supported() -> None:
    spmc, hyp = make()
    assert code(hyp.call(0x84000099)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(hyp.call(abi.FFA_RXTX_MAP_32, hyp.tx, hyp.rx, 1)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(spmc.entry(0x8009, abi.regs(abi.FFA_ID_GET))) == abi.FFA_RET_NOT_SUPPORTED
    assert code(spmc.entry(5, abi.regs(abi.FFA_ID_GET))) == abi.FFA_RET_NOT_SUPPORTED


class Log(EventSink):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, ctx: str, text: str) -> None:
        self.lines.append(text)


def test_console_log_packs_characters_little_endian() -> None:
    sink = Log()
    spmc = Spmc(Machine(sink))
    sp = spmc.partitions[0x8001]
    w2 = int.from_bytes(b"hell", "little")
    w3 = int.from_bytes(b"o!\0\0", "little")
    assert sp.smc(abi.FFA_CONSOLE_LOG_32, 6, w2, w3)[0] == abi.FFA_SUCCESS_32
    assert sink.lines[-1] == "sp8001: hello!"
    x2 = int.from_bytes(b"64-bit l", "little")
    assert sp.smc(abi.FFA_CONSOLE_LOG_64, 8, x2)[0] == abi.FFA_SUCCESS_32
    assert sink.lines[-1] == "sp8001: 64-bit l"
    assert code(sp.smc(abi.FFA_CONSOLE_LOG_32, 0)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(sp.smc(abi.FFA_CONSOLE_LOG_32, 25)) == abi.FFA_RET_INVALID_PARAMETERS
    assert sp.smc(abi.FFA_CONSOLE_LOG_64, 128)[0] == abi.FFA_SUCCESS_32
