"""The scenario operations ``ffasim hunt`` needs: write_bytes, a raw call that names the handle
it answers, and sp_send2; validated like the others and written back to TOML unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffasim import abi, desc
from ffasim.scenario import Scenario, ScenarioError, ThreadSpec, VmSpec, load_toml, step


def _one_vm(*steps: object, setup: tuple[object, ...] = ()) -> Scenario:
    return Scenario(
        "ops",
        vms=[VmSpec()],
        setup=[step("negotiate", vm=0), step("map", vm=0), *setup],  # type: ignore[list-item]
        threads=[ThreadSpec(tuple(steps), vm=0)],  # type: ignore[arg-type]
    )


def _run(s: Scenario) -> tuple[list[str], list[tuple[str, str]]]:
    inst = s.instantiate()
    for th in inst.threads:
        th.body()
    verdict = inst.finish()
    return verdict, [(r.label, r.outcome) for r in inst.results]


def test_write_bytes_pokes_the_guest_page() -> None:
    s = _one_vm(
        step("write_bytes", page=5, offset=4094, data="a1b2c3"),
        step("read", page=6, expect="any"),
    )
    inst = s.instantiate()
    inst.threads[0].body()
    vm = inst.vm(0)
    assert vm.read(vm.ipa(5) + 4094, 3) == b"\xa1\xb2\xc3"


def test_write_bytes_beyond_ram_is_a_driver_error_not_a_crash() -> None:
    s = _one_vm(step("write_bytes", page=63, offset=4095, data="0102", expect="any"))
    _, results = _run(s)
    assert results[-1] == ("write_bytes(page 63 + 4095)", "driver error")


def test_write_bytes_page_outside_the_vm_is_refused_at_load() -> None:
    with pytest.raises(ScenarioError, match=r"page 64 is outside VM 0's 64 pages"):
        _one_vm(step("write_bytes", page=64, data="00"))


def test_write_bytes_refuses_odd_hex() -> None:
    with pytest.raises(ScenarioError, match=r"^step write_bytes: data: must be bytes as an even"):
        step("write_bytes", page=1, data="abc")


def _share_descriptor(sender: int, page_ipa: int) -> bytes:
    tx = desc.MemTransaction(
        sender=sender,
        attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
        flags=0,
        handle=0,
        tag=0,
        receivers=(desc.MemAccess(0x8002, abi.FFA_MEM_ACC_RW),),
        composite=desc.Composite(1, (desc.Constituent(page_ipa, 1),)),
    )
    return tx.encode(abi.FFA_VERSION_1_2)


def test_raw_share_names_its_handle_for_reclaim() -> None:
    buf = _share_descriptor(1, 0x40000000 + 8 * 4096)
    s = _one_vm(
        step("write_bytes", page=1, data=buf.hex()),
        step("call", call="FFA_MEM_SHARE_64", args=[len(buf), len(buf), 0, 0], name="raw"),
        step("reclaim", handle="raw"),
    )
    verdict, results = _run(s)
    assert verdict == []
    assert results[-2:] == [("FFA_MEM_SHARE_64", "success"), ("reclaim(raw)", "success")]


def test_reclaim_of_a_name_no_step_gives_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"no share step names a handle 'nope'"):
        _one_vm(step("reclaim", handle="nope"))


def test_sp_send2_reaches_the_vm_rx() -> None:
    s = Scenario(
        "send2",
        vms=[VmSpec()],
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec((step("sp_send2", sp=0x8001, vm=0, data="ping"),), context="toolstack")
        ],
    )
    inst = s.instantiate()
    inst.threads[0].body()
    vm = inst.vm(0)
    hdr = desc.IndirectMessage.decode(vm.read(vm.ipa(0), 4096), abi.FFA_VERSION_1_2)
    assert (hdr.sender, hdr.receiver, hdr.size) == (0x8001, vm.id, 4)
    assert vm.read(vm.ipa(0) + hdr.offset, 4) == b"ping"


def test_sp_send2_with_a_spoofed_sender_is_refused_by_the_spmc() -> None:
    s = Scenario(
        "send2-spoof",
        vms=[VmSpec()],
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec(
                (step("sp_send2", sp=0x8001, vm=0, sender=0x8002, expect="INVALID_PARAMETERS"),),
                context="toolstack",
            )
        ],
    )
    verdict, _ = _run(s)
    assert verdict == []


def test_new_ops_round_trip_through_toml(tmp_path: Path) -> None:
    s = Scenario(
        "rt",
        vms=[VmSpec(vcpus=2)],
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec(
                (
                    step("write_bytes", page=1, offset=8, data="00ff", expect="any"),
                    step("call", call="FFA_MEM_LEND_64", args=[64, 64, 0, 0], name="l"),
                    step("reclaim", handle="l", expect="any"),
                ),
                vm=0,
            ),
            ThreadSpec((step("sp_send2", sp=0x8001, vm=0, flags=2),), context="toolstack"),
        ],
    )
    path = tmp_path / "rt.toml"
    path.write_text(s.to_toml())
    assert load_toml(str(path)) == s


def test_vm_destroyed_times_lets_the_vm_go_after_retries(tmp_path: Path) -> None:
    from ffasim.scenario import PartitionSpec

    busy = PartitionSpec(
        id=0x8001,
        uuid="b4b5671e-4a90-4fe1-b81f-fb13dae1dacb",
        properties=abi.FFA_PART_PROP_DIRECT_REQ_RECV
        | abi.FFA_PART_PROP_AARCH64_STATE
        | abi.FFA_PART_PROP_NOTIF_CREATED
        | abi.FFA_PART_PROP_NOTIF_DESTROYED,
        vm_destroyed=abi.FFA_RET_RETRY,
        vm_destroyed_times=2,
    )
    s = Scenario("busy", vms=[VmSpec()], partitions=[busy], setup=[step("negotiate", vm=0)])
    path = tmp_path / "busy.toml"
    path.write_text(s.to_toml())
    assert "vm_destroyed_times = 2" in path.read_text()
    assert load_toml(str(path)) == s
    inst = s.instantiate()
    assert inst.finish() == []  # retried by Xen's timer, then accepted: no zombie
    assert inst.partition(0x8001).vms_destroyed.count(1) >= 3  # type: ignore[attr-defined]
    always = Scenario(
        "always",
        vms=[VmSpec()],
        partitions=[PartitionSpec(**{**busy.__dict__, "vm_destroyed_times": 0})],
        setup=[step("negotiate", vm=0)],
    )
    assert any("zombie" in line for line in always.instantiate().finish())


def test_sp_send2_runs_on_the_partition_so_it_never_races_its_handler(tmp_path: Path) -> None:
    from ffasim.scenario._check import check_scenario

    s = Scenario(
        "send2-vs-memsvc",
        vms=[VmSpec()],
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec(
                (
                    step("share", pages=[8], name="h"),
                    step("mem_op", handle="h", request="fill", arg=7, expect="any"),
                ),
                vm=0,
            ),
            ThreadSpec(
                (step("sp_send2", sp=0x8002, vm=0, expect=["success", "BUSY", "DENIED"]),),
                context="toolstack",
            ),
        ],
    )
    path = tmp_path / "s.toml"
    path.write_text(s.to_toml())
    report = check_scenario(str(path), budget=2000, out_dir=None)
    assert report.issues == [] and report.exhaustive
