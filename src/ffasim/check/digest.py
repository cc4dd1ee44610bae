"""A fingerprint of everything a model holds: what "the same terminal state" means.

The cross-check (:mod:`.crosscheck`) compares the terminal states that two searches reach. A
state is every value reachable from the roots it is given (a ``System``, the threads' own
records): numbers, strings, bytes, containers and the fields of objects, walked in a fixed
order. Object identity does not count (two executions build different objects), and neither does
the insertion order of dicts and sets; list order does, since the model's lists are ordered
(a lock's readers, the heap's free list). Code (functions, methods, classes, modules) and the
checker itself (event sinks, :class:`Opaque` holders) are left out. An object met again is named
by when it was first met, so that a shared object and two equal copies differ.
"""

from __future__ import annotations

import enum
import hashlib
import types
from collections import Counter
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from ..machine.events import EventSink

T = TypeVar("T")


class Opaque(Generic[T]):
    """A value kept beside a model that a fingerprint does not walk: bookkeeping whose layout
    depends on the interleaving (a scenario's results in the order they happened), not state."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


_SKIP_TYPES = (
    EventSink,
    Opaque,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)


class _Walker:
    def __init__(self) -> None:
        self.h = hashlib.blake2b(digest_size=16)
        self.seen: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps visited objects alive, so that ids stay unique

    def put(self, tag: str, text: str = "") -> None:
        self.h.update(f"{tag}{len(text)}:{text};".encode())

    def walk(self, x: Any) -> None:
        if x is None or isinstance(x, (bool, int, float, str)):
            self.put(type(x).__name__[0], repr(x))
            return
        if isinstance(x, (bytes, bytearray, memoryview)):
            data = bytes(x)
            self.put("b", hashlib.blake2b(data, digest_size=16).hexdigest())
            return
        if isinstance(x, enum.Enum):
            self.put("e", f"{type(x).__name__}.{x.name}")
            return
        if isinstance(x, _SKIP_TYPES) or (callable(x) and not hasattr(x, "__dict__")):
            self.put("-")
            return
        ref = self.seen.get(id(x))
        if ref is not None:
            self.put("@", str(ref))
            return
        self.seen[id(x)] = len(self.seen)
        self.keep.append(x)
        if isinstance(x, (list, tuple)):
            self.put("[", str(len(x)))
            for item in x:
                self.walk(item)
        elif isinstance(x, dict):
            items = list(x.items())
            if isinstance(x, Counter):  # a zero count is no entry (grants come and go)
                items = [(k, v) for k, v in items if v]
            self.put("{", str(len(items)))
            for k, v in sorted(items, key=lambda kv: _order_key(kv[0])):
                self.walk(k)
                self.walk(v)
        elif isinstance(x, (set, frozenset)):
            self.put("<", str(len(x)))
            for item in sorted(x, key=_order_key):
                self.walk(item)
        else:
            self.put("o", type(x).__qualname__)
            for name, value in _fields(x):
                if isinstance(value, _SKIP_TYPES):
                    continue
                self.put(".", name)
                self.walk(value)

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def _order_key(k: Any) -> tuple[str, str]:
    """A sort key for dict keys and set items of any type, independent of identity."""
    if isinstance(k, enum.Enum):
        return ("e", f"{type(k).__name__}.{k.name}")
    if k is None or isinstance(k, (bool, int, float, str, bytes, tuple)):
        return (type(k).__name__, repr(k))
    name = getattr(k, "name", None)
    return (type(k).__qualname__, str(name) if name is not None else "")


def _fields(x: Any) -> Iterable[tuple[str, Any]]:
    names: list[str] = []
    for cls in type(x).__mro__:
        names.extend(s for s in getattr(cls, "__slots__", ()) if s not in names)
    d = getattr(x, "__dict__", None)
    if d is not None:
        names.extend(n for n in d if n not in names)
    for name in sorted(names):
        if name.startswith("__"):
            continue
        try:
            yield name, getattr(x, name)
        except AttributeError:
            continue


def fingerprint(*roots: Any) -> str:
    """A hex digest of everything reachable from ``roots`` (see the module docstring)."""
    w = _Walker()
    for root in roots:
        w.walk(root)
    return w.hexdigest()
