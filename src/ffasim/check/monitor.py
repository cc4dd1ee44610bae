"""Findings and the base class of the checker's monitors.

A monitor is an :class:`~ffasim.machine.events.EventSink` that never schedules: the scheduler
(:class:`~ffasim.check.scheduler.Execution`) is the machine's sink and fans every non-scheduling
event out to its monitors (``mem_access``, ``page_alloc``, ``page_free``, ``guarded_access``,
``call``, ``ret``, ``log``, ``violation``, ``acquired``, ``released``), plus the hooks below for
scheduling points, thread starts and ends, and the end of the execution. A monitor judges what it
sees and records problems with :meth:`Monitor.report`; the execution stops at its next scheduling
point when a finding was recorded (the schedule that led there is what the user wants).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..machine.events import EventSink

if TYPE_CHECKING:
    from .scheduler import Execution

FINDING_KINDS: tuple[str, ...] = (
    "assertion",  # ASSERT / BUG / panic of the hypervisor or the firmware
    "deadlock",  # every live context waits for a lock (or a lock is waited on forever)
    "lock-leak",  # a lock still held when a hypercall returns
    "lock-order",  # two locks taken in both orders, in one execution or two
    "ownership",  # an RX/TX buffer used or released without owning it
    "data-race",  # guarded state or a shared buffer touched without its lock
    "double-fetch",  # guest-writable memory read twice in one hypercall
    "isolation",  # a party touching a page it neither owns nor was given
    "leak",  # pages, references, handles or share states left after teardown
    "crash",  # any other exception escaping the model
    "spec",  # a guest-visible result that the scenario's oracle rejects
    "wire",  # a descriptor or register set Xen sends the SPMC that breaks FF-A's layout rules
    "answer",  # a guest-visible answer the spec or the SPMC's state does not allow
    "framework",  # a framework message reaching a partition from anyone but the hypervisor
)


@dataclass(frozen=True)
class Finding:
    """One problem found in one execution."""

    kind: str
    """One of :data:`FINDING_KINDS`."""
    message: str
    """One line for the user; its text (without step numbers) identifies the problem."""
    threads: tuple[str, ...] = ()
    """The contexts involved (``"d0v0"``, ``"d1v0"``)."""
    calls: tuple[str, ...] = ()
    """The FF-A calls involved (``"d0v0 FFA_PARTITION_INFO_GET"``)."""
    step: int = -1
    """Index into the execution's trace where the problem was detected (-1: unknown)."""

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")

    def summary(self) -> str:
        """``kind: message``, the line a report starts with."""
        return f"{self.kind}: {self.message}"


class Monitor(EventSink):
    """Base for monitors: every hook is a no-op; subclasses override what they judge.

    Besides the :class:`EventSink` methods (except ``point``, ``block`` and ``fault``, which are
    the scheduler's), a monitor gets :meth:`on_step` at every scheduling point, the thread start
    and end hooks, and :meth:`on_finish` after all threads and the program's finish step ran.
    ``execution`` (set by :meth:`attach`) gives ``.machine``, ``.current_thread``, ``.step`` and
    ``.trace``.
    """

    execution: Execution

    step_kinds: frozenset[str] | None = None
    """The kinds of scheduling point :meth:`on_step` wants (``"atomic"``, ``"lock"``...), or
    ``None`` for all: the scheduler skips the call for the others (a cheap filter on the
    hottest event). A sink that ignores it still calls ``on_step`` for every kind."""

    def attach(self, execution: Execution) -> None:
        """Called once, before the program builds its system."""
        self.execution = execution

    def on_step(self, thread: str, kind: str, key: object, write: bool) -> None:
        """A scheduling point of ``thread`` before an operation on ``key``."""

    def on_thread_start(self, thread: str) -> None:
        """``thread`` is about to run its body for the first time."""

    def on_thread_end(self, thread: str) -> None:
        """``thread``'s body returned normally."""

    def on_finish(self) -> None:
        """Every thread ended and the program's finish step ran (not called when the execution
        stopped on a crash, a panic or a deadlock)."""

    def declare(self, kind: str, key: object, write: bool) -> None:
        """Declare that judging the current event reads (or the monitor's bookkeeping
        changes) shared state ``(kind, key)``: the partial-order reduction must then order
        this step against the steps that change it, or two equivalent schedules could get
        different verdicts. Kinds and keys are the machine's (``machine/events.py``)."""
        access = getattr(self.execution, "access", None)
        if access is not None:
            access(kind, key, write)

    def report(
        self,
        kind: str,
        message: str,
        threads: tuple[str, ...] | list[str] = (),
        calls: tuple[str, ...] | list[str] = (),
    ) -> None:
        """Record a finding of ``kind`` in the current execution."""
        self.execution.add_finding(kind, message, tuple(threads), tuple(calls))
