"""Python scenarios: SCENARIO or scenario(), and one-line errors naming the file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ffasim import abi
from ffasim.guest import FfaCallError
from ffasim.scenario import (
    Scenario,
    ScenarioError,
    StepEnv,
    ThreadSpec,
    VmSpec,
    load,
    python_step,
    step,
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _error(text: str) -> str:
    Path("s.py").write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load("s.py")
    return str(info.value)


GOOD = """\
from ffasim.scenario import Scenario, ThreadSpec, VmSpec, step

SCENARIO = Scenario(
    "py-echo",
    "a vCPU sends a direct request",
    vms=[VmSpec(vcpus=1)],
    setup=[step("negotiate", vm=0)],
    threads=[ThreadSpec((step("direct_req", dst=0x8001, payload=[9], echo=True),), vm=0)],
)
"""


def test_scenario_constant_loads_and_runs() -> None:
    Path("s.py").write_text(GOOD, encoding="utf-8")
    sc = load("s.py")
    assert sc.name == "py-echo"
    inst = sc.instantiate()
    for th in inst.threads:
        th.body()
    assert inst.finish() == []
    assert [(r.op, r.outcome) for r in inst.results] == [
        ("negotiate", "success"),
        ("direct_req", "success"),
    ]


def test_scenario_function_loads() -> None:
    Path("s.py").write_text(
        GOOD.replace("SCENARIO = Scenario(", "def scenario():\n  return Scenario(")
    )
    assert load("s.py").name == "py-echo"


def test_neither_constant_nor_function() -> None:
    assert _error("x = 1\n") == "s.py: defines neither SCENARIO nor scenario()"


def test_scenario_of_the_wrong_type() -> None:
    assert _error("SCENARIO = 3\n") == "s.py: SCENARIO must be a ffasim.scenario.Scenario, got int"


def test_exception_names_the_line() -> None:
    assert _error("x = 1\n\nraise RuntimeError('boom')\n") == "s.py:3: RuntimeError: boom"


def test_exit_while_loading_is_an_error() -> None:
    assert _error("import sys\nsys.exit(3)\n") == "s.py: called exit(3) while loading"


def test_syntax_error_names_the_line() -> None:
    assert re.fullmatch(r"s\.py:2: invalid Python: .*", _error("x = 1\ndef (:\n"))


def test_bad_step_names_the_line_and_key() -> None:
    msg = _error("from ffasim.scenario import step\n\nS = step('direct_req', dst='x')\n")
    assert msg == "s.py:3: step direct_req: dst: must be a 16-bit endpoint ID, got 'x'"


def test_invalid_scenario_names_the_line_and_rule() -> None:
    msg = _error(
        "from ffasim.scenario import Scenario, ThreadSpec, step\n"
        "SCENARIO = Scenario('p', threads=[ThreadSpec((step('map'),), vm=2)])\n"
    )
    assert msg == "s.py:2: thread 1, vm: names VM 2, but the scenario has 1 (indices from 0)"


def test_scenario_constructor_validates() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario("x", threads=[ThreadSpec((step("run_timers"),), vm=0)])
    assert str(info.value) == (
        "<python>: thread 1, step 1, op: run_timers is not a guest operation: run it on a "
        "toolstack, sri or timer thread"
    )


def test_python_step_runs_code_and_reports_ffa_errors() -> None:
    def double_map(env: StepEnv) -> None:
        env.drv.map_buffers()
        env.drv.map_buffers()  # DENIED: already mapped

    sc = Scenario(
        "py-steps",
        vms=[VmSpec()],
        setup=[step("negotiate", vm=0)],
        threads=[
            ThreadSpec(
                (
                    python_step(double_map, "double map", expect="DENIED"),
                    python_step(lambda env: env.drv.id_get(), "id"),
                ),
                vm=0,
            )
        ],
    )
    inst = sc.instantiate()
    inst.threads[0].body()
    assert inst.finish() == []
    rec = inst.results[1]
    assert (rec.label, rec.outcome, rec.fid) == ("double map", "DENIED", abi.FFA_RXTX_MAP_64)
    assert inst.results[2].value == 1


def test_python_step_unexpected_error_is_a_violation() -> None:
    def fail(env: StepEnv) -> None:
        raise FfaCallError(abi.FFA_ID_GET, abi.error(abi.FFA_RET_BUSY))

    sc = Scenario("py-fail", threads=[ThreadSpec((python_step(fail, "busy"),), vm=0)])
    inst = sc.instantiate()
    inst.threads[0].body()
    assert inst.finish() == [
        "d0v0: busy: FFA_ID_GET returned FFA_ERROR(BUSY), expected FFA_SUCCESS"
    ]


def test_scenario_function_returning_the_wrong_type_names_the_function() -> None:
    assert _error("def scenario():\n    return 7\n") == (
        "s.py: scenario() must return a ffasim.scenario.Scenario, got int"
    )


def test_python_step_calling_exit_is_a_crash_not_the_end_of_ffasim() -> None:
    def leave(env: StepEnv) -> None:
        raise SystemExit(4)

    sc = Scenario("py-exit", threads=[ThreadSpec((python_step(leave, "leave"),), vm=0)])
    inst = sc.instantiate()
    with pytest.raises(RuntimeError) as info:
        inst.threads[0].body()
    assert str(info.value) == "leave called exit(4)"
