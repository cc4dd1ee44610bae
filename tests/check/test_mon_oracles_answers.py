"""answer: guest-visible answers held to the spec's error lists and to what the SPMC said."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import AnswerMonitor
from ffasim.check.monitors.answers import allowed

Regs = tuple[int, ...]


def _hvc(fid: int, answer: Regs, smcs: Sequence[tuple[int, Regs]] = ()) -> Harness:
    """d0v0 makes hypercall ``fid``; Xen makes ``smcs`` (function, SPMC's answer), then
    answers ``answer``."""
    h = Harness(AnswerMonitor())
    with h.thread("d0v0"):
        h.call("hvc", "d0v0", abi.regs(fid))
        for smc, res in smcs:
            h.call("smc", "xen", abi.regs(smc))
            h.ret("smc", "xen", res)
        h.ret("hvc", "d0v0", answer)
    return h


SHARE = abi.FFA_MEM_SHARE_64
OK = abi.success()


# -- error codes --------------------------------------------------------------------------------


def test_answer_listed_error_is_clean() -> None:
    assert _hvc(abi.FFA_RXTX_MAP_64, abi.error(abi.FFA_RET_DENIED)).findings == []


def test_answer_error_the_spec_does_not_list_for_the_function_is_reported() -> None:
    h = _hvc(abi.FFA_RXTX_MAP_64, abi.error(abi.FFA_RET_RETRY))
    assert h.kinds() == ["answer"]
    assert "RETRY, which FF-A does not list for FFA_RXTX_MAP_64" in h.findings[0].message


@pytest.mark.parametrize("code", [0, 1, 0x7FFF, abi.FFA_RET_NOT_READY - 1])
def test_answer_code_outside_ffa_is_reported(code: int) -> None:
    h = _hvc(SHARE, abi.regs(abi.FFA_ERROR, 0, code & abi.MASK32))
    assert h.kinds() == ["answer"]
    assert "no FF-A error" in h.findings[0].message


def test_answer_boundary_codes_are_ffa_errors() -> None:
    # -1 and -10 are the ends of FF-A's range; NO_DATA is listed for NOTIFICATION_INFO_GET.
    assert _hvc(abi.FFA_NOTIFICATION_INFO_GET_64, abi.error(abi.FFA_RET_NO_DATA)).findings == []
    assert _hvc(0x84000099, abi.error(abi.FFA_RET_NOT_SUPPORTED)).findings == []
    assert _hvc(0x84000099, abi.error(abi.FFA_RET_NOT_READY)).kinds() == ["answer"]


def test_answer_unknown_function_may_only_be_not_supported() -> None:
    assert allowed(0x84000099) == {abi.FFA_RET_NOT_SUPPORTED}
    assert _hvc(0x84000099, abi.error(abi.FFA_RET_DENIED)).kinds() == ["answer"]


def test_answer_spmc_error_passed_on_is_not_xens_fault() -> None:
    # The SPMC (or an injected fault) answered RETRY to MEM_RECLAIM, which the spec does not
    # list for it either: Xen passing it on is not judged.
    smcs = [(abi.FFA_MEM_RECLAIM, abi.error(abi.FFA_RET_RETRY))]
    assert _hvc(abi.FFA_MEM_RECLAIM, abi.error(abi.FFA_RET_RETRY), smcs).findings == []


def test_answer_error_translated_badly_is_reported() -> None:
    # The SPMC's DENIED for RX_ACQUIRE is fine for RX_ACQUIRE; Xen answering RETRY is Xen's.
    smcs = [(abi.FFA_RX_ACQUIRE, abi.error(abi.FFA_RET_DENIED))]
    h = _hvc(abi.FFA_PARTITION_INFO_GET, abi.error(abi.FFA_RET_RETRY), smcs)
    assert h.kinds() == ["answer"]


def test_answer_version_must_be_a_version_word() -> None:
    assert _hvc(abi.FFA_VERSION, abi.regs(abi.FFA_VERSION_1_2)).findings == []
    assert _hvc(abi.FFA_VERSION, abi.regs(abi.MASK32)).findings == []  # NOT_SUPPORTED in w0
    assert _hvc(abi.FFA_VERSION, abi.error(abi.FFA_RET_NOT_SUPPORTED)).kinds() == ["answer"]
    assert _hvc(abi.FFA_VERSION, abi.regs(0x80010002)).kinds() == ["answer"]


# -- success the SPMC never gave ------------------------------------------------------------


def test_answer_success_after_spmc_success_is_clean() -> None:
    smcs = [(abi.FFA_MEM_RECLAIM, OK)]
    assert _hvc(abi.FFA_MEM_RECLAIM, OK, smcs).findings == []


def test_answer_success_after_spmc_error_is_reported() -> None:
    smcs = [(abi.FFA_MEM_RECLAIM, abi.error(abi.FFA_RET_DENIED))]
    h = _hvc(abi.FFA_MEM_RECLAIM, OK, smcs)
    assert h.kinds() == ["answer"]
    assert "the SPMC answered its FFA_MEM_RECLAIM with FFA_ERROR(DENIED)" in h.findings[0].message


def test_answer_success_of_an_always_forwarded_call_without_an_smc_is_reported() -> None:
    h = _hvc(abi.FFA_MEM_RECLAIM, OK)
    assert h.kinds() == ["answer"]
    assert "without forwarding it" in h.findings[0].message


def test_answer_success_of_a_sometimes_forwarded_call_without_an_smc_is_clean() -> None:
    # RX_RELEASE goes to the SPMC only when it has RX_ACQUIRE.
    assert _hvc(abi.FFA_RX_RELEASE, OK).findings == []
    smcs = [(abi.FFA_RX_RELEASE, abi.error(abi.FFA_RET_DENIED))]
    assert _hvc(abi.FFA_RX_RELEASE, OK, smcs).kinds() == ["answer"]


def test_answer_retried_direct_request_judged_by_the_last_smc() -> None:
    smcs = [
        (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.error(abi.FFA_RET_BUSY)),
        (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32)),
    ]
    resp = abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32)
    assert _hvc(abi.FFA_MSG_SEND_DIRECT_REQ_32, resp, smcs).findings == []
    assert _hvc(abi.FFA_MSG_SEND_DIRECT_REQ_32, resp, smcs[:1]).kinds() == ["answer"]


def test_answer_smcs_of_a_partition_do_not_count_as_xens() -> None:
    h = Harness(AnswerMonitor())
    with h.thread("d0v0"):
        h.call("hvc", "d0v0", abi.regs(abi.FFA_MEM_RECLAIM))
        h.call("smc", "sp8002", abi.regs(abi.FFA_MEM_RECLAIM))
        h.ret("smc", "sp8002", OK)
        h.ret("hvc", "d0v0", OK)
    assert h.kinds() == ["answer"]


# -- handles -------------------------------------------------------------------------------------


def test_answer_share_handle_is_the_spmcs() -> None:
    spmc = abi.success(0x5, 0x0)
    assert _hvc(SHARE, abi.success(0x5, 0x0), [(SHARE, spmc)]).findings == []
    h = _hvc(SHARE, abi.success(0x6, 0x0), [(SHARE, spmc)])
    assert h.kinds() == ["answer"]
    assert "handle 0x6 but the SPMC allocated 0x5" in h.findings[0].message


def test_answer_share_handle_high_half_counts() -> None:
    spmc = abi.success(0x5, 0x1)
    assert _hvc(SHARE, abi.success(0x5, 0x0), [(SHARE, spmc)]).kinds() == ["answer"]


def test_answer_pkvm_host_calls_are_left_to_the_pkvm_monitors() -> None:
    h = Harness(AnswerMonitor())
    with h.thread("host0"):
        h.call("hvc", "host0", abi.regs(abi.FFA_MEM_RECLAIM))
        h.ret("hvc", "host0", abi.error(abi.FFA_RET_RETRY))
    assert h.findings == []
