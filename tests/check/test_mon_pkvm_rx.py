"""HypRxOwnershipMonitor's rules that no pKVM variant breaks on a plain run (the host's release
of what EL2 reads, EL2 filling what the host holds, EL2 reading a buffer it does not hold),
each planted with hand-written events and next to its near miss.

The monitor only needs to find a pKVM proxy and the SPMC's record of the hypervisor's mailbox
through the machine, so a stand-in system is enough: the events are what the proxy's SMCs
and the host's calls would send."""

from __future__ import annotations

from types import SimpleNamespace

from test_monitors import Harness, _Mailbox, xen_frame

from ffasim import abi
from ffasim.check.monitors.pkvm import HypRxOwnershipMonitor

RETRIEVE = abi.FFA_MEM_RETRIEVE_REQ_64


def rigged() -> tuple[Harness, _Mailbox]:
    """A harness whose machine has a pKVM proxy and an SPMC with the hypervisor's RX EMPTY."""
    h = Harness(HypRxOwnershipMonitor())
    rx = xen_frame(h, "hyp rx")
    mailbox = _Mailbox(rx, "EMPTY")
    h.machine.system = SimpleNamespace(  # type: ignore[attr-defined]
        pkvm=SimpleNamespace(hyp_vmemmap={}), spmc=SimpleNamespace(mailboxes={0: mailbox})
    )
    return h, mailbox


def smc(h: Harness, caller: str, fid: int, fill: _Mailbox | None = None) -> None:
    """An SMC to EL3 by ``caller`` (``"pkvm"``: EL2's own, ``"host"``: passed through);
    ``fill``: the SPMC writes the hypervisor's RX (FULL) before answering."""
    h.call("smc", caller, abi.regs(fid))
    if fill is not None:
        fill.state.name = "FULL"
    h.ret("smc", caller, abi.success())


def test_host_release_of_what_el2_still_reads_is_reported() -> None:
    h, mb = rigged()
    with h.thread("host0"):
        h.call("hvc", "host0", abi.regs(RETRIEVE))
        smc(h, "pkvm", RETRIEVE, fill=mb)  # EL2 retrieves for the host: its RX is FULL
    with h.thread("host1"):
        h.call("smc", "host", abi.regs(abi.FFA_RX_RELEASE))
    assert [(f.kind, f.message, f.threads) for f in h.findings] == [
        (
            "ownership",
            "host1's passed-through FFA_RX_RELEASE releases the hypervisor's RX while EL2 on "
            "host0 (FFA_MEM_RETRIEVE_REQ_64) has not finished with it",
            ("host1",),
        )
    ]


def test_host_release_on_the_context_el2_returned_to_is_clean() -> None:
    # The same context: EL2's call is over (the host releases what it was given).
    h, mb = rigged()
    with h.thread("host0"):
        h.call("hvc", "host0", abi.regs(RETRIEVE))
        smc(h, "pkvm", RETRIEVE, fill=mb)
        h.call("smc", "host", abi.regs(abi.FFA_RX_RELEASE))
    assert h.findings == []


def test_el2_filling_what_the_host_holds_is_reported() -> None:
    h, mb = rigged()
    with h.thread("host0"), h.hvc("host0", abi.FFA_PARTITION_INFO_GET):
        smc(h, "host", abi.FFA_PARTITION_INFO_GET, fill=mb)  # passed through: the host's data
    with h.thread("host1"):
        h.call("hvc", "host1", abi.regs(RETRIEVE))
        h.call("smc", "pkvm", abi.regs(RETRIEVE))
    assert [f.message for f in h.findings] == [
        "EL2 on host1 (FFA_MEM_RETRIEVE_REQ_64) asks EL3 to fill the hypervisor's RX while "
        "host0 (FFA_PARTITION_INFO_GET) still holds partition information there: the SPMC "
        "must answer BUSY"
    ]


def test_el2_filling_after_the_host_released_is_clean() -> None:
    h, mb = rigged()
    with h.thread("host0"):
        smc(h, "host", abi.FFA_PARTITION_INFO_GET, fill=mb)
        h.call("smc", "host", abi.regs(abi.FFA_RX_RELEASE))
        mb.state.name = "EMPTY"
        h.ret("smc", "host", abi.success())
    with h.thread("host1"):
        h.call("hvc", "host1", abi.regs(RETRIEVE))
        h.call("smc", "pkvm", abi.regs(RETRIEVE))
    assert h.findings == []


def test_el2_reading_the_rx_the_spmc_does_not_hold_full_is_reported() -> None:
    h, mb = rigged()
    (rx,) = mb.rx_frames
    with h.thread("host0"):
        h.call("hvc", "host0", abi.regs(RETRIEVE))
        h.machine.mem.read(rx.pa, 8, "host")  # the host: not this rule
        h.machine.mem.write(rx.pa, b"\0", "pkvm")  # a write: not this rule
        assert h.findings == []
        h.machine.mem.read(rx.pa, 8, "pkvm")
    assert [f.message for f in h.findings] == [
        "EL2 on host0 in FFA_MEM_RETRIEVE_REQ_64 reads the hypervisor's RX buffer while the "
        f"SPMC holds it EMPTY, not FULL (frame 0x{rx.mfn:x} (xen, hyp rx))"
    ]


def test_el2_reading_a_full_rx_or_another_frame_is_clean() -> None:
    h, mb = rigged()
    (rx,) = mb.rx_frames
    other = xen_frame(h, "hyp tx")
    with h.thread("host0"):
        h.machine.mem.read(other.pa, 8, "pkvm")
        mb.state.name = "FULL"
        h.machine.mem.read(rx.pa, 8, "pkvm")
    assert h.findings == []


def test_without_a_pkvm_proxy_nothing_is_judged() -> None:
    h, mb = rigged()
    h.machine.system.pkvm = None  # type: ignore[attr-defined]
    (rx,) = mb.rx_frames
    with h.thread("host0"):
        h.machine.mem.read(rx.pa, 8, "pkvm")
    assert h.findings == []
