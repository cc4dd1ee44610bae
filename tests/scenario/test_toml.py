"""The TOML scenario loader: valid files, and every validation rule with its whole message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ffasim import abi
from ffasim.scenario import ScenarioError, load, load_toml

HEAD = """\
[scenario]
name = "t"

[[vm]]
vcpus = 2
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _write(text: str, name: str = "s.toml") -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def _error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load(_write(text))
    return str(info.value)


def _assert_error(text: str, pattern: str) -> None:
    msg = _error(text)
    assert re.fullmatch(pattern, msg), msg


# -- valid files ----------------------------------------------------------------------------


def test_complete_file_loads_every_section() -> None:
    sc = load(
        _write(
            HEAD
            + """
[[vm]]
pages = 16

[[partitions]]
id = 0x8001
uuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"
properties = ["direct_req_recv", "notif_destroyed", "aarch64"]
vm_destroyed = "RETRY"

[[setup]]
op = "negotiate"
vm = [0, 1]
version = "1.1"

[[thread]]
vm = 0
vcpu = 1
steps = [
  { op = "direct_req", dst = 0x8001, payload = [1, 2], echo = true, expect = ["success", "BUSY"] },
  { call = "FFA_ID_GET", w2 = 1 },
]

[[thread]]
toolstack = "destroy"
vm = 1

[[final]]
op = "sp_check"
sp = 0x8001
destroyed = [2]
"""
        )
    )
    assert sc.name == "t" and sc.variant is None and not sc.vm_to_vm
    assert [(v.vcpus, v.pages) for v in sc.vms] == [(2, 64), (1, 16)]
    assert isinstance(sc.partitions, list)
    sp = sc.partitions[0]
    assert sp.properties == (
        abi.FFA_PART_PROP_DIRECT_REQ_RECV
        | abi.FFA_PART_PROP_NOTIF_DESTROYED
        | abi.FFA_PART_PROP_AARCH64_STATE
    )
    assert sp.vm_destroyed == abi.FFA_RET_RETRY
    assert [(s.op, s.vm, s.params["version"]) for s in sc.setup] == [
        ("negotiate", 0, abi.FFA_VERSION_1_1),
        ("negotiate", 1, abi.FFA_VERSION_1_1),
    ]
    req, call = sc.threads[0].steps
    assert sc.threads[0].name == "d0v1"
    assert req.params == {"dst": 0x8001, "payload": (1, 2), "bits": 32}
    assert req.checks == {"echo": True}
    assert req.expect == ("success", "BUSY")
    assert req.where == "s.toml:25"
    assert call.op == "call" and call.params["fid"] == abi.FFA_ID_GET and call.checks == {"w2": 1}
    assert sc.threads[1].name == "toolstack"
    assert sc.threads[1].steps[0].params == {"vm": 1}
    assert sc.final[0].checks == {"destroyed": (2,)}


def test_steps_as_array_of_tables() -> None:
    sc = load(
        _write(
            HEAD
            + """
[[thread]]
vm = 0

[[thread.steps]]
op = "id_get"

[[thread.steps]]
op = "partition_info"
count_only = true
count = 4
"""
        )
    )
    steps = sc.threads[0].steps
    assert [s.op for s in steps] == ["id_get", "partition_info"]
    assert steps[1].where == "s.toml:13"


def test_scenario_text_without_a_file() -> None:
    sc = load_toml("inline.toml", text=HEAD + '[[thread]]\nvm = 0\nsteps = [{ op = "map" }]\n')
    assert sc.source == "inline.toml"
    assert sc.threads[0].steps[0].params == {"rx_page": 0, "tx_page": 1, "pages": 1, "bits": 64}


# -- file-level rules -----------------------------------------------------------------------


def test_invalid_toml_names_line_and_column() -> None:
    _assert_error(HEAD + "x = = 1\n", r"s\.toml:6: invalid TOML: Invalid value \(column 5\)")


def test_missing_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load("nope.toml")
    assert str(info.value) == "nope.toml: cannot read: No such file or directory"


def test_unknown_scenario_name() -> None:
    with pytest.raises(ScenarioError) as info:
        load("no-such-scenario")
    assert re.fullmatch(
        r"unknown scenario 'no-such-scenario': not a built-in \(default, partinfo-2vcpu, .*\) "
        r"nor a \.toml or \.py file",
        str(info.value),
    )


def test_existing_file_of_another_type() -> None:
    Path("s.txt").write_text("x")
    with pytest.raises(ScenarioError) as info:
        load("s.txt")
    assert str(info.value) == "s.txt: a scenario file ends in .toml or .py"


def test_missing_scenario_table() -> None:
    _assert_error(
        "[[vm]]\n", r's\.toml:1: missing \[scenario\] table \(with at least name = "\.\.\."\)'
    )


def test_unknown_top_level_table() -> None:
    _assert_error(
        HEAD + "\n[[threads]]\nvm = 0\n",
        r"s\.toml:7: threads: unknown table or key 'threads' \(allowed: scenario, partitions, "
        r"partition, vm, setup, thread, final\) \(did you mean 'thread'\?\)",
    )


def test_unknown_scenario_key() -> None:
    _assert_error(
        '[scenario]\nname = "t"\nvarient = "seed-v1"\n[[vm]]\n',
        r"s\.toml:3: scenario, varient: unknown key 'varient' \(allowed: name, description, "
        r"variant, hypervisor, vm_to_vm, spmc_version\) \(did you mean 'variant'\?\)",
    )


def test_scenario_name_must_be_a_slug() -> None:
    _assert_error(
        '[scenario]\nname = "Bad Name"\n[[vm]]\n',
        r"s\.toml:2: scenario, name: must be lower-case letters, digits, '-', '_' or '\.', "
        r"got 'Bad Name'",
    )


def test_unknown_variant() -> None:
    _assert_error(
        '[scenario]\nname = "t"\nvariant = "seed-v9"\n[[vm]]\n',
        r"s\.toml:3: scenario, variant: unknown variant 'seed-v9' \(known: .*reference.*\) "
        r"\(did you mean 'seed-v1'\?\)",
    )


def test_vm_to_vm_must_be_a_bool() -> None:
    _assert_error(
        '[scenario]\nname = "t"\nvm_to_vm = 1\n[[vm]]\n',
        r"s\.toml:3: scenario, vm_to_vm: must be true or false, got 1",
    )


def test_at_least_one_vm() -> None:
    _assert_error(
        '[scenario]\nname = "t"\n', r"s\.toml:2: a scenario needs at least one \[\[vm\]\] table"
    )


def test_vm_vcpus_out_of_range() -> None:
    _assert_error(
        '[scenario]\nname = "t"\n\n[[vm]]\nvcpus = 9\n',
        r"s\.toml:5: vm 1, vcpus: must be 1\.\.8, got 9",
    )


def test_vm_unknown_key() -> None:
    _assert_error(
        '[scenario]\nname = "t"\n\n[[vm]]\nmemory = 9\n',
        r"s\.toml:5: vm 1, memory: unknown key 'memory' \(allowed: vcpus, pages, arch\)",
    )


# -- partitions -----------------------------------------------------------------------------


def test_partition_needs_uuid() -> None:
    _assert_error(
        HEAD + "\n[[partitions]]\nid = 0x8001\n",
        r"s\.toml:7: partition 1: needs uuid",
    )


def test_partition_id_must_be_secure() -> None:
    _assert_error(
        HEAD + '\n[[partitions]]\nid = 5\nuuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n',
        r"s\.toml:8: partition 1, id: must be a secure partition ID \(0x8001\.\.0xffbf\), got 5",
    )


def test_partition_unknown_property() -> None:
    _assert_error(
        HEAD
        + '\n[[partitions]]\nid = 0x8001\nuuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n'
        + 'properties = ["fast"]\n',
        r"s\.toml:10: partition 1, properties: unknown property 'fast' \(known: "
        r"direct_req_recv, .*\)",
    )


def test_partition_unknown_behaviour_and_status() -> None:
    base = HEAD + '\n[[partitions]]\nid = 0x8001\nuuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n'
    _assert_error(
        base + 'behaviour = "sing"\n',
        r"s\.toml:10: partition 1, behaviour: must be one of echo, memory, none, got 'sing'",
    )
    _assert_error(
        base + 'vm_created = "LATER"\n',
        r's\.toml:10: partition 1, vm_created: must be "OK" or an FF-A error name such as '
        r'"RETRY", got \'LATER\'',
    )


def test_partition_listed_twice() -> None:
    sp = '\n[[partitions]]\nid = 0x8001\nuuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n'
    _assert_error(HEAD + sp + sp, r"s\.toml:12: partition 2, id: 0x8001 is listed twice")


# -- threads --------------------------------------------------------------------------------


def test_thread_names_a_missing_vm() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\nvm = 3\nsteps = [{ op = "map" }]\n',
        r"s\.toml:8: thread 1, vm: names VM 3, but the scenario has 1 \(indices from 0\)",
    )


def test_thread_names_a_missing_vcpu() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\nvm = 0\nvcpu = 2\nsteps = [{ op = "map" }]\n',
        r"s\.toml:9: thread 1, vcpu: names vCPU 2, but VM 0 has 2 vCPUs \(0\.\.1\)",
    )


def test_two_threads_on_one_vcpu() -> None:
    th = '\n[[thread]]\nvm = 0\nsteps = [{ op = "map" }]\n'
    _assert_error(
        HEAD + th + th,
        r"s\.toml:11: thread 2: a second thread runs as d0v0; merge their steps",
    )


def test_thread_without_steps() -> None:
    _assert_error(
        HEAD + "\n[[thread]]\nvm = 0\n",
        r"s\.toml:7: thread 1: needs steps = \[ \{\.\.\.\}, \.\.\. \] \(or \[\[thread\.steps\]\] "
        r"tables\)",
    )


def test_thread_unknown_key() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\nvm = 0\ncpu = 1\nsteps = [{ op = "map" }]\n',
        r"s\.toml:9: thread 1, cpu: unknown key 'cpu' \(allowed: vm, vcpu, context, "
        r"toolstack, steps\) \(did you mean 'vcpu'\?\)",
    )


def test_thread_unknown_context() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\ncontext = "irq"\nsteps = [{ op = "run_tasklets" }]\n',
        r"s\.toml:8: thread 1, context: must be one of toolstack, sri, timer, got 'irq'",
    )


def test_toolstack_shorthand_only_destroys() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\ntoolstack = "create"\nvm = 0\n',
        r"s\.toml:8: thread 1, toolstack: must be \"destroy\", got 'create'",
    )


def test_guest_operation_on_a_toolstack_thread() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\ncontext = "toolstack"\nsteps = [{ op = "map" }]\n',
        r"s\.toml:9: thread 1, step 1, op: map is a guest operation: it needs a vCPU thread, "
        r"not toolstack",
    )


def test_system_operation_on_a_vcpu_thread() -> None:
    _assert_error(
        HEAD + '\n[[thread]]\nvm = 0\nsteps = [{ op = "run_tasklets" }]\n',
        r"s\.toml:9: thread 1, step 1, op: run_tasklets is not a guest operation: run it on a "
        r"toolstack, sri or timer thread",
    )


# -- steps ----------------------------------------------------------------------------------


def _thread(steps: str) -> str:
    return HEAD + f"\n[[thread]]\nvm = 0\nsteps = [\n{steps}\n]\n"


def test_step_unknown_operation() -> None:
    _assert_error(
        _thread('  { op = "teleport" },'),
        r"s\.toml:10: thread 1, step 1, op: unknown operation 'teleport' \(known: negotiate, "
        r"id_get, .*\)",
    )


def test_step_without_op() -> None:
    _assert_error(
        _thread('  { op = "map" },\n  { dst = 1 },'),
        r's\.toml:11: thread 1, step 2: a step needs op = "\.\.\." \(or call = "FFA_\.\.\."\)',
    )


def test_step_unknown_key_names_the_allowed_ones() -> None:
    _assert_error(
        _thread('  { op = "map" },\n  { op = "direct_req", dts = 0x8001 },'),
        r"s\.toml:11: thread 1, step 2, dts: direct_req has no key 'dts' \(allowed: bits, dst, "
        r"echo, expect, payload, response\) \(did you mean 'dst'\?\)",
    )


def test_step_vm_belongs_to_the_thread() -> None:
    _assert_error(
        _thread('  { op = "map", vm = 0 },'),
        r"s\.toml:10: thread 1, step 1, vm: map has no key 'vm' \(a thread's steps run on the "
        r"thread's vCPU\) \(allowed: bits, expect, pages, rx_page, tx_page\)",
    )


def test_step_missing_required_key() -> None:
    _assert_error(
        _thread('  { op = "direct_req" },'),
        r"s\.toml:10: thread 1, step 1: direct_req needs dst \(the receiver's FF-A ID\)",
    )


def test_step_wrong_type() -> None:
    _assert_error(
        _thread('  { op = "direct_req", dst = "sp1" },'),
        r"s\.toml:10: thread 1, step 1, dst: must be a 16-bit endpoint ID, got 'sp1'",
    )


def test_step_value_out_of_range() -> None:
    _assert_error(
        _thread('  { op = "direct_req", dst = 0x18001 },'),
        r"s\.toml:10: thread 1, step 1, dst: must be a 16-bit endpoint ID, got 98305 \(0x18001\)",
    )


def test_step_payload_too_long() -> None:
    _assert_error(
        _thread('  { op = "direct_req", dst = 0x8001, payload = [1, 2, 3, 4, 5, 6] },'),
        r"s\.toml:10: thread 1, step 1, payload: must be an array of at most 5 integers, got 6",
    )


def test_step_unknown_outcome() -> None:
    _assert_error(
        _thread('  { op = "map", expect = ["success", "BUZY"] },'),
        r"s\.toml:10: thread 1, step 1, expect: unknown outcome 'BUZY'; expected \"success\", "
        r"\"any\" or an FF-A error name \(NOT_SUPPORTED, .*\)",
    )


def test_step_any_stands_alone() -> None:
    _assert_error(
        _thread('  { op = "map", expect = ["any", "BUSY"] },'),
        r's\.toml:10: thread 1, step 1, expect: "any" accepts every outcome; list nothing else '
        r"with it",
    )


def test_step_unknown_function_name() -> None:
    _assert_error(
        _thread('  { call = "FFA_TELEPORT" },'),
        r's\.toml:10: thread 1, step 1, call: must name an FF-A function such as "FFA_ID_GET", '
        r"got 'FFA_TELEPORT'",
    )


def test_step_bad_raw_argument_symbol() -> None:
    _assert_error(
        _thread('  { call = "FFA_RXTX_MAP_64", args = ["ipa:x"] },'),
        r's\.toml:10: thread 1, step 1, args: register values are integers or "id", "ipa:N", '
        r'"to:ID", "handle_lo:NAME", "handle_hi:NAME"; got \'ipa:x\'',
    )


def test_step_bad_version() -> None:
    _assert_error(
        _thread('  { op = "negotiate", version = "one" },'),
        r's\.toml:10: thread 1, step 1, version: must be a version such as "1\.2", got \'one\'',
    )


def test_step_bad_uuid() -> None:
    _assert_error(
        _thread('  { op = "partition_info", uuid = "1234" },'),
        r's\.toml:10: thread 1, step 1, uuid: must be a UUID such as "[0-9a-f-]+", got \'1234\'',
    )


def test_step_handle_nobody_shares() -> None:
    _assert_error(
        _thread('  { op = "reclaim", handle = "h9" },'),
        r"s\.toml:10: thread 1, step 1, handle: no share step names a handle 'h9'",
    )


def test_step_page_outside_ram() -> None:
    _assert_error(
        _thread('  { op = "map", rx_page = 64 },'),
        r"s\.toml:10: thread 1, step 1, rx_page: page 64 is outside VM 0's 64 pages",
    )
    _assert_error(
        _thread('  { op = "share", pages = [2, 99] },'),
        r"s\.toml:10: thread 1, step 1, pages: page 99 is outside VM 0's 64 pages",
    )


def test_step_share_lists_a_page_twice() -> None:
    _assert_error(
        _thread('  { op = "share", pages = [2, 2] },'),
        r"s\.toml:10: thread 1, step 1, pages: must not list a page twice",
    )


def test_setup_guest_step_needs_a_vm() -> None:
    _assert_error(
        HEAD + '\n[[setup]]\nop = "map"\n',
        r"s\.toml:7: setup 1, vm: map needs vm = the index of one of the 1 VMs",
    )


def test_setup_vm_list_must_not_be_empty() -> None:
    _assert_error(
        HEAD + '\n[[setup]]\nop = "map"\nvm = []\n',
        r"s\.toml:9: setup 1, vm: must list at least one VM",
    )


def test_destroy_of_a_missing_vm() -> None:
    _assert_error(
        HEAD + '\n[[final]]\nop = "destroy"\nvm = 4\n',
        r"s\.toml:9: final 1, vm: names VM 4, but the scenario has 1 \(indices from 0\)",
    )


def test_inline_step_key_is_located_on_its_own_line() -> None:
    text = _thread('  { op = "map" },\n  { op = "id_get",\n    id = "me" },').replace(
        '{ op = "id_get",\n    id', '{ op = "id_get", id'
    )
    # Inline tables are one line in TOML 1.0: the key is on the step's line.
    _assert_error(
        text,
        r"s\.toml:11: thread 1, step 2, id: must be a 16-bit endpoint ID or \"self\", got 'me'",
    )


def test_step_names_a_partition_the_scenario_lacks() -> None:
    _assert_error(
        HEAD + '\n[[final]]\nop = "sp_check"\nsp = 0x8009\n',
        r"s\.toml:9: final 1, sp: no partition 0x8009 in this scenario \(it has 0x8001, "
        r"0x8002, 0x8003\)",
    )


def test_count_only_has_no_ids_to_check() -> None:
    _assert_error(
        _thread('  { op = "partition_info", count_only = true, ids = [0x8001] },'),
        r"s\.toml:10: thread 1, step 1, ids: a count-only call lists no IDs to check",
    )


def test_unquoted_version_is_a_float_and_the_message_says_to_quote_it() -> None:
    _assert_error(
        HEAD + '\n[[setup]]\nop = "negotiate"\nvm = 0\nversion = 1.2\n',
        r's\.toml:10: setup 1, version: must be a version string such as "1\.2" \(quoted\), '
        r"got the float 1\.2",
    )


@pytest.mark.parametrize(
    ("value", "shown"), [("true", "true"), ("2.0", r"2\.0 \(a float\)"), ('"two"', "'two'")]
)
def test_vcpus_of_the_wrong_type_is_shown_as_written(value: str, shown: str) -> None:
    _assert_error(
        f'[scenario]\nname = "t"\n\n[[vm]]\nvcpus = {value}\n',
        rf"s\.toml:5: vm 1, vcpus: must be 1\.\.8, got {shown}",
    )
