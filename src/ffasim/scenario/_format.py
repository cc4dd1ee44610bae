"""The scenario file format as one declarative model: msgspec structs for the tables and one
struct per step operation, generated from :data:`~ffasim.scenario._ops.OPS`.

The model does three jobs from one source, so that they cannot drift apart: it validates a
file (:func:`msgspec.convert` of what ``tomllib`` read, every key, type, range and name), it
words each rejection as one line naming the rule (:func:`problem`, from the types' metadata,
see :mod:`._kinds`), and it is the published JSON Schema (:func:`scenario_schema`, committed
as ``schemas/scenario.schema.json``) that Taplo / Even Better TOML use to check and complete
scenario files in an editor.

What no schema states stays in code, after the model: the shapes of a ``[[thread]]`` (vCPU,
context or toolstack shorthand; :mod:`._toml`), and what refers to what (a step's VM, vCPU,
partition, handle and pages must exist; :meth:`Scenario.problems`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

import msgspec
import msgspec.inspect as mi
from msgspec import UNSET, Meta, Struct, UnsetType

from .. import abi
from .._suggest import did_you_mean
from ._kinds import EXPECT, FUNCTION_NAMES, KINDS, SUCCESS, Invalid, Kind, explain, show, strip
from ._ops import GUEST, OPS, OpDef

PROPERTY_NAMES: dict[str, int] = {
    "direct_req_recv": abi.FFA_PART_PROP_DIRECT_REQ_RECV,
    "direct_req_send": abi.FFA_PART_PROP_DIRECT_REQ_SEND,
    "indirect_msgs": abi.FFA_PART_PROP_INDIRECT_MSGS,
    "recv_notif": abi.FFA_PART_PROP_RECV_NOTIF,
    "notif_created": abi.FFA_PART_PROP_NOTIF_CREATED,
    "notif_destroyed": abi.FFA_PART_PROP_NOTIF_DESTROYED,
    "aarch64": abi.FFA_PART_PROP_AARCH64_STATE,
    "direct_req2_recv": abi.FFA_PART_PROP_DIRECT_REQ2_RECV,
    "direct_req2_send": abi.FFA_PART_PROP_DIRECT_REQ2_SEND,
}
DEFAULT_PROPERTIES: tuple[str, ...] = ("direct_req_recv", "aarch64")
BEHAVIOURS: tuple[str, ...] = ("echo", "memory", "none")
CONTEXTS: tuple[str, ...] = ("toolstack", "sri", "timer")
ARCHES: tuple[str, ...] = ("aarch64", "aarch32")
NO_SCENARIO = 'missing [scenario] table (with at least name = "...")'
NO_VM = "a scenario needs at least one [[vm]] table"


def _doc(text: str, default: Any = UNSET, **extra: Any) -> Meta:
    """A field's description (and its default, for editors), plus message metadata."""
    schema: dict[str, Any] = {"description": text}
    if default is not UNSET:
        schema["default"] = default
    return Meta(extra_json_schema=schema, extra=extra or None)


def _explain_property(v: Any) -> str:
    return (
        f"unknown property {v!r} (known: {', '.join(PROPERTY_NAMES)})"
        f"{did_you_mean(v, PROPERTY_NAMES)}"
    )


_PROPERTY = Annotated[
    Literal[tuple(PROPERTY_NAMES)],
    Meta(extra={"explain": _explain_property}),
]


# The kinds' types, as names the annotations below can use. They are built at run time, so
# for mypy they are Any: msgspec checks them, at import and on every file.
if TYPE_CHECKING:
    SpId: TypeAlias = Any
    Uuid: TypeAlias = Any
    Status: TypeAlias = Any
    VmIndex: TypeAlias = Any
    Count: TypeAlias = Any
else:
    SpId, Uuid, Status = KINDS["sp"].type, KINDS["uuid"].type, KINDS["status"].type
    VmIndex, Count = KINDS["vm"].type, KINDS["count"].type


# -- the tables --------------------------------------------------------------------------------


class ScenarioHead(Struct, forbid_unknown_fields=True, kw_only=True):
    """[scenario]: the scenario's name, what it does, and its defaults."""

    name: Annotated[
        str,
        Meta(pattern=r"^[a-z0-9][a-z0-9_.-]*$"),
        _doc(
            "lower-case letters, digits, - _ .",
            what="lower-case letters, digits, '-', '_' or '.'",
            missing='needs name = "..."',
        ),
    ]
    description: Annotated[str, _doc("one line on what it does", "")] | UnsetType = UNSET
    variant: (
        Annotated[str, _doc("the mediator variant (ffasim check --list); --variant overrides")]
        | UnsetType
    ) = UNSET
    hypervisor: (
        Annotated[
            Literal["xen", "pkvm"],
            _doc(
                "what stands between callers and the SPMC: Xen's mediator, or Linux pKVM's FF-A"
                " proxy (then the one [[vm]] is the host kernel)",
                "xen",
            ),
        ]
        | UnsetType
    ) = UNSET
    vm_to_vm: Annotated[bool, _doc("Xen's VM-to-VM messaging", False)] | UnsetType = UNSET
    spmc_version: (
        Annotated[
            Literal["1.1", "1.2"],
            _doc("the FF-A version the SPMC implements (Xen 4.19 needs 1.1)", "1.2"),
        ]
        | UnsetType
    ) = UNSET


class PartitionTable(Struct, forbid_unknown_fields=True, kw_only=True):
    """[[partitions]] (or [[partition]]): a secure partition; without any, the default
    partitions 0x8001..0x8003 are used."""

    id: Annotated[SpId, _doc("its FF-A ID, 0x8001..0xffbf")]
    uuid: Annotated[Uuid, _doc("its UUID")]
    exec_ctx: Annotated[int, Meta(ge=1, le=64), _doc("execution contexts", 1)] | UnsetType = UNSET
    properties: (
        Annotated[
            Annotated[int, Meta(ge=0, le=abi.MASK32)] | list[_PROPERTY],
            _doc("an integer, or property names", list(DEFAULT_PROPERTIES)),
        ]
        | UnsetType
    ) = UNSET
    behaviour: (
        Annotated[
            Literal[BEHAVIOURS],
            _doc(
                "echo: payload back; memory: the 0x8002 memory service; none: zeros",
                "echo",
                what=f"one of {', '.join(BEHAVIOURS)}",
            ),
        ]
        | UnsetType
    ) = UNSET
    vm_created: Annotated[Status, _doc("what it answers VM created with", "OK")] | UnsetType = UNSET
    vm_destroyed: Annotated[Status, _doc("what it answers VM destroyed with", "OK")] | UnsetType = (
        UNSET
    )
    vm_destroyed_times: (
        Annotated[
            int,
            Meta(ge=0, le=1000),
            _doc("answer vm_destroyed to this many messages per VM, then OK (0: to all)", 0),
        ]
        | UnsetType
    ) = UNSET


class VmTable(Struct, forbid_unknown_fields=True, kw_only=True):
    """[[vm]]: a VM; VMs get domids 0, 1, ... in file order, FF-A IDs domid + 1."""

    vcpus: Annotated[int, Meta(ge=1, le=8), _doc("vCPUs", 1)] | UnsetType = UNSET
    pages: Annotated[int, Meta(ge=4, le=4096), _doc("guest RAM in 4 KiB pages", 64)] | UnsetType = (
        UNSET
    )
    arch: (
        Annotated[
            Literal[ARCHES],
            _doc("the guest's execution state", "aarch64", what=f"one of {', '.join(ARCHES)}"),
        ]
        | UnsetType
    ) = UNSET


# -- the steps ---------------------------------------------------------------------------------


def _camel(op: str) -> str:
    return "".join(w.capitalize() for w in op.split("_"))


def file_key(op: str, key: str) -> str:
    """The key a file uses for parameter ``key``: a raw call's function is ``call = ...``."""
    return "call" if op == "call" and key == "fid" else key


_FIELD_TYPES: dict[tuple[str, str, str, bool], Any] = {}


def _kind_field(name: str, kind: str, doc: str, default: Any, required: bool) -> Any:
    # typing hashes every argument of a new Annotated or union (a Literal of 69 function names
    # included, each time): one type per distinct parameter, shared by the structs that have it.
    key = (kind, doc, repr(default), required)
    typ = _FIELD_TYPES.get(key)
    if typ is None:
        shown = KINDS[kind].encode(default) if default is not None else UNSET
        if isinstance(shown, int) and not isinstance(shown, bool):
            shown = int(shown)  # a Hex is for TOML; JSON has one kind of integer
        typ = Annotated[
            KINDS[kind].type, _doc(doc, list(shown) if isinstance(shown, tuple) else shown)
        ]
        _FIELD_TYPES[key] = typ = typ if required else typ | UnsetType
    return (name, typ) if required else (name, typ, UNSET)


_PLACED_VM = Annotated[
    VmIndex | Annotated[list[VmIndex], Meta(min_length=1)],
    _doc(
        "the VM that issues it (an index), or an array: the step once for each, in order",
        explain=lambda v: (
            "must list at least one VM"
            if v == []
            else f"must be a VM index (its domid, from 0), got {show(v)}"
        ),
    ),
]
_PLACED_VCPU = Annotated[Count, _doc("the vCPU that issues it", 0)]


def _step_struct(opdef: OpDef, placed: bool) -> type[Struct]:
    fields: list[Any] = []
    for key, p in opdef.params.items():
        default = None if p.required else p.default
        fields.append(_kind_field(file_key(opdef.name, key), p.kind, p.doc, default, p.required))
    for key, p in opdef.checks.items():
        if key not in opdef.params:  # a key that is both is the parameter (negotiate version)
            fields.append(_kind_field(key, p.kind, f"check: {p.doc}", None, False))
    fields.append(("expect", EXPECT | UnsetType, UNSET))
    if placed:
        fields += [("vm", _PLACED_VM | UnsetType, UNSET), ("vcpu", _PLACED_VCPU | UnsetType, UNSET)]
    cls = msgspec.defstruct(
        f"{_camel(opdef.name)}{'Placed' if placed else ''}Step",
        fields,
        tag_field="op",
        tag=opdef.name,
        forbid_unknown_fields=True,
        kw_only=True,
        module=__name__,
    )
    cls.__doc__ = f"op = {opdef.name!r}: {opdef.doc}"
    return cls


THREAD_STEPS: dict[str, type[Struct]] = {op: _step_struct(d, False) for op, d in OPS.items()}
"""The struct of each operation as a thread step (it runs on the thread's vCPU)."""
PLACED_STEPS: dict[str, type[Struct]] = {
    op: _step_struct(d, True) if d.scope == GUEST else THREAD_STEPS[op] for op, d in OPS.items()
}
"""... and as a setup or final step (a guest step names its ``vm`` and ``vcpu``)."""

if TYPE_CHECKING:
    ThreadStep: TypeAlias = Any
    PlacedStep: TypeAlias = Any
else:
    ThreadStep = Union[tuple(THREAD_STEPS.values())]  # noqa: UP007
    PlacedStep = Union[tuple(PLACED_STEPS.values())]  # noqa: UP007


class ThreadTable(Struct, forbid_unknown_fields=True, kw_only=True):
    """[[thread]]: the steps of one vCPU (vm, vcpu), of a context (toolstack, sri, timer), or
    toolstack = "destroy" with vm."""

    vm: Annotated[VmIndex, _doc("the VM whose vCPU runs it")] | UnsetType = UNSET
    vcpu: Annotated[Count, _doc("its vCPU", 0)] | UnsetType = UNSET
    context: (
        Annotated[
            Literal[CONTEXTS],
            _doc("a thread that is not a vCPU", what=f"one of {', '.join(CONTEXTS)}"),
        ]
        | UnsetType
    ) = UNSET
    toolstack: (
        Annotated[
            Literal["destroy"],
            _doc("the toolstack destroys VM vm (a whole thread)", what='"destroy"'),
        ]
        | UnsetType
    ) = UNSET
    steps: Annotated[list[ThreadStep], _doc("the steps, in order")] | UnsetType = UNSET


class ScenarioFile(Struct, forbid_unknown_fields=True, kw_only=True):
    """An ffasim scenario file (docs/scenarios.md)."""

    scenario: Annotated[ScenarioHead, _doc("name and defaults", missing=NO_SCENARIO)]
    partitions: Annotated[list[PartitionTable], _doc("secure partitions")] | UnsetType = UNSET
    partition: (
        Annotated[list[PartitionTable], _doc("secure partitions (as partitions)")] | UnsetType
    ) = UNSET
    vm: Annotated[
        list[VmTable],
        Meta(min_length=1),
        _doc(
            "the VMs",
            missing=NO_VM,
            explain=lambda v: NO_VM,
        ),
    ]
    setup: Annotated[list[PlacedStep], _doc("sequential steps before the threads")] | UnsetType = (
        UNSET
    )
    thread: Annotated[list[ThreadTable], _doc("concurrent threads")] | UnsetType = UNSET
    final: Annotated[list[PlacedStep], _doc("sequential steps after the threads")] | UnsetType = (
        UNSET
    )


ARRAYS_OF_TABLES: tuple[str, ...] = ("partitions", "partition", "vm", "setup", "thread", "final")


# -- messages ----------------------------------------------------------------------------------

Path = tuple[str | int, ...]

_AT = re.compile(r" - at `\$(.*)`$")
_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\"((?:[^\"\\]|\\.)*)\"\]")
_UNKNOWN = re.compile(r"^Object contains unknown field `(.*)`")
_MISSING = re.compile(r"^Object missing required field `(.*)`")


def _parse(message: str) -> tuple[Path, str]:
    """msgspec's ``... - at `$.thread[0].steps[1]``` as a path and the message before it."""
    m = _AT.search(message)
    if not m:
        return (), message
    path: list[str | int] = []
    for part in _PART.finditer(m[1]):
        path.append(part[1] if part[1] is not None else int(part[2]) if part[2] else part[3])
    return tuple(path), message[: m.start()]


def _struct_of(t: Any, value: Any) -> Any:
    """The struct a value is validated as, for a (tagged) union of structs."""
    base, _ = strip(t)
    if isinstance(base, mi.UnionType):
        for member in base.types:
            inner, _ = strip(member)
            if (
                isinstance(inner, mi.StructType)
                and isinstance(value, Mapping)
                and (inner.tag is None or value.get(inner.tag_field) == inner.tag)
            ):
                return inner
            if isinstance(inner, mi.ListType) and isinstance(value, list):
                return inner
    return base


def _field(struct: Any, key: str) -> Any:
    for f in struct.fields:
        if f.encode_name == key:
            return f
    return None


def _allowed(struct: Any) -> list[str]:
    return [f.encode_name for f in struct.fields]


def _is_step(struct: Any) -> bool:
    return isinstance(struct, mi.StructType) and struct.tag_field == "op"


def _explain_key(t: Any, value: Any, rest: Path) -> str:
    """The message for a bad value of a key of type ``t``; ``rest`` leads into the value (an
    element of an array) when the rule broken is the element's."""
    for i in rest:
        if not isinstance(i, int) or not isinstance(value, list) or i >= len(value):
            break
        base = _struct_of(t, value)
        if not isinstance(base, mi.ListType):
            break
        t, value = base.item_type, value[i]
    return explain(t, value)


def problem(error: msgspec.ValidationError, root: Any, data: Any) -> tuple[Path, str]:
    """Where in ``data`` (validated as type ``root``) ``error`` is, and its one-line message."""
    path, raw = _parse(str(error))
    unknown, missing = _UNKNOWN.match(raw), _MISSING.match(raw)
    t: Any = mi.type_info(root)
    value: Any = data
    walked: list[str | int] = []
    for i, part in enumerate(path):
        if part == "op" and _is_step_union(t):  # no operation has that name
            return (*walked, part), _unknown_op(
                value.get(part) if isinstance(value, Mapping) else None
            )
        base = _struct_of(t, value)
        if isinstance(base, mi.StructType) and isinstance(part, str):
            f = _field(base, part)
            if f is None:
                break
            if part == base.tag_field:  # the op of a step: not a field of any one struct
                return (*walked, part), _unknown_op(value.get(part))
            value = value.get(part) if isinstance(value, Mapping) else None
            t = f.type
            walked.append(part)
            inner = _struct_of(t, value)
            if not isinstance(inner, (mi.StructType, mi.ListType)) or _leaf(inner, path[i + 1 :]):
                return tuple(walked), _explain_key(t, value, path[i + 1 :])
        elif isinstance(base, mi.ListType) and isinstance(part, int) and isinstance(value, list):
            t, value = base.item_type, value[part] if part < len(value) else None
            walked.append(part)
        else:
            break
    here = tuple(walked)
    base = _struct_of(t, value)
    if unknown:
        return _unknown_key(here, base, unknown[1])
    if missing:
        if missing[1] == "op" and _is_step_union(t):
            return here, 'a step needs op = "..." (or call = "FFA_...")'
        return here, _missing(base, missing[1], value)
    top = here[0] if here else None
    table_like = isinstance(_strip_union(t), (mi.ListType, mi.StructType))
    whole = len(here) == 1 or (len(here) == 2 and not _is_step_union(t))
    if top in ARRAYS_OF_TABLES and table_like and whole:
        return (str(top),), f"must be written [[{top}]] (an array of tables)"
    if _is_step_union(t) or _is_step(base):
        return here, 'a step must be a table such as { op = "map" }'
    if isinstance(base, mi.StructType):
        return here, "must be a table"
    return here, explain(t, value)


def _strip_union(t: Any) -> Any:
    base, _ = strip(t)
    return base


def _is_step_union(t: Any) -> bool:
    base, _ = strip(t)
    return isinstance(base, mi.UnionType) and all(_is_step(strip(m)[0]) for m in base.types)


def _leaf(inner: Any, rest: Path) -> bool:
    """Whether a key's value is a leaf of the model (a value, or an array of values), as
    opposed to a table or an array of tables to walk into."""
    if isinstance(inner, mi.StructType):
        return False
    if isinstance(inner, mi.ListType):
        item, _ = strip(inner.item_type)
        members = item.types if isinstance(item, mi.UnionType) else (item,)
        return not any(isinstance(strip(m)[0], mi.StructType) for m in members) or not rest
    return True


def _unknown_op(op: Any) -> str:
    return f"unknown operation {op!r} (known: {', '.join(OPS)}){did_you_mean(op, OPS)}"


def _unknown_key(here: Path, struct: Any, key: str) -> tuple[Path, str]:
    allowed = _allowed(struct)
    hint = did_you_mean(key, allowed)
    if not here:
        names = ", ".join(allowed)
        return (key,), f"unknown table or key {key!r} (allowed: {names}){hint}"
    if _is_step(struct):
        vcpu = " (a thread's steps run on the thread's vCPU)" if key in ("vm", "vcpu") else ""
        keys = ", ".join(sorted(allowed))
        return (*here, key), f"{struct.tag} has no key {key!r}{vcpu} (allowed: {keys}){hint}"
    return (*here, key), f"unknown key {key!r} (allowed: {', '.join(allowed)}){hint}"


def _missing(struct: Any, key: str, value: Any) -> str:
    if _is_step(struct) and key == "op":
        return 'a step needs op = "..." (or call = "FFA_...")'
    f = _field(struct, key) if isinstance(struct, mi.StructType) else None
    extra = strip(f.type)[1] if f is not None else {}
    if "missing" in extra:
        return str(extra["missing"])
    if _is_step(struct):
        p = OPS[struct.tag].params.get("fid" if key == "call" else key)
        doc = f" ({p.doc})" if p is not None and p.doc else ""
        return f"{struct.tag} needs {key}{doc}"
    return f"needs {key}"


# -- building runtime steps from validated ones ------------------------------------------------


class KeyProblem(Exception):
    """A step breaks a rule; ``key`` is the offending key (None: the step itself)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def step_values(s: Struct) -> tuple[str, dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """A validated step struct as (op, runtime params, runtime checks, expect); raises
    :class:`KeyProblem` for a rule a conversion enforces (a page listed twice...)."""
    op = type(s).__struct_config__.tag
    assert isinstance(op, str)
    opdef = OPS[op]
    params: dict[str, Any] = {}
    checks: dict[str, Any] = {}
    for key, p in opdef.params.items():
        value = getattr(s, file_key(op, key))
        if value is UNSET:
            if p.default is not None:
                params[key] = p.default
            continue
        params[key] = _convert(KINDS[p.kind], value, file_key(op, key))
    for key, p in opdef.checks.items():
        value = getattr(s, key) if key not in opdef.params else UNSET
        if value is not UNSET:
            checks[key] = _convert(KINDS[p.kind], value, key)
    expect = getattr(s, "expect")  # noqa: B009  (every step struct has it; Struct does not)
    if expect is UNSET:
        expect = [SUCCESS]
    elif isinstance(expect, str):
        expect = [expect]
    if "any" in expect and len(expect) > 1:
        raise KeyProblem("expect", '"any" accepts every outcome; list nothing else with it')
    return op, params, checks, tuple(expect)


def _convert(kind: Kind, value: Any, key: str) -> Any:
    try:
        return kind.convert(value)
    except Invalid as e:
        raise KeyProblem(key, str(e)) from None


def convert_step(table: Mapping[str, Any], *, placed: bool) -> Struct:
    """A step table (a Python scenario's ``step(...)`` keys) validated as the file format
    would; raises :class:`KeyProblem`."""
    table = dict(table)
    if "call" in table and "op" not in table:
        table["op"] = "call"
    op = table.get("op")
    if not isinstance(op, str) or op not in OPS:
        if "op" not in table:
            raise KeyProblem(None, 'a step needs op = "..." (or call = "FFA_...")')
        raise KeyProblem("op", _unknown_op(op))
    cls = (PLACED_STEPS if placed else THREAD_STEPS)[op]
    try:
        return msgspec.convert(table, cls)
    except msgspec.ValidationError as e:
        path, message = problem(e, cls, table)
        raise KeyProblem(str(path[0]) if path else None, message) from None


def normalise(data: Any) -> Any:
    """``data`` with the one spelling the model cannot take as is made explicit: a raw call
    step, written ``{ call = "FFA_..." }``, gets ``op = "call"``."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key in ("setup", "final"):
        if isinstance(out.get(key), list):
            out[key] = [_with_op(s) for s in out[key]]
    if isinstance(out.get("thread"), list):
        out["thread"] = [
            {**t, "steps": [_with_op(s) for s in t["steps"]]}
            if isinstance(t, dict) and isinstance(t.get("steps"), list)
            else t
            for t in out["thread"]
        ]
    return out


def _with_op(step: Any) -> Any:
    if isinstance(step, dict) and "call" in step and "op" not in step:
        return {"op": "call", **step}
    return step


# -- the JSON Schema ---------------------------------------------------------------------------


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files, as editors use it (Taplo / Even Better TOML)."""
    schema: dict[str, Any] = msgspec.json.schema(ScenarioFile)
    defs = schema["$defs"]
    for name, d in defs.items():
        if name.startswith("CallStep") or name.startswith("CallPlacedStep"):
            # { call = "FFA_ID_GET" } needs no op: the call names the step.
            d["required"] = [k for k in d["required"] if k != "op"]
    root = defs.pop("ScenarioFile")
    # msgspec writes a Literal out where it is used; the 69 FF-A function names would be
    # repeated in every register check of a raw call. Name them once.
    names = {"enum": sorted(FUNCTION_NAMES)}
    defs["FunctionName"] = names

    def shared(node: Any) -> Any:
        if isinstance(node, dict):
            return (
                {"$ref": "#/$defs/FunctionName"}
                if node == names
                else {k: shared(v) for k, v in node.items()}
            )
        if isinstance(node, list):
            return [shared(v) for v in node]
        return node

    defs = {k: (v if k == "FunctionName" else shared(v)) for k, v in defs.items()}
    root = shared(root)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ffasim scenario",
        **{k: v for k, v in root.items() if k != "title"},
        "$defs": defs,
    }
