"""The file model: [[partition]], arch, did-you-mean hints, Python scenarios validated as files
are, and to_toml writing back a file that loads to an equal scenario."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ffasim import abi
from ffasim.scenario import (
    PartitionSpec,
    Scenario,
    ScenarioError,
    ThreadSpec,
    VmSpec,
    builtin_scenarios,
    load_toml,
    python_step,
    step,
    to_toml,
)

HEAD = '[scenario]\nname = "t"\n\n[[vm]]\nvcpus = 2\n'
SP = 'id = 0x8001\nuuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n'


def _error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_toml("s.toml", text=text)
    return str(info.value)


def test_partition_is_accepted_beside_partitions() -> None:
    sc = load_toml("s.toml", text=HEAD + "\n[[partition]]\n" + SP + 'behaviour = "none"\n')
    assert isinstance(sc.partitions, list)
    assert [(p.id, p.behaviour) for p in sc.partitions] == [(0x8001, "none")]
    both = HEAD + "\n[[partition]]\n" + SP + "\n[[partitions]]\n" + SP
    assert _error(both) == "s.toml:7: partition: give [[partitions]] or [[partition]], not both"


def test_partition_rules_name_the_partition_table_used() -> None:
    text = HEAD + "\n[[partition]]\n" + SP + "exec_ctx = 99\n"
    assert _error(text) == "s.toml:10: partition 1, exec_ctx: must be 1..64, got 99 (0x63)"


def test_vm_arch_defaults_to_aarch64_and_is_checked() -> None:
    sc = load_toml("s.toml", text=HEAD + '\n[[vm]]\narch = "aarch32"\n')
    assert [v.arch for v in sc.vms] == ["aarch64", "aarch32"]
    assert _error(HEAD + 'arch = "arm32"\n') == (
        "s.toml:6: vm 1, arch: must be one of aarch64, aarch32, got 'arm32' "
        "(did you mean 'aarch32'?)"
    )


def test_misspelt_operation_and_function_get_a_suggestion() -> None:
    thread = HEAD + '\n[[thread]]\nvm = 0\nsteps = [\n  { op = "direct_reqq", dst = 0x8001 },\n]\n'
    assert re.fullmatch(
        r"s\.toml:10: thread 1, step 1, op: unknown operation 'direct_reqq' \(known: .*\) "
        r"\(did you mean 'direct_req'\?\)",
        _error(thread),
    )
    call = HEAD + '\n[[thread]]\nvm = 0\nsteps = [{ call = "FFA_PARTITON_INFO_GET" }]\n'
    assert _error(call) == (
        's.toml:9: thread 1, step 1, call: must name an FF-A function such as "FFA_ID_GET", '
        "got 'FFA_PARTITON_INFO_GET' (did you mean 'FFA_PARTITION_INFO_GET'?)"
    )


def test_python_scenario_meets_the_file_rules() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario("p", vms=[VmSpec(vcpus=9)])
    assert str(info.value) == "<python>: vm 1, vcpus: must be 1..8, got 9"
    with pytest.raises(ScenarioError) as info:
        Scenario("p", partitions=[PartitionSpec(0x8001, "x-y", vm_created=5)])
    assert str(info.value) == (
        '<python>: partition 1, vm_created: must be "OK" or an FF-A error name such as "RETRY", '
        "got 5"
    )


def _python_built() -> Scenario:
    return Scenario(
        "py-round",
        "every kind of value",
        variant="seed-v1",
        vm_to_vm=True,
        vms=[VmSpec(vcpus=2, pages=32), VmSpec(arch="aarch32")],
        partitions=[
            PartitionSpec(0x8001, "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb", properties=0x3CD),
            PartitionSpec(
                0x8002,
                "b4b5671e-4a90-4fe1-b81f-fb13dae1dacc",
                exec_ctx=2,
                properties=abi.FFA_PART_PROP_DIRECT_REQ_RECV | (1 << 20),
                behaviour="memory",
                vm_destroyed=abi.FFA_RET_RETRY,
            ),
        ],
        setup=[step("negotiate", vm=0, version="1.1"), step("map", vm=0, vcpu=1, rx_page=4)],
        threads=[
            ThreadSpec(
                (
                    step("share", pages=[2, 3], fill=0x11, perms="RO", name="s1"),
                    step("mem_op", handle="s1", request="sum", sum=8192 * 0x11),
                    step("call", call="FFA_MEM_RECLAIM", args=["handle_lo:s1", "handle_hi:s1", 0]),
                    step("direct_req", dst=0x8001, payload=[2**64 - 1], bits=64, echo=True),
                    step("partition_info", uuid="B4B5671E-4A90-4FE1-B81F-FB13DAE1DACB", count=1),
                    step("features", fid="FFA_RXTX_MAP_64", expect=["success", "NOT_SUPPORTED"]),
                ),
                vm=0,
                vcpu=1,
            ),
            ThreadSpec((step("run_timers", advance=2.5, expect="any"),), context="timer"),
        ],
        final=[step("sp_check", sp=0x8002, destroyed=[2]), step("destroy", vm=1)],
    )


@pytest.mark.parametrize("name", list(builtin_scenarios()))
def test_builtin_scenarios_round_trip_through_toml(name: str) -> None:
    sc = builtin_scenarios()[name]
    assert load_toml(f"{name}.toml", text=to_toml(sc)) == sc


def test_python_scenario_round_trips_through_toml() -> None:
    sc = _python_built()
    text = sc.to_toml()
    again = load_toml("again.toml", text=text)
    assert again == sc
    assert again.to_toml() == text
    assert "id = 0x8001" in text and 'version = "1.1"' in text and "properties = 0x100001" in text


def test_scenario_equality_is_about_content() -> None:
    sc = builtin_scenarios()["partinfo-2vcpu"]
    assert sc != builtin_scenarios()["rxtx-map-race"]
    assert sc == load_toml("elsewhere.toml", text=to_toml(sc))


def test_to_toml_refuses_what_a_file_cannot_say(tmp_path: Path) -> None:
    sc = Scenario("py", threads=[ThreadSpec((python_step(lambda env: None, "mine"),), vm=0)])
    with pytest.raises(ScenarioError) as info:
        to_toml(sc)
    assert str(info.value) == "scenario py: a Python step (mine) cannot be written as TOML"
