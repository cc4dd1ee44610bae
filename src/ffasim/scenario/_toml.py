"""Scenario files in TOML: parse, validate against the file model, name the line of each
mistake, and build the :class:`Scenario`.

Every key, type, range and name is checked by the declarative model of :mod:`._format` (one
``msgspec.convert`` of what ``tomllib`` read); what is left here are the shapes of a
``[[thread]]`` and the sugar the file allows (``vm = [0, 1]`` on a setup step, ``toolstack =
"destroy"``, ``[[partition]]`` for ``[[partitions]]``).

``tomllib`` gives values without positions, so :class:`_Locator` finds the line of a table or
key by scanning the text: the headers (``[[thread]]``, ``[[thread.steps]]``), the ``key =``
lines of a table, and the inline tables of an array (``steps = [ {...}, {...} ]``). It is a
heuristic, and good enough: the worst case names the table's first line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path as FsPath
from typing import Any

import msgspec
from msgspec import UNSET

from ._errors import ScenarioError
from ._format import (
    NO_SCENARIO,
    NO_VM,
    PROPERTY_NAMES,
    KeyProblem,
    PartitionTable,
    ScenarioFile,
    ThreadTable,
    normalise,
    problem,
    step_values,
)
from ._kinds import KINDS, Invalid
from ._model import PartitionSpec, Path, Scenario, Step, ThreadSpec, VmSpec, describe_path


def _or(value: Any, default: Any) -> Any:
    return default if value is UNSET else value


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
        data = normalise(data)
        try:
            doc = msgspec.convert(data, ScenarioFile)
        except msgspec.ValidationError as e:
            path, message = problem(e, ScenarioFile, data)
            if message in (NO_SCENARIO, NO_VM):  # about the whole file: its start, or its end
                last = len(self.text.splitlines()) or 1
                raise ScenarioError(
                    message, file=self.file, line=1 if message == NO_SCENARIO else last
                ) from None
            raise self.fail(path, message) from None
        return self.build(doc)

    def build(self, doc: ScenarioFile) -> Scenario:
        if doc.partitions is not UNSET and doc.partition is not UNSET:
            raise self.fail(("partition",), "give [[partitions]] or [[partition]], not both")
        key = "partition" if doc.partition is not UNSET else "partitions"
        tables = doc.partition if doc.partition is not UNSET else doc.partitions
        partitions = (
            None if tables is UNSET else [self.partition((key, i), t) for i, t in enumerate(tables)]
        )
        vms = [VmSpec(_or(t.vcpus, 1), _or(t.pages, 64), _or(t.arch, "aarch64")) for t in doc.vm]
        setup, setup_from = self.placed_steps(_or(doc.setup, []), "setup")
        final, final_from = self.placed_steps(_or(doc.final, []), "final")
        threads = [self.thread(i, t) for i, t in enumerate(_or(doc.thread, []))]
        head = doc.scenario
        try:
            return Scenario(
                head.name,
                _or(head.description, ""),
                variant=_or(head.variant, None),
                hypervisor=_or(head.hypervisor, "xen"),
                vm_to_vm=_or(head.vm_to_vm, False),
                spmc_version=_or(head.spmc_version, "1.2"),
                vms=vms,
                partitions=partitions,
                setup=setup,
                threads=threads,
                final=final,
                source=self.file,
            )
        except ScenarioError as e:
            if e.path is None:
                raise
            path = e.path
            if path[:1] == ("partitions",) and key == "partition":
                path = ("partition", *path[1:])
            origin = {"setup": setup_from, "final": final_from}.get(str(path[0]))
            if origin is not None and len(path) > 1 and isinstance(path[1], int):
                path = (path[0], origin[path[1]], *path[2:])  # a step of a vm = [...] list
            raise self.fail(path, e.rule) from None

    def partition(self, path: Path, t: PartitionTable) -> PartitionSpec:
        try:
            uuid = KINDS["uuid"].convert(t.uuid)
        except Invalid as e:
            raise self.fail((*path, "uuid"), str(e)) from None
        props = _or(t.properties, ["direct_req_recv", "aarch64"])
        if isinstance(props, list):
            bits = 0
            for name in props:
                bits |= PROPERTY_NAMES[name]
            props = bits
        status = KINDS["status"].convert
        return PartitionSpec(
            t.id,
            uuid,
            _or(t.exec_ctx, 1),
            props,
            _or(t.behaviour, "echo"),
            status(_or(t.vm_created, "OK")),
            status(_or(t.vm_destroyed, "OK")),
            _or(t.vm_destroyed_times, 0),
        )

    def step(self, s: Any, path: Path, *, vm: int | None = None, vcpu: int = 0) -> Step:
        try:
            op, params, checks, expect = step_values(s)
        except KeyProblem as e:
            raise self.fail((*path, e.key) if e.key else path, e.message) from None
        return Step(op, params, checks, expect, vm, vcpu, self.where(path))

    def placed_steps(self, tables: list[Any], key: str) -> tuple[list[Step], list[int]]:
        """The steps of [[setup]] or [[final]], a ``vm = [0, 1]`` step once per VM, and for
        each the index of the table it came from."""
        steps: list[Step] = []
        origin: list[int] = []
        for j, s in enumerate(tables):
            if not hasattr(s, "vcpu"):  # a system step: vm, if any, is its own parameter
                steps.append(self.step(s, (key, j)))
                origin.append(j)
                continue
            vcpu = _or(s.vcpu, 0)
            for vm in s.vm if isinstance(s.vm, list) else [_or(s.vm, None)]:
                steps.append(self.step(s, (key, j), vm=vm, vcpu=vcpu))  # vm = [0, 1]: each
                origin.append(j)
        return steps, origin

    def thread(self, i: int, t: ThreadTable) -> ThreadSpec:
        path: Path = ("thread", i)
        given = {
            k for k in ("vm", "vcpu", "context", "toolstack", "steps") if getattr(t, k) is not UNSET
        }
        if "toolstack" in given:
            for key in ("steps", "context", "vcpu"):
                if key in given:
                    raise self.fail(
                        (*path, key), f'toolstack = "destroy" is a whole thread: no {key} with it'
                    )
            if "vm" not in given:
                raise self.fail(path, 'toolstack = "destroy" needs vm = the index of the VM')
            st = Step("destroy", {"vm": t.vm}, where=self.where((*path, "toolstack")))
            return ThreadSpec((st,), context="toolstack")
        if t.steps is UNSET or not t.steps:
            raise self.fail(
                (*path, "steps") if "steps" in given else path,
                "needs steps = [ {...}, ... ] (or [[thread.steps]] tables)",
            )
        steps = tuple(self.step(s, (*path, "steps", j)) for j, s in enumerate(t.steps))
        if "context" in given:
            for key in ("vm", "vcpu"):
                if key in given:
                    raise self.fail((*path, key), f"a {t.context!r} thread is not a vCPU: no {key}")
            return ThreadSpec(steps, context=_or(t.context, None))
        if "vm" not in given:
            raise self.fail(path, 'needs vm = the VM index (or context = "toolstack"...)')
        return ThreadSpec(steps, vm=_or(t.vm, None), vcpu=_or(t.vcpu, 0))


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
