"""Variant ``seed-v1``: the mediator exactly as "[PATCH v1 05/12] xen/arm: ffa: rework SPMC RX/TX
buffer management" (Bertrand Marquis, 5 Dec 2025) leaves it, defects included.

Overrides only what differs from the reference (Xen HEAD plus fixes), under Xen's names; what
upstream kept until HEAD (defects 2 and 4, the FRAG_RX "error", no bit-31 check, no domain
reference for a queued teardown) comes from ``head.UpstreamFfa``, written once for both:

- FF-A 1.1 to guests; the seed's firmware ABI list (MEM_SHARE_32, no RX_ACQUIRE: the SPMC is
  never asked about it, so VM buffers are never forwarded to it) and no Hafnium workaround;
- seed defect 1: ``ffa_rxtx_spmc_{rx,tx}_acquire`` start with ``ASSERT(!spin_is_locked())``,
  which panics when another CPU holds the lock (two guests in PARTITION_INFO_GET or RXTX_MAP);
- seed defect 2: acquire returns NULL with the lock still held; every caller returns without
  release, so the next user waits forever;
- seed defect 3: ``ffa_rxtx_spmc_rx_release`` always sends FFA_RX_RELEASE, even when the call
  that should have filled the buffer failed (the SPMC answers DENIED);
- seed defect 4: ``ffa_rxtx_spmc_destroy`` frees the pages before FFA_RXTX_UNMAP, and sends
  the unmap even when the map had failed;
- partition info is asked of the SPMC on every guest call (no cache, no GET_REGS, w3 = entry
  size even for count requests, no caller entry); ``ffa_partinfo_init`` has no upper bound on
  the entry size;
- the forwarded RXTX_MAP descriptor puts the RX region at offset 12 (unaligned);
- RXTX_UNMAP does not check RX ownership and teardown does not force an RX release;
- FFA_FEATURES rejects non-zero w2..w7 and knows the seed's list; RUN, DIRECT_REQ2 and
  PARTITION_INFO_GET_REGS are NOT_SUPPORTED;
- MEM_SHARE: at most 255 pages, no NS-bit/EMAD-size/alignment checks, v1.1 EMADs only, a
  FRAG_RX reply is returned to the guest as a positive "error" code; the EMAD's fields are
  read one by one before their checks, so with an EMAD declared 0 bytes long at the end of
  the TX page, a field past the page is read past Xen's mapping of it (modelled as a
  hypervisor data abort);
- direct requests: no check that the destination differs from the caller; replies other than
  ERROR/SUCCESS/DIRECT_RESP become ABORTED with w1 = the request's src/dst;
- SEND2 reads the sender's TX without checking that one is mapped (a NULL dereference: a
  hypervisor crash), uses the 1.1 header and forwards to SPs without RX_ACQUIRE;
- NOTIFICATION_SET tests the sender's halfword for "secure", so SET to an SP is NOT_SUPPORTED;
- MEM_SHARE trylocks the TX itself (``ffa_tx_acquire`` came with patch 06), without checking
  that a TX is mapped;
- with VM-to-VM, ``ffa_vm_count`` changes outside ``ffa_ctx_list_rwlock`` (no partinfo tag);
- ``init_subscribers`` allocates the VM_CREATED/VM_DESTROYED subscriber arrays (fault sites
  ``alloc:subscr_vm_created``, ``alloc:subscr_vm_destroyed``; a failure means no firmware);
- a teardown queued only for VM_DESTROYED retries holds no domain reference.
"""

from __future__ import annotations

from ... import abi
from ...machine import (
    ASSERT,
    Frame,
    HypervisorPanic,
    read_lock,
    read_unlock,
    spin_is_locked,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)
from ..ffa import _FEATURES_ALWAYS, FFA_FW_ABI_NEEDED
from ..ffa_msg import _DIRECT_PASS, FFA_PART_MSG_RXTX_1_1
from ..ffa_partinfo import (
    ffa_copy_info,
    ffa_sp_entry_read_id,
    ffa_sp_entry_read_partition_properties,
)
from ..ffa_private import (
    FFA_ADDRESS_RANGE,
    FFA_ID_IS_SECURE,
    FFA_MAX_NUM_SP,
    FFA_MAX_SHM_PAGE_COUNT,
    FFA_PAGE_SIZE,
    FFA_PARTITION_INFO_1_0,
    FFA_PARTITION_INFO_1_1,
    FFA_RXTX_PAGE_COUNT,
    Domain,
    FfaCtx,
    FfaShmMem,
    GuestView,
    Regs,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
    ffa_set_regs_success,
)
from ..ffa_shm import FfaMemTransactionInt, P2MType, get_page_from_gfn
from .head import UpstreamFfa


def _seed_fw_abi_needed() -> tuple[int, ...]:
    """The seed's ``ffa_fw_abi_needed[]``: HEAD's list as it was before 4992308e97, which
    added FFA_RX_ACQUIRE (so the seed never asks the SPMC about it) and dropped
    FFA_MEM_SHARE_32 (the seed probes it just before FFA_MEM_SHARE_64)."""
    out: list[int] = []
    for fid in FFA_FW_ABI_NEEDED:
        if fid == abi.FFA_RX_ACQUIRE:
            continue
        if fid == abi.FFA_MEM_SHARE_64:
            out.append(abi.FFA_MEM_SHARE_32)
        out.append(fid)
    return tuple(out)


SEED_FW_ABI_NEEDED = _seed_fw_abi_needed()

# What the seed's handle_features answers SUCCESS(0, 0) for: HEAD's unconditional set without
# FFA_INTERRUPT (patch 09 added it), plus what HEAD gates (4992308e97) and the seed offered
# whatever the firmware had: direct requests, SEND2, MEM_SHARE, RXTX_MAP (w2 = 0 for every one).
_SEED_FEATURES = (_FEATURES_ALWAYS - {abi.FFA_INTERRUPT}) | {
    abi.FFA_MSG_SEND_DIRECT_REQ_32,
    abi.FFA_MSG_SEND_DIRECT_REQ_64,
    abi.FFA_MSG_SEND2,
    abi.FFA_MEM_SHARE_32,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_RXTX_MAP_32,
    abi.FFA_RXTX_MAP_64,
}

# Function IDs the seed's dispatcher does not know (they reach the default case).
_SEED_UNHANDLED = frozenset(
    {abi.FFA_RUN, abi.FFA_MSG_SEND_DIRECT_REQ2, abi.FFA_PARTITION_INFO_GET_REGS}
)

# Replies a seed direct request passes back: HEAD's without FFA_MSG_YIELD and FFA_INTERRUPT.
_SEED_DIRECT_PASS = _DIRECT_PASS - {abi.FFA_YIELD, abi.FFA_INTERRUPT}


class SeedV1Ffa(UpstreamFfa):
    """The seed patch v1 (see the module docstring for what differs and why)."""

    variant = "seed-v1"
    FFA_MY_VERSION = abi.FFA_VERSION_1_1
    FFA_FW_ABI_NEEDED = SEED_FW_ABI_NEEDED
    FFA_FW_RX_ACQUIRE_WORKAROUND = False  # 4992308e97 added it
    RXTX_DESC_RX_REGION_OFFS = 12  # sizeof(struct ffa_endpoint_rxtx_descriptor_1_1)
    RXTX_MAP_VMAP_FAILURE = abi.FFA_RET_INVALID_PARAMETERS
    RXTX_UNMAP_CHECKS_RX_OWNER = False  # no RX ownership check, no forced release at teardown

    # -- ffa.c ------------------------------------------------------------------------------------
    def ffa_ctx_list_add(self, ctx: FfaCtx) -> None:
        """The seed counts the VM before it takes the list's write lock (and has no partition
        info tag): a count request in between sees one VM more than a listing would."""
        self.inc_ffa_vm_count()
        write_lock(self.ffa_ctx_list_rwlock)
        self.ffa_ctx_head.append(ctx)
        ctx.in_ctx_list = True
        write_unlock(self.ffa_ctx_list_rwlock)

    def ffa_ctx_list_del(self, ctx: FfaCtx) -> None:
        """Uncounted before the write lock is taken, as the seed's ``ffa_domain_teardown``."""
        self.dec_ffa_vm_count()
        write_lock(self.ffa_ctx_list_rwlock)
        if ctx in self.ffa_ctx_head:
            self.ffa_ctx_head.remove(ctx)
        ctx.in_ctx_list = False
        write_unlock(self.ffa_ctx_list_rwlock)

    def handle_features(self, d: Domain, regs: Regs) -> Regs:
        a1 = regs[1] & abi.MASK32
        if any(regs[2:8]):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if a1 in _SEED_FEATURES:
            return ffa_set_regs_success(0, 0)
        if a1 == abi.FFA_FEAT_NOTIF_PEND_INTR:
            return ffa_set_regs_success(8, 0)
        if a1 == abi.FFA_FEAT_SCHEDULE_RECV_INTR:
            return ffa_set_regs_success(9, 0)
        return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)

    def ffa_handle_call(self, d: Domain, regs: Regs) -> Regs | None:
        ctx = d.tee
        fid = regs[0] & abi.MASK32
        if ctx is not None and fid in _SEED_UNHANDLED:
            if not ctx.guest_vers.read():
                r = self.ffa_negotiate_version(d, ctx, regs)
                if r is not None:
                    return r
            self.printk(f"unhandled fid {fid:#x}")
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        return super().ffa_handle_call(d, regs)

    # -- ffa_rxtx.c -------------------------------------------------------------------------------
    def ffa_rxtx_spmc_rx_acquire(self) -> Frame | None:
        """Defect 1, then upstream's helper (defect 2: NULL returned with the lock held)."""
        ASSERT(not spin_is_locked(self.ffa_spmc_rx_lock), "!spin_is_locked(&ffa_spmc_rx_lock)")
        return super().ffa_rxtx_spmc_rx_acquire()

    def ffa_rxtx_spmc_tx_acquire(self) -> Frame | None:
        """Defect 1, then upstream's helper (defect 2: NULL returned with the lock held)."""
        ASSERT(not spin_is_locked(self.ffa_spmc_tx_lock), "!spin_is_locked(&ffa_spmc_tx_lock)")
        return super().ffa_rxtx_spmc_tx_acquire()

    def ffa_rxtx_spmc_rx_release(self, notify_fw: bool = True) -> int:
        """Always FFA_RX_RELEASE (defect 3); the seed returns nothing, failures are logged."""
        ASSERT(spin_is_locked(self.ffa_spmc_rx_lock), "spin_is_locked(&ffa_spmc_rx_lock)")
        ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, 0, 0, 0, 0)
        if ret:
            self.printk(f"failed to release RX buffer: {ret}")
        spin_unlock(self.ffa_spmc_rx_lock)
        return 0

    def ffa_tx_acquire(self, ctx: FfaCtx) -> tuple[int, int, int]:
        """The seed has no ``ffa_tx_acquire`` (patch 06 added it): ``ffa_handle_mem_share`` does
        ``spin_trylock(&ctx->tx_lock)`` itself and then uses ``ctx->tx`` and ``page_count`` as
        they are, without checking that a TX is mapped. With nothing mapped a share is DENIED
        by its length check, or INVALID_PARAMETERS from ``read_mem_transaction`` when the
        fragment is empty (never a NULL read: the header check comes first). SEND2, the other
        caller, is overridden whole below."""
        if not spin_trylock(ctx.tx_lock):
            return abi.FFA_RET_BUSY, 0, 0
        return abi.FFA_RET_OK, ctx.tx.get() or 0, ctx.page_count * FFA_PAGE_SIZE

    # -- ffa_partinfo.c ---------------------------------------------------------------------------
    def ffa_get_sp_count(self, uuid: bytes) -> tuple[int, int]:
        ret, count, _ = self.ffa_partition_info_get(uuid, abi.FFA_PARTITION_INFO_GET_COUNT_FLAG)
        return ret, count

    def ffa_get_sp_partinfo(
        self, uuid: bytes, out: bytearray, cap: int, dst_size: int
    ) -> tuple[int, int]:
        """Ask the SPMC on every call, through Xen's RX buffer."""
        src = self.ffa_rxtx_spmc_rx_acquire()
        if src is None:
            return abi.FFA_RET_DENIED, 0  # defect 2: ffa_spmc_rx_lock is leaked
        count = 0
        ret, real_sp_count, src_size = self.ffa_partition_info_get(uuid, 0)
        if not ret:
            if src_size < FFA_PARTITION_INFO_1_0.size or src_size >= FFA_PAGE_SIZE:
                ret = abi.FFA_RET_NOT_SUPPORTED
            else:
                real_sp_count = min(real_sp_count, FFA_MAX_NUM_SP)
                if real_sp_count > (FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE) // src_size:
                    ret = abi.FFA_RET_NOT_SUPPORTED
        if not ret and real_sp_count:
            raw = self.machine.mem.read(src.pa, real_sp_count * src_size, "xen")
            for n in range(real_sp_count):
                entry = raw[n * src_size : (n + 1) * src_size]
                if not FFA_ID_IS_SECURE(ffa_sp_entry_read_id(entry)):
                    continue
                ret = ffa_copy_info(out, cap, entry, dst_size)
                if ret:
                    break
                count += 1
        self.ffa_rxtx_spmc_rx_release(True)  # out: (defect 3: even after a failed call)
        return ret, count

    def ffa_get_vm_partinfo(
        self, d: Domain, uuid: bytes, start_index: int, out: bytearray, cap: int, dst_size: int
    ) -> tuple[int, int]:
        """Every other published VM (never the caller), only with VM-to-VM."""
        if not self.CONFIG_FFA_VM_TO_VM:
            return abi.FFA_RET_OK, 0
        curr_ctx = d.tee
        count = 0
        ret = abi.FFA_RET_OK
        read_lock(self.ffa_ctx_list_rwlock)
        for dest_ctx in self.ffa_ctx_head:
            if dest_ctx is curr_ctx:
                continue
            info = self._vm_info(dest_ctx.ffa_id, dest_ctx.num_vcpus, dest_ctx.is_64bit)
            ret = ffa_copy_info(out, cap, info, dst_size)
            if ret:
                count = 0
                break
            count += 1
        read_unlock(self.ffa_ctx_list_rwlock)
        return ret, count

    def ffa_handle_partition_info_get(self, d: Domain, regs: Regs) -> Regs:
        ctx = d.tee
        assert ctx is not None
        flags = regs[5] & abi.MASK32
        uuid = abi.uuid_from_regs32(regs[1], regs[2], regs[3], regs[4])
        gv = ctx.guest_vers.read()
        dst_size = (
            FFA_PARTITION_INFO_1_0.size
            if gv == abi.FFA_VERSION_1_0
            else FFA_PARTITION_INFO_1_1.size
        )
        sp_count = vm_count = 0
        if flags:
            if gv == abi.FFA_VERSION_1_0 or flags != abi.FFA_PARTITION_INFO_GET_COUNT_FLAG:
                return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
            if self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                ret, sp_count = self.ffa_get_sp_count(uuid)
                if ret:
                    return ffa_set_regs_error(ret)
            vm_count = self.get_ffa_vm_count() - 1  # the caller is never counted
            return ffa_set_regs_success(sp_count + vm_count, dst_size)
        ret, rx, rx_size = self.ffa_rx_acquire(ctx)
        if ret != abi.FFA_RET_OK:
            return ffa_set_regs_error(ret)
        out = bytearray()
        if self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
            ret, sp_count = self.ffa_get_sp_partinfo(uuid, out, rx_size, dst_size)
        if not ret:
            ret, vm_count = self.ffa_get_vm_partinfo(d, uuid, 0, out, rx_size, dst_size)
        if out and not ret:
            self.machine.mem.write(rx, bytes(out), "xen")
        if ret:
            self.ffa_rx_release(ctx)
            return ffa_set_regs_error(ret)
        return ffa_set_regs_success(sp_count + vm_count, dst_size)

    def ffa_handle_partition_info_get_regs(self, d: Domain, regs: Regs) -> Regs:
        return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)

    def init_subscribers(self, buf: Frame, count: int, fpi_size: int) -> bool:
        """Keep the SPs that follow the bit-15 convention and allocate the VM_CREATED and
        VM_DESTROYED subscriber arrays (each only when some SP subscribes; fault sites
        ``alloc:subscr_vm_created`` and ``alloc:subscr_vm_destroyed``). Entries must be 24
        bytes or more, with no upper bound: ``count * fpi_size`` may run past Xen's one-page
        RX buffer."""
        if fpi_size < FFA_PARTITION_INFO_1_1.size:
            self.printk(f"partition info size invalid: {fpi_size}")
            return False
        raw = self.machine.mem.read(buf.pa, count * fpi_size, "xen") if count else b""
        entries = []
        for n in range(count):
            entry = raw[n * fpi_size : (n + 1) * fpi_size]
            if FFA_ID_IS_SECURE(ffa_sp_entry_read_id(entry)):
                entries.append(entry)
            else:
                self.printk(f"secure partition {ffa_sp_entry_read_id(entry):#06x} unusable")
        props = [ffa_sp_entry_read_partition_properties(e) for e in entries]
        failed = False
        for site, bit in (
            ("alloc:subscr_vm_created", abi.FFA_PART_PROP_NOTIF_CREATED),
            ("alloc:subscr_vm_destroyed", abi.FFA_PART_PROP_NOTIF_DESTROYED),
        ):
            if any(p & bit for p in props) and self.machine.sink.fault(site, (1,)) is not None:
                failed = True
        if failed:
            self.printk("failed to allocate subscription lists")  # uninit_subscribers()
            return False
        self.sp_list = entries
        self.sp_list_entry_size = fpi_size
        return True

    def ffa_sp_list_cache_init(self, buf: Frame, count: int, fpi_size: int) -> bool:
        """Where HEAD's ``ffa_partinfo_init`` caches the SP list, the seed's builds the
        subscriber lists; the rest of it is the same, except that the seed's RX release
        always notifies the SPMC (defect 3)."""
        return self.init_subscribers(buf, count, fpi_size)

    # -- ffa_shm.c --------------------------------------------------------------------------------
    def shm_page_count_ok(self, page_count: int) -> bool:
        return page_count < FFA_MAX_SHM_PAGE_COUNT

    def check_mem_transaction(
        self, attr: int, flags: int, size: int, count: int, offs: int, blen: int
    ) -> int:
        if attr > 0xFF or flags > 0xFF or size > 0xFF or count > 0xFF or offs > 0xFFFF:
            return abi.FFA_RET_INVALID_PARAMETERS
        if size * count + offs > blen:
            return abi.FFA_RET_INVALID_PARAMETERS
        return abi.FFA_RET_OK

    def check_mem_access_size(self, size: int) -> int:
        return abi.FFA_RET_OK  # not checked: the EMAD's fields are read whatever its size

    def mem_share_read_mem_access(
        self, view: GuestView, trans: FfaMemTransactionInt
    ) -> tuple[int, int, int, tuple[int, int]]:
        """The seed reads each EMAD field just before its check: the receiver, then (for an
        SP) the permissions, then the region offset. With the EMAD size unchecked, a field
        lying past the end of the TX page is read past Xen's mapping of it."""
        offs = trans.mem_access_offs
        dst_id = int.from_bytes(view.get(offs, 2), "little")
        if not FFA_ID_IS_SECURE(dst_id):
            return abi.FFA_RET_NOT_SUPPORTED, 0, 0, (0, 0)
        if view.get(offs + 2, 1)[0] != abi.FFA_MEM_ACC_RW:
            return abi.FFA_RET_NOT_SUPPORTED, 0, 0, (0, 0)
        region_offs = int.from_bytes(view.get(offs + 4, 4), "little")
        return abi.FFA_RET_OK, dst_id, region_offs, (0, 0)

    def check_mem_share_attr(self, attr: int) -> int:
        if attr != abi.FFA_NORMAL_MEM_REG_ATTR:
            return abi.FFA_RET_NOT_SUPPORTED
        return abi.FFA_RET_OK

    def get_shm_pages(
        self, d: Domain, shm: FfaShmMem, view: GuestView, ranges_off: int, range_count: int
    ) -> int:
        """No alignment or overflow check: the address is truncated to a frame number."""
        for n in range(range_count):
            addr, page_count, _ = FFA_ADDRESS_RANGE.unpack(view.get(ranges_off + 16 * n, 16))
            for m in range(page_count):
                if len(shm.pages) >= shm.page_count:
                    return abi.FFA_RET_INVALID_PARAMETERS
                gaddr = (addr + m * FFA_PAGE_SIZE) & abi.MASK64
                e = get_page_from_gfn(d.p2m, gaddr >> 12)
                if e is None:
                    return abi.FFA_RET_DENIED
                shm.pages.append(e[0])
                if e[1] is not P2MType.ram_rw:
                    return abi.FFA_RET_DENIED
        if len(shm.pages) < shm.page_count:
            return abi.FFA_RET_INVALID_PARAMETERS
        return abi.FFA_RET_OK

    def share_shm(self, shm: FfaShmMem, ffa_vers: int) -> int:
        return super().share_shm(shm, abi.FFA_VERSION_1_1)  # v1.1 EMADs only

    # -- ffa_msg.c --------------------------------------------------------------------------------
    def ffa_handle_msg_send_direct_req(self, d: Domain, regs: Regs, fid: int) -> Regs:
        """The seed's version: errors go through the request's mask, so an SMC64 caller gets
        the code sign-extended to 64 bits in x2 (patch 07 made every error a 32-bit word)."""
        mask = abi.MASK64 if abi.is_64bit_fid(fid) else abi.MASK32
        if not self.ffa_fw_supports_fid(fid):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_NOT_SUPPORTED & mask)
        src_dst = regs[1] & abi.MASK32
        if (src_dst >> 16) != ffa_get_vm_id(d):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_INVALID_PARAMETERS & mask)
        if not FFA_ID_IS_SECURE(src_dst & 0xFFFF):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_NOT_SUPPORTED & mask)
        resp = self.smc(fid, src_dst, *(r & mask for r in regs[2:8]))
        if resp[0] not in _SEED_DIRECT_PASS:
            # Bad fid: reported back with the request's src/dst in w1.
            return ffa_set_regs(abi.FFA_ERROR, src_dst & mask, abi.FFA_RET_ABORTED & mask)
        return ffa_set_regs(resp[0], *(r & mask for r in resp[1:8]))

    def ffa_handle_msg_send2(self, d: Domain, regs: Regs) -> int:
        src_ctx = d.tee
        assert src_ctx is not None
        if not spin_trylock(src_ctx.tx_lock):
            return abi.FFA_RET_BUSY
        tx = src_ctx.tx.get()
        if tx is None:
            # memcpy(&src_msg, src_ctx->tx, ...) with tx == NULL: Xen takes a data abort.
            raise HypervisorPanic("NULL pointer dereference in ffa_handle_msg_send2 (ctx->tx)")
        ret = self._seed_send2(d, src_ctx, tx, src_ctx.page_count * FFA_PAGE_SIZE)
        spin_unlock(src_ctx.tx_lock)
        return ret

    def _seed_send2(self, d: Domain, src_ctx: FfaCtx, tx: int, tx_size: int) -> int:
        view = GuestView(self.machine, tx, tx_size)
        _f, _r, msg_offset, send_recv_id, msg_size = FFA_PART_MSG_RXTX_1_1.unpack(
            view.get(0, FFA_PART_MSG_RXTX_1_1.size)
        )
        src_id = send_recv_id >> 16
        dst_id = send_recv_id & 0xFFFF
        if src_id != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if (
            msg_offset < FFA_PART_MSG_RXTX_1_1.size
            or msg_size == 0
            or msg_offset > tx_size
            or msg_size > tx_size - msg_offset
        ):
            return abi.FFA_RET_INVALID_PARAMETERS
        if FFA_ID_IS_SECURE(dst_id):
            if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND2):
                return abi.FFA_RET_NOT_SUPPORTED
            return self.ffa_simple_call(abi.FFA_MSG_SEND2, ffa_get_vm_id(d) << 16, 0, 0, 0)
        if not self.CONFIG_FFA_VM_TO_VM:
            return abi.FFA_RET_INVALID_PARAMETERS
        if dst_id == 0:
            return abi.FFA_RET_INVALID_PARAMETERS
        dst_d = self.rcu_lock_live_remote_domain_by_id(d, dst_id)
        if dst_d is None or dst_d.tee is None:
            return abi.FFA_RET_INVALID_PARAMETERS
        dst_ctx = dst_d.tee
        if not dst_ctx.guest_vers.read():
            return abi.FFA_RET_INVALID_PARAMETERS
        ret, rx, rx_size = self.ffa_rx_acquire(dst_ctx)
        if ret:
            return ret
        if rx_size - FFA_PART_MSG_RXTX_1_1.size < msg_size:
            self.ffa_rx_release(dst_ctx)
            return abi.FFA_RET_NO_MEMORY
        hdr = FFA_PART_MSG_RXTX_1_1.pack(0, 0, FFA_PART_MSG_RXTX_1_1.size, send_recv_id, msg_size)
        self.machine.mem.write(rx, hdr + view.get(msg_offset, msg_size), "xen")
        self.ffa_raise_rx_buffer_full(dst_d)
        return abi.FFA_RET_OK

    # -- ffa_notif.c ------------------------------------------------------------------------------
    def notification_set_dst_is_secure(self, src_dst: int) -> bool:
        """Tests the sender's halfword (the VM itself): SET to an SP is never forwarded."""
        return FFA_ID_IS_SECURE(src_dst >> 16)
