"""The pKVM monitors (``check/monitors/pkvm.py``) on small situations built on a real pKVM
system, with the sequential harness of test_monitors standing in for the scheduler."""

from __future__ import annotations

import re

from test_monitors import Harness

import ffasim
from ffasim import abi
from ffasim.check import DFSStrategy, default_monitors, explore
from ffasim.check.monitors.pkvm import (
    HypRxOwnershipMonitor,
    PassthroughMonitor,
    RegisterTaintMonitor,
    Stage2Monitor,
    named_vm_ids,
    pkvm_monitors,
)
from ffasim.machine import Machine, Thread, grant
from ffasim.pkvm import PkvmSystem
from ffasim.pkvm.host import Host
from ffasim.pkvm.programs import TX, boot, setup, share, share_descriptor


def booted(h: Harness, variant: str = "head") -> tuple[PkvmSystem, Host]:
    system = PkvmSystem(variant=variant, machine=h.machine)
    h.machine.system = system  # type: ignore[attr-defined]
    host = system.create_host(pages=16)
    with h.thread("host0"):
        setup(host)
    return system, host


def test_stage2_a_share_of_a_page_the_host_took_back_is_reported() -> None:
    h = Harness(Stage2Monitor())
    system, host = booted(h)
    with h.thread("host0"):
        r = share(host, share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1)]))
        assert r[0] == abi.FFA_SUCCESS_32 and h.findings == []
        system.pkvm._pkvm_host_unshare_ffa(host.frames[2].mfn, 1)
        host.smc(abi.FFA_ID_GET)
    (f,) = h.findings
    assert f.kind == "isolation"
    assert re.fullmatch(
        r"SPMC share 0x0 holds frame 0x[0-9a-f]+ \(host, host RAM\), whose host state is OWNED, "
        r"not SHARED_OWNED: the host never shared it \(host0 in FFA_ID_GET\)",
        f.message,
    )


def test_stage2_a_partition_touching_a_guest_page_is_reported_at_once() -> None:
    h = Harness(Stage2Monitor())
    system, _ = booted(h)
    guest = system.create_guest()
    f = guest.frames[0]
    grant(f, "sp8002")
    with h.thread("host0"):
        system.machine.mem.write(f.pa, b"x", "sp8002")
        system.machine.mem.write(f.pa, b"x", "spmc")  # the SPMC itself is not judged here
    assert [x.message for x in h.findings] == [
        f"sp8002 writes frame 0x{f.mfn:x} (g0, g0 RAM), a guest page (host state NOPAGE) (host0)"
    ]


def test_stage2_a_page_stuck_shared_at_the_end_is_a_leak() -> None:
    h = Harness(Stage2Monitor())
    system, host = booted(h)
    system.pkvm._pkvm_host_share_ffa(host.frames[3].mfn, 1)
    h.finish()
    assert [(x.kind, x.message) for x in h.findings] == [
        (
            "leak",
            f"frame 0x{host.frames[3].mfn:x} (host, host RAM) is stuck SHARED_OWNED with FF-A: "
            "no SPMC share covers it",
        )
    ]


def test_pkvm_monitors_judge_nothing_on_a_xen_system() -> None:
    h = Harness(*pkvm_monitors())
    system = ffasim.System(machine=h.machine)
    h.machine.system = system  # type: ignore[attr-defined]
    vm = system.create_vm()
    with h.thread("d0v0"):
        vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
        vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(1), vm.ipa(0), 1)
        vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, (5 << 16) | 0x8001)
    h.finish()
    assert h.findings == []


def test_register_taint_reports_each_call_once() -> None:
    h = Harness(RegisterTaintMonitor())
    _, host = booted(h, "linux-6.18")
    with h.thread("host0"):
        host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
        host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    assert len(h.findings) == 1  # three VERSIONs on host0 (one in setup): one finding


def test_register_taint_is_silent_at_head() -> None:
    h = Harness(RegisterTaintMonitor())
    _, host = booted(h)
    with h.thread("host0"):
        host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    assert h.findings == []


def test_hyp_rx_unreleased_after_reclaim() -> None:
    h = Harness(HypRxOwnershipMonitor())
    _, host = booted(h, "linux-6.5")
    with h.thread("host0"):
        r = share(host, share_descriptor(abi.FFA_VERSION_1_0, [(host.ipa(2), 1)]))
        host.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)
    assert [x.message for x in h.findings] == [
        "host0 returns from FFA_MEM_RECLAIM with the hypervisor's RX still FULL at the SPMC: "
        "EL2 never released what EL3 wrote there"
    ]


def test_hyp_rx_partition_info_belongs_to_the_host_until_it_releases() -> None:
    h = Harness(HypRxOwnershipMonitor())
    _, host = booted(h)
    with h.thread("host0"):
        host.smc(abi.FFA_PARTITION_INFO_GET)
        host.smc(abi.FFA_RX_RELEASE)
        r = share(host, share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1)]))
        host.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)
    assert h.findings == []


def test_passthrough_direct_request_from_another_vm_at_head() -> None:
    """Reference notes §5.6: DIRECT_REQ passes through with any source ID (open at 7.2)."""
    h = Harness(PassthroughMonitor())
    _, host = booted(h)
    with h.thread("host0"):
        host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, (5 << 16) | 0x8001)
        host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, 0x8001)
    assert [x.message for x in h.findings] == [
        "host0's FFA_MSG_SEND_DIRECT_REQ_64 reaches the SPMC unfiltered, naming VM 0x5: the "
        "host acts as another endpoint (it is FF-A ID 0)"
    ]


def test_named_vm_ids() -> None:
    assert named_vm_ids(abi.regs(abi.FFA_NOTIFICATION_BIND, (3 << 16) | 4)) == [3, 4]
    assert named_vm_ids(abi.regs(abi.FFA_NOTIFICATION_SET, (0x8001 << 16) | 4)) == [4]
    assert named_vm_ids(abi.regs(abi.FFA_NOTIFICATION_BITMAP_CREATE, 7, 1)) == [7]
    assert named_vm_ids(abi.regs(abi.FFA_RX_RELEASE)) == []
    assert named_vm_ids(abi.regs(abi.FFA_ID_GET, 9)) == []


def test_the_host_racing_with_el2_on_its_own_tx_is_not_a_data_race() -> None:
    """The host owes EL2 no locking, as a guest owes Xen none: EL2 fetches its TX once."""

    def prog(m: Machine) -> tuple[list[Thread], None]:
        _, host = boot(m, "head", cpus=2)
        setup(host)
        data = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1)])
        host.write(host.ipa(TX), data)

        def sharer() -> None:
            host.smc(abi.FFA_MEM_SHARE_64, len(data), len(data), vcpu=0)

        def scribbler() -> None:
            host.write(host.ipa(TX), bytes(8))

        return [Thread("host0", sharer), Thread("host1", scribbler)], None

    report = explore(prog, DFSStrategy(), monitors_factory=default_monitors, stop_on_first=False)
    assert report.exhausted and report.findings == []
