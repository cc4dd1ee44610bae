"""The one interface through which the model reports what the checker must see.

Every lock operation, atomic, world switch, guest-reachable memory access, allocation and
hypercall boundary calls a method of the machine's ``EventSink``. The default sink does nothing
(and costs one method call); the checker installs a sink that schedules vCPUs at these points,
injects faults and runs its monitors (loom's ``branch``, shuttle's ``switch``).

Contract for a scheduling sink:

- ``point(kind, key, write)`` is called *before* the operation it names, and may switch to
  another vCPU. ``key`` identifies the object (a lock, an atomic, a frame number, ``"spmc"``);
  two points conflict when their keys are equal and at least one writes.
- ``block(lock)`` is called when the current context must wait for ``lock``: a scheduling sink
  disables the context until ``released(lock)`` and returns when it runs again (the caller then
  retries). A sequential sink raises ``Deadlock``: nothing else can ever release the lock.
- ``access(kind, key, write)`` declares an access to shared state *inside* the current step,
  without a scheduling point: state that the model changes under a lock and reads elsewhere
  (the heap's free list, a frame's owner and grants, a mailbox's state, a domain's pause
  state). A scheduling sink adds it to the step's footprint, so that the partial-order
  reduction sees the dependence; two accesses conflict as two points do.
- ``deschedule(contexts)`` says that the vCPUs named by ``contexts`` never run again (Xen
  paused their dying domain); a scheduling sink stops their threads where they are.
- ``fault(site, choices)`` returns ``None`` to run normally, or one of ``choices`` to inject.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import Deadlock

if TYPE_CHECKING:
    from .locks import Lockable
    from .memory import Frame


# Kinds of scheduling point.
LOCK = "lock"
ATOMIC = "atomic"
MEM = "mem"  # a frame's bytes, owner and grants (key: its frame number)
SMC = "smc"
GUARDED = "guarded"
HEAP = "heap"  # a page allocator's free list (key: the heap's name)
REF = "ref"  # a frame's reference count (key: its frame number)
P2M = "p2m"  # a domain's stage-2 table (key: the domain's party name)
DOM = "dom"  # a domain's pause state (key: "dN") or a vCPU's in-hypercall flag ("dNvM")
MAILBOX = "mailbox"  # an SPMC mailbox's ownership state and mapping (key: the endpoint ID)
GUEST = "guest"  # a guest kernel's own FF-A bookkeeping (key: the domain's party name)


class EventSink:
    """Receives the model's events. This base class ignores them and never schedules."""

    # -- scheduling -------------------------------------------------------------------------
    def point(self, kind: str, key: object, write: bool) -> None:
        """A scheduling point before an operation on ``key``."""

    def access(self, kind: str, key: object, write: bool) -> None:
        """An access to shared state within the current step (no scheduling point)."""

    def deschedule(self, contexts: tuple[str, ...]) -> None:
        """The vCPUs ``contexts`` never run again (their domain was paused for destruction)."""

    def block(self, lock: Lockable) -> None:
        """The current context cannot take ``lock``; wait until it may retry."""
        raise Deadlock(
            f"{lock.machine.current} waits forever for {lock.name} held by {lock.describe_holder()}"
        )

    def acquired(self, lock: Lockable) -> None:
        """``lock`` was just taken by the current context."""

    def released(self, lock: Lockable) -> None:
        """``lock`` was just released by the current context."""

    # -- faults -----------------------------------------------------------------------------
    def fault(self, site: str, choices: tuple[int, ...]) -> int | None:
        """Whether to inject a failure at ``site``; ``None`` runs the code as written."""
        return None

    # -- memory -----------------------------------------------------------------------------
    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        """``party`` read or wrote ``size`` bytes at ``offset`` of ``frame``."""

    def page_alloc(self, frame: Frame) -> None:
        """``frame`` was just allocated."""

    def page_free(self, frame: Frame) -> None:
        """``frame`` is about to be freed (its grants are still visible)."""

    def guarded_access(self, field: Any, write: bool) -> None:
        """A declared shared field was read or written."""

    # -- calls ------------------------------------------------------------------------------
    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        """A call enters ``layer`` (``"hvc"``: guest to hypervisor, ``"smc"``: to the SPMC,
        ``"sp"``: SPMC to a partition)."""

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        """The matching call returns ``result``."""

    def log(self, ctx: str, text: str) -> None:
        """A log line of the modelled software (Xen's printk, the SPMC's dlog)."""

    def violation(self, kind: str, message: str) -> None:
        """A component saw a rule of the protocol broken that it survives but the checker must
        report: ``kind`` is a finding kind (``"ownership"``, ``"isolation"``, ...). For example
        the SPMC refusing FFA_RX_RELEASE from a hypervisor that does not own its RX buffer."""


class RecordingSink(EventSink):
    """Keeps calls, returns and log lines in order: what ``ffasim run`` prints."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, tuple[int, ...] | str]] = []

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        self.events.append(("call", layer, caller, args))

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        self.events.append(("ret", layer, caller, result))

    def log(self, ctx: str, text: str) -> None:
        self.events.append(("log", "log", ctx, text))
