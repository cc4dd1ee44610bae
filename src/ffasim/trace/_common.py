"""What every renderer needs: the event protocol and the naming of calls and returns."""

from __future__ import annotations

from typing import Any, Protocol

from .. import abi


class Event(Protocol):
    """One trace event, as the checker records it (``ffasim.check.TraceEvent``)."""

    @property
    def step(self) -> int: ...
    @property
    def thread(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def data(self) -> tuple[Any, ...]: ...


def call_regs(ev: Event) -> tuple[str, tuple[int, ...]] | None:
    """``(layer, regs)`` of a call or return event, or ``None`` when it carries none."""
    data = ev.data
    if (
        ev.kind in ("call", "ret")
        and len(data) >= 2
        and isinstance(data[0], str)
        and isinstance(data[1], tuple)
        and data[1]
        and all(isinstance(x, int) for x in data[1])
    ):
        return data[0], data[1]
    return None


def call_name(regs: tuple[int, ...]) -> str:
    """The FF-A function a call invokes (``FFA_PARTITION_INFO_GET``), or its hex."""
    return abi.name(regs[0])


def call_text(layer: str, regs: tuple[int, ...]) -> str:
    """``FFA_MEM_SHARE_64(w1=0x30, w2=0x30)``: the function and its non-zero arguments."""
    args = [f"w{i}=0x{v:x}" for i, v in enumerate(regs[1:8], start=1) if v]
    head = call_name(regs)
    return f"{head}({', '.join(args)})" if args else head


def event_text(ev: Event) -> str:
    """One line saying what ``ev`` is: FF-A calls and results named, the rest as recorded."""
    cr = call_regs(ev)
    if cr is not None:
        layer, regs = cr
        if ev.kind == "call":
            return f"{layer} {call_text(layer, regs)}"
        return f"{layer} -> {abi.describe(regs)}"
    return ev.detail
