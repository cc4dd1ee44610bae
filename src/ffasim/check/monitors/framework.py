"""framework: a framework message reaching a partition from anyone but the hypervisor.

VM_CREATED and VM_DESTROYED (a direct request with bit 31 of w2 set, FF-A v1.2 section 18.3)
tell a partition that a VM came or went: it sets up or throws away that VM's state on their
word. Only the hypervisor may send them (it alone knows which VMs exist); the SPMC sees the
whole normal world as one endpoint and cannot tell a guest's request from the hypervisor's
(Hafnium's ``check_vm_availability_message`` checks the receiver's subscription, not the
sender), so the hypervisor must refuse a guest's direct request with the bit set.

The monitor watches every message the SPMC delivers to a partition (the ``sp`` layer) and
reports one that carries the framework bit when its sender (w1[31:16]) is not the hypervisor
(ID 0), or when it arrives while a guest's hypercall is under way in the same context. It
cannot see a framework message the SPMC refuses before delivery (that one did no harm), nor
the framework messages of FFA_MSG_SEND_DIRECT_REQ2 (which has no such bit).
"""

from __future__ import annotations

from ... import abi
from ._base import CallTracking

HYPERVISOR_ID = 0


class FrameworkMonitor(CallTracking):
    """Reports framework messages delivered to a partition on a guest's (or a partition's)
    behalf."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: set[tuple[str, int]] = set()

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer != "sp" or len(args) < 6:
            return
        fid = args[0] & abi.MASK32
        if fid not in (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.FFA_MSG_SEND_DIRECT_REQ_64):
            return
        w2 = args[2] & abi.MASK32
        if not w2 & abi.FFA_MSG_FLAG_FRAMEWORK:
            return
        sender = abi.ffa_sender(args[1])
        receiver = abi.ffa_receiver(args[1])
        ctx = self.execution.machine.current
        guest_call = self.current_call(ctx)
        if sender == HYPERVISOR_ID and guest_call is None:
            return  # the hypervisor's own VM_CREATED / VM_DESTROYED
        key = (ctx, w2)
        if key in self.reported:
            return
        self.reported.add(key)
        what = _name(w2)
        by = f"0x{sender:x}" + (f", in {ctx}'s {guest_call}" if guest_call else "")
        self.report(
            "framework",
            f"partition 0x{receiver:x} receives framework message {what} (w2=0x{w2:x}, "
            f"about VM 0x{args[5] & 0xFFFF:x}) from {by}: only the hypervisor may send it",
            threads=(ctx,),
            calls=self.calls_of(ctx),
        )


def _name(w2: int) -> str:
    func = w2 & abi.FFA_MSG_TYPE_MASK
    if func == abi.FFA_MSG_SEND_VM_CREATED:
        return "VM_CREATED"
    if func == abi.FFA_MSG_SEND_VM_DESTROYED:
        return "VM_DESTROYED"
    return f"type {func}"
