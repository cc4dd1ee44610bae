"""Running scenarios: expectations, value checks, skipped steps, teardown and the verdict."""

from __future__ import annotations

import re

import pytest

from ffasim import abi
from ffasim.machine import Machine, RecordingSink
from ffasim.scenario import CallRecord, Instance, load_toml

HEAD = """\
[scenario]
name = "t"

[[vm]]
vcpus = 2

[[setup]]
op = "negotiate"
vm = 0
"""


def _run(text: str, variant: str | None = None) -> tuple[Instance, list[str]]:
    inst = load_toml("s.toml", text=text).instantiate(variant)
    for th in inst.threads:
        inst.system.machine.current = th.name
        th.body()
    return inst, inst.finish()


def _thread(*steps: str) -> str:
    return (
        HEAD + "\n[[thread]]\nvm = 0\nsteps = [\n" + "\n".join(f"  {s}," for s in steps) + "\n]\n"
    )


def _records(inst: Instance) -> list[tuple[str, str, str]]:
    return [(r.thread, r.op, r.outcome) for r in inst.results]


def test_unexpected_error_is_reported_with_the_step_location() -> None:
    inst, problems = _run(_thread('{ op = "map" }', '{ op = "map" }'))
    assert problems == [
        "d0v0: map(): FFA_RXTX_MAP_64 returned FFA_ERROR(DENIED), expected FFA_SUCCESS [s.toml:15]"
    ]
    rec = inst.results[-1]
    assert isinstance(rec, CallRecord)
    assert (rec.outcome, rec.fid, rec.ok, rec.error) == ("DENIED", abi.FFA_RXTX_MAP_64, False, True)
    assert abi.error_code(rec.regs or abi.regs()) == abi.FFA_RET_DENIED


def test_expected_error_is_accepted() -> None:
    inst, problems = _run(
        _thread('{ op = "map" }', '{ op = "map", expect = ["success", "DENIED"] }')
    )
    assert problems == []
    assert inst.results[-1].outcome == "DENIED" and inst.results[-1].ok


def test_success_where_an_error_was_expected() -> None:
    _inst, problems = _run(_thread('{ op = "map", expect = "DENIED" }'))
    assert problems == ["d0v0: map(): FFA_RXTX_MAP_64 succeeded, expected DENIED [s.toml:14]"]


def test_any_accepts_everything() -> None:
    _inst, problems = _run(_thread('{ op = "map" }', '{ op = "map", expect = "any" }'))
    assert problems == []


def test_value_checks_of_a_successful_answer() -> None:
    _inst, problems = _run(
        _thread(
            '{ op = "direct_req", dst = 0x8001, payload = [2], response = [1] }',
            '{ op = "direct_req", dst = 0x8001, payload = [2], echo = true }',
            '{ call = "FFA_ID_GET", w2 = 5 }',
            '{ call = "FFA_ID_GET", x0 = "FFA_SUCCESS_32", w2 = 1 }',
            '{ op = "id_get", id = "self" }',
            '{ op = "negotiate", version = "1.2", expect = "any" }',
        )
    )
    assert problems == [
        "d0v0: direct_req(0x8001): answered (0x2, 0x0, 0x0, 0x0, 0x0), expected "
        "(0x1, 0x0, 0x0, 0x0, 0x0) [s.toml:14]",
        "d0v0: FFA_ID_GET: w2 = 0x1, expected 0x5 [s.toml:16]",
    ]


def test_partition_checks() -> None:
    _inst, problems = _run(
        _thread(
            '{ op = "map" }',
            '{ op = "partition_info", ids = [0x8001, 0x8002, 0x8003, 1] }',
            '{ op = "partition_info", includes = [0x8004] }',
            '{ op = "partition_info", count_only = true, count = 3 }',
            '{ op = "partition_info_regs", count = 4 }',
        )
    )
    assert problems == [
        "d0v0: partition_info(): partitions [0x1, 0x8001, 0x8002, 0x8003] lack [0x8004] "
        "[s.toml:16]",
        "d0v0: partition_info(): 4 partitions, expected 3 [s.toml:17]",
    ]


def test_share_memory_service_and_read_back() -> None:
    inst, problems = _run(
        _thread(
            '{ op = "map" }',
            '{ op = "share", pages = [4, 5], fill = 1, name = "a" }',
            '{ op = "mem_op", handle = "a", request = "sum", sum = 8192 }',
            '{ op = "mem_op", handle = "a", request = "fill", arg = 0x77 }',
            '{ op = "read", page = 4, pages = 2, fill = 0x77 }',
            '{ op = "read", page = 4, fill = 0x78 }',
            '{ op = "reclaim", handle = "a" }',
            '{ op = "mem_op", handle = "a", request = "sum" }',
        )
    )
    assert problems == [
        "d0v0: read(page 4): page 4 byte 0 is 0x77, expected 0x78 [s.toml:19]",
    ]
    assert _records(inst)[-1] == ("d0v0", "mem_op", "skipped")  # the handle was reclaimed
    assert inst.results[-1].note == "no share named 'a' was made"


def test_memory_service_error_status_is_the_outcome() -> None:
    inst, problems = _run(
        _thread(
            '{ op = "map" }',
            '{ op = "share", pages = 1, name = "a" }',
            '{ call = "FFA_MEM_RECLAIM", args = ["handle_lo:a", "handle_hi:a"] }',
            '{ op = "mem_op", handle = "a", request = "sum", '
            'expect = ["INVALID_PARAMETERS", "DENIED"] }',
        )
    )
    assert problems == []
    assert inst.results[-1].outcome in ("INVALID_PARAMETERS", "DENIED")


def test_what_the_driver_cannot_do_is_a_violation_not_a_crash() -> None:
    inst, problems = _run(
        _thread(
            '{ op = "send2", dst = 0x8001, data = "hi" }',
            '{ op = "map" }',
            '{ op = "share", pages = 100 }',
        )
    )
    assert problems == [
        "d0v0: send2(0x8001): got driver error (the driver has no TX buffer mapped: call "
        "map_buffers() first), expected FFA_SUCCESS [s.toml:14]",
        "d0v0: share(0x8002, h): got driver error (cannot hand out 100 more pages: the VM has "
        "64), expected FFA_SUCCESS [s.toml:16]",
    ]
    assert inst.results[1].fid is None


def test_vcpu_steps_after_destroy_are_skipped() -> None:
    text = HEAD + (
        '\n[[thread]]\ntoolstack = "destroy"\nvm = 0\n'
        '\n[[thread]]\nvm = 0\nvcpu = 1\nsteps = [{ op = "id_get" }, { op = "map" }]\n'
        '\n[[final]]\nop = "sp_check"\nsp = 0x8001\ncreated = [1]\ndestroyed = [1]\n'
    )
    inst, problems = _run(text)
    assert problems == []
    assert _records(inst)[1:] == [
        ("toolstack", "destroy", "success"),
        ("d0v1", "id_get", "skipped"),
        ("d0v1", "map", "skipped"),
        ("sp8001", "sp_check", "success"),
    ]
    assert inst.results[2].note == "d0 was destroyed"


def test_partition_that_missed_a_destroy_is_reported() -> None:
    text = HEAD + '\n[[final]]\nop = "sp_check"\nsp = 0x8001\ndestroyed = [1]\n'
    _inst, problems = _run(text)
    assert problems == [
        "sp8001: sp_check(0x8001): partition 0x8001 was not told VMs [0x1] were destroyed "
        "(it saw []) [s.toml:11]"
    ]


def test_partition_refusing_vm_destroyed_forever_leaks() -> None:
    text = HEAD.replace(
        "[[vm]]",
        '[[partitions]]\nid = 0x8001\nuuid = "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"\n'
        'properties = ["direct_req_recv", "notif_destroyed", "aarch64"]\n'
        'vm_destroyed = "RETRY"\n\n[[vm]]',
    )
    _inst, problems = _run(text)
    assert problems, "a VM that can never be destroyed must show in the verdict"
    assert all(p.startswith("leak: ") for p in problems)


def test_sri_thread_and_notifications() -> None:
    text = HEAD + (
        '\n[[setup]]\nop = "notification_bind"\nvm = 0\nsender = 0x8001\nbitmap = 2\n'
        '\n[[setup]]\nop = "sp_notify"\nsp = 0x8001\nvm = 0\nbitmap = 2\n'
        '\n[[thread]]\ncontext = "sri"\nsteps = [{ op = "run_tasklets", ran = 1 }]\n'
        "\n[[thread]]\nvm = 0\nsteps = [\n"
        '  { op = "notification_info_get", ids = [1] },\n'
        '  { op = "notification_get", sp = 2 },\n'
        '  { op = "notification_info_get", expect = "NO_DATA" },\n]\n'
    )
    inst, problems = _run(text)
    assert problems == []
    assert [r.outcome for r in inst.results] == ["success"] * 6 + ["NO_DATA"]


def test_finish_is_computed_once() -> None:
    inst, problems = _run(_thread('{ op = "map" }', '{ op = "map" }'))
    assert inst.finish() == problems and len(problems) == 1


def test_instantiate_on_a_given_machine_records_the_setup() -> None:
    sink = RecordingSink()
    machine = Machine(sink)
    inst = load_toml("s.toml", text=_thread('{ op = "map" }')).instantiate(machine=machine)
    assert inst.system.machine is machine
    hvc = [e for e in sink.events if e[0] == "call" and e[1] == "hvc"]
    assert [(e[2], abi.name(e[3][0])) for e in hvc] == [("d0v0", "FFA_VERSION")]
    assert [t.name for t in inst.threads] == ["d0v0"]


@pytest.mark.parametrize("variant", ["reference", "seed-v1"])
def test_variant_argument_overrides_the_scenario(variant: str) -> None:
    text = HEAD.replace('name = "t"', 'name = "t"\nvariant = "seed-v1"')
    inst = load_toml("s.toml", text=text).instantiate(variant)
    assert inst.system.variant == variant
    version = inst.results[0].value
    assert re.fullmatch(r"1\.[12]", abi.version_str(version))
