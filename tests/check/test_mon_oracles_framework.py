"""framework: only the hypervisor may send VM_CREATED / VM_DESTROYED to a partition."""

from __future__ import annotations

from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import FrameworkMonitor

DESTROYED = abi.FFA_MSG_FLAG_FRAMEWORK | abi.FFA_MSG_SEND_VM_DESTROYED


def _deliver(h: Harness, sender: int, w2: int, fid: int = abi.FFA_MSG_SEND_DIRECT_REQ_32) -> None:
    req = abi.regs(fid, abi.pack_target(sender, 0x8001), w2, 0, 0, 2)
    h.call("sp", "sp8001", req)
    h.ret("sp", "sp8001", abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32))


def test_framework_message_from_the_hypervisor_is_clean() -> None:
    h = Harness(FrameworkMonitor())
    with h.thread("toolstack"):
        _deliver(h, 0, DESTROYED)
    assert h.findings == []


def test_framework_message_from_a_guest_is_reported() -> None:
    h = Harness(FrameworkMonitor())
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MSG_SEND_DIRECT_REQ_32):
        _deliver(h, 1, DESTROYED)
    assert h.kinds() == ["framework"]
    msg = h.findings[0].message
    assert "VM_DESTROYED" in msg and "from 0x1" in msg and "FFA_MSG_SEND_DIRECT_REQ_32" in msg


def test_framework_message_with_hypervisor_sender_inside_a_guest_call_is_reported() -> None:
    # The sender field says 0, but the guest's hypercall is what delivers it.
    h = Harness(FrameworkMonitor())
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MSG_SEND_DIRECT_REQ_64):
        _deliver(
            h,
            0,
            abi.FFA_MSG_FLAG_FRAMEWORK | abi.FFA_MSG_SEND_VM_CREATED,
            fid=abi.FFA_MSG_SEND_DIRECT_REQ_64,
        )
    assert h.kinds() == ["framework"]
    assert "VM_CREATED" in h.findings[0].message


def test_framework_ordinary_direct_request_from_a_guest_is_clean() -> None:
    h = Harness(FrameworkMonitor())
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MSG_SEND_DIRECT_REQ_32):
        _deliver(h, 1, 0)
        _deliver(h, 1, 0x7FFFFFFF)  # every bit but 31: not the monitor's business
    assert h.findings == []


def test_framework_bit_in_req2_is_not_a_framework_message() -> None:
    h = Harness(FrameworkMonitor())
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MSG_SEND_DIRECT_REQ2):
        _deliver(h, 1, DESTROYED, fid=abi.FFA_MSG_SEND_DIRECT_REQ2)  # w2 is a UUID half
    assert h.findings == []


def test_framework_message_from_a_partition_is_reported() -> None:
    h = Harness(FrameworkMonitor())
    with h.thread("d0v0"):
        _deliver(h, 0x8002, DESTROYED)
    assert h.kinds() == ["framework"]
