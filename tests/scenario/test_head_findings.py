"""Defects of today's Xen (``head``) that the checker found and the reference fixes.

Each is written up in docs/findings.md. The tests pin both halves: the search finds the defect
on ``head`` (and the release it entered), and exhausts the same scenario on ``reference``
without a finding, so the fix in ``variants/reference.py`` is what makes the difference.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from ffasim import SecurePartition, System, abi, default_partitions
from ffasim.guest import FfaDriver
from ffasim.scenario import check_scenario
from ffasim.system import DomainCreationError

SEND2_VS_RELEASE_UNMAP = """
[scenario]
name = "send2-vs-release-unmap"
description = "VM 0 sends VM 1 a message while VM 1 releases and unmaps its RX"
vm_to_vm = true

[[vm]]
[[vm]]
vcpus = 2

[[setup]]
op = "negotiate"
vm = [0, 1]

[[setup]]
op = "map"
vm = [0, 1]

[[thread]]
vm = 0
steps = [{ op = "send2", dst = 2, data = "ping", expect = "any" }]

[[thread]]
vm = 1
vcpu = 1
steps = [{ op = "rx_release", expect = "any" }, { op = "unmap", expect = "any" }]
"""


def _check(spec: str, variant: str):  # type: ignore[no-untyped-def]
    return check_scenario(
        spec,
        variant=variant,
        strategy="dfs",
        budget=5000,
        out_dir=None,
        minimise_findings=False,
        stop_on_first=False,
    )


def _data_aborts(report, where: str) -> None:  # type: ignore[no-untyped-def]
    """Xen wrote through its dropped mapping, in ``where`` (one finding per write site)."""
    dropped = "through a mapping it already dropped"
    aborts = [i.finding for i in report.issues if dropped in i.finding.message]
    assert aborts and all(f.kind == "assertion" and where in f.message for f in aborts)


@pytest.fixture
def send2_file(tmp_path: Path) -> str:
    path = tmp_path / "send2-vs-release-unmap.toml"
    path.write_text(SEND2_VS_RELEASE_UNMAP, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("variant", ["head", "xen-4.22"])
def test_rx_written_after_release_and_unmap_is_a_data_abort(variant: str) -> None:
    r = _check("partinfo-vs-release-unmap", variant)
    _data_aborts(r, "ffa_copy_info")
    # The same window, seen from the SPMC's side: Xen hands out an RX the guest gave back.
    assert {i.finding.kind for i in r.issues} <= {"assertion", "ownership"}


def test_send2_to_a_vm_that_releases_and_unmaps_is_a_data_abort(send2_file: str) -> None:
    _data_aborts(_check(send2_file, "head"), "write_msg_1_2")


@pytest.mark.parametrize("variant", ["head", "xen-4.22", "xen-4.20", "seed-v1"])
def test_a_pending_notification_keeps_the_dead_vm_at_the_spmc(variant: str) -> None:
    [issue] = _check("destroy-with-pending-notification", variant).issues
    assert issue.finding.kind == "leak"
    assert "SPMC still tracks destroyed VM 0x1" in issue.finding.message


@pytest.mark.parametrize(
    "spec", ["partinfo-vs-release-unmap", "destroy-with-pending-notification", "send2"]
)
def test_the_reference_fixes_them_all_exhaustively(spec: str, send2_file: str) -> None:
    r = _check(send2_file if spec == "send2" else spec, "reference")
    assert r.issues == [] and r.exhaustive


@pytest.mark.parametrize(("variant", "alive"), [("head", 3), ("reference", 6)])
def test_vms_dying_with_a_pending_notification_fill_the_spmcs_table(
    variant: str, alive: int
) -> None:
    # An SPMC with room for three VMs. Each VM binds a notification, a partition signals it,
    # the VM dies before taking it. On head each death keeps a slot: the fourth VM cannot be
    # created (Xen's domain creation fails with -ENOMEM). The reference frees each slot.
    system = System(variant=variant, spmc_max_vms=3)
    sp = system.spmc.partitions[0x8001]
    made = 0
    with contextlib.suppress(DomainCreationError):
        for _ in range(6):
            vm = system.create_vm()
            driver = FfaDriver(vm, 0)
            driver.negotiate()
            driver.notification_bind(0x8001, 1)
            r = sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(0x8001, vm.id), 0, 1, 0)
            assert abi.is_success(r), abi.describe(r)
            system.destroy_vm(vm)
            system.run_timers()
            made += 1
    assert made == alive


def _partitions(count: int) -> list[SecurePartition]:
    parts = list(default_partitions())
    for i in range(len(parts), count):
        sp_id = 0x8001 + i
        parts.append(SecurePartition(sp_id, f"5ca1e000-0000-4000-8000-{sp_id:012x}"))
    return parts


@pytest.mark.parametrize(
    ("variant", "count", "ok"),
    [("head", 63, True), ("head", 64, False), ("reference", 64, True), ("reference", 65, False)],
)
def test_the_partition_cap_is_off_by_one_on_head(variant: str, count: int, ok: bool) -> None:
    # FFA_MAX_NUM_SP (64) is "the maximum number of Secure partitions we support"; head's probe
    # refuses exactly 64 and then disables FF-A: every domain's creation fails with -ENODEV.
    system = System(variant=variant, partitions=_partitions(count), spmc_max_vms=count + 8)
    if ok:
        driver = FfaDriver(system.create_vm(pages=4), 0)
        driver.negotiate()
        infos = driver.partition_info_regs()
        assert isinstance(infos, list)
        assert sum(p.id >= 0x8000 for p in infos) == count
    else:
        with pytest.raises(DomainCreationError, match="error -19"):
            system.create_vm(pages=4)


SEND2_VS_UNMAP_4VCPU = """
[scenario]
name = "send2-vs-unmap-4vcpu"
description = "two VMs send each other a message while each unmaps its RX/TX on another vCPU"
vm_to_vm = true

[[vm]]
vcpus = 2
[[vm]]
vcpus = 2

[[setup]]
op = "negotiate"
vm = [0, 1]

[[setup]]
op = "map"
vm = [0, 1]

[[thread]]
vm = 0
steps = [{ op = "send2", dst = 2, data = "ping", expect = "any" }]

[[thread]]
vm = 1
steps = [{ op = "send2", dst = 1, data = "pong", expect = "any" }]

[[thread]]
vm = 0
vcpu = 1
steps = [{ op = "unmap", expect = "any" }]

[[thread]]
vm = 1
vcpu = 1
steps = [{ op = "unmap", expect = "any" }]
"""


@pytest.fixture
def send2_unmap_file(tmp_path: Path) -> str:
    path = tmp_path / "send2-vs-unmap-4vcpu.toml"
    path.write_text(SEND2_VS_UNMAP_4VCPU, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("variant", ["head", "xen-4.22"])
def test_send2_against_rxtx_unmap_deadlocks_on_head(send2_unmap_file: str, variant: str) -> None:
    # SEND2 holds the sender's tx_lock and waits for the receiver's rx_lock; RXTX_UNMAP holds
    # rx_lock and waits for tx_lock: two VMs, two vCPUs each, every vCPU waits.
    r = _check(send2_unmap_file, variant)
    kinds = {i.finding.kind for i in r.issues}
    assert {"deadlock", "lock-order"} <= kinds
    order = next(i.finding for i in r.issues if i.finding.kind == "lock-order")
    assert "ffa_tx_acquire" in order.message and "ffa_handle_rxtx_map" in order.message


def test_send2_against_rxtx_unmap_on_reference_is_clean_exhaustively(
    send2_unmap_file: str,
) -> None:
    r = _check(send2_unmap_file, "reference")
    assert r.exhausted and r.issues == []


FRAMEWORK_FROM_GUEST = """
[scenario]
name = "framework-from-guest"
description = "a guest sends partition 0x8001 a VM_DESTROYED framework message about VM 2"

[[vm]]
[[vm]]

[[setup]]
op = "negotiate"
vm = [0, 1]

[[thread]]
vm = 0
steps = [
  {call="FFA_MSG_SEND_DIRECT_REQ_32", args=["to:0x8001", 0x80000006, 0, 0, 2], expect="any"},
]
"""


@pytest.mark.parametrize(("variant", "found"), [("head", True), ("reference", False)])
def test_a_guest_framework_message_reaches_the_partition(
    tmp_path: Path, variant: str, found: bool
) -> None:
    path = tmp_path / "framework-from-guest.toml"
    path.write_text(FRAMEWORK_FROM_GUEST, encoding="utf-8")
    r = _check(str(path), variant)
    kinds = [i.finding.kind for i in r.issues]
    assert kinds == (["framework"] if found else [])
    if found:
        assert "VM_DESTROYED" in r.issues[0].finding.message
