"""The controlled scheduler: runs a program's threads as greenlets and decides who runs next.

Design note
-----------
An :class:`Execution` is the machine's :class:`~ffasim.machine.events.EventSink`. The model
calls ``point(kind, key, write)`` before every operation another thread could observe (lock
operations, atomics, guarded fields, world switches into the SPMC) and the execution adds one
before every access to physical memory; between two points a thread only touches its own
state. So an execution is a sequence of *steps*: a step is one thread's operation at a point
plus the local code up to its next point, and a schedule only has to say which thread takes
each step. Steps are what the partial-order reduction reasons about: two steps conflict when
they name the same key and one of them writes.

Every thread body runs in its own greenlet. Switching is decentralised: the running greenlet
asks the strategy at its own point and, only when another thread is chosen, switches straight
to that thread's greenlet (one switch, no round trip through a central loop; none at all when
the strategy keeps the current thread). A greenlet that ends returns to the main greenlet,
which starts the next chosen thread. Each greenlet saves ``machine.current`` when it suspends
and restores it when it resumes, since a thread body may change it (``vm.smc`` runs as the
vCPU's context).

Before the first decision every thread is *primed*: run up to its first point, in order. The
code before a thread's first point is local, so this loses no interleaving and saves one
decision per thread.

A step may also declare accesses that are not scheduling points (``access``): shared state that
the model reads or changes inside a step (the heap, a frame's owner and grants, a mailbox's
state, what a monitor reads to judge). They join the step's *footprint*, which is what the
reduction compares: two steps are dependent when any two of their accesses conflict.

A thread that waits for a held lock (``block``) is disabled until the lock is released; it then
retries the acquisition as a step of its own (``(lock, lock, write)``), which the release
happens-before (a "wake" edge the reduction must not try to reverse). When no live thread is
runnable and some wait, the execution reports a ``deadlock`` with the waits-for chain.

A domain paused for destruction deschedules its vCPUs (``deschedule``): their threads stop
where they are and never run again, as Xen never runs a dying domain's vCPUs. An execution that
ends early (a finding stopped it, or vCPUs were descheduled) leaves steps that threads were
ready to take; the result lists them (``virtual``) so that the reduction can consider running
them earlier.

Only points with more than one runnable thread are decisions, and every fault site the fault
filter allows is one (option 0 = no fault). The list of decisions determines the execution
bit for bit: nothing here depends on dict order of unordered data, ``id()``, hashing of
objects into choices or the wall clock.

A panic (``HypervisorPanic``, ``FirmwarePanic``) becomes a finding of kind ``assertion``, a
``Deadlock`` exception ``deadlock``, an ``AccessFault`` escaping the model ``isolation`` and
any other exception ``crash``; each stops the execution, as the real system would be dead.
Exceptions raised by the checker itself (strategies, monitors, replay divergence) are not
findings: they propagate out of :meth:`Execution.run`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greenlet import GreenletExit, getcurrent, greenlet  # type: ignore[import-untyped]

from .. import abi
from ..machine import (
    AccessFault,
    Deadlock,
    EventSink,
    FirmwarePanic,
    Frame,
    HypervisorPanic,
    Machine,
    Thread,
)
from ..machine.events import LOCK, MEM
from .monitor import FINDING_KINDS, Finding, Monitor
from .schedule import FAULT, THREAD, Decision

if TYPE_CHECKING:
    from ..machine.locks import Lockable
    from .snapshot import BootCache
    from .strategies.base import Strategy

Program = Callable[[Machine], "tuple[list[Thread], Callable[[], list[str]] | None]"]
"""Builds a system on a fresh machine (in context ``"boot"``) and returns the threads to
interleave and an optional finish step (run in context ``"toolstack"`` after every thread
ended; it returns problem lines: ``"leak: ..."`` becomes a ``leak`` finding, ``"note: ..."``
a note (a consequence the system accepts by design, not a finding), anything else a ``spec``
finding)."""

FaultFilter = Callable[[str], "tuple[int, ...] | None"]
"""For a fault site (``"smc:FFA_PARTITION_INFO_GET"``), the choices that may be injected
there, or ``None``: never inject there."""

Op = tuple[str, object, bool]
"""A pending operation: ``(kind, key, write)`` of a scheduling point."""

StepEvent = tuple[str, str, object, bool]
"""One executed step: ``(thread, kind, key, write)`` of its scheduling point (the first access
of its footprint; ``ExecutionResult.extra`` holds the others)."""

# Phases of an execution.
_BOOT, _PRIMING, _RUNNING, _FINISH, _DEAD = range(5)

# States of a thread.
_RUNNABLE, _BLOCKED, _DONE = range(3)

_CHECK_DIR = "/ffasim/check/"

NOTE_PREFIX = "note: "
"""How a finish step's note lines start (see :data:`Program`)."""


@dataclass(frozen=True)
class TraceEvent:
    """One event of an execution's trace.

    ``kind`` is one of ``"thread-start"``, ``"thread-end"``, ``"switch"``, ``"call"``,
    ``"ret"`` (``data = (layer, regs)``), ``"lock"``, ``"unlock"``, ``"block"``, ``"wake"``,
    ``"fault"`` (``data = (site, code)``), ``"log"``, ``"violation"`` (``data = (kind,)``),
    ``"alloc"``, ``"free"``, ``"mem"`` (``data = (party, mfn, offset, size, write)``; only for
    frames granted to another party, or all of them when ``Execution.trace_memory`` is set),
    ``"finding"`` (``data = (kind,)``). ``step`` is the scheduling step it happened in.
    """

    step: int
    thread: str
    kind: str
    detail: str
    data: tuple[Any, ...] = ()


@dataclass
class ExecutionResult:
    """What one execution did and found."""

    decisions: list[Decision]
    findings: list[Finding]
    trace: list[TraceEvent]
    steps: int
    preemptions: int
    faults: list[tuple[int, str, int]]
    """Injected faults: ``(step, site, code)``."""
    problems: list[str]
    """What the program's finish step returned (also turned into findings and notes)."""
    pruned: bool = False
    """The strategy abandoned the execution as redundant (a sleep-set-blocked DPOR branch)."""
    events: list[StepEvent] = field(default_factory=list)
    """Every step of the threads, in order (what DPOR analyses)."""
    wake_edges: dict[int, int] = field(default_factory=dict)
    """``j -> i``: step ``j`` is a lock retry enabled by the release in step ``i``."""
    threads: tuple[str, ...] = ()
    """The program's threads, in order."""
    extra: dict[int, list[Op]] = field(default_factory=dict)
    """Step index -> the accesses it declared besides its scheduling point (``access``)."""
    notes: list[str] = field(default_factory=list)
    """What the finish step reported as accepted consequences (``"note: ..."`` lines)."""
    virtual: list[tuple[str, int, int]] = field(default_factory=list)
    """``(thread, position, woken_by)``: a step ``thread`` was ready to take after the first
    ``position`` steps and never took, because the execution stopped early (a finding) or
    the thread was descheduled (its domain was paused); ``woken_by`` is the step whose release
    made it ready (its retry of a lock), else -1."""

    @property
    def found(self) -> bool:
        return bool(self.findings)

    def footprint(self, i: int) -> tuple[Op, ...]:
        """Every access of step ``i``: its scheduling point's, then those it declared."""
        _, kind, key, write = self.events[i]
        more = self.extra.get(i)
        return ((kind, key, write), *more) if more else ((kind, key, write),)


class VcpuDescheduled(BaseException):
    """Internal: unwinds a vCPU thread whose domain is being paused (not an error: a
    ``BaseException`` so that no model code catches it)."""


class _Abandon(Exception):
    """Internal: unwinds a boot/finish phase that the strategy or a finding stopped."""


class Execution(EventSink):
    """One run of a program under a strategy; the machine's event sink.

    ``monitors`` see every event; ``faults`` says where faults may be injected (``None``:
    nowhere) and ``max_faults`` how many per execution; ``max_steps`` stops a livelock;
    ``record_trace=False`` skips the trace (for fast exploration: the explorer replays a
    failing schedule with the trace on). ``stop_on_finding`` stops the threads at the next
    scheduling point after a monitor reported a finding. ``boot_cache`` (one per exploration,
    see ``snapshot.py``) restores the booted system instead of building it when it can, and
    takes the snapshot after a real boot.
    """

    def __init__(
        self,
        program: Program,
        strategy: Strategy,
        monitors: Sequence[Monitor] = (),
        *,
        faults: FaultFilter | None = None,
        max_faults: int = 1,
        max_steps: int = 200_000,
        record_trace: bool = True,
        stop_on_finding: bool = True,
        boot_cache: BootCache | None = None,
    ) -> None:
        self.program = program
        self.boot_cache = boot_cache
        self.strategy = strategy
        self.monitors: list[Monitor] = list(monitors)
        self.faults_filter = faults
        self.max_faults = max_faults
        self.max_steps = max_steps
        self.record_trace = record_trace
        self.stop_on_finding = stop_on_finding
        self.trace_memory = False
        """Set by a monitor that wants every memory access in the trace."""

        self.machine = Machine(sink=self)
        self.current_thread = "boot"
        self.step = 0
        self.trace: list[TraceEvent] = []
        self.findings: list[Finding] = []
        self.decisions: list[Decision] = []
        self.injected: list[tuple[int, str, int]] = []
        self.preemptions = 0
        self.problems: list[str] = []
        self.events: list[StepEvent] = []
        self.wake_edges: dict[int, int] = {}
        self.extra: dict[int, list[Op]] = {}
        self.notes: list[str] = []
        self.virtual: list[tuple[str, int, int]] = []
        self.pending: dict[str, Op] = {}
        """The operation each suspended thread performs when it next runs."""

        self._phase = _BOOT
        self._ran = False
        self._stop = False
        self._pruned = False
        self._internal: BaseException | None = None
        self._order: tuple[str, ...] = ()
        self._state: dict[str, int] = {}
        self._runnable: tuple[str, ...] = ()
        self._greenlets: dict[str, greenlet] = {}
        self._main: greenlet | None = None
        self._next: str | None = None
        self._waiting: dict[str, Lockable] = {}
        self._waiters: dict[Lockable, list[str]] = {}
        self._woken_by: dict[str, int] = {}
        self._calls: dict[str, list[int | None]] = {}
        """Per context, the function IDs of the calls it is inside (named only when needed)."""
        self.hvc_calls: dict[str, list[str]] = {}
        """Per context, the FF-A names of the guest hypercalls (``hvc`` layer) it is inside,
        innermost last: the monitors' shared view (see ``CallTracking``). Pushed before the
        monitors see a call, popped after they saw its return."""
        self._hooks: dict[str, list[Callable[..., None]]] = _NO_HOOKS
        self._step_hooks: dict[str, list[Callable[..., None]]] = {}
        self._step_filters: list[tuple[frozenset[str] | None, Callable[..., None]]] = []

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> ExecutionResult:
        """Run the program once; return what happened. Raises what the checker itself raised
        (a strategy's ``ReplayDivergence``, a monitor's bug), never what the model raised."""
        if self._ran:
            raise RuntimeError("an Execution runs once; create a new one")
        self._ran = True
        begin = getattr(self.strategy, "begin", None)
        if begin is not None:
            begin(self)
        for m in self.monitors:
            m.attach(self)
        if self.monitors:
            self._hooks = _hooks_of(self.monitors)
            self._step_filters = [
                (getattr(m, "step_kinds", None), m.on_step)
                for m in self.monitors
                if _active(type(m), "on_step")
            ]
        self._main = getcurrent()

        # Boot: the program builds its system, single-threaded (only fault decisions), or a
        # snapshot of the same boot is restored.
        cache = self.boot_cache
        if cache is not None and cache.can_restore(self):
            built = cache.restore(self)
        else:
            self.machine.current = self.current_thread = "boot"
            built = self._guarded_call(lambda: self.program(self.machine))
            if cache is not None:
                cache.booted(self, built)
        if built is not None and not self._stop:
            threads, finish = built
            self._start_threads(threads)
            if not self._stop:
                self._run_finish(finish)
        self._note_unfinished()
        self._kill_all()
        if self._internal is not None:
            raise self._internal
        return ExecutionResult(
            decisions=self.decisions,
            findings=self.findings,
            trace=self.trace,
            steps=self.step,
            preemptions=self.preemptions,
            faults=self.injected,
            problems=self.problems,
            pruned=self._pruned,
            events=self.events,
            wake_edges=self.wake_edges,
            threads=self._order,
            extra=self.extra,
            virtual=self.virtual,
            notes=self.notes,
        )

    def _guarded_call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the main greenlet (boot or finish), turning model exceptions into
        findings."""
        try:
            return fn()
        except _Abandon:
            return None
        except Exception as e:
            self._exception_finding(self.current_thread, e)
            return None

    def _start_threads(self, threads: list[Thread]) -> None:
        names = [t.name for t in threads]
        if len(set(names)) != len(names):
            raise ValueError(f"program returned duplicate thread names: {names}")
        self._order = tuple(names)
        for t in threads:
            self._state[t.name] = _RUNNABLE
            self._calls[t.name] = []
            self._greenlets[t.name] = greenlet(self._thread_main_factory(t), parent=self._main)
        self._refresh_runnable()
        # Prime every thread: run it to its first point, in order.
        self._phase = _PRIMING
        for t in threads:
            self._greenlets[t.name].switch()
            if self._stop:
                return
        self._phase = _RUNNING
        self.current_thread = ""
        try:
            self._next = self._pick(None)
        except _Abandon:
            return
        while self._next is not None and not self._stop:
            name = self._next
            self._next = None
            self._greenlets[name].switch()

    def _thread_main_factory(self, t: Thread) -> Callable[[], None]:
        def main() -> None:
            name = t.name
            self.current_thread = name
            self.machine.current = name
            self._trace(name, "thread-start", name)
            try:
                for m in self.monitors:
                    m.on_thread_start(name)
                t.body()
            except GreenletExit:
                return
            except VcpuDescheduled:
                self._state[name] = _DONE
                self._refresh_runnable()
                self._trace(name, "descheduled", f"{name}: its domain is paused for destruction")
                if self._phase == _RUNNING and not self._stop:
                    self._next = self._pick(None)
                return
            except Exception as e:
                self._state[name] = _DONE
                if self._phase != _DEAD:
                    self._exception_finding(name, e)
                return
            self.current_thread = name
            self._state[name] = _DONE
            self._refresh_runnable()
            self._trace(name, "thread-end", name)
            for m in self.monitors:
                m.on_thread_end(name)
            if self._phase == _RUNNING and not self._stop:
                nxt = self._next = self._pick(None)
                if nxt is not None and self.record_trace:
                    self.trace.append(TraceEvent(self.step, nxt, "switch", f"{name} -> {nxt}"))

        return main

    def _run_finish(self, finish: Callable[[], list[str]] | None) -> None:
        self._phase = _FINISH
        self.machine.current = self.current_thread = "toolstack"
        problems: list[str] | None = []
        if finish is not None:
            problems = self._guarded_call(finish)
        if problems is None:
            return  # finish crashed or was stopped
        self.problems = list(problems)
        for line in self.problems:
            if line.startswith(NOTE_PREFIX):
                self.notes.append(line[len(NOTE_PREFIX) :])
            elif line.startswith("leak: "):
                self.add_finding("leak", line[len("leak: ") :])
            else:
                # A spec line that starts "<thread>: " is about that thread's step.
                who = line.split(": ", 1)[0]
                self.add_finding("spec", line, (who,) if who in self._order else ())
        for m in self.monitors:
            m.on_finish()

    def _note_unfinished(self) -> None:
        """An execution stopped early (a finding, a livelock): every other thread that could
        still run had a step ready (see ``ExecutionResult.virtual``). The thread whose step
        stopped it is left out: that step is where every execution with this prefix stops."""
        if not self._stop or self._pruned or self._phase not in (_RUNNING, _PRIMING):
            return
        at = len(self.events)
        stopper = self.events[-1][0] if self.events else None
        for t in self._order:
            if t != stopper and self._state.get(t) == _RUNNABLE and t in self.pending:
                self.virtual.append((t, at, self._woken_by.get(t, -1)))

    def _kill_all(self) -> None:
        """Unwind the threads still suspended. Whatever their unwinding does is not part of
        the execution: no hooks, no trace, no findings."""
        self._phase = _DEAD
        hooks, self._hooks = self._hooks, _NO_HOOKS
        record, self.record_trace = self.record_trace, False
        for name in self._order:
            g = self._greenlets[name]
            if not g.dead:
                g.throw(GreenletExit)
        self._hooks = hooks
        self.record_trace = record

    # -- choosing -------------------------------------------------------------------------------
    def _refresh_runnable(self) -> None:
        st = self._state
        self._runnable = tuple(t for t in self._order if st[t] == _RUNNABLE)

    def _pick(self, current: str | None) -> str | None:
        """The next thread to run when ``current`` cannot continue (``None``), or a decision
        at ``current``'s point. ``None`` when nothing can run (deadlock or all done)."""
        runnable = self._runnable
        if not runnable:
            if any(s == _BLOCKED for s in self._state.values()):
                self._report_deadlock()
            return None
        if len(runnable) == 1:
            return runnable[0]
        try:
            chosen = self.strategy.next_thread(runnable, current)
        except BaseException as e:
            self._internal = e
            self._abandon()
            raise AssertionError("unreachable") from None
        if chosen is None:
            self._pruned = True
            self._abandon()
            return None
        if chosen not in runnable:
            self._internal = RuntimeError(
                f"strategy chose {chosen!r}, not one of the runnable threads {runnable}"
            )
            self._abandon()
        self.decisions.append(Decision(THREAD, chosen, runnable, "", current or ""))
        return chosen

    def _abandon(self) -> None:
        """Stop the execution now: back to the main greenlet for good."""
        self._stop = True
        if self._phase in (_BOOT, _FINISH) or getcurrent() is self._main:
            raise _Abandon()
        assert self._main is not None
        self._main.switch()
        raise GreenletExit  # only reached if the main greenlet switches back, which it never does

    def _switch_to(self, target: str) -> None:
        """Suspend the running thread and run ``target``; returns when this thread resumes."""
        me = self.current_thread
        saved = self.machine.current
        if self.record_trace:
            self.trace.append(TraceEvent(self.step, target, "switch", f"{me} -> {target}"))
        self._greenlets[target].switch()
        self.current_thread = me
        self.machine.current = saved

    def _do_step(self, me: str) -> None:
        """The resumed thread ``me`` performs its pending operation: one step."""
        kind, key, write = self.pending[me]
        events = self.events
        if self._woken_by and me in self._woken_by:
            self.wake_edges[len(events)] = self._woken_by.pop(me)
        events.append((me, kind, key, write))
        self._count_step(me, kind, key, write)

    def _count_step(self, thread: str, kind: str, key: object, write: bool) -> None:
        self.step += 1
        hooks = self._step_hooks.get(kind)
        if hooks is None:
            hooks = self._step_hooks[kind] = self._step_hooks_for(kind)
        for hook in hooks:
            hook(thread, kind, key, write)
        if self.step > self.max_steps or self._stop:
            self._step_limits()

    def _step_limits(self) -> None:
        """After a step: report a livelock past ``max_steps``; stop if something asked to."""
        if self.step > self.max_steps:
            self.add_finding(
                "deadlock",
                f"livelock: no end after {self.max_steps} steps (max_steps)",
                force_stop=True,
            )
        if self._stop:
            self._abandon()

    def _step_hooks_for(self, kind: str) -> list[Callable[..., None]]:
        """The ``on_step`` hooks of the monitors that want steps of ``kind`` (a monitor's
        ``step_kinds``; ``None``: every kind), in monitor order."""
        return [hook for kinds, hook in self._step_filters if kinds is None or kind in kinds]

    # -- EventSink: scheduling ------------------------------------------------------------------
    def point(self, kind: str, key: object, write: bool) -> None:
        phase = self._phase
        if phase == _RUNNING:
            # The hottest path of an execution: _do_step and _count_step fused, and a point
            # where only this thread can run costs no decision and no strategy call.
            me = self.current_thread
            if self._stop:
                self._abandon()
            self.pending[me] = (kind, key, write)
            if len(self._runnable) > 1:
                chosen = self._pick(me)
                if chosen != me:
                    assert chosen is not None
                    self.preemptions += 1
                    self._switch_to(chosen)
                    # Preempted, not blocked: nothing rewrote this thread's pending operation.
            events = self.events
            woken = self._woken_by
            if woken and me in woken:
                self.wake_edges[len(events)] = woken.pop(me)
            events.append((me, kind, key, write))
            self.step += 1
            hooks = self._step_hooks.get(kind)
            if hooks is None:
                hooks = self._step_hooks[kind] = self._step_hooks_for(kind)
            for hook in hooks:
                hook(me, kind, key, write)
            if self.step > self.max_steps or self._stop:
                self._step_limits()
        elif phase == _PRIMING:
            me = self.current_thread
            saved = self.machine.current
            self.pending[me] = (kind, key, write)
            assert self._main is not None
            self._main.switch()
            self.current_thread = me
            self.machine.current = saved
            self._do_step(me)
        elif phase != _DEAD:  # boot or finish: one context, nothing to decide
            if self._stop:
                self._abandon()
            self._count_step(self.current_thread, kind, key, write)

    def access(self, kind: str, key: object, write: bool) -> None:
        phase = self._phase
        if phase == _RUNNING:
            i = len(self.events) - 1
            more = self.extra.get(i)
            if more is None:
                self.extra[i] = [(kind, key, write)]
            elif (kind, key, write) not in more:
                more.append((kind, key, write))
        elif phase == _PRIMING:
            # Before its first point a thread has no step to add to: make this its first one.
            self.point(kind, key, write)

    def deschedule(self, contexts: tuple[str, ...]) -> None:
        if self._phase not in (_RUNNING, _PRIMING):
            return
        me = self.current_thread
        killed = False
        at = len(self.events)
        for t in self._order:
            if t in contexts and t != me and self._state.get(t) != _DONE:
                if self._state[t] == _RUNNABLE:
                    self.virtual.append((t, at, self._woken_by.get(t, -1)))
                else:  # waiting for a lock: it leaves the lock's queue
                    lock = self._waiting.pop(t)
                    self._waiters[lock].remove(t)
                self._state[t] = _DONE
                self._trace(t, "descheduled", f"{t}: its domain is paused for destruction")
                killed = True
        if killed:
            self._refresh_runnable()
        if me in contexts:
            raise VcpuDescheduled()

    def block(self, lock: Lockable) -> None:
        if self._phase != _RUNNING:
            if self._phase == _DEAD:
                raise GreenletExit
            raise Deadlock(
                f"{self.machine.current} waits forever for {lock.name} "
                f"held by {lock.describe_holder()}"
            )
        me = self.current_thread
        self._state[me] = _BLOCKED
        self._waiting[me] = lock
        self._waiters.setdefault(lock, []).append(me)
        self._refresh_runnable()
        self._trace(me, "block", f"waits for {lock.name} held by {lock.describe_holder()}")
        chosen = self._pick(None)
        if chosen is None:  # deadlock: reported; the execution is over
            self._abandon()
        assert chosen is not None
        self._switch_to(chosen)
        self._do_step(me)

    def acquired(self, lock: Lockable) -> None:
        if self.record_trace:
            self._trace(self.current_thread, "lock", lock.name)
        for hook in self._hooks["acquired"]:
            hook(lock)

    def released(self, lock: Lockable) -> None:
        if self.record_trace:
            self._trace(self.current_thread, "unlock", lock.name)
        waiters = self._waiters.pop(lock, None)
        if waiters:
            # The waiters' retries depend on this step: it releases what they wait for.
            self.access(LOCK, lock, True)
            i = len(self.events) - 1
            for w in waiters:
                self._state[w] = _RUNNABLE
                del self._waiting[w]
                self.pending[w] = (LOCK, lock, True)
                self._woken_by[w] = i
                self._trace(w, "wake", f"{lock.name} released by {self.current_thread}")
            self._refresh_runnable()
        for hook in self._hooks["released"]:
            hook(lock)

    # -- EventSink: faults ----------------------------------------------------------------------
    def fault(self, site: str, choices: tuple[int, ...]) -> int | None:
        ff = self.faults_filter
        if ff is None or self._phase == _DEAD or len(self.injected) >= self.max_faults:
            return None
        allowed = ff(site)
        if not allowed:
            return None
        allowed = tuple(c for c in allowed if c in choices)
        if not allowed:
            return None
        options: tuple[int, ...] = (0, *allowed)
        try:
            idx = self.strategy.next_choice(FAULT, site, len(options))
        except BaseException as e:
            self._internal = e
            self._abandon()
            raise AssertionError("unreachable") from None
        if not 0 <= idx < len(options):
            self._internal = RuntimeError(f"strategy chose option {idx} of {len(options)}")
            self._abandon()
        self.decisions.append(Decision(FAULT, idx, options, site, self.current_thread))
        if idx == 0:
            return None
        code = options[idx]
        self.injected.append((self.step, site, code))
        if self.record_trace:
            what = abi.error_name(code) if code < 0 else str(code)
            self._trace(self.current_thread, "fault", f"{site} fails: {what}", (site, code))
        return code

    # -- EventSink: observation -----------------------------------------------------------------
    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if self._phase in (_RUNNING, _PRIMING):
            self.point(MEM, frame.mfn, write)
        if self.record_trace and (self.trace_memory or any(frame.grants.values())):
            self._trace(
                self.current_thread,
                "mem",
                f"{party} {'writes' if write else 'reads'} 0x{frame.pa + offset:x}+{size}",
                (party, frame.mfn, offset, size, write),
            )
        for hook in self._hooks["mem_access"]:
            hook(party, frame, offset, size, write)

    def page_alloc(self, frame: Frame) -> None:
        if self.record_trace:
            self._trace(self.current_thread, "alloc", repr(frame), (frame.mfn,))
        for hook in self._hooks["page_alloc"]:
            hook(frame)

    def page_free(self, frame: Frame) -> None:
        if self.record_trace:
            self._trace(self.current_thread, "free", repr(frame), (frame.mfn,))
        for hook in self._hooks["page_free"]:
            hook(frame)

    def guarded_access(self, field: Any, write: bool) -> None:
        for hook in self._hooks["guarded_access"]:
            hook(field, write)

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        me = self.current_thread
        stack = self._calls.get(me)
        if stack is None:
            stack = self._calls[me] = []  # "boot", "toolstack"
        stack.append(args[0] if args else None)
        if layer == "hvc":
            ctx = _context(self.machine, caller)
            hvc = self.hvc_calls.get(ctx)
            if hvc is None:
                hvc = self.hvc_calls[ctx] = []
            hvc.append(abi.name(args[0]) if args else "?")
        if self.record_trace:
            self._trace(me, "call", caller, (layer, tuple(args)))
        for hook in self._hooks["call"]:
            hook(layer, caller, args)

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        stack = self._calls.get(self.current_thread)
        if stack:
            stack.pop()
        if self.record_trace:
            self._trace(self.current_thread, "ret", caller, (layer, tuple(result)))
        for hook in self._hooks["ret"]:
            hook(layer, caller, result)
        if layer == "hvc":
            hvc = self.hvc_calls.get(_context(self.machine, caller))
            if hvc:
                hvc.pop()

    def log(self, ctx: str, text: str) -> None:
        if self.record_trace:
            self._trace(self.current_thread, "log", f"{ctx}: {text}")
        for hook in self._hooks["log"]:
            hook(ctx, text)

    def violation(self, kind: str, message: str) -> None:
        if self.record_trace:
            self._trace(self.current_thread, "violation", f"{kind}: {message}", (kind,))
        for hook in self._hooks["violation"]:
            hook(kind, message)

    # -- findings -------------------------------------------------------------------------------
    def calls_of(self, thread: str) -> tuple[str, ...]:
        """The FF-A calls ``thread`` is inside now, outermost first (``"FFA_MEM_SHARE_64"``)."""
        return tuple(_fid_name(fid) for fid in self._calls.get(thread, ()))

    def add_finding(
        self,
        kind: str,
        message: str,
        threads: tuple[str, ...] = (),
        calls: tuple[str, ...] = (),
        *,
        force_stop: bool = False,
    ) -> Finding:
        """Record a finding (what :meth:`Monitor.report` calls). Without ``threads`` the
        current thread is named, and without ``calls`` the outermost calls of those threads."""
        if kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {kind!r}")
        if self._phase == _DEAD:
            return Finding(kind, message, threads, calls)  # after the end: not recorded
        if not threads and self.current_thread:
            threads = (self.current_thread,)
        if not calls:
            calls = tuple(
                f"{t} {_fid_name(self._calls[t][0])}" for t in threads if self._calls.get(t)
            )
        step = -1
        if self.record_trace:
            step = len(self.trace)
            self.trace.append(
                TraceEvent(self.step, self.current_thread, "finding", f"{kind}: {message}", (kind,))
            )
        f = Finding(kind, message, threads, calls, step)
        self.findings.append(f)
        if force_stop or (self.stop_on_finding and self._phase in (_RUNNING, _PRIMING)):
            self._stop = True
        return f

    def _exception_finding(self, thread: str, e: BaseException) -> None:
        if self._internal is not None:
            return
        if _raised_by_checker(e):
            self._internal = e
            self._stop = True
            return
        where = _model_frames(e)
        at = f" (at {where})" if where else ""
        if isinstance(e, (HypervisorPanic, FirmwarePanic)):
            kind, text = "assertion", f"{type(e).__name__}: {e}"
        elif isinstance(e, Deadlock):
            kind, text = "deadlock", str(e)
        elif isinstance(e, AccessFault):
            kind, text = "isolation", str(e)
        else:
            kind, text = "crash", f"{type(e).__name__}: {e}"
        saved = self.current_thread
        self.current_thread = thread
        self.add_finding(kind, text + at, force_stop=True)
        self.current_thread = saved

    def _report_deadlock(self) -> None:
        waits = []
        involved: list[str] = []
        for t in self._order:
            lock = self._waiting.get(t)
            if lock is None:
                continue
            holders = _holders(lock)
            ended = any(self._state.get(h) == _DONE for h in holders)
            note = " (ended)" if ended else ""
            waits.append(f"{t} waits for {lock.name} held by {lock.describe_holder()}{note}")
            for h in [t, *holders]:
                if h not in involved:
                    involved.append(h)
        calls = tuple(f"{t} {_fid_name(self._calls[t][0])}" for t in involved if self._calls.get(t))
        self.add_finding("deadlock", "; ".join(waits), tuple(involved), calls, force_stop=True)

    def _trace(self, thread: str, kind: str, detail: str, data: tuple[Any, ...] = ()) -> None:
        if self.record_trace:
            self.trace.append(TraceEvent(self.step, thread, kind, detail, data))


_HOOKS = (
    "on_step",
    "acquired",
    "released",
    "mem_access",
    "page_alloc",
    "page_free",
    "guarded_access",
    "call",
    "ret",
    "log",
    "violation",
)


_ACTIVE: dict[tuple[type, str], bool] = {}


def _active(cls: type, hook: str) -> bool:
    """Whether monitors of class ``cls`` do something on ``hook``: the class overrides the
    no-op default, and not only with a method that declares itself idle under this scheduler
    (a function with ``shared_by_scheduler`` set, such as ``CallTracking.call``, whose
    bookkeeping the execution does once for every monitor). Memoised per class: every
    execution builds fresh monitors of the same few classes."""
    key = (cls, hook)
    on = _ACTIVE.get(key)
    if on is None:
        base = getattr(Monitor, hook)
        fn = getattr(cls, hook, base)
        on = _ACTIVE[key] = fn is not base and not getattr(fn, "shared_by_scheduler", False)
    return on


def _hooks_of(monitors: Sequence[Monitor]) -> dict[str, list[Callable[..., None]]]:
    """For each event, the bound methods of the monitors that act on it: the no-op defaults
    are not called at all (most monitors watch a few events)."""
    return {h: [getattr(m, h) for m in monitors if _active(type(m), h)] for h in _HOOKS}


def _context(machine: Machine, caller: str) -> str:
    """The context a call belongs to: ``caller`` when it names one, else the running one
    (Xen and the SPMC call on behalf of whoever runs)."""
    if caller and caller != "xen" and caller != "spmc":
        return caller
    return machine.current


def _fid_name(fid: int | None) -> str:
    return abi.name(fid) if fid is not None else "?"


def _holders(lock: Lockable) -> list[str]:
    """The contexts holding ``lock`` (a spinlock's holder, an rwlock's writer or readers)."""
    holder = getattr(lock, "holder", None)
    if holder is not None:
        return [holder]
    writer = getattr(lock, "writer", None)
    if writer is not None:
        return [writer]
    return list(getattr(lock, "readers", ()))


_NO_HOOKS: dict[str, list[Callable[..., None]]] = {h: [] for h in _HOOKS}


def _raised_by_checker(e: BaseException) -> bool:
    """Whether ``e`` came from the checker (a strategy, a monitor, a sink method) rather than
    from the model: it passed through checker code called *by* the model (or never left the
    checker). The checker frames that call the program and the thread bodies do not count,
    nor does the ``Deadlock`` that ``block`` raises outside the threads on purpose."""
    files = []
    tb = e.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename.replace("\\", "/"))
        tb = tb.tb_next
    i = 0
    while i < len(files) and _CHECK_DIR in files[i]:
        i += 1
    if i == len(files):
        return True
    inner = [f for f in files[i:] if _CHECK_DIR in f]
    if not inner:
        return False
    return not (isinstance(e, Deadlock) and files[-1].endswith("/check/scheduler.py"))


def _model_frames(e: BaseException, count: int = 3) -> str:
    """The innermost frames of the model (not the checker, not the ASSERT helper), innermost
    first: ``xen/ffa_rxtx.py:123 ffa_rx_acquire <- ...``."""
    frames = []
    for fs in traceback.extract_tb(e.__traceback__):
        fn = fs.filename.replace("\\", "/")
        if _CHECK_DIR in fn or fn.endswith("/machine/errors.py") or "/greenlet/" in fn:
            continue
        m = re.search(r"/ffasim/(.*)$", fn)
        short = m.group(1) if m else fn.rsplit("/", 1)[-1]
        frames.append(f"{short}:{fs.lineno} {fs.name}")
    return " <- ".join(reversed(frames[-count:]))
