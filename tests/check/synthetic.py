"""Synthetic programs for validating the explorer, built on bare machine primitives.

A *spec* program is a list of threads, each a list of operations:

- ``("r", v)`` / ``("w", v)``: read / write atomic ``v`` (writes store a per-thread token);
- ``("lock", l, [ops])``: ``spin_lock(l)``, the inner ops, ``spin_unlock(l)``;
- ``("try", l, [ops])``: the inner ops under ``l`` only if ``spin_trylock(l)`` succeeds;
- ``("rlock", l, [ops])`` / ``("wlock", l, [ops])``: the inner ops under rwlock ``l``, read or
  write;
- ``("mem", page, write)``: read or write 8 bytes of a shared physical page.

Reads are recorded per thread, so an execution's *observation* (what each thread read, the
final values) is available to oracles. :func:`brute_force` enumerates every interleaving with a
trivial odometer strategy, independent of the DFS strategy under test, and
:func:`canonical_trace` identifies an execution's Mazurkiewicz trace by its dependence graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ffasim.check.explore import explore
from ffasim.check.scheduler import ExecutionResult, Program
from ffasim.check.strategies.base import BaseStrategy, Strategy
from ffasim.machine import (
    Atomic,
    Machine,
    RwLock,
    Spinlock,
    Thread,
    read_lock,
    read_unlock,
    spin_lock,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)

Op = tuple[Any, ...]
Spec = Sequence[Sequence[Op]]

SHARED_BASE_MFN = 0x90000


def build(
    spec: Spec, oracle: Callable[[Machine, dict[str, list[int]]], list[str]] | None = None
) -> Program:
    """A program running ``spec``; ``oracle(machine, reads)`` gives its finish step's
    problems (``None``: none)."""

    def program(m: Machine) -> tuple[list[Thread], Callable[[], list[str]] | None]:
        atomics: dict[str, Atomic] = {}
        locks: dict[str, Spinlock] = {}
        rwlocks: dict[str, RwLock] = {}
        reads: dict[str, list[int]] = {}

        def var(name: str) -> Atomic:
            if name not in atomics:
                atomics[name] = Atomic(m, name)
            return atomics[name]

        def lock(name: str) -> Spinlock:
            if name not in locks:
                locks[name] = m.spinlock(name)
            return locks[name]

        def rwlock(name: str) -> RwLock:
            if name not in rwlocks:
                rwlocks[name] = m.rwlock(name)
            return rwlocks[name]

        def run_ops(tname: str, token: int, ops: Sequence[Op]) -> None:
            for op in ops:
                if op[0] == "r":
                    reads[tname].append(var(op[1]).read())
                elif op[0] == "w":
                    var(op[1]).set(token)
                elif op[0] == "lock":
                    spin_lock(lock(op[1]))
                    run_ops(tname, token, op[2])
                    spin_unlock(lock(op[1]))
                elif op[0] == "try":
                    if spin_trylock(lock(op[1])):
                        run_ops(tname, token, op[2])
                        spin_unlock(lock(op[1]))
                elif op[0] == "rlock":
                    read_lock(rwlock(op[1]))
                    run_ops(tname, token, op[2])
                    read_unlock(rwlock(op[1]))
                elif op[0] == "wlock":
                    write_lock(rwlock(op[1]))
                    run_ops(tname, token, op[2])
                    write_unlock(rwlock(op[1]))
                elif op[0] == "mem":
                    pa = (SHARED_BASE_MFN + op[1]) << 12
                    if op[2]:
                        m.mem.write(pa, token.to_bytes(8, "little"), tname)
                    else:
                        reads[tname].append(int.from_bytes(m.mem.read(pa, 8, tname), "little"))
                else:
                    raise ValueError(f"bad op {op!r}")

        threads = []
        for i, ops in enumerate(spec):
            name = f"t{i}"
            reads[name] = []
            threads.append(Thread(name, lambda n=name, t=i + 1, o=ops: run_ops(n, t, o)))
        # Declare every variable and lock up front, in a fixed order.
        for ops in spec:
            for name in _names(ops, "r") | _names(ops, "w"):
                var(name)

        def finish() -> list[str]:
            return oracle(m, reads) if oracle is not None else []

        return threads, finish

    return program


def _names(ops: Sequence[Op], kind: str) -> set[str]:
    out: set[str] = set()
    for op in ops:
        if op[0] == kind:
            out.add(op[1])
        if op[0] in ("lock", "try", "rlock", "wlock"):
            out |= _names(op[2], kind)
    return out


class Odometer(BaseStrategy):
    """Every decision sequence, in lexicographic order: the trivial exhaustive scheduler."""

    name = "odometer"

    def __init__(self) -> None:
        self.path: list[list[int]] = []  # [choice, options]
        self.pos = 0
        self.started = False

    def new_execution(self) -> bool:
        if self.started:
            while self.path and self.path[-1][0] + 1 >= self.path[-1][1]:
                self.path.pop()
            if not self.path:
                return False
            self.path[-1][0] += 1
        self.started = True
        self.pos = 0
        return True

    def _pick(self, n: int) -> int:
        if self.pos < len(self.path):
            c = self.path[self.pos][0]
        else:
            self.path.append([0, n])
            c = 0
        self.pos += 1
        return c

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        return runnable[self._pick(len(runnable))]

    def next_choice(self, kind: str, site: str, n: int) -> int:
        return self._pick(n)


def key_name(key: object) -> str:
    """A name for a scheduling key that is the same in every execution."""
    name = getattr(key, "name", None)
    return str(name) if name is not None else repr(key)


def canonical_trace(result: ExecutionResult) -> tuple[Any, ...]:
    """The Mazurkiewicz trace of an execution: each thread's sequence of steps and the order
    of every pair of dependent steps of different threads (its dependence graph), plus the
    fault decisions taken (data choices)."""
    events = result.events
    per_thread: dict[str, list[tuple[str, str, bool]]] = {}
    label = []
    for t, kind, key, write in events:
        seq = per_thread.setdefault(t, [])
        label.append((t, len(seq)))
        seq.append((kind, key_name(key), write))
    edges = set()
    for j, (tj, kj, keyj, wj) in enumerate(events):
        for i in range(j):
            ti, ki, keyi, wi = events[i]
            if ti != tj and ki == kj and keyi == keyj and (wi or wj):
                edges.add((label[i], label[j]))
    faults = tuple((d.site, d.chosen) for d in result.decisions if d.kind == "fault")
    return (
        tuple(sorted((t, tuple(s)) for t, s in per_thread.items())),
        frozenset(edges),
        faults,
    )


def run_all(program: Program, strategy: Strategy, **kw: Any) -> list[ExecutionResult]:
    """Every execution ``strategy`` makes (no stop on findings), as results."""
    results: list[ExecutionResult] = []

    original_end = strategy.end_execution

    def end(result: ExecutionResult) -> None:
        results.append(result)
        original_end(result)

    strategy.end_execution = end  # type: ignore[method-assign]
    explore(program, strategy, monitors_factory=list, stop_on_first=False, **kw)
    return results


def brute_force(program: Program, **kw: Any) -> list[ExecutionResult]:
    """Every interleaving (and fault choice) of ``program``."""
    return run_all(program, Odometer(), **kw)
