"""Framework messages: direct messages whose w2 bit 31 is set (FF-A §2.3 of the reference).

A framework message is carried by FFA_MSG_SEND_DIRECT_REQ/RESP (32 or 64), never by the
REQ2/RESP2 forms. Bits [7:0] of w2 give its type; the other bits are MBZ.
"""

from __future__ import annotations

from typing import Final

from .. import abi

__all__ = [
    "FRAMEWORK_MSG_NAMES",
    "FRAMEWORK_MSG_PM_REQ",
    "FRAMEWORK_MSG_PM_RESP",
    "FRAMEWORK_MSG_VERSION_REQ",
    "FRAMEWORK_MSG_VERSION_RESP",
    "FRAMEWORK_MSG_VM_CREATED_REQ",
    "FRAMEWORK_MSG_VM_CREATED_RESP",
    "FRAMEWORK_MSG_VM_DESTROYED_REQ",
    "FRAMEWORK_MSG_VM_DESTROYED_RESP",
    "FRAMEWORK_MSG_WARM_BOOT_REQ",
    "framework_msg",
    "framework_msg_name",
    "framework_w2",
    "vm_availability_msg",
]

FRAMEWORK_MSG_PM_REQ: Final = 0  # PSCI request, SPMD -> SPMC/SP
FRAMEWORK_MSG_WARM_BOOT_REQ: Final = 1
FRAMEWORK_MSG_PM_RESP: Final = 2
FRAMEWORK_MSG_VM_CREATED_REQ: Final = abi.FFA_MSG_SEND_VM_CREATED  # 4
FRAMEWORK_MSG_VM_CREATED_RESP: Final = abi.FFA_MSG_RESP_VM_CREATED  # 5
FRAMEWORK_MSG_VM_DESTROYED_REQ: Final = abi.FFA_MSG_SEND_VM_DESTROYED  # 6
FRAMEWORK_MSG_VM_DESTROYED_RESP: Final = abi.FFA_MSG_RESP_VM_DESTROYED  # 7
FRAMEWORK_MSG_VERSION_REQ: Final = 8  # SPMD -> SPMC
FRAMEWORK_MSG_VERSION_RESP: Final = 9

FRAMEWORK_MSG_NAMES: Final[dict[int, str]] = {
    FRAMEWORK_MSG_PM_REQ: "PSCI request",
    FRAMEWORK_MSG_WARM_BOOT_REQ: "warm boot request",
    FRAMEWORK_MSG_PM_RESP: "PM response",
    FRAMEWORK_MSG_VM_CREATED_REQ: "VM created",
    FRAMEWORK_MSG_VM_CREATED_RESP: "VM created response",
    FRAMEWORK_MSG_VM_DESTROYED_REQ: "VM destroyed",
    FRAMEWORK_MSG_VM_DESTROYED_RESP: "VM destroyed response",
    FRAMEWORK_MSG_VERSION_REQ: "FFA_VERSION request",
    FRAMEWORK_MSG_VERSION_RESP: "FFA_VERSION response",
}


def framework_msg(w2: int) -> tuple[bool, int]:
    """``(is_framework, type)`` of a direct message's w2: bit 31 and bits [7:0]."""
    return bool(w2 & abi.FFA_MSG_FLAG_FRAMEWORK), w2 & abi.FFA_MSG_TYPE_MASK


def framework_w2(msg_type: int) -> int:
    """The w2 word of a framework message of ``msg_type`` (``0x80000004`` for VM created)."""
    return abi.FFA_MSG_FLAG_FRAMEWORK | (msg_type & abi.FFA_MSG_TYPE_MASK)


def framework_msg_name(w2: int) -> str:
    """A reading of w2: ``'VM created'``, ``'not a framework message'``, ``'type 0x0c'``."""
    is_fw, msg_type = framework_msg(w2)
    if not is_fw:
        return "not a framework message"
    return FRAMEWORK_MSG_NAMES.get(msg_type, f"type 0x{msg_type:02x}")


def vm_availability_msg(
    sp_id: int, vm_id: int, *, destroyed: bool = False, handle: int = 0
) -> abi.Regs:
    """The FFA_MSG_SEND_DIRECT_REQ_32 a hypervisor sends an SP when VM ``vm_id`` comes or goes.

    w1 = 0 << 16 | SP (the hypervisor is sender 0), w2 = the framework type, w3/w4 = the
    handle halves (Xen sends 0, pKVM all ones), w5 = the VM's ID.
    """
    msg_type = FRAMEWORK_MSG_VM_DESTROYED_REQ if destroyed else FRAMEWORK_MSG_VM_CREATED_REQ
    return abi.regs(
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.pack_target(abi.HYPERVISOR_ID, sp_id),
        framework_w2(msg_type),
        abi.handle_lo(handle),
        abi.handle_hi(handle),
        vm_id & 0xFFFF,
    )
