"""The default secure partitions that ``System()`` boots when none are given.

| ID     | UUID                                 | role                                         |
|--------|--------------------------------------|----------------------------------------------|
| 0x8001 | ffa5e000-0000-4000-8000-000000008001 | echo; subscribed to VM created/destroyed     |
| 0x8002 | ffa5e000-0000-4000-8000-000000008002 | memory service (retrieve, fill/sum, release) |
| 0x8003 | ffa5e000-0000-4000-8000-000000008003 | no direct requests (indirect messages only)  |

The memory service talks to the SPMC exactly as a real partition would, with descriptors built
and read by ``ffasim.desc`` (nothing of the SPMC's own code): it writes a retrieve request into
its TX buffer, calls FFA_MEM_RETRIEVE_REQ_64, reads the response (and any further fragments,
with FFA_MEM_FRAG_RX) from its RX buffer, releases the buffer, touches the pages, and gives
them back with a relinquish descriptor in its TX buffer.
"""

from __future__ import annotations

from .. import abi, desc
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
_PERM_NX = 0x1 << 2
_TYPE_DONATE = 3


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
) -> tuple[int, desc.MemTransaction | None]:
    """Retrieve ``handle`` lent or shared by ``sender``: (status, the response descriptor)."""
    version = sp.ffa_version or abi.FFA_VERSION_1_2
    req = desc.retrieve_request(handle, sender, [sp.id], version, permissions=perms)
    sp.write(sp.tx, req)
    r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    if abi.error_code(r) == abi.FFA_RET_INVALID_PARAMETERS:
        # A lend or donation must name an instruction access; a share must not.
        req = desc.retrieve_request(handle, sender, [sp.id], version, permissions=perms | _PERM_NX)
        sp.write(sp.tx, req)
        r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    if r[0] != abi.FFA_MEM_RETRIEVE_RESP:
        return (abi.error_code(r) or abi.FFA_RET_ABORTED), None
    total, frag = r[1] & abi.MASK32, r[2] & abi.MASK32
    data = sp.read(sp.rx, frag)
    sp.smc(abi.FFA_RX_RELEASE)
    while len(data) < total:
        r = sp.smc(abi.FFA_MEM_FRAG_RX, abi.handle_lo(handle), abi.handle_hi(handle), len(data))
        if r[0] != abi.FFA_MEM_FRAG_TX:
            return (abi.error_code(r) or abi.FFA_RET_ABORTED), None
        data += sp.read(sp.rx, r[3] & abi.MASK32)
        sp.smc(abi.FFA_RX_RELEASE)
    try:
        return 0, desc.MemTransaction.decode(data, version)
    except desc.DescriptorError as e:
        return e.code, None


def _memsvc(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
    op, lo, hi, arg = msg.payload[0], msg.payload[1], msg.payload[2], msg.payload[3]
    if op not in (MEMSVC_OP_FILL, MEMSVC_OP_SUM):
        return (abi.FFA_RET_INVALID_PARAMETERS, 0, 0, 0, 0)
    handle = abi.make_handle(lo, hi)
    perms = abi.FFA_MEM_ACC_RW if op == MEMSVC_OP_FILL else abi.FFA_MEM_ACC_RO
    status, txn = _retrieve(sp, msg.sender, handle, perms)
    if txn is None:
        return (status, 0, 0, 0, 0)
    total = 0
    ranges = txn.composite.constituents if txn.composite is not None else ()
    for rng in ranges:
        for i in range(rng.page_count):
            page = rng.address + i * abi.FFA_PAGE_SIZE
            if op == MEMSVC_OP_FILL:
                sp.write(page, bytes([arg & 0xFF]) * abi.FFA_PAGE_SIZE)
            else:
                total += sum(sp.read(page, abi.FFA_PAGE_SIZE))
    if (txn.flags >> 3) & 0x3 != _TYPE_DONATE:  # a donation is the partition's for good
        sp.write(sp.tx, desc.Relinquish(handle, 0, (sp.id,)).encode())
        status = abi.error_code(sp.smc(abi.FFA_MEM_RELINQUISH))
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
