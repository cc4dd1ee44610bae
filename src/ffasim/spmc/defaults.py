"""The default secure partitions that ``System()`` boots when none are given.

| ID     | UUID                                 | role                                         |
|--------|--------------------------------------|----------------------------------------------|
| 0x8001 | ffa5e000-0000-4000-8000-000000008001 | echo; subscribed to VM created/destroyed     |
| 0x8002 | ffa5e000-0000-4000-8000-000000008002 | memory service (retrieve, fill/sum, release) |
| 0x8003 | ffa5e000-0000-4000-8000-000000008003 | no direct requests (indirect messages only)  |

The memory service talks to the SPMC exactly as a real partition would: it writes a v1.2
retrieve request into its TX buffer, calls FFA_MEM_RETRIEVE_REQ_64, reads the response (and
any further fragments with FFA_MEM_FRAG_RX) from its RX buffer, releases the buffer, touches
the pages, and relinquishes them with a relinquish descriptor in its TX buffer.
"""

from __future__ import annotations

import struct

from .. import abi
from .memory import COMPOSITE, CONSTITUENT, EMAD_V1_1, EMAD_V1_2, HDR_V1_1, RELINQUISH
from .partition import DirectMessage, SecurePartition

ECHO_ID = 0x8001
MEMSVC_ID = 0x8002
QUIET_ID = 0x8003
ECHO_UUID = "ffa5e000-0000-4000-8000-000000008001"
MEMSVC_UUID = "ffa5e000-0000-4000-8000-000000008002"
QUIET_UUID = "ffa5e000-0000-4000-8000-000000008003"

P = abi
ECHO_PROPERTIES = (
    P.FFA_PART_PROP_DIRECT_REQ_RECV
    | P.FFA_PART_PROP_INDIRECT_MSGS
    | P.FFA_PART_PROP_RECV_NOTIF
    | P.FFA_PART_PROP_NOTIF_CREATED
    | P.FFA_PART_PROP_NOTIF_DESTROYED
    | P.FFA_PART_PROP_AARCH64_STATE
    | P.FFA_PART_PROP_DIRECT_REQ2_RECV
)  # 0x3cd
MEMSVC_PROPERTIES = (
    P.FFA_PART_PROP_DIRECT_REQ_RECV
    | P.FFA_PART_PROP_RECV_NOTIF
    | P.FFA_PART_PROP_AARCH64_STATE
    | P.FFA_PART_PROP_DIRECT_REQ2_RECV
)  # 0x309
QUIET_PROPERTIES = (
    P.FFA_PART_PROP_INDIRECT_MSGS | P.FFA_PART_PROP_RECV_NOTIF | P.FFA_PART_PROP_AARCH64_STATE
)  # 0x10c

MEMSVC_OP_FILL = 1
MEMSVC_OP_SUM = 2
_PERM_RO = 0x1
_PERM_RW = 0x2
_PERM_NX = 0x1 << 2
_U16 = struct.Struct("<H")


class EchoPartition(SecurePartition):
    """0x8001: answers a direct request with its payload; records VM availability messages."""

    def __init__(self) -> None:
        super().__init__(
            id=ECHO_ID,
            uuid=ECHO_UUID,
            exec_ctx=1,
            properties=ECHO_PROPERTIES,
            handler=_echo,
            on_vm_created=self._created,
            on_vm_destroyed=self._destroyed,
        )
        self.vms_created: list[int] = []
        self.vms_destroyed: list[int] = []

    def _created(self, vm_id: int) -> int:
        self.vms_created.append(vm_id)
        return 0

    def _destroyed(self, vm_id: int) -> int:
        self.vms_destroyed.append(vm_id)
        return 0


def _echo(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
    return msg.payload


def _retrieve(
    sp: SecurePartition, sender: int, handle: int, perms: int
) -> tuple[int, list[tuple[int, int]], int]:
    """Retrieve ``handle`` from ``sender``: (status, constituents, transaction type)."""
    req = HDR_V1_1.pack(
        sender, 0, 0, handle, 0, EMAD_V1_2.size, 1, HDR_V1_1.size, bytes(12)
    ) + EMAD_V1_2.pack(sp.id, perms, 0, 0, bytes(16), bytes(8))
    sp.write(sp.tx, req)
    r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    if abi.is_error(r) and abi.error_code(r) == abi.FFA_RET_INVALID_PARAMETERS:
        # A lend or donation must name an instruction access; a share must not.
        req = req[: HDR_V1_1.size] + EMAD_V1_2.pack(
            sp.id, perms | _PERM_NX, 0, 0, bytes(16), bytes(8)
        )
        sp.write(sp.tx, req)
        r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    if r[0] != abi.FFA_MEM_RETRIEVE_RESP:
        return (abi.error_code(r) or abi.FFA_RET_ABORTED), [], 0
    total, frag = r[1] & abi.MASK32, r[2] & abi.MASK32
    data = sp.read(sp.rx, frag)
    sp.smc(abi.FFA_RX_RELEASE)
    while len(data) < total:
        r = sp.smc(abi.FFA_MEM_FRAG_RX, abi.handle_lo(handle), abi.handle_hi(handle), len(data))
        if r[0] != abi.FFA_MEM_FRAG_TX:
            return (abi.error_code(r) or abi.FFA_RET_ABORTED), [], 0
        data += sp.read(sp.rx, r[3] & abi.MASK32)
        sp.smc(abi.FFA_RX_RELEASE)
    flags, emad_offset = HDR_V1_1.unpack_from(data)[2], HDR_V1_1.unpack_from(data)[7]
    emad = EMAD_V1_1.unpack_from(data, emad_offset)  # the first 16 bytes of either size
    comp = emad[3]
    _pages, count, _ = COMPOSITE.unpack_from(data, comp)
    consts = [
        CONSTITUENT.unpack_from(data, comp + COMPOSITE.size + CONSTITUENT.size * i)[:2]
        for i in range(count)
    ]
    return 0, consts, (flags >> 3) & 0x3


def _relinquish(sp: SecurePartition, handle: int) -> int:
    sp.write(sp.tx, RELINQUISH.pack(handle, 0, 1) + _U16.pack(sp.id))
    r = sp.smc(abi.FFA_MEM_RELINQUISH)
    return abi.error_code(r)


def _memsvc(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
    op, lo, hi, arg = msg.payload[0], msg.payload[1], msg.payload[2], msg.payload[3]
    if op not in (MEMSVC_OP_FILL, MEMSVC_OP_SUM):
        return (abi.FFA_RET_INVALID_PARAMETERS, 0, 0, 0, 0)
    handle = abi.make_handle(lo, hi)
    perms = _PERM_RW if op == MEMSVC_OP_FILL else _PERM_RO
    status, consts, ttype = _retrieve(sp, msg.sender, handle, perms)
    if status:
        return (status, 0, 0, 0, 0)
    total = 0
    for addr, pages in consts:
        for i in range(pages):
            page = addr + i * abi.FFA_PAGE_SIZE
            if op == MEMSVC_OP_FILL:
                sp.write(page, bytes([arg & 0xFF]) * abi.FFA_PAGE_SIZE)
            else:
                total += sum(sp.read(page, abi.FFA_PAGE_SIZE))
    if ttype != 3:  # a donation is the partition's for good: nothing to give back
        status = _relinquish(sp, handle)
    return (status, total & abi.MASK32, 0, 0, 0)


def default_partitions() -> list[SecurePartition]:
    """Fresh instances of the three default partitions (0x8001 echo, 0x8002 memory service,
    0x8003 without direct requests)."""
    return [
        EchoPartition(),
        SecurePartition(
            id=MEMSVC_ID,
            uuid=MEMSVC_UUID,
            exec_ctx=1,
            properties=MEMSVC_PROPERTIES,
            handler=_memsvc,
        ),
        SecurePartition(
            id=QUIET_ID,
            uuid=QUIET_UUID,
            exec_ctx=1,
            properties=QUIET_PROPERTIES,
            handler=None,
        ),
    ]
