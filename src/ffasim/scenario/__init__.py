"""Scenarios: VMs, partitions, sequential setup, concurrent threads and their expectations.

A scenario is loaded from a built-in name, a TOML file or a Python file (:func:`load`),
instantiated into a fresh :class:`ffasim.system.System` (:meth:`Scenario.instantiate`), run by
``ffasim run`` (threads one after another) or by the checker (threads interleaved), and judged
by :meth:`Instance.finish`. The TOML format and the Python form are documented in
``docs/scenarios.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path as _FsPath
from typing import Any

from .._suggest import did_you_mean
from ._builtin import BUILTIN_NAMES as BUILTIN_NAMES
from ._builtin import builtin_scenarios as builtin_scenarios
from ._builtin import pkvm_builtins as pkvm_builtins
from ._check import CheckError as CheckError
from ._check import CheckReport as CheckReport
from ._check import FoundIssue as FoundIssue
from ._check import check_scenario as check_scenario
from ._check import replay_file as replay_file
from ._check import replay_schedule as replay_schedule
from ._check import scenario_program as scenario_program
from ._errors import ScenarioError as ScenarioError
from ._format import KeyProblem as _KeyProblem
from ._format import convert_step as _convert_step
from ._format import step_values as _step_values
from ._model import CallRecord as CallRecord
from ._model import Instance as Instance
from ._model import PartitionSpec as PartitionSpec
from ._model import Scenario as Scenario
from ._model import SharedRegion as SharedRegion
from ._model import Step as Step
from ._model import StepEnv as StepEnv
from ._model import ThreadSpec as ThreadSpec
from ._model import VmSpec as VmSpec
from ._ops import OPS as OPS
from ._ops import OUTCOMES as OUTCOMES
from ._programs import ProgramScenario as ProgramScenario
from ._python import load_python as load_python
from ._toml import load_toml as load_toml
from ._write import to_toml as to_toml


def load(spec: str) -> Scenario | ProgramScenario:
    """The scenario ``spec`` names: a built-in name (a scenario file shipped with ffasim, or
    ``pkvm-...``, one of pKVM's checker programs), a path to a ``.toml`` or a ``.py`` file."""
    builtins = builtin_scenarios()
    if spec in builtins:
        return builtins[spec]
    pkvm = pkvm_builtins()
    if spec in pkvm:
        return pkvm[spec]
    suffix = _FsPath(spec).suffix
    if suffix == ".toml":
        return load_toml(spec)
    if suffix == ".py":
        return load_python(spec)
    if _FsPath(spec).exists():
        raise ScenarioError("a scenario file ends in .toml or .py", file=spec)
    raise ScenarioError(
        f"unknown scenario {spec!r}: not a built-in ({', '.join(builtins)}, or pKVM's "
        f"pkvm-*: see ffasim check --list) nor a .toml or .py file"
        f"{did_you_mean(spec, [*builtins, *pkvm])}"
    )


def step(
    op: str,
    *,
    vm: int | None = None,
    vcpu: int = 0,
    expect: str | list[str] = "success",
    **keys: Any,
) -> Step:
    """A step for a Python scenario, validated as a TOML step is: ``step("direct_req",
    dst=0x8001, payload=[1, 2], echo=True)``. ``vm``/``vcpu`` place a guest step of the setup
    or final phase; ``op="call"`` takes ``call="FFA_ID_GET"``."""
    table: dict[str, Any] = {("call" if op == "call" else "op"): keys.pop("call", op)}
    table.update(keys, expect=expect)
    placed = vm is not None and op in OPS and OPS[op].scope == "guest"
    if placed:
        table.update(vm=vm, vcpu=vcpu)
    elif vm is not None:
        table["vm"] = vm  # a system operation's own parameter (destroy, sp_notify)
    try:
        op, params, checks, outcomes = _step_values(_convert_step(table, placed=placed))
        return Step(op, params, checks, outcomes, vm if placed else None, vcpu if placed else 0)
    except _KeyProblem as e:
        raise ScenarioError(
            f"step {op}: {e.key}: {e.message}" if e.key else f"step {op}: {e.message}"
        ) from None


def python_step(
    fn: Any,
    label: str = "python",
    *,
    vm: int | None = None,
    vcpu: int = 0,
    expect: str | list[str] = "success",
) -> Step:
    """A step whose body is ``fn(env)`` (an :class:`StepEnv`: ``env.drv`` the vCPU's driver,
    ``env.vm``, ``env.system``); it succeeds unless ``fn`` raises
    :class:`~ffasim.guest.FfaCallError`, whose FF-A error becomes the outcome."""
    outcomes = [expect] if isinstance(expect, str) else list(expect)
    params: Mapping[str, Any] = {"label": label}
    return Step("python", params, {}, tuple(outcomes), vm, vcpu, "", fn)


__all__ = [
    "BUILTIN_NAMES",
    "OPS",
    "OUTCOMES",
    "CallRecord",
    "Instance",
    "PartitionSpec",
    "ProgramScenario",
    "Scenario",
    "ScenarioError",
    "SharedRegion",
    "Step",
    "StepEnv",
    "ThreadSpec",
    "VmSpec",
    "builtin_scenarios",
    "load",
    "load_python",
    "load_toml",
    "pkvm_builtins",
    "python_step",
    "step",
    "to_toml",
]
