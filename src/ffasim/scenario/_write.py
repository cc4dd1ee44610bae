"""A :class:`Scenario` as its file form: the document the file model validates
(:func:`to_document`) and a TOML file that loads to an equal scenario (:func:`to_toml`).

``ffasim hunt`` writes its counterexamples this way, and a scenario built in Python is
validated through the same document, so it meets exactly the rules a file meets
(:func:`document_problem`). Runtime values go back to the file's spelling through each kind's
``encode`` (``0x10002`` -> ``"1.2"``, a function ID -> its name); parameters equal to their
defaults are left out, as a person would write the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from ._errors import ScenarioError
from ._format import DEFAULT_PROPERTIES, PROPERTY_NAMES, ScenarioFile, file_key, normalise, problem
from ._kinds import KINDS, SUCCESS, Hex
from ._model import PartitionSpec, Path, Scenario, Step, ThreadSpec
from ._ops import GUEST, OPS

_DEFAULT_PROPS = sum(PROPERTY_NAMES[n] for n in DEFAULT_PROPERTIES)


class _Unwritable(Exception):
    """Part of a scenario that a file cannot say (a Python step, partitions from a function)."""


def _encode(kind: str, value: Any) -> Any:
    try:
        return KINDS[kind].encode(value)
    except Exception:  # a value of the wrong type, built in Python: the model will say so
        return value


def _step(st: Step, placed: bool, strict: bool) -> dict[str, Any]:
    if st.op == "python":
        raise _Unwritable(f"a Python step ({st.label()}) cannot be written as TOML")
    opdef = OPS.get(st.op)
    table: dict[str, Any] = {"op": st.op}
    if opdef is None:
        return table
    if st.op == "call":
        del table["op"]  # { call = "FFA_..." } names the step
    for key, value in st.params.items():
        p = opdef.params.get(key)
        if p is not None and not p.required and value == p.default:
            continue
        table[file_key(st.op, key)] = _encode(p.kind, value) if p is not None else value
    for key, value in st.checks.items():
        c = opdef.checks.get(key)
        table[key] = _encode(c.kind, value) if c is not None else value
    if tuple(st.expect) != (SUCCESS,):
        table["expect"] = st.expect[0] if len(st.expect) == 1 else list(st.expect)
    if placed and opdef.scope == GUEST:
        if st.vm is not None:
            table["vm"] = st.vm
        if st.vcpu:
            table["vcpu"] = st.vcpu
    elif st.vm is not None and strict:
        table["vm"] = st.vm  # wrong here: the model says so
    return table


def _partition(sp: PartitionSpec) -> dict[str, Any]:
    table: dict[str, Any] = {"id": Hex(sp.id), "uuid": sp.uuid}
    if sp.exec_ctx != 1:
        table["exec_ctx"] = sp.exec_ctx
    if sp.properties != _DEFAULT_PROPS:
        names = [n for n, bit in PROPERTY_NAMES.items() if sp.properties & bit]
        exact = sum(PROPERTY_NAMES[n] for n in names) == sp.properties
        table["properties"] = names if exact and names else Hex(sp.properties)
    if sp.behaviour != "echo":
        table["behaviour"] = sp.behaviour
    for key, code in (("vm_created", sp.vm_created), ("vm_destroyed", sp.vm_destroyed)):
        if code != 0:
            table[key] = _encode("status", code)
    if sp.vm_destroyed_times:
        table["vm_destroyed_times"] = sp.vm_destroyed_times
    return table


def _thread(th: ThreadSpec, strict: bool) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if th.context is not None:
        table["context"] = th.context
    else:
        table["vm"] = th.vm
        if th.vcpu:
            table["vcpu"] = th.vcpu
    table["steps"] = _steps(th.steps, False, strict)
    return table


def _steps(steps: tuple[Step, ...], placed: bool, strict: bool) -> list[dict[str, Any]]:
    out = []
    for st in steps:
        try:
            out.append(_step(st, placed, strict))
        except _Unwritable:
            if strict:
                raise
            out.append({"op": "id_get", "expect": list(st.expect) or ["(none)"]})
    return out


def to_document(sc: Scenario, *, strict: bool = True) -> dict[str, Any]:
    """The file form of ``sc`` (what its TOML file holds, as plain data). ``strict``: raise
    :class:`ScenarioError` for what a file cannot say; otherwise stand in for it (Python
    steps, partitions from a function), to validate the rest."""
    head: dict[str, Any] = {"name": sc.name}
    if sc.description:
        head["description"] = sc.description
    if sc.variant is not None:
        head["variant"] = sc.variant
    if sc.hypervisor != "xen":
        head["hypervisor"] = sc.hypervisor
    if sc.vm_to_vm:
        head["vm_to_vm"] = sc.vm_to_vm
    if sc.spmc_version != "1.2":
        head["spmc_version"] = sc.spmc_version
    doc: dict[str, Any] = {"scenario": head}
    if callable(sc.partitions):
        if strict:
            raise _Unwritable("partitions given as a function cannot be written as TOML")
    elif sc.partitions is not None:
        doc["partitions"] = [_partition(sp) for sp in sc.partitions]
    doc["vm"] = [
        {
            k: v
            for k, v in (("vcpus", vm.vcpus), ("pages", vm.pages), ("arch", vm.arch))
            if v != {"vcpus": 1, "pages": 64, "arch": "aarch64"}[k]
        }
        for vm in sc.vms
    ]
    for key, steps in (("setup", sc.setup), ("final", sc.final)):
        if steps:
            doc[key] = _steps(steps, True, strict)
    if sc.threads:
        doc["thread"] = [_thread(th, strict) for th in sc.threads]
    return doc


def document_problem(sc: Scenario) -> tuple[Path, str] | None:
    """The first rule of the file model that ``sc`` breaks, with where; None: none."""
    data = normalise(to_document(sc, strict=False))
    try:
        doc = msgspec.convert(data, ScenarioFile)
    except msgspec.ValidationError as e:
        return problem(e, ScenarioFile, data)
    del doc
    return None


def to_toml(sc: Scenario) -> str:
    """``sc`` as a TOML scenario file that loads to an equal scenario. Raises
    :class:`ScenarioError` for a scenario a file cannot hold (Python steps, partitions built
    by a function)."""
    try:
        doc = to_document(sc)
    except _Unwritable as e:
        raise ScenarioError(f"scenario {sc.name}: {e}") from None
    out: list[str] = []
    _table(out, "[scenario]", doc["scenario"])
    for key in ("partitions", "vm", "setup"):
        for table in doc.get(key, ()):
            _table(out, f"[[{key}]]", table)
    for table in doc.get("thread", ()):
        steps = table.pop("steps")
        _table(out, "[[thread]]", table)
        out.append("steps = [")
        out += [f"  {_value(s)}," for s in steps]
        out.append("]")
    for table in doc.get("final", ()):
        _table(out, "[[final]]", table)
    return "\n".join(out) + "\n"


def _table(out: list[str], header: str, table: Mapping[str, Any]) -> None:
    if out:
        out.append("")
    out.append(header)
    out += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(s: str) -> str:
    # JSON's escapes are TOML's, but for DEL, which TOML wants escaped too.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Hex):
        return f"0x{int(v):x}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise ScenarioError(f"a value TOML cannot hold: {v!r}")
