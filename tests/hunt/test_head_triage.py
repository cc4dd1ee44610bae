"""What the hunt's triage decided about head, pinned: a VM-to-VM SEND2 racing the receiver's
destruction writes its RX after teardown unmapped it on head (finding 1 of docs/findings.md,
reached through domain destruction), and the reference's fix (the producer keeps rx_lock while
it writes) leaves nothing to find."""

from __future__ import annotations

from pathlib import Path

from ffasim.scenario import Scenario, ThreadSpec, VmSpec, step
from ffasim.scenario._check import check_scenario

SEND2_VS_DESTROY = Scenario(
    "send2-vs-destroy",
    "VM 0 sends VM 1 an indirect message while the toolstack destroys VM 1",
    vm_to_vm=True,
    vms=[VmSpec(), VmSpec()],
    setup=[
        step("negotiate", vm=0),
        step("negotiate", vm=1),
        step("map", vm=0),
        step("map", vm=1),
    ],
    threads=[
        ThreadSpec((step("send2", dst=2, data="hello", expect="any"),), vm=0),
        ThreadSpec((step("destroy", vm=1),), context="toolstack"),
    ],
)


def _check(variant: str, tmp_path: Path) -> object:
    path = tmp_path / "send2-vs-destroy.toml"
    path.write_text(SEND2_VS_DESTROY.to_toml(), encoding="utf-8")
    return check_scenario(
        str(path), variant=variant, budget=2000, out_dir=None, stop_on_first=False
    )


def test_send2_racing_receiver_destroy_writes_a_freed_rx_on_head(tmp_path: Path) -> None:
    """head also shows finding 8 here (SEND2's tx_lock then the receiver's rx_lock against
    RXTX_MAP's order), which the lock-order oracle reports first."""
    report = _check("head", tmp_path)
    kinds = [i.finding.kind for i in report.issues]  # type: ignore[attr-defined]
    assert kinds[0] == "lock-order" and "assertion" in kinds
    (issue,) = [i for i in report.issues if i.finding.kind == "assertion"]  # type: ignore[attr-defined]
    assert issue.finding.message.startswith("HypervisorPanic: data abort: Xen writes RX at 0x"), (
        issue.finding.message
    )
    assert " through a mapping it already dropped (at " in issue.finding.message
    assert "write_msg_1_2" in issue.finding.message


def test_send2_racing_receiver_destroy_is_clean_on_reference(tmp_path: Path) -> None:
    report = _check("reference", tmp_path)
    assert report.issues == [] and report.exhaustive  # type: ignore[attr-defined]
