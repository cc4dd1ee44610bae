"""Scenario files in TOML: parse, validate every key, and name the line of each mistake.

``tomllib`` gives values without positions, so :class:`_Locator` finds the line of a table or
key by scanning the text: the headers (``[[thread]]``, ``[[thread.steps]]``), the ``key =``
lines of a table, and the inline tables of an array (``steps = [ {...}, {...} ]``). It is a
heuristic, and good enough: the worst case names the table's first line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from .. import abi
from ._errors import ScenarioError
from ._model import (
    BEHAVIOURS,
    CONTEXTS,
    KeyProblem,
    PartitionSpec,
    Path,
    Scenario,
    Step,
    ThreadSpec,
    VmSpec,
    build_step,
    describe_path,
)
from ._ops import Invalid, Param, _show, convert

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

_TOP_KEYS = ("scenario", "partitions", "vm", "setup", "thread", "final")
_SCENARIO_KEYS = ("name", "description", "variant", "vm_to_vm", "spmc_version")
_PARTITION_KEYS = (
    "id",
    "uuid",
    "exec_ctx",
    "properties",
    "behaviour",
    "vm_created",
    "vm_destroyed",
)
_VM_KEYS = ("vcpus", "pages", "arch")
_THREAD_KEYS = ("vm", "vcpu", "context", "toolstack", "steps")


class _Locator:
    """Finds the line of a :data:`Path` in the TOML text."""

    _HEADER = re.compile(r"^[ \t]*(\[\[?)[ \t]*([A-Za-z0-9_.\- \t\"]+?)[ \t]*\]\]?", re.M)

    def __init__(self, text: str) -> None:
        self.text = text
        # (path, start offset, end offset) of every table, in order.
        self.sections: list[tuple[Path, int, int]] = []
        counters: dict[Path, int] = {}
        last_of: dict[str, Path] = {}
        found: list[tuple[Path, int]] = []
        for m in self._HEADER.finditer(text):
            names = [n.strip().strip('"') for n in m[2].split(".")]
            if m[1] == "[[":
                parent: Path = ()
                if len(names) > 1:
                    parent = last_of.get(".".join(names[:-1]), tuple(names[:-1]))
                key = (*parent, names[-1])
                index = counters.get(key, 0)
                counters[key] = index + 1
                path: Path = (*key, index)
            else:
                path = tuple(names)
            last_of[".".join(names)] = path
            found.append((path, m.start()))
        starts = [s for _, s in found]
        self.sections.append(((), 0, starts[0] if starts else len(text)))
        for k, (path, start) in enumerate(found):
            end = found[k + 1][1] if k + 1 < len(found) else len(text)
            self.sections.append((path, start, end))

    def line(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def line_of(self, path: Path) -> int:
        best: tuple[Path, int, int] = self.sections[0]
        for sec in self.sections:
            p = sec[0]
            if len(p) >= len(best[0]) and path[: len(p)] == p and (p or not best[0]):
                best = sec
        if not best[0] and path:
            # A table that only exists as [[path]] headers: its first header.
            for sec in self.sections:
                if sec[0][: len(path)] == path:
                    return self.line(sec[1])
        sec_path, start, end = best
        rest = path[len(sec_path) :]
        pos = start
        if not rest:
            return self.line(pos)
        if isinstance(rest[0], str):
            key = self._key(rest[0], start, end)
            if key is None:
                return self.line(pos)
            pos = key
            if len(rest) > 1 and isinstance(rest[1], int):
                elem = self._element(pos, rest[1])
                if elem is None:
                    return self.line(pos)
                pos = elem[0]
                if len(rest) > 2 and isinstance(rest[2], str):
                    m = re.compile(rf"[{{,][ \t]*\"?{re.escape(rest[2])}\"?[ \t]*=").search(
                        self.text, elem[0], elem[1]
                    )
                    if m:
                        pos = m.start() + 1
        return self.line(pos)

    def _key(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^[ \t]*\"?{re.escape(key)}\"?[ \t]*=", re.M)
        m = pattern.search(self.text, start, end)
        return m.start() if m else None

    def _element(self, key_pos: int, index: int) -> tuple[int, int] | None:
        """Start and end offsets of element ``index`` of the array value at ``key_pos``."""
        text = self.text
        i = text.index("=", key_pos) + 1
        depth = 0
        k = -1
        elem_start = 0
        while i < len(text):
            c = text[i]
            if c in "\"'":
                i = self._skip_string(i)
                continue
            if c == "#":
                nl = text.find("\n", i)
                i = len(text) if nl < 0 else nl
                continue
            if c in "[{":
                depth += 1
                if depth == 2:
                    k += 1
                    elem_start = i
            elif c in "]}":
                depth -= 1
                if depth == 1 and k == index:
                    return elem_start, i + 1
                if depth == 0:
                    return None
            i += 1
        return None

    def _skip_string(self, i: int) -> int:
        text = self.text
        q = text[i]
        if text.startswith(q * 3, i):
            end = text.find(q * 3, i + 3)
            return len(text) if end < 0 else end + 3
        j = i + 1
        while j < len(text) and text[j] != q and text[j] != "\n":
            j += 2 if text[j] == "\\" and q == '"' else 1
        return j + 1


class _Loader:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.loc = _Locator(text)

    def fail(self, path: Path, message: str) -> ScenarioError:
        where = describe_path(path)
        return ScenarioError(
            f"{where}: {message}" if where else message, file=self.file, line=self.loc.line_of(path)
        )

    def where(self, path: Path) -> str:
        return f"{self.file}:{self.loc.line_of(path)}"

    # -- helpers ----------------------------------------------------------------------------

    def table(self, value: Any, path: Path, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a table")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key), f"unknown key {key!r} (allowed: {', '.join(allowed)})"
                )
        return value

    def tables(self, data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail((key,), f"must be written [[{key}]] (an array of tables)")
        return value

    def value(self, path: Path, kind: str, value: Any) -> Any:
        try:
            return convert(Param(kind), value)
        except Invalid as e:
            raise self.fail(path, str(e)) from None

    # -- sections ---------------------------------------------------------------------------

    def load(self) -> Scenario:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as e:
            msg = str(e)
            m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
            if m:
                text = msg[: m.start()].strip()
                raise ScenarioError(
                    f"invalid TOML: {text} (column {m[2]})", file=self.file, line=int(m[1])
                ) from None
            raise ScenarioError(f"invalid TOML: {msg}", file=self.file) from None
        for key in data:
            if key not in _TOP_KEYS:
                raise self.fail(
                    (key,), f"unknown table or key {key!r} (allowed: {', '.join(_TOP_KEYS)})"
                )
        if "scenario" not in data:
            raise ScenarioError(
                'missing [scenario] table (with at least name = "...")', file=self.file, line=1
            )
        head = self.table(data["scenario"], ("scenario",), _SCENARIO_KEYS)
        if "name" not in head:
            raise self.fail(("scenario",), 'needs name = "..."')
        name = self.value(("scenario", "name"), "str", head["name"])
        description = self.value(("scenario", "description"), "str", head.get("description", ""))
        variant = head.get("variant")
        if variant is not None:
            variant = self.value(("scenario", "variant"), "str", variant)
        vm_to_vm = self.value(("scenario", "vm_to_vm"), "bool", head.get("vm_to_vm", False))
        spmc_version = self.value(
            ("scenario", "spmc_version"), "str", head.get("spmc_version", "1.2")
        )
        partitions = [self.partition(i, t) for i, t in enumerate(self.tables(data, "partitions"))]
        vms = [self.vm(i, t) for i, t in enumerate(self.tables(data, "vm"))]
        if not vms:
            raise ScenarioError(
                "a scenario needs at least one [[vm]] table",
                file=self.file,
                line=len(self.text.splitlines()) or 1,
            )
        setup = self.placed_steps(data, "setup")
        final = self.placed_steps(data, "final")
        threads = [self.thread(i, t) for i, t in enumerate(self.tables(data, "thread"))]
        try:
            return Scenario(
                name,
                description,
                variant=variant,
                vm_to_vm=vm_to_vm,
                spmc_version=spmc_version,
                vms=vms,
                partitions=partitions if "partitions" in data else None,
                setup=setup,
                threads=threads,
                final=final,
                source=self.file,
            )
        except ScenarioError as e:
            if e.path is None:
                raise
            raise ScenarioError(e.problem, file=self.file, line=self.loc.line_of(e.path)) from None

    def partition(self, i: int, t: dict[str, Any]) -> PartitionSpec:
        path: Path = ("partitions", i)
        self.table(t, path, _PARTITION_KEYS)
        for key in ("id", "uuid"):
            if key not in t:
                raise self.fail(path, f"needs {key}")
        sp_id = self.value((*path, "id"), "sp", t["id"])
        uuid = self.value((*path, "uuid"), "uuid", t["uuid"])
        exec_ctx = t.get("exec_ctx", 1)
        if isinstance(exec_ctx, bool) or not isinstance(exec_ctx, int) or not 1 <= exec_ctx <= 64:
            raise self.fail((*path, "exec_ctx"), f"must be 1..64, got {_show(exec_ctx)}")
        props = t.get("properties", ["direct_req_recv", "aarch64"])
        if isinstance(props, list):
            bits = 0
            for p in props:
                if p not in PROPERTY_NAMES:
                    raise self.fail(
                        (*path, "properties"),
                        f"unknown property {p!r} (known: {', '.join(PROPERTY_NAMES)})",
                    )
                bits |= PROPERTY_NAMES[p]
            props = bits
        else:
            props = self.value((*path, "properties"), "u32", props)
        behaviour = t.get("behaviour", "echo")
        if behaviour not in BEHAVIOURS:
            raise self.fail(
                (*path, "behaviour"), f"must be one of {', '.join(BEHAVIOURS)}, got {behaviour!r}"
            )
        created = self.value((*path, "vm_created"), "status", t.get("vm_created", "OK"))
        destroyed = self.value((*path, "vm_destroyed"), "status", t.get("vm_destroyed", "OK"))
        return PartitionSpec(sp_id, uuid, exec_ctx, props, behaviour, created, destroyed)

    def vm(self, i: int, t: dict[str, Any]) -> VmSpec:
        path: Path = ("vm", i)
        self.table(t, path, _VM_KEYS)
        vcpus = t.get("vcpus", 1)
        pages = t.get("pages", 64)
        if isinstance(vcpus, bool) or not isinstance(vcpus, int) or not 1 <= vcpus <= 8:
            raise self.fail((*path, "vcpus"), f"must be 1..8, got {_show(vcpus)}")
        if isinstance(pages, bool) or not isinstance(pages, int) or not 4 <= pages <= 4096:
            raise self.fail((*path, "pages"), f"must be 4..4096, got {_show(pages)}")
        arch = self.value((*path, "arch"), "str", t.get("arch", "aarch64"))
        return VmSpec(vcpus, pages, arch)

    def step(self, t: Any, path: Path, *, placed: bool) -> Step:
        if not isinstance(t, dict):
            raise self.fail(path, 'a step must be a table such as { op = "map" }')
        try:
            return build_step(t, placed=placed, where=self.where(path))
        except KeyProblem as e:
            raise self.fail((*path, e.key) if e.key else path, e.message) from None

    def placed_steps(self, data: Mapping[str, Any], key: str) -> list[Step]:
        steps: list[Step] = []
        for j, t in enumerate(self.tables(data, key)):
            vm = t.get("vm")
            if isinstance(vm, list):  # vm = [0, 1]: the same step on each VM, in order
                if not vm:
                    raise self.fail((key, j, "vm"), "must list at least one VM")
                for v in vm:
                    steps.append(self.step({**t, "vm": v}, (key, j), placed=True))
            else:
                steps.append(self.step(t, (key, j), placed=True))
        return steps

    def thread(self, i: int, t: dict[str, Any]) -> ThreadSpec:
        path: Path = ("thread", i)
        self.table(t, path, _THREAD_KEYS)
        if "toolstack" in t:
            for key in ("steps", "context", "vcpu"):
                if key in t:
                    raise self.fail(
                        (*path, key), f'toolstack = "destroy" is a whole thread: no {key} with it'
                    )
            if t["toolstack"] != "destroy":
                raise self.fail((*path, "toolstack"), f'must be "destroy", got {t["toolstack"]!r}')
            if "vm" not in t:
                raise self.fail(path, 'toolstack = "destroy" needs vm = the index of the VM')
            vm = self.value((*path, "vm"), "vm", t["vm"])
            st = build_step(
                {"op": "destroy", "vm": vm}, placed=False, where=self.where((*path, "toolstack"))
            )
            return ThreadSpec((st,), context="toolstack")
        steps_value = t.get("steps")
        if not isinstance(steps_value, list) or not steps_value:
            raise self.fail(
                (*path, "steps") if "steps" in t else path,
                "needs steps = [ {...}, ... ] (or [[thread.steps]] tables)",
            )
        steps = tuple(
            self.step(s, (*path, "steps", j), placed=False) for j, s in enumerate(steps_value)
        )
        if "context" in t:
            for key in ("vm", "vcpu"):
                if key in t:
                    raise self.fail(
                        (*path, key), f"a {t['context']!r} thread is not a vCPU: no {key}"
                    )
            context = t["context"]
            if context not in CONTEXTS:
                raise self.fail(
                    (*path, "context"), f"must be one of {', '.join(CONTEXTS)}, got {context!r}"
                )
            return ThreadSpec(steps, context=context)
        if "vm" not in t:
            raise self.fail(path, 'needs vm = the VM index (or context = "toolstack"...)')
        vm = self.value((*path, "vm"), "vm", t["vm"])
        vcpu = self.value((*path, "vcpu"), "count", t.get("vcpu", 0))
        return ThreadSpec(steps, vm=vm, vcpu=vcpu)


def load_toml(path: str | FsPath, *, text: str | None = None) -> Scenario:
    """The scenario in TOML file ``path`` (or ``text``, named ``path`` in messages)."""
    file = str(path)
    if text is None:
        try:
            text = FsPath(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ScenarioError(f"cannot read: {reason}", file=file) from None
    return _Loader(text, file).load()
