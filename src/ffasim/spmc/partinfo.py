"""Partition discovery: FFA_PARTITION_INFO_GET and FFA_PARTITION_INFO_GET_REGS.

Mirrors Hafnium v2.14 ``api_ffa_partition_info_get`` / ``api_ffa_partition_info_get_regs``
(hafnium-spmc.md §3): only partitions are listed (the SPMC forwards nothing to the SPMD);
descriptors are 8 bytes for a v1.0 caller and 24 bytes otherwise; properties are computed for
the caller as Hafnium computes them; the UUID field is filled only for a nil-UUID query.

Locks: the caller's VM lock while its RX buffer is tested and written (Hafnium
``send_versioned_partition_info_descriptors``); the partition table is fixed at boot and read
without a lock.
"""

from __future__ import annotations

import functools
import struct
from typing import TYPE_CHECKING

from .. import abi
from .mailbox import FULL, Endpoint
from .spmc import HYP_ID, Handler, Regs
from .vm import vm_lock, vm_unlock

if TYPE_CHECKING:
    from .partition import SecurePartition
    from .spmc import Spmc

# FF-A v1.1 Table 13.37 (24 bytes) and v1.0 (8 bytes) partition information descriptors.
PARTINFO_V1_1 = struct.Struct("<HHI16s")
PARTINFO_V1_0 = struct.Struct("<HHI")
assert PARTINFO_V1_1.size == 24 and PARTINFO_V1_0.size == 8
# Hafnium's staging limit (MAX_VMS descriptors); more matches answer NO_MEMORY.
MAX_PARTINFO_ENTRIES = 64
# PARTITION_INFO_GET_REGS in v2.14: 3 registers per entry, 5 entries per call.
REGS_PER_ENTRY = 3
ENTRIES_PER_CALL = 5

_VM_AVAIL_BITS = abi.FFA_PART_PROP_NOTIF_CREATED | abi.FFA_PART_PROP_NOTIF_DESTROYED


def partition_properties(sp: SecurePartition, caller: Endpoint) -> int:
    """The properties ``caller`` sees for ``sp``, computed as Hafnium's
    ``ffa_setup_partition_properties`` and ``api_ffa_partitions_info_get_properties`` do:
    the messaging bits the manifest declares (send bits only to partition callers, REQ2 bits
    only for a v1.2+ partition), AArch64 always, notifications and indirect messaging for a
    v1.1+ partition, and the VM availability bits only for the normal world and only with
    direct-request receipt. A v1.0 caller's 8-byte entry keeps bits [2:0] only."""
    return _properties(
        sp.properties, sp.ffa_version or abi.FFA_VERSION_1_2, caller.id == HYP_ID, caller.version
    )


@functools.lru_cache(maxsize=1024)
def _properties(declared: int, version: int, from_hyp: bool, caller_version: int) -> int:
    """:func:`partition_properties` from the values it depends on (memoised: a pure function,
    asked once per partition on each FFA_PARTITION_INFO_GET)."""
    mask = abi.FFA_PART_PROP_DIRECT_REQ_RECV
    mask2 = abi.FFA_PART_PROP_DIRECT_REQ2_RECV
    if not from_hyp:
        mask |= abi.FFA_PART_PROP_DIRECT_REQ_SEND
        mask2 |= abi.FFA_PART_PROP_DIRECT_REQ2_SEND
    if version >= abi.FFA_VERSION_1_2:
        mask |= mask2
    props = (declared & mask) | abi.FFA_PART_PROP_AARCH64_STATE
    if version >= abi.FFA_VERSION_1_1:
        props |= declared & (abi.FFA_PART_PROP_RECV_NOTIF | abi.FFA_PART_PROP_INDIRECT_MSGS)
    if from_hyp and props & abi.FFA_PART_PROP_DIRECT_REQ_RECV:
        props |= declared & _VM_AVAIL_BITS
    if caller_version < abi.FFA_VERSION_1_1:
        return props & 0x7
    return props


def _matches(spmc: Spmc, uuid: bytes) -> list[SecurePartition]:
    if uuid == abi.NIL_UUID:
        return list(spmc.partitions.values())
    return [sp for sp in spmc.partitions.values() if sp.uuid_bytes == uuid]


def ffa_partition_info_get(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_PARTITION_INFO_GET: w1..w4 UUID, w5 flags (bit 0: count only)."""
    uuid = abi.uuid_from_regs32(r[1], r[2], r[3], r[4])
    flags = r[5] & abi.MASK32
    if flags & ~abi.FFA_PARTITION_INFO_GET_COUNT_FLAG:
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "PARTITION_INFO_GET: flags MBZ")
    found = _matches(spmc, uuid)
    if not found:
        return spmc.refuse(
            abi.FFA_RET_INVALID_PARAMETERS, f"PARTITION_INFO_GET: no partition {abi.uuid_str(uuid)}"
        )
    if len(found) > MAX_PARTINFO_ENTRIES:
        return spmc.refuse(abi.FFA_RET_NO_MEMORY, "PARTITION_INFO_GET: too many entries")
    if flags & abi.FFA_PARTITION_INFO_GET_COUNT_FLAG:
        return abi.success(len(found), 0)

    vm_lock(ep)
    ret = _send_partition_info(spmc, ep, found, uuid)
    vm_unlock(ep)
    return ret


def _send_partition_info(
    spmc: Spmc, ep: Endpoint, found: list[SecurePartition], uuid: bytes
) -> Regs:
    """Hafnium ``send_versioned_partition_info_descriptors``, with the caller's VM locked:
    the entries in the caller's layout, written into its RX buffer if the SPMC owns it."""
    mbox = ep.mailbox
    if mbox.busy():
        return spmc.refuse(
            abi.FFA_RET_BUSY,
            f"PARTITION_INFO_GET: RX of 0x{ep.id:x} is {mbox.state.value}"
            if mbox.mapped
            else f"PARTITION_INFO_GET: 0x{ep.id:x} has no RX buffer",
        )
    nil = uuid == abi.NIL_UUID
    from_hyp = ep.id == HYP_ID
    v1_2 = abi.FFA_VERSION_1_2
    if ep.version < abi.FFA_VERSION_1_1:
        size = PARTINFO_V1_0.size
        pack0 = PARTINFO_V1_0.pack
        data = b"".join(
            [
                pack0(
                    sp.id,
                    sp.exec_ctx,
                    _properties(sp.properties, sp.ffa_version or v1_2, from_hyp, ep.version),
                )
                for sp in found
            ]
        )
    else:
        size = PARTINFO_V1_1.size
        pack1 = PARTINFO_V1_1.pack
        data = b"".join(
            [
                pack1(
                    sp.id,
                    sp.exec_ctx,
                    _properties(sp.properties, sp.ffa_version or v1_2, from_hyp, ep.version),
                    sp.uuid_bytes if nil else abi.NIL_UUID,
                )
                for sp in found
            ]
        )
    if len(data) > mbox.size:
        return spmc.refuse(abi.FFA_RET_NO_MEMORY, "PARTITION_INFO_GET: entries exceed the RX")
    spmc.machine.mem.write(mbox.rx, data, "spmc")
    spmc.mailbox_changed(mbox.endpoint)
    mbox.state = FULL
    mbox.recv_func = abi.FFA_PARTITION_INFO_GET
    return abi.success(len(found), size)


def ffa_partition_info_get_regs(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_PARTITION_INFO_GET_REGS (v1.2): entries packed in x3..x17, no RX buffer involved."""
    uuid = abi.uuid_from_regs64(r[1], r[2])
    start = r[3] & 0xFFFF
    tag = (r[3] >> 16) & 0xFFFF
    if tag:
        return spmc.refuse(abi.FFA_RET_RETRY, "PARTITION_INFO_GET_REGS: tags are not supported")
    found = _matches(spmc, uuid)
    if not found:
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "PARTITION_INFO_GET_REGS: no match")
    if start >= len(found):
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "PARTITION_INFO_GET_REGS: bad index")
    nil = uuid == abi.NIL_UUID
    chunk = found[start : start + ENTRIES_PER_CALL]
    out = [0] * abi.NUM_REGS
    out[0] = abi.FFA_SUCCESS_64
    last = len(found) - 1
    current = start + len(chunk) - 1
    out[2] = last | (current << 16) | (0 << 32) | (PARTINFO_V1_1.size << 48)
    for i, sp in enumerate(chunk):
        base = 3 + REGS_PER_ENTRY * i
        # Unlike the v1.0 RX-buffer entry, the register form is never masked to bits [2:0]
        # (Hafnium api_ffa_partition_info_get_regs packs the properties as computed).
        props = _properties(
            sp.properties, sp.ffa_version or spmc.version, ep.id == HYP_ID, abi.FFA_VERSION_1_2
        )
        out[base] = sp.id | (sp.exec_ctx << 16) | (props << 32)
        if nil:
            out[base + 1], out[base + 2] = abi.uuid_to_regs64(sp.uuid_bytes)
    return tuple(out)


HANDLERS: dict[int, Handler] = {
    abi.FFA_PARTITION_INFO_GET: ffa_partition_info_get,
    abi.FFA_PARTITION_INFO_GET_REGS: ffa_partition_info_get_regs,
}
