"""Snapshots of a booted system: build it once, restore it for every later execution.

Design note
-----------
Building the system (the program's boot: SPMC, mediator, VMs, the scenario's setup steps)
costs about half of a small execution, and it is the same every time unless a fault or a
choice can happen during it. A :class:`BootCache` lives for one exploration (``explore``,
``minimise``). The first execution boots for real; if its boot offered no decision (no fault
site that the fault filter allows; boot has one context, so no thread choice either), found
nothing and raised nothing, the cache pickles everything the boot made: the execution's own
state, the monitors' state and what the program returned (threads and finish step, closures
included). Every later execution of the same program, fault filter, limits and monitor
classes unpickles that instead of booting. An execution that explores boot-time faults keeps
booting for real: the first boot offers a decision and the cache turns itself off.

Why pickle: measured on the built-in scenarios (about 2,000 objects, 150 frames), restoring
with ``pickle.loads`` costs a quarter of ``copy.deepcopy`` (which runs in Python, object by
object) and less than half of a real boot; a per-class copy protocol would be Python code per
object again. What pickle cannot or must not copy is named by *persistent id*:

- the execution (the machine's sink) and the monitors: the restoring execution and its own
  monitors stand in for them (a monitor's state is copied into the fresh monitor);
- everything the program holds itself (the scenario, its steps, its partition specs): every
  fresh boot shares those objects already, so the snapshot shares them too;
- code, modules and functions or classes that cannot be found by name.

Closures (thread bodies, the finish step) are copied as new functions over the same code with
copies of their cells, so that a restored thread runs on the restored system. Counters (a
frame's grants) are rebuilt without calling ``Counter.__init__``. Anything else that cannot be
pickled makes the cache give up: executions then boot for real, as they always could.

The boot's trace is kept beside the snapshot (its events are immutable) and only when the boot
that took it recorded one: an execution that wants a trace and finds none boots for real once,
and that boot supplies it.

``FFASIM_NO_SNAPSHOT=1`` in the environment turns snapshots off (for debugging the model: a
real boot every time); so does passing no cache to :class:`~.scheduler.Execution`.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..machine import Machine
from ..machine.events import EventSink

if TYPE_CHECKING:
    from .scheduler import Execution, FaultFilter, Program, TraceEvent

ENV_OFF = "FFASIM_NO_SNAPSHOT"
"""Environment variable: set to ``1`` to boot every execution for real."""

PER_RUN = frozenset(
    {
        "program",
        "strategy",
        "monitors",
        "faults_filter",
        "max_faults",
        "max_steps",
        "record_trace",
        "stop_on_finding",
        "boot_cache",
        "trace",
        "_ran",
        "_main",
        "_greenlets",
        "_hooks",
        "_step_hooks",
        "_step_filters",
    }
)
"""Fields of an :class:`~.scheduler.Execution` that belong to the run, not to the booted
system: the restoring execution keeps its own (the trace is restored separately)."""

_ATOMS = (type(None), bool, int, float, complex, str, bytes)

_NEWOBJ = copyreg.__newobj__  # type: ignore[attr-defined]
"""Named ``__newobj__``: pickle makes a reduction through it a bare ``cls.__new__(cls)``."""


def snapshots_enabled() -> bool:
    """Whether ``FFASIM_NO_SNAPSHOT`` leaves snapshots on."""
    return os.environ.get(ENV_OFF, "") in ("", "0")


class BootCache:
    """The booted system of one program under one fault filter and set of limits, once a boot
    showed that it has no decision to explore (see the module docstring).

    ``state`` is ``"new"`` (no boot seen yet), ``"ready"`` (a snapshot is held) or ``"off"``
    (the boot has decisions, or could not be pickled: every execution boots for real).
    """

    def __init__(
        self,
        program: Program,
        faults: FaultFilter | None = None,
        max_faults: int = 1,
        max_steps: int = 200_000,
    ) -> None:
        self.program = program
        self.faults = faults
        self.max_faults = max_faults
        self.max_steps = max_steps
        self.state = "new" if snapshots_enabled() else "off"
        self.why_off = "" if self.state == "new" else f"{ENV_OFF} is set"
        self.restores = 0
        self._data = b""
        self._table: dict[Any, Any] = {}
        self._monitor_types: tuple[type, ...] = ()
        self._trace: tuple[TraceEvent, ...] | None = None
        # What the program holds is shared by every boot: found before any boot runs.
        self._shared_ids = _reachable(_program_roots(program))

    # -- used by Execution.run ----------------------------------------------------------------
    def fits(self, ex: Execution) -> bool:
        """Whether ``ex`` runs this cache's program under the same filter and limits."""
        return (
            self.state != "off"
            and ex.program is self.program
            and ex.faults_filter is self.faults
            and ex.max_faults == self.max_faults
            and ex.max_steps == self.max_steps
        )

    def can_restore(self, ex: Execution) -> bool:
        """Whether ``ex`` may skip its boot: a snapshot fits it and has the trace it wants."""
        return (
            self.state == "ready"
            and self.fits(ex)
            and tuple(type(m) for m in ex.monitors) == self._monitor_types
            and (not ex.record_trace or self._trace is not None)
        )

    def restore(self, ex: Execution) -> Any:
        """Put the booted system into ``ex`` (fresh, its monitors attached); what the program
        returned, bound to the restored system."""
        table = dict(self._table)
        table["sink"] = ex
        for i, m in enumerate(ex.monitors):
            table[("monitor", i)] = m
        u = pickle.Unpickler(io.BytesIO(self._data))
        u.persistent_load = table.__getitem__  # type: ignore[method-assign]
        state, monitor_states, built = u.load()
        ex.__dict__.update(state)
        for m, st in zip(ex.monitors, monitor_states, strict=True):
            d = m.__dict__
            d.clear()
            d.update(st)
        assert self._trace is not None or not ex.record_trace
        ex.trace = list(self._trace) if ex.record_trace and self._trace is not None else []
        self.restores += 1
        return built

    def booted(self, ex: Execution, built: Any) -> None:
        """After a real boot of ``ex`` (before its threads start): take the snapshot, or give
        up when the boot decided, found or raised something."""
        if not self.fits(ex):
            return
        clean = (
            built is not None
            and not ex.decisions
            and not ex.findings
            and not ex.injected
            and not ex._stop
            and ex._internal is None
        )
        if not clean:
            self.state = "off"
            self.why_off = "the boot has a decision, a finding or an error"
            return
        if self.state == "new":
            try:
                self._take(ex, built)
            except (pickle.PicklingError, TypeError, AttributeError, ValueError) as e:
                self.state = "off"
                self.why_off = f"the booted system cannot be pickled: {e}"
                return
            self.state = "ready"
        if ex.record_trace and self._trace is None:
            self._trace = tuple(ex.trace)

    # -- the snapshot -------------------------------------------------------------------------
    def _take(self, ex: Execution, built: Any) -> None:
        state = {k: v for k, v in ex.__dict__.items() if k not in PER_RUN}
        monitor_states = []
        for m in ex.monitors:
            if getattr(type(m), "__slots__", None) or not hasattr(m, "__dict__"):
                raise TypeError(f"monitor {type(m).__name__} keeps its state in slots")
            monitor_states.append(m.__dict__)
        buf = io.BytesIO()
        pickler = _Pickler(buf, ex, self._shared_ids)
        pickler.dump((state, monitor_states, built))
        self._data = buf.getvalue()
        self._table = dict(enumerate(pickler.shared))
        self._monitor_types = tuple(type(m) for m in ex.monitors)


# -- pickling ---------------------------------------------------------------------------------


class _Pickler(pickle.Pickler):
    """Pickles a booted system, naming by persistent id what must not be copied."""

    def __init__(self, f: io.BytesIO, ex: Execution, shared_ids: dict[int, Any]) -> None:
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.ex = ex
        self.monitors = {id(m): i for i, m in enumerate(ex.monitors)}
        self.shared_ids = shared_ids
        self.shared: list[Any] = []
        self._index: dict[int, int] = {}

    def _share(self, obj: Any) -> int:
        i = self._index.get(id(obj))
        if i is None:
            i = self._index[id(obj)] = len(self.shared)
            self.shared.append(obj)
        return i

    def persistent_id(self, obj: Any) -> Any:
        t = type(obj)
        if t is str or t is bytes or (t is tuple and _flat(obj)):
            # Immutable: shared, which also keeps identity (the model compares some string
            # constants with ``is``, as ``state is WAITING``; unpickling would make copies).
            return self._share(obj)
        if isinstance(obj, _ATOMS):
            return None
        if obj is self.ex:
            return "sink"
        i = self.monitors.get(id(obj))
        if i is not None:
            return ("monitor", i)
        if id(obj) in self.shared_ids:
            return self._share(obj)
        if t is types.CodeType or t is types.ModuleType or t is _Template:
            return self._share(obj)
        if t is types.FunctionType or isinstance(obj, type):
            if t is types.FunctionType and obj.__closure__:
                return None  # copied: reducer_override
            return None if _by_name(obj) else self._share(obj)
        if isinstance(obj, EventSink):
            raise pickle.PicklingError(f"a second event sink in the boot: {type(obj).__name__}")
        if t.__module__ == "greenlet":
            raise pickle.PicklingError("a greenlet in the boot")
        return None

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t is types.FunctionType and obj.__closure__:
            cells = tuple(_cell_value(c) for c in obj.__closure__)
            fn_dict = obj.__dict__ or None
            return (
                _new_function,
                (_Template(obj), obj.__defaults__, obj.__kwdefaults__),
                (cells, fn_dict),
                None,
                None,
                _fill_function,
            )
        if t is Counter:
            return (_NEWOBJ, (Counter,), None, None, iter(obj.items()))
        return NotImplemented


class _Template:
    """What a copied closure shares with its original: code, globals, names."""

    __slots__ = ("code", "globals", "module", "name", "qualname")

    def __init__(self, fn: types.FunctionType) -> None:
        self.code = fn.__code__
        self.globals = fn.__globals__
        self.name = fn.__name__
        self.qualname = fn.__qualname__
        self.module = fn.__module__


class _Empty:
    """An empty closure cell (a variable not yet assigned when the closure was made)."""


def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _Empty


def _new_function(
    tpl: _Template, defaults: tuple[Any, ...] | None, kwdefaults: dict[str, Any] | None
) -> types.FunctionType:
    n = len(tpl.code.co_freevars)
    fn = types.FunctionType(
        tpl.code, tpl.globals, tpl.name, defaults, tuple(types.CellType() for _ in range(n))
    )
    fn.__qualname__ = tpl.qualname
    fn.__module__ = tpl.module
    if kwdefaults:
        fn.__kwdefaults__ = kwdefaults
    return fn


def _fill_function(
    fn: types.FunctionType, state: tuple[tuple[Any, ...], dict[str, Any] | None]
) -> types.FunctionType:
    cells, fn_dict = state
    assert fn.__closure__ is not None
    for cell, value in zip(fn.__closure__, cells, strict=True):
        if value is not _Empty:
            cell.cell_contents = value
    if fn_dict:
        fn.__dict__.update(fn_dict)
    return fn


def _flat(t: tuple[Any, ...]) -> bool:
    """Whether tuple ``t`` holds only atoms and such tuples (immutable all the way down)."""
    return all(isinstance(x, _ATOMS) or (type(x) is tuple and _flat(x)) for x in t)


def _by_name(obj: Any) -> bool:
    """Whether pickle can find ``obj`` (a class or function) again by module and name."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    if module is None:
        return False
    x: Any = module
    for part in getattr(obj, "__qualname__", "<>").split("."):
        x = getattr(x, part, None)
        if x is None:
            return False
    return x is obj


# -- what the program shares ------------------------------------------------------------------


def _program_roots(program: Callable[..., Any]) -> list[Any]:
    """What a program holds: its closure's values, defaults and bound object."""
    roots: list[Any] = []
    fn: Any = program
    if isinstance(fn, types.MethodType):
        roots.append(fn.__self__)
        fn = fn.__func__
    if isinstance(fn, types.FunctionType):
        roots.extend(_cell_value(c) for c in fn.__closure__ or ())
        roots.extend(fn.__defaults__ or ())
        roots.extend((fn.__kwdefaults__ or {}).values())
    else:
        roots.append(fn)  # a callable object
    return roots


def _reachable(roots: Iterable[Any]) -> dict[int, Any]:
    """Every object reachable from ``roots`` (by id), except atoms, code, classes, modules and
    machines or sinks (which no program shares between executions). Functions are followed
    into their closures, not their globals."""
    seen: dict[int, Any] = {}
    stack = list(roots)
    while stack:
        x = stack.pop()
        if isinstance(x, _ATOMS) or id(x) in seen:
            continue
        if isinstance(x, (type, types.ModuleType, types.CodeType, EventSink, Machine)):
            continue
        if isinstance(x, types.BuiltinFunctionType):
            continue
        seen[id(x)] = x
        stack.extend(_children(x))
    return seen


def _children(x: Any) -> Iterator[Any]:
    if isinstance(x, dict):
        yield from x.keys()
        yield from x.values()
    elif isinstance(x, (list, tuple, set, frozenset)):
        yield from x
    elif isinstance(x, types.FunctionType):
        yield from _program_roots(x)
        return
    elif isinstance(x, types.MethodType):
        yield x.__self__
        yield x.__func__
        return
    d = getattr(x, "__dict__", None)
    if isinstance(d, dict):
        yield from d.values()
    for cls in type(x).__mro__:
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if hasattr(x, name):
                yield getattr(x, name)
