"""Hafnium's own defects that Xen's guests can reach, pinned (docs/findings.md, "Also found")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffasim.hunt.run import artefact
from ffasim.scenario import Scenario, ThreadSpec, VmSpec, step
from ffasim.scenario._check import check_scenario

# vCPU 1 sends to a partition; Xen checks the header and forwards the send; the SPMC reads the
# header again from the guest's TX, which vCPU 0 has meanwhile rewritten to name VM 0x7fff.
# vCPU 0 then asks for partition information: Xen's FFA_RX_ACQUIRE makes the SPMC look the
# VM up (nwd_vms_lock, then its VM lock) while the send holds the VM lock and looks the
# receiver VM up (nwd_vms_lock): Hafnium's SEND2 lock-order departure, deadlocked.
HEADER_REWRITE = Scenario(
    "send2-header-rewrite",
    "a VM's SEND2 header is rewritten to name a VM while Xen forwards its send to a partition",
    vms=[VmSpec(vcpus=2)],
    setup=[step("negotiate", vm=0), step("map", vm=0)],
    threads=[
        ThreadSpec(
            (
                step("send2", dst=0x7FFF, data="m", expect="any"),
                step("partition_info", expect="any"),
            ),
            vm=0,
            vcpu=0,
        ),
        ThreadSpec((step("send2", dst=0x8003, data="mmmmmmmm", expect="any"),), vm=0, vcpu=1),
    ],
)


@pytest.mark.parametrize("variant", ["reference", "head"])
def test_a_rewritten_send2_header_deadlocks_hafnium(variant: str, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEADER_REWRITE.to_toml(), encoding="utf-8")
    report = check_scenario(str(path), variant=variant, out_dir=None)
    (issue,) = report.issues
    f = issue.finding
    assert f.kind == "deadlock"
    assert f.message == (
        "d0v0 waits for spmc.vm1.lock held by d0v1; d0v1 waits for spmc.nwd_vms_lock held by d0v0"
    )
    assert artefact(f) is not None  # the hunt files it under Hafnium's, with the reason


def test_a_cycle_through_a_xen_lock_is_not_filed_under_hafnium() -> None:
    from ffasim.check.monitor import Finding

    f = Finding(
        "deadlock",
        "d0v0 waits for d1.ffa.rx_lock held by d1v0; d1v0 waits for spmc.vm2.lock held by d0v0",
    )
    assert artefact(f) is None


# vCPU 0 reclaims a share asking the SPMC to clear it (flag bit 0): Hafnium locks VM 0 (the
# normal world), then clears the pages under mm_stage1_lock. vCPU 2 unmaps the VM's RX/TX:
# Xen forwards FFA_RXTX_UNMAP, and Hafnium holds mm_stage1_lock while lock_other_world takes
# VM 0's lock. Each CPU holds what the other waits for.
RECLAIM_CLEAR_VS_UNMAP = Scenario(
    "reclaim-clear-vs-unmap",
    "a VM reclaims a share with the clear flag while its other vCPU unmaps its RX/TX",
    vms=[VmSpec(vcpus=3)],
    setup=[
        step("negotiate", vm=0),
        step("map", vm=0),
        step("share", vm=0, pages=[8], name="h1"),
    ],
    threads=[
        ThreadSpec(
            (
                step(
                    "call",
                    call="FFA_MEM_RECLAIM",
                    args=["handle_lo:h1", "handle_hi:h1", 1],
                    expect="any",
                ),
            ),
            vm=0,
            vcpu=0,
        ),
        ThreadSpec((step("unmap", expect="any"),), vm=0, vcpu=2),
    ],
)


@pytest.mark.parametrize("variant", ["reference", "head"])
def test_a_clearing_reclaim_against_an_unmap_deadlocks_hafnium(
    variant: str, tmp_path: Path
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(RECLAIM_CLEAR_VS_UNMAP.to_toml(), encoding="utf-8")
    report = check_scenario(str(path), variant=variant, out_dir=None)
    (issue,) = report.issues
    f = issue.finding
    assert f.kind == "deadlock"
    assert "spmc.mm_stage1_lock" in f.message and "spmc.vm0.lock" in f.message
    assert artefact(f) is not None
