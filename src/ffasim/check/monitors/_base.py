"""What several monitors share: which hypercall each context is in, and how to name things."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ... import abi
from ...machine import Frame
from ..monitor import Monitor

if TYPE_CHECKING:
    from ..scheduler import Execution

_GUEST_PARTY = re.compile(r"(?:d\d+|host)\Z")


def is_guest_party(party: str | None) -> bool:
    """Whether ``party`` is a domain (``"d0"``) or pKVM's host kernel (``"host"``), i.e.
    untrusted caller memory or code."""
    return party is not None and _GUEST_PARTY.match(party) is not None


def frame_name(f: Frame) -> str:
    """``frame 0x80010 (d0, rx)``: a frame with its owner and tag, for messages."""
    who = f.owner or "free"
    return f"frame 0x{f.mfn:x} ({who}{', ' + f.tag if f.tag else ''})"


def span(offset: int, size: int) -> str:
    """``bytes 0x10..0x17`` (inclusive), as messages name a range of a frame."""
    return f"bytes 0x{offset:x}..0x{offset + size - 1:x}"


class CallTracking(Monitor):
    """A monitor that knows the hypercall each context is in (``"d0v0 FFA_MEM_SHARE_64"``).

    Subclasses that override :meth:`call` or :meth:`ret` call ``super()`` first.

    Under the checker's scheduler the bookkeeping is done once for all monitors: the
    execution keeps the stacks (``Execution.hvc_calls``), pushing a call before any monitor
    sees it and popping it after every monitor saw its return, and ``in_call`` is that shared
    dict. Attached to any other sink (a test harness that hands each event to each monitor),
    the monitor keeps its own stacks, with the same result.
    """

    def __init__(self) -> None:
        self.in_call: dict[str, list[str]] = {}
        self._own_stacks = True

    def attach(self, execution: Execution) -> None:
        super().attach(execution)
        shared = getattr(execution, "hvc_calls", None)
        if isinstance(shared, dict):
            self.in_call = shared
            self._own_stacks = False

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        if layer == "hvc" and self._own_stacks:
            ctx = self.context(caller)
            self.in_call.setdefault(ctx, []).append(abi.name(args[0]) if args else "?")

    call.shared_by_scheduler = True  # type: ignore[attr-defined]

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "hvc" and self._own_stacks:
            stack = self.in_call.get(self.context(caller))
            if stack:
                stack.pop()

    ret.shared_by_scheduler = True  # type: ignore[attr-defined]

    def context(self, caller: str = "") -> str:
        """The context a call belongs to: ``caller`` when it names one, else the running one."""
        if caller and caller not in ("xen", "spmc"):
            return caller
        return self.execution.machine.current

    def current_call(self, ctx: str) -> str | None:
        """The FF-A function ``ctx`` is executing (innermost hypercall), or ``None``."""
        stack = self.in_call.get(ctx)
        return stack[-1] if stack else None

    def calls_of(self, *ctxs: str) -> tuple[str, ...]:
        """``("d0v0 FFA_PARTITION_INFO_GET", ...)`` for the contexts that are in a hypercall."""
        out = []
        for c in ctxs:
            name = self.current_call(c)
            if name is not None:
                out.append(f"{c} {name}")
        return tuple(out)

    def where(self, ctx: str) -> str:
        """``d0v0 in FFA_MEM_SHARE_64`` (or just ``d0v0`` outside a hypercall)."""
        name = self.current_call(ctx)
        return f"{ctx} in {name}" if name else ctx
