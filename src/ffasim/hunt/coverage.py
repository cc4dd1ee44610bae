"""Coverage for ``ffasim hunt``: which (mediator function, FF-A result, SPMC state)
combinations the executions reached, and the corpus of programs that reached new ones.

A combination is one answered call: the guest's hypercall into Xen (``hvc``) or Xen's call
into the SPMC (``smc``), its function, how it was answered (``success``, the FF-A error name,
or the function of the answer: ``FFA_MEM_FRAG_RX``, ``FFA_MSG_SEND_DIRECT_RESP_32``...), and
an abstraction of the SPMC's state for the caller when the call returned: the caller's RX
state there (``unmapped``, ``empty``, ``full``...) and how many shares the SPMC holds (0, 1,
more). :class:`CoverageMonitor` records them without touching the model (it reads plain
Python fields, never a modelled memory or lock, so it adds no event and no scheduling point).

:class:`Corpus` keeps the programs whose executions reached a combination nobody reached
before: the hunt mutates those (coverage-guided), and reports the total.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .. import abi
from ..check.monitor import Monitor
from .generate import Program

Combination = tuple[str, str, str, str]
"""``(layer, function, result, SPMC state)``: ``("hvc", "FFA_MEM_SHARE_64", "DENIED",
"rx=empty shares=1")``."""


def _result(r: tuple[int, ...]) -> str:
    x0 = r[0] & abi.MASK32
    if x0 == abi.FFA_ERROR:
        return abi.error_name(abi.to_s32(r[2]))
    if x0 in (abi.FFA_SUCCESS_32, abi.FFA_SUCCESS_64):
        return "success"
    return abi.name(x0)


def _vm_id(caller: str) -> int | None:
    """The FF-A ID of the VM a context ``d0v1`` belongs to."""
    if caller.startswith("host"):
        return 0  # pKVM's host kernel
    if caller.startswith("d") and "v" in caller:
        try:
            return int(caller[1 : caller.index("v")]) + 1
        except ValueError:
            return None
    return None


class CoverageMonitor(Monitor):
    """Records the combination of every answered call into :attr:`seen`; never reports."""

    def __init__(self, seen: set[Combination]) -> None:
        self.seen = seen
        self._open: dict[tuple[str, str], list[int]] = {}

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        self._open.setdefault((layer, caller), []).append(args[0] & abi.MASK32)

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        stack = self._open.get((layer, caller))
        if not stack:
            return
        fid = stack.pop()
        self.seen.add((layer, abi.name(fid), _result(result), self._state(caller)))

    def _state(self, caller: str) -> str:
        system = getattr(getattr(self, "execution", None), "machine", None)
        spmc = getattr(getattr(system, "system", None), "spmc", None)
        if spmc is None:
            return "-"
        shares = len(getattr(spmc, "_shares", {}))
        vm = _vm_id(caller)
        ep = spmc.endpoints.get(vm) if vm is not None else None
        if ep is None:
            rx = "unknown"
        elif not ep.mailbox.mapped:
            rx = "unmapped"
        else:
            rx = getattr(ep.mailbox.state, "name", str(ep.mailbox.state)).lower()
        return f"rx={rx} shares={min(shares, 2)}{'+' if shares > 1 else ''}"


@dataclass
class Corpus:
    """The combinations seen so far and the programs that brought new ones (the parents)."""

    seen: set[Combination] = field(default_factory=set)
    parents: list[Program] = field(default_factory=list)
    by_layer: dict[str, int] = field(default_factory=dict)

    def add(self, program: Program, reached: set[Combination]) -> int:
        """Merge what ``program``'s executions reached; keep it as a parent when some of it
        is new. The number of new combinations."""
        new = reached - self.seen
        if new:
            self.seen |= new
            self.parents.append(program)
            for layer, *_ in new:
                self.by_layer[layer] = self.by_layer.get(layer, 0) + 1
        return len(new)

    def pick(self, rng: random.Random) -> Program | None:
        """A parent to mutate, the recent ones (newest coverage) more likely."""
        if not self.parents:
            return None
        n = len(self.parents)
        i = n - 1 - min(int(rng.expovariate(0.3)), n - 1)
        return self.parents[i]

    def summary(self) -> dict[str, Any]:
        functions = {(layer, fn) for layer, fn, *_ in self.seen}
        return {
            "combinations": len(self.seen),
            "functions": len(functions),
            "hvc": self.by_layer.get("hvc", 0),
            "smc": self.by_layer.get("smc", 0),
            "parents": len(self.parents),
        }
