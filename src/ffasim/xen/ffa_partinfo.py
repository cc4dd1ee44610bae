"""Partition information and the VM created/destroyed messages. Mirrors ffa_partinfo.c (upstream
HEAD, c447b7308b).

FFA_PARTITION_INFO_GET lists the secure partitions from a cache filled once at boot
(``sp_list``: the SPMC's entries with bit 15 set, ``sp_list_entry_size`` bytes each) followed by
the VMs Xen knows (with VM-to-VM), the caller's own entry first for v1.2 guests (Linux before v1.2
rejects its own entry). Each entry is written into the guest's RX as ``ffa_copy_info`` goes
(one ``memcpy``, then a ``memset`` of the padding), so an error part-way leaves the entries
written so far. FFA_PARTITION_INFO_GET_REGS returns the same list five entries at a time in
registers, guarded by a tag that changes with VM membership.

Locks: ``ffa_ctx_list_rwlock`` (read) while walking the VM list, with no other FF-A lock held
(VM entries are written under it); the guest's RX is owned through ``ffa_rx_acquire``
(``rx_lock`` is not held while writing); ``ffa_spmc_rx_lock`` only at boot
(``ffa_partinfo_init``).

Upstream defect kept here (``reference`` fixes it): ``ffa_get_vm_partinfo`` stores its count
only on success, so PARTITION_INFO_GET_REGS, which takes NO_MEMORY as "window full", counts no VM
entry there: it cannot page past five VMs.

Not modelled: the DEBUG log lines' rate limits.
"""

from __future__ import annotations

import struct

from .. import abi
from ..machine import Atomic, Machine, SmcConduit, read_lock, read_unlock
from ..machine.xmalloc import xmalloc
from .ffa_private import (
    EIO,
    ENOMEM,
    FFA_ID_IS_SECURE,
    FFA_MAX_NUM_SP,
    FFA_PAGE_SIZE,
    FFA_PART_VM_PROP,
    FFA_PARTITION_INFO_1_0,
    FFA_PARTITION_INFO_1_1,
    FFA_RXTX_PAGE_COUNT,
    Cursor,
    Domain,
    FfaCtx,
    MappedBuf,
    Regs,
    StackBuf,
    ffa_get_ret_code,
    ffa_get_vm_id,
    ffa_set_regs_error,
    ffa_set_regs_success,
    ffa_uuid_equal,
    ffa_uuid_is_nil,
    ffa_uuid_set,
    is_64bit_domain,
)
from .ffa_rxtx import FfaRxtx

FFA_PARTINFO_REG_MAX_ENTRIES = (15 * 8) // FFA_PARTITION_INFO_1_1.size
assert FFA_PARTINFO_REG_MAX_ENTRIES == 5

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def ffa_copy_info(dst: Cursor, dst_end: int, src: bytes, dst_size: int, src_size: int) -> int:
    """Write one entry at ``*dst`` (a ``memcpy`` of ``min(dst_size, src_size)`` bytes, then a
    ``memset`` of the rest) and move ``*dst`` on; NO_MEMORY when it does not fit before
    ``dst_end``."""
    pos = dst.off
    if pos > dst_end - dst_size:
        return abi.FFA_RET_NO_MEMORY
    dst.buf.store(pos, src[: min(dst_size, src_size)])
    if dst_size > src_size:
        dst.buf.memset(pos + src_size, 0, dst_size - src_size)
    dst.off = pos + dst_size
    return abi.FFA_RET_OK


def ffa_sp_entry_read_id(entry: bytes) -> int:
    return _U16.unpack_from(entry, 0)[0]


def ffa_sp_entry_read_partition_properties(entry: bytes) -> int:
    return _U32.unpack_from(entry, 4)[0]


def ffa_sp_entry_matches_uuid(entry: bytes, uuid: bytes) -> bool:
    if ffa_uuid_is_nil(uuid):
        return True
    return ffa_uuid_equal(uuid, entry[8:24])


def vm_partition_info(ffa_id: int, num_vcpus: int, is_64bit: bool) -> bytes:
    """A VM's ``struct ffa_partition_info_1_0`` (VMs have no UUID: 1.0 entries, zero-padded)."""
    props = FFA_PART_VM_PROP | (abi.FFA_PART_PROP_AARCH64_STATE if is_64bit else 0)
    return FFA_PARTITION_INFO_1_0.pack(ffa_id, num_vcpus, props)


class FfaPartinfo(FfaRxtx):
    """ffa_partinfo.c: the functions of that file, as methods of the mediator."""

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        # __read_mostly: filled by ffa_partinfo_init at boot, then read without a lock.
        self.sp_list: list[bytes] = []
        self.sp_list_entry_size = 0
        self.ffa_partinfo_tag = Atomic(self.machine, "ffa_partinfo_tag", 1)

    @property
    def sp_list_count(self) -> int:
        return len(self.sp_list)

    def ffa_partinfo_inc_tag(self) -> None:
        self.ffa_partinfo_tag.inc()

    def ffa_partinfo_get_tag(self) -> int:
        """The tag moves with VM-list changes only (SPMC tag changes are not tracked)."""
        if self.CONFIG_FFA_VM_TO_VM:
            return self.ffa_partinfo_tag.read() & 0xFFFF
        return 1

    # -- SMC wrapper ------------------------------------------------------------------------------
    def ffa_partition_info_get(self, uuid: bytes, flags: int) -> tuple[int, int, int]:
        """FFA_PARTITION_INFO_GET to the SPMC: ``(ret, count, fpi_size)``."""
        w = abi.uuid_to_regs32(uuid)
        resp = self.smc(abi.FFA_PARTITION_INFO_GET, w[0], w[1], w[2], w[3], flags)
        ret = ffa_get_ret_code(resp)
        if ret:
            return ret, 0, 0
        return ret, resp[2] & abi.MASK32, resp[3] & abi.MASK32

    # -- SP cache ---------------------------------------------------------------------------------
    def ffa_get_sp_count(self, uuid: bytes) -> tuple[int, int]:
        count = sum(1 for e in self.sp_list if ffa_sp_entry_matches_uuid(e, uuid))
        if not ffa_uuid_is_nil(uuid) and not count:
            return abi.FFA_RET_INVALID_PARAMETERS, count
        return abi.FFA_RET_OK, count

    def ffa_get_sp_partinfo(
        self, uuid: bytes, dst_buf: Cursor, end_buf: int, dst_size: int
    ) -> tuple[int, int]:
        """Copy the matching cached SP entries at ``*dst_buf``: ``(ret, sp_count)``; on an error
        the count is not set (0).

        A specific UUID gets its UUID field zeroed in the copy (the spec says MBZ then). A 1.0
        guest with a 1.1 SPMC may see one ID several times: accepted non-compliance."""
        count = 0
        for entry in self.sp_list:
            if not ffa_sp_entry_matches_uuid(entry, uuid):
                continue
            dst_pos = dst_buf.off
            ret = ffa_copy_info(dst_buf, end_buf, entry, dst_size, self.sp_list_entry_size)
            if ret:
                return ret, 0
            if not ffa_uuid_is_nil(uuid) and dst_size >= FFA_PARTITION_INFO_1_1.size:
                dst_buf.buf.memset(dst_pos + 8, 0, 16)
            count += 1
        if not ffa_uuid_is_nil(uuid) and not count:
            return abi.FFA_RET_INVALID_PARAMETERS, count
        return abi.FFA_RET_OK, count

    def ffa_get_sp_partinfo_regs(
        self, uuid: bytes, start_index: int, out_regs: StackBuf, max_entries: int
    ) -> int:
        """Copy up to ``max_entries`` SP entries from ``start_index`` into ``out_regs`` (from
        x3, 24 bytes each); how many."""
        idx = 0
        filled = 0
        for entry in self.sp_list:
            if filled >= max_entries:
                break
            if not ffa_sp_entry_matches_uuid(entry, uuid):
                continue
            idx += 1
            if idx - 1 < start_index:
                continue
            off = (3 + filled * 3) * 8
            out_regs.store(off, entry[: FFA_PARTITION_INFO_1_1.size])
            if not ffa_uuid_is_nil(uuid):
                out_regs.memset(off + 8, 0, 16)
            filled += 1
        return filled

    def ffa_get_vm_partinfo(
        self,
        d: Domain,
        uuid: bytes,
        start_index: int,
        dst_buf: Cursor,
        end_buf: int,
        dst_size: int,
    ) -> tuple[int, int]:
        """Copy VM entries at ``*dst_buf``: the caller first for v1.2 guests, then, with
        VM-to-VM, every other published VM (under the list's read lock). ``(ret, vm_count)``:
        the count is stored only on success (0 otherwise)."""
        curr_ctx = d.tee
        assert curr_ctx is not None
        if not ffa_uuid_is_nil(uuid):
            return abi.FFA_RET_OK, 0  # VMs have no protocol UUIDs
        count = 0
        idx = 0
        ret = abi.FFA_RET_OK
        # Linux's driver rejects its own entry before v1.2: include it from v1.2 only.
        if curr_ctx.guest_vers.read() >= abi.FFA_VERSION_1_2:
            if start_index == 0:
                info = vm_partition_info(curr_ctx.ffa_id, curr_ctx.num_vcpus, is_64bit_domain(d))
                ret = ffa_copy_info(dst_buf, end_buf, info, dst_size, len(info))
                if ret:
                    return ret, 0
                count += 1
            idx += 1
        if self.CONFIG_FFA_VM_TO_VM:
            read_lock(self.ffa_ctx_list_rwlock)
            for dest_ctx in self.ffa_ctx_head:
                if dest_ctx is curr_ctx:
                    continue  # already added
                if idx >= start_index:
                    info = vm_partition_info(dest_ctx.ffa_id, dest_ctx.num_vcpus, dest_ctx.is_64bit)
                    ret = ffa_copy_info(dst_buf, end_buf, info, dst_size, len(info))
                    if ret:
                        read_unlock(self.ffa_ctx_list_rwlock)
                        return ret, 0
                    count += 1
                idx += 1
            read_unlock(self.ffa_ctx_list_rwlock)
        return ret, count

    # -- guest FFA_PARTITION_INFO_GET -------------------------------------------------------------
    def ffa_handle_partition_info_get(self, d: Domain, regs: Regs) -> Regs:
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_OK
        flags = regs[5] & abi.MASK32
        uuid = ffa_uuid_set(regs[1], regs[2], regs[3], regs[4])
        vm_count = sp_count = 0
        # A 1.0 guest gets no entry size back, so it gets 1.0 entries; others the 1.1 layout.
        if ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
            dst_size = FFA_PARTITION_INFO_1_0.size
        else:
            dst_size = FFA_PARTITION_INFO_1_1.size
        if flags:
            # Count only. FF-A 1.0 has w5 MBZ; 1.1 defines only the count flag.
            if (
                ctx.guest_vers.read() == abi.FFA_VERSION_1_0
                or flags != abi.FFA_PARTITION_INFO_GET_COUNT_FLAG
            ):
                ret = abi.FFA_RET_INVALID_PARAMETERS
            elif self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                ret, sp_count = self.ffa_get_sp_count(uuid)
            if not ret and ffa_uuid_is_nil(uuid):
                vm_count = self.get_ffa_vm_count()
                if ctx.guest_vers.read() < abi.FFA_VERSION_1_2:
                    vm_count -= 1  # the Linux workaround: no own entry before v1.2
        else:
            ret, rx, buf_size = self.ffa_rx_acquire(ctx)
            if ret == abi.FFA_RET_OK:
                assert rx is not None
                dst_buf = Cursor(rx)
                end_buf = buf_size
                if end_buf < dst_size:  # dst_buf >= end_buf || dst_buf > end_buf - dst_size
                    ret = abi.FFA_RET_INVALID_PARAMETERS
                elif self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                    ret, sp_count = self.ffa_get_sp_partinfo(uuid, dst_buf, end_buf, dst_size)
                if not ret:
                    ret, vm_count = self.ffa_get_vm_partinfo(d, uuid, 0, dst_buf, end_buf, dst_size)
                if ret:  # out_rx_release:
                    self.ffa_rx_release(ctx)
        if ret:  # out:
            return ffa_set_regs_error(ret)
        # The size is 0 for a count request and for a 1.0 guest (it has no such field).
        if flags or ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
            dst_size = 0
        return ffa_set_regs_success(sp_count + vm_count, dst_size)

    def ffa_handle_partition_info_get_regs(self, d: Domain, regs: Regs) -> Regs:
        """FFA_PARTITION_INFO_GET_REGS (v1.2 guests): five 24-byte entries per call in x3..x17."""
        ctx = d.tee
        assert ctx is not None
        if ctx.guest_vers.read() < abi.FFA_VERSION_1_2:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        x3 = regs[3]
        start_index = x3 & 0xFFFF
        tag = (x3 >> 16) & 0xFFFF
        if start_index > 0xFFFF - (FFA_PARTINFO_REG_MAX_ENTRIES - 1):
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        uuid = abi.uuid_from_regs64(regs[1], regs[2])
        tag_out = self.ffa_partinfo_get_tag()
        if start_index == 0:
            if tag:
                return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        elif tag != tag_out:
            return ffa_set_regs_error(abi.FFA_RET_RETRY)
        vm_count = 0
        if ffa_uuid_is_nil(uuid):
            vm_count = self.get_ffa_vm_count() if self.CONFIG_FFA_VM_TO_VM else 1
        ret, sp_count = self.ffa_get_sp_count(uuid)
        if ret:
            return ffa_set_regs_error(ret)
        total_count = sp_count + vm_count
        if total_count == 0 or start_index >= total_count:
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        out_regs = StackBuf(self.machine, 18 * 8, "out_regs")
        num_entries = 0
        if start_index < sp_count:
            num_entries = self.ffa_get_sp_partinfo_regs(
                uuid, start_index, out_regs, FFA_PARTINFO_REG_MAX_ENTRIES
            )
        if num_entries < FFA_PARTINFO_REG_MAX_ENTRIES:
            vm_start = start_index - sp_count if start_index > sp_count else 0
            vm_dst = Cursor(out_regs, (3 + num_entries * 3) * 8)
            ret, filled = self.ffa_get_vm_partinfo(
                d, uuid, vm_start, vm_dst, 18 * 8, FFA_PARTITION_INFO_1_1.size
            )
            if ret != abi.FFA_RET_OK and ret != abi.FFA_RET_NO_MEMORY:
                return ffa_set_regs_error(ret)
            num_entries += filled
        if num_entries == 0:
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        # The VM list may change while the answer is built: ask the caller to retry then.
        tag_end = self.ffa_partinfo_get_tag()
        if tag_end != tag_out:
            return ffa_set_regs_error(abi.FFA_RET_RETRY)
        x2 = (
            (FFA_PARTITION_INFO_1_1.size << 48)
            | (tag_end << 32)
            | ((start_index + num_entries - 1) << 16)
            | ((total_count - 1) & 0xFFFF)
        )
        words = struct.unpack("<15Q", out_regs.load(3 * 8, 15 * 8))
        return (abi.FFA_SUCCESS_64, 0, x2, *words)

    # -- VM created / destroyed -------------------------------------------------------------------
    def ffa_direct_req_send_vm(self, sp_id: int, vm_id: int, msg: int) -> int:
        """Send a VM created/destroyed framework message to ``sp_id``; the SP's status.

        Re-sent while the SP answers INTERRUPTED or RETRY, 11 SMCs at most; any reply other
        than the matching framework response is INVALID_PARAMETERS."""
        exp_resp = abi.FFA_MSG_FLAG_FRAMEWORK
        if msg == abi.FFA_MSG_SEND_VM_CREATED:
            exp_resp |= abi.FFA_MSG_RESP_VM_CREATED
        elif msg == abi.FFA_MSG_SEND_VM_DESTROYED:
            exp_resp |= abi.FFA_MSG_RESP_VM_DESTROYED
        else:
            return abi.FFA_RET_INVALID_PARAMETERS
        retry_count = 0
        while True:
            resp = self.smc(
                abi.FFA_MSG_SEND_DIRECT_REQ_32,
                sp_id,
                abi.FFA_MSG_FLAG_FRAMEWORK | msg,
                0,
                0,
                vm_id,
            )
            if resp[0] != abi.FFA_MSG_SEND_DIRECT_RESP_32 or resp[2] != exp_resp:
                return abi.FFA_RET_INVALID_PARAMETERS
            res = abi.to_s32(resp[3])
            retry_count += 1
            if retry_count > 10:
                return res
            if res not in (abi.FFA_RET_INTERRUPTED, abi.FFA_RET_RETRY):
                return res

    def ffa_sp_list_cache_free(self) -> None:
        self.sp_list = []
        self.sp_list_entry_size = 0

    def ffa_sp_list_cache_init(self, buf: MappedBuf, count: int, fpi_size: int) -> bool:
        """Keep a copy of the entries with bit 15 set from what the SPMC wrote in Xen's RX
        ``buf``: one pass reads each entry's ID and counts, a second reads the IDs again and
        copies the secure entries (each a read of Xen's RX)."""
        if fpi_size < FFA_PARTITION_INFO_1_1.size or fpi_size >= FFA_PAGE_SIZE:
            return False
        if count > (FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE) // fpi_size:
            return False
        secure_count = 0
        for n in range(count):
            ep = buf.u16(n * fpi_size)
            if not FFA_ID_IS_SECURE(ep):
                self.printk(f"Secure partition with id {ep:#06x} cannot be used")
                continue
            secure_count += 1
        if secure_count and not xmalloc(self.machine, "xzalloc_bytes", "ffa_sp_list_cache_init"):
            return False
        sp_list = []
        for n in range(count):
            if not FFA_ID_IS_SECURE(buf.u16(n * fpi_size)):
                continue
            sp_list.append(buf.load(n * fpi_size, fpi_size))
        self.sp_list = sp_list
        self.sp_list_entry_size = fpi_size
        return True

    def ffa_partinfo_init(self) -> bool:
        """Cache the SPs from one FFA_PARTITION_INFO_GET at boot."""
        if not self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET) or not self.ffa_fw_supports_fid(
            abi.FFA_MSG_SEND_DIRECT_REQ_32
        ):
            return False
        spmc_rx = self.ffa_rxtx_spmc_rx_acquire()
        if spmc_rx is None:
            return False
        ret = False
        notify_fw = False
        e, count, fpi_size = self.ffa_partition_info_get(abi.NIL_UUID, 0)
        if e:
            self.printk(f"Failed to get list of SPs: {e}")
        else:
            notify_fw = True
            if count >= FFA_MAX_NUM_SP:
                self.printk(f"More SPs than the maximum supported: {count} - {FFA_MAX_NUM_SP}")
            elif not self.ffa_sp_list_cache_init(spmc_rx, count, fpi_size):
                self.printk("Failed to cache SP list")
            else:
                ret = True
        e = self.ffa_rxtx_spmc_rx_release(notify_fw)  # out_release_rx:
        if e:
            self.printk(f"Error releasing SPMC RX buffer: {e}")
        if not ret:
            self.ffa_sp_list_cache_free()
        return ret

    def vm_destroy_bitmap_init(self, ctx: FfaCtx, first_unnotified: int) -> None:
        """Which SPs get VM_DESTROYED: subscribers, minus created-subscribers never told."""
        bitmap = ctx.vm_destroy_bitmap
        assert bitmap is not None
        for n, entry in enumerate(self.sp_list):
            props = ffa_sp_entry_read_partition_properties(entry)
            if not props & abi.FFA_PART_PROP_NOTIF_DESTROYED:
                continue
            if props & abi.FFA_PART_PROP_NOTIF_CREATED and n >= first_unnotified:
                continue
            bitmap[n] = True

    def ffa_partinfo_domain_init(self, d: Domain) -> int:
        """Tell the subscribed SPs that the VM exists; -EIO (and a partial bitmap) on failure."""
        ctx = d.tee
        assert ctx is not None
        if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND_DIRECT_REQ_32) or not self.sp_list_count:
            return 0
        if not xmalloc(self.machine, "xzalloc_array", "ffa_partinfo_domain_init"):
            return -ENOMEM
        ctx.vm_destroy_bitmap = [False] * self.sp_list_count
        first_unnotified = self.sp_list_count
        for n, entry in enumerate(self.sp_list):
            props = ffa_sp_entry_read_partition_properties(entry)
            sp_id = ffa_sp_entry_read_id(entry)
            if not props & abi.FFA_PART_PROP_NOTIF_CREATED:
                continue
            res = self.ffa_direct_req_send_vm(sp_id, ffa_get_vm_id(d), abi.FFA_MSG_SEND_VM_CREATED)
            if res:
                self.printk(
                    f"Failed to report creation of vm_id {ffa_get_vm_id(d)} to {sp_id}: res {res}"
                )
                first_unnotified = n
                break
        self.vm_destroy_bitmap_init(ctx, first_unnotified)
        if first_unnotified != self.sp_list_count:
            return -EIO
        return 0

    def ffa_partinfo_domain_destroy(self, d: Domain) -> bool:
        """Send VM_DESTROYED to each SP still due; True when none is left to retry."""
        ctx = d.tee
        assert ctx is not None
        bitmap = ctx.vm_destroy_bitmap
        if bitmap is None:
            return True
        for n, entry in enumerate(self.sp_list):
            if not bitmap[n]:
                continue
            sp_id = ffa_sp_entry_read_id(entry)
            res = self.ffa_direct_req_send_vm(
                sp_id, ffa_get_vm_id(d), abi.FFA_MSG_SEND_VM_DESTROYED
            )
            if res:
                self.printk(f"Failed to report destruction of vm_id {ffa_get_vm_id(d)}: {res}")
            # INTERRUPTED and RETRY ask for a resend; anything else is final.
            if res not in (abi.FFA_RET_INTERRUPTED, abi.FFA_RET_RETRY):
                bitmap[n] = False
        if not any(bitmap):
            ctx.vm_destroy_bitmap = None
        return ctx.vm_destroy_bitmap is None
