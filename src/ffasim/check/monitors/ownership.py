"""ownership: an RX/TX buffer used or released by someone who does not own it.

Two sides are judged:

- the SPMC's: the firmware model reports what it refuses (``violation("ownership", ...)``),
  e.g. FFA_RX_RELEASE from a hypervisor whose RX buffer is not FULL, because the call that should
  have filled it failed (seed defect 3). Every such report is a finding.
- the mediator's, against the SPMC's own record of who owns each RX buffer
  (``spmc.mailboxes``, Hafnium's mailbox states):

  * Xen reading its RX buffer (the one it registered with FFA_RXTX_MAP at boot) while the SPMC
    does not consider it FULL: the data is stale, or the SPMC may be writing it;
  * Xen writing a VM's RX buffer while the SPMC does not consider it OTHER_WORLD_OWNED. This is
    only judged for VMs whose RX buffer the mediator took with FFA_RX_ACQUIRE at least once in
    the execution: a mediator that never acquires (the SPMC lacks RX_ACQUIRE, or the seed does
    not use it) owns the buffer by the older protocol, and the rule does not apply.

The monitor finds the SPMC through the machine (``machine.system.spmc`` or ``machine.spmc``,
which the checker's runner sets); without one, only the SPMC's own reports are judged.
"""

from __future__ import annotations

from typing import Any

from ... import abi
from ...machine import Frame, Machine
from ...machine.events import MAILBOX
from ._base import CallTracking, frame_name, span

HYP_ENDPOINT = 0


def find_spmc(machine: Machine) -> Any:
    """The SPMC of the system built on ``machine``, or ``None``."""
    spmc = getattr(machine, "spmc", None)
    if spmc is None:
        spmc = getattr(getattr(machine, "system", None), "spmc", None)
    return spmc


def _state_name(mailbox: Any) -> str:
    state = getattr(mailbox, "state", None)
    return str(getattr(state, "name", state))


def _in_rx(mailbox: Any, mfn: int) -> bool:
    """Whether frame ``mfn`` is one of ``mailbox``'s RX buffer frames."""
    return any(f.mfn == mfn for f in getattr(mailbox, "rx_frames", ()))


class OwnershipMonitor(CallTracking):
    """Reports the SPMC's ownership violations and the mediator's uses of RX buffers it does
    not own according to the SPMC."""

    def __init__(self) -> None:
        super().__init__()
        self.acquired_vms: set[int] = set()
        self.reported: set[tuple[str, int]] = set()

    def violation(self, kind: str, message: str) -> None:
        if kind != "ownership":
            return
        ctx = self.context()
        self.report("ownership", message, threads=(ctx,), calls=self.calls_of(ctx))

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer == "smc" and args and args[0] == abi.FFA_RX_ACQUIRE:
            vm_id = args[1] & 0xFFFF
            self.declare(MAILBOX, vm_id, True)  # from now on that VM's RX is judged
            self.acquired_vms.add(vm_id)

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if party != "xen":
            return
        spmc = find_spmc(self.execution.machine)
        mailboxes = getattr(spmc, "mailboxes", None)
        if not mailboxes:
            return
        # Whether a frame is some endpoint's RX buffer changes only with a grant of the frame
        # (a MEM write, which this access conflicts with); its mailbox's state is declared.
        if not write:
            hyp = mailboxes.get(HYP_ENDPOINT)
            if hyp is not None and _in_rx(hyp, frame.mfn):
                self.declare(MAILBOX, HYP_ENDPOINT, False)
                if _state_name(hyp) != "FULL":
                    self._report(
                        "read",
                        frame,
                        offset,
                        size,
                        f"its RX buffer while the SPMC holds it {_state_name(hyp)}, not FULL",
                    )
            return
        for vm_id, mb in sorted(mailboxes.items()):
            if vm_id == HYP_ENDPOINT or not _in_rx(mb, frame.mfn):
                continue
            self.declare(MAILBOX, vm_id, False)
            if vm_id in self.acquired_vms and _state_name(mb) != "OTHER_WORLD_OWNED":
                self._report(
                    "write",
                    frame,
                    offset,
                    size,
                    f"VM 0x{vm_id:x}'s RX buffer while the SPMC holds it {_state_name(mb)}, "
                    f"not OTHER_WORLD_OWNED (no FFA_RX_ACQUIRE in force)",
                )

    def _report(self, verb: str, frame: Frame, offset: int, size: int, what: str) -> None:
        ctx = self.context()
        key = (verb + ctx, frame.mfn)
        if key in self.reported:
            return
        self.reported.add(key)
        self.report(
            "ownership",
            f"xen {'reads' if verb == 'read' else 'writes'} {what} "
            f"({span(offset, size)} of {frame_name(frame)}, {self.where(ctx)})",
            threads=(ctx,),
            calls=self.calls_of(ctx),
        )
