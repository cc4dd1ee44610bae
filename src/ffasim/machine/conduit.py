"""The SMC conduit: the hypervisor's (or a partition's) call into the SPMC.

A call here is a world switch: a scheduling point on the secure world, and a fault-injection site
``smc:<FFA name>`` where the checker may make the SPMC answer any FF-A error instead of running.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import abi
from .events import SMC
from .machine import Machine

SpmcEntry = Callable[[int, abi.Regs], abi.Regs]
"""``entry(caller_id, regs) -> regs``: the SPMC's handler for a call from endpoint ``caller_id``."""

# What an injected SPMC failure may answer.
FAULT_CODES: tuple[int, ...] = (
    abi.FFA_RET_NOT_SUPPORTED,
    abi.FFA_RET_INVALID_PARAMETERS,
    abi.FFA_RET_NO_MEMORY,
    abi.FFA_RET_BUSY,
    abi.FFA_RET_INTERRUPTED,
    abi.FFA_RET_DENIED,
    abi.FFA_RET_RETRY,
    abi.FFA_RET_ABORTED,
)


class SmcConduit:
    """Routes ``smc`` calls from the normal world to the SPMC entry point."""

    def __init__(self, machine: Machine, entry: SpmcEntry, caller: str = "xen") -> None:
        self.machine = machine
        self.entry = entry
        self.caller = caller

    def smc(self, *args: int, caller_id: int = abi.HYPERVISOR_ID) -> abi.Regs:
        """Issue an SMC with ``x0, x1, ...`` = ``args`` (missing registers 0); return x0..x17."""
        r = abi.regs(*args)
        sink = self.machine.sink
        sink.point(SMC, "spmc", True)
        sink.call("smc", self.caller, r)
        code = sink.fault("smc:" + abi.name(r[0]), FAULT_CODES)
        out = abi.error(code) if code is not None else self.entry(caller_id, r)
        sink.ret("smc", self.caller, out)
        return out
