"""Variant ``reference`` (the default): upstream HEAD (c447b7308b) with the seed's defects and the
analysed upstream bugs fixed.

Each method here replaces the upstream function of the same name and says what it fixes; the
rest is upstream as in ``ffasim/xen/``:

- ``ffa_rxtx_spmc_rx_acquire`` / ``_tx_acquire`` drop their lock before returning NULL (seed
  defect 2);
- ``ffa_rxtx_spmc_destroy`` tells the SPMC to unmap before it frees the pages, and only a pair
  it had mapped (seed defect 4; ``ffa_rxtx_spmc_init`` records the map);
- ``ffa_handle_mem_share``: a fragment longer than the TX buffer (or an EMAD past the fragment)
  is DENIED instead of SUCCESS with handle 0;
- ``ffa_spmc_share``: a FRAG_RX reply is ABORTED instead of a positive "error" code;
- ``ffa_domain_teardown_continue``: a queued teardown holds a domain reference, so the teardown
  timer never uses a freed context;
- ``ffa_negotiate_version``: FFA_VERSION with bit 31 (MBZ) set is NOT_SUPPORTED;
- ``ffa_fw_supports_fid``: FFA_MEM_SHARE is offered only when the firmware can also reclaim;
- ``ffa_rx_acquire`` returns with ``rx_lock`` held, and ``ffa_handle_partition_info_get`` and
  ``ffa_msg_send2_vm`` write the guest's RX under it: the guest can no longer release and unmap
  its RX while Xen writes it (a data abort in Xen upstream);
- ``ffa_handle_msg_send_direct_req`` refuses a guest's direct request with the framework bit
  (w2[31]): only the hypervisor may send VM_CREATED / VM_DESTROYED;
- ``ffa_msg_send2_vm`` tries the receiver's ``rx_lock`` (BUSY when taken) instead of waiting
  for it under the sender's ``tx_lock``: RXTX_MAP/UNMAP take the two the other way round;
- ``ffa_notif_domain_destroy`` takes the pending notifications before destroying the bitmap
  (upstream leaves the SPMC tracking the VM for good);
- ``ffa_get_vm_partinfo`` counts the entries that fit when the buffer is full, so that
  PARTITION_INFO_GET_REGS pages past five VMs;
- ``ffa_partinfo_init`` accepts ``FFA_MAX_NUM_SP`` partitions, as the cap's comment says (upstream
  refuses exactly 64 and then disables FF-A for every guest).
"""

from __future__ import annotations

import struct

from ... import abi
from ...machine import (
    read_lock,
    read_unlock,
    spin_lock,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)
from ...machine.xmalloc import alloc_site
from ..ffa import Ffa
from ..ffa_msg import FFA_PART_MSG_RXTX_1_2, FfaPartMsgRxtx, write_msg_1_2
from ..ffa_partinfo import ffa_copy_info, vm_partition_info
from ..ffa_private import (
    FFA_ADDRESS_RANGE,
    FFA_CTX_TEARDOWN_DELAY,
    FFA_ID_IS_SECURE,
    FFA_MAX_NUM_SP,
    FFA_MEM_REGION,
    FFA_PAGE_SIZE,
    FFA_PARTITION_INFO_1_0,
    FFA_PARTITION_INFO_1_1,
    FFA_RXTX_PAGE_COUNT,
    Cursor,
    Domain,
    FfaCtx,
    FfaShmMem,
    MappedBuf,
    Regs,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
    ffa_set_regs_success,
    ffa_uuid_is_nil,
    ffa_uuid_set,
    is_64bit_domain,
)
from ..ffa_rxtx import xenheap_buf
from ..ffa_shm import FFA_MEM_ACCESS, FFA_MEM_ACCESS_1_2, FfaMemTransactionInt


class ReferenceFfa(Ffa):
    """Upstream HEAD with the fixes listed in the module docstring."""

    variant = "reference"

    ffa_spmc_mapped = False
    """Whether FFA_RXTX_MAP_64 of Xen's pair succeeded (what the fixed destroy needs)."""

    # -- ffa.c ----------------------------------------------------------------------------------
    def ffa_fw_supports_fid(self, fid: int) -> bool:
        """Upstream (ffa_private.h), plus: FFA_MEM_SHARE_64 counts as supported only if
        FFA_MEM_RECLAIM is too. Upstream offers sharing to guests on a firmware that cannot
        reclaim: every share then stays with the SPMC for good, its pages referenced and its
        domain a zombie (docs/findings.md, "MEM_SHARE without MEM_RECLAIM")."""
        if fid == abi.FFA_MEM_SHARE_64 and not super().ffa_fw_supports_fid(abi.FFA_MEM_RECLAIM):
            return False
        return super().ffa_fw_supports_fid(fid)

    def ffa_negotiate_version(self, d: Domain, ctx: FfaCtx, regs: Regs) -> Regs | None:
        """Upstream, plus: bit 31 of the version word is MBZ, so NOT_SUPPORTED (upstream masks it
        away in the major and stores the raw word, which then compares above every version)."""
        fid = regs[0] & abi.MASK32
        in_vers = regs[1] & abi.MASK32
        spin_lock(ctx.guest_vers_lock)
        if ctx.guest_vers.read():
            spin_unlock(ctx.guest_vers_lock)  # out_continue:
            return None
        if fid != abi.FFA_VERSION:
            tmp = ctx.guest_vers_tmp.get()
            if not tmp:
                spin_unlock(ctx.guest_vers_lock)  # out_handled:
                return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
            ctx.is_64bit = is_64bit_domain(d)
            ctx.guest_vers.set(tmp)
            if self.CONFIG_FFA_VM_TO_VM:
                write_lock(self.ffa_ctx_list_rwlock)
                self.inc_ffa_vm_count()
                self.ffa_ctx_head.append(ctx)
                ctx.in_ctx_list = True
                self.ffa_partinfo_inc_tag()
                write_unlock(self.ffa_ctx_list_rwlock)
            spin_unlock(ctx.guest_vers_lock)  # out_continue:
            return None
        if in_vers & (1 << 31):  # the fix
            spin_unlock(ctx.guest_vers_lock)  # out_handled:
            return ffa_set_regs(abi.to_u32(abi.FFA_RET_NOT_SUPPORTED))
        if abi.version_major(in_vers) != abi.version_major(
            self.FFA_MY_VERSION
        ) or abi.version_minor(in_vers) > abi.version_minor(self.FFA_MY_VERSION):
            ctx.guest_vers_tmp.set(self.FFA_MY_VERSION)
        else:
            ctx.guest_vers_tmp.set(in_vers)
        spin_unlock(ctx.guest_vers_lock)  # out_handled:
        return ffa_set_regs(self.FFA_MY_VERSION)

    def ffa_domain_teardown_continue(self, ctx: FfaCtx, first_time: bool) -> None:
        """Upstream, plus: the queued context holds a domain reference until its teardown is
        done (upstream queues a VM_DESTROYED retry without one, so the domain and its context
        can be freed while the timer still points at them)."""
        if ctx.freed:
            self.machine.sink.violation(
                "use-after-free", f"teardown timer uses the freed ffa_ctx of vm {ctx.ffa_id:#x}"
            )
            return
        next_ctx: FfaCtx | None = None
        retry = False
        if not self.ffa_partinfo_domain_destroy(ctx.teardown_d):
            retry = True
        if not self.ffa_shm_domain_destroy(ctx.teardown_d):
            retry = True
        if retry:
            self.printk(f"{ctx.teardown_d}: Remaining cleanup, retrying")
            if not ctx.queued_ref:
                self.get_knownalive_domain(ctx.teardown_d)
                ctx.queued_ref = True
            ctx.teardown_expire = self.now + FFA_CTX_TEARDOWN_DELAY
            spin_lock(self.ffa_teardown_lock)
            head = self.ffa_teardown_head.get()
            self.ffa_teardown_head.set([*head, ctx])
            next_ctx = self.ffa_teardown_head.get()[0]
            spin_unlock(self.ffa_teardown_lock)
        else:
            if not first_time:
                spin_lock(self.ffa_teardown_lock)
                head = self.ffa_teardown_head.get()
                next_ctx = head[0] if head else None
                spin_unlock(self.ffa_teardown_lock)
            if ctx.queued_ref:
                ctx.queued_ref = False
                self.put_domain(ctx.teardown_d)
        if next_ctx is not None:
            self.ffa_teardown_timer = next_ctx.teardown_expire

    # -- ffa_rxtx.c -----------------------------------------------------------------------------
    def ffa_rxtx_spmc_rx_acquire(self) -> MappedBuf | None:
        """Upstream, but the lock is dropped before NULL is returned (seed defect 2)."""
        forced = self.machine.sink.fault("helper:ffa_rxtx_spmc_rx_acquire", (1,)) is not None
        spin_lock(self.ffa_spmc_rx_lock)
        frame = self.ffa_spmc_rx.get()
        if frame is not None and not forced:
            return xenheap_buf(self.machine, frame, "ffa_spmc_rx")
        spin_unlock(self.ffa_spmc_rx_lock)
        return None

    def ffa_rxtx_spmc_tx_acquire(self) -> MappedBuf | None:
        """Upstream, but the lock is dropped before NULL is returned (seed defect 2)."""
        forced = self.machine.sink.fault("helper:ffa_rxtx_spmc_tx_acquire", (1,)) is not None
        spin_lock(self.ffa_spmc_tx_lock)
        frame = self.ffa_spmc_tx.get()
        if frame is not None and not forced:
            return xenheap_buf(self.machine, frame, "ffa_spmc_tx")
        spin_unlock(self.ffa_spmc_tx_lock)
        return None

    def ffa_rxtx_spmc_destroy(self) -> None:
        """The SPMC is told to unmap (only a pair it mapped) before the pages go back to the
        heap (seed defect 4)."""
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        rx = self.ffa_spmc_rx.get()
        tx = self.ffa_spmc_tx.get()
        if rx is not None and tx is not None and self.ffa_spmc_mapped:
            self.ffa_rxtx_unmap(0)
        self.ffa_spmc_mapped = False
        if tx is not None:
            self.machine.heap.free_page(tx)
            self.ffa_spmc_tx.set(None)
        if rx is not None:
            self.machine.heap.free_page(rx)
            self.ffa_spmc_rx.set(None)
        spin_unlock(self.ffa_spmc_tx_lock)
        spin_unlock(self.ffa_spmc_rx_lock)

    def ffa_rxtx_spmc_init(self) -> bool:
        """Upstream, plus: remember whether the SPMC mapped the pair (for the fixed destroy)."""
        if not self.ffa_fw_supports_fid(abi.FFA_RXTX_MAP_64):
            return False
        ret = False
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        heap = self.machine.heap
        site = alloc_site("alloc_xenheap_pages", "ffa_rxtx_spmc_init")
        rx = heap.alloc_page("xen", site=site, tag="ffa_spmc_rx")
        self.ffa_spmc_rx.set(rx)
        if rx is not None:
            tx = heap.alloc_page("xen", site=site, tag="ffa_spmc_tx")
            self.ffa_spmc_tx.set(tx)
            if tx is not None and not self.ffa_rxtx_map(tx.pa, rx.pa, FFA_RXTX_PAGE_COUNT):
                self.ffa_spmc_mapped = True
                ret = True
        spin_unlock(self.ffa_spmc_tx_lock)
        spin_unlock(self.ffa_spmc_rx_lock)
        if not ret:
            self.ffa_rxtx_spmc_destroy()
        return ret

    # -- ffa_partinfo.c -------------------------------------------------------------------------
    def ffa_get_vm_partinfo(
        self,
        d: Domain,
        uuid: bytes,
        start_index: int,
        dst_buf: Cursor,
        end_buf: int,
        dst_size: int,
    ) -> tuple[int, int]:
        """Upstream, but on NO_MEMORY the count is the entries that did fit (upstream stores it
        only on success, so PARTITION_INFO_GET_REGS, which takes NO_MEMORY as "window full",
        counts no VM entry: it cannot page past five VMs)."""
        curr_ctx = d.tee
        assert curr_ctx is not None
        if not ffa_uuid_is_nil(uuid):
            return abi.FFA_RET_OK, 0
        count = 0
        idx = 0
        ret = abi.FFA_RET_OK
        if curr_ctx.guest_vers.read() >= abi.FFA_VERSION_1_2:
            if start_index == 0:
                info = vm_partition_info(curr_ctx.ffa_id, curr_ctx.num_vcpus, is_64bit_domain(d))
                ret = ffa_copy_info(dst_buf, end_buf, info, dst_size, len(info))
                if ret:
                    return ret, count
                count += 1
            idx += 1
        if self.CONFIG_FFA_VM_TO_VM:
            read_lock(self.ffa_ctx_list_rwlock)
            for dest_ctx in self.ffa_ctx_head:
                if dest_ctx is curr_ctx:
                    continue
                if idx >= start_index:
                    info = vm_partition_info(dest_ctx.ffa_id, dest_ctx.num_vcpus, dest_ctx.is_64bit)
                    ret = ffa_copy_info(dst_buf, end_buf, info, dst_size, len(info))
                    if ret:
                        read_unlock(self.ffa_ctx_list_rwlock)
                        return ret, count
                    count += 1
                idx += 1
            read_unlock(self.ffa_ctx_list_rwlock)
        return ret, count

    # -- ffa_shm.c ------------------------------------------------------------------------------
    def ffa_spmc_share(self, tot_len: int) -> tuple[int, int]:
        """Upstream, but a FRAG_RX reply (the SPMC wants another fragment of a descriptor Xen
        sent whole) is ABORTED rather than its offset handed back as an "error" code."""
        resp = self.smc(abi.FFA_MEM_SHARE_64, tot_len, tot_len, 0, 0)
        x0 = resp[0]
        if x0 == abi.FFA_ERROR:
            if resp[2]:
                return abi.to_s32(resp[2]), 0
            return abi.FFA_RET_NOT_SUPPORTED, 0
        if x0 == abi.FFA_SUCCESS_32:
            return abi.FFA_RET_OK, abi.make_handle(resp[2], resp[3])
        if x0 == abi.FFA_MEM_FRAG_RX:
            return abi.FFA_RET_ABORTED, abi.make_handle(resp[1], resp[2])
        return abi.FFA_RET_NOT_SUPPORTED, 0

    def ffa_handle_mem_share(self, d: Domain, regs: Regs) -> Regs:
        """Upstream, but the two exits that upstream takes with ``ret`` still 0 (a fragment
        longer than the TX buffer; an EMAD past the fragment) are DENIED, not FFA_SUCCESS with
        handle 0 and nothing shared."""
        tot_len = regs[1] & abi.MASK32
        frag_len = regs[2] & abi.MASK32
        addr = regs[3]
        ctx = d.tee
        assert ctx is not None
        shm: FfaShmMem | None = None
        handle = 0
        if not self.ffa_fw_supports_fid(abi.FFA_MEM_SHARE_64):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if addr:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if frag_len > tot_len:
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        if frag_len != tot_len:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        ret, tx_buf, tx_size = self.ffa_tx_acquire(ctx)
        if ret != abi.FFA_RET_OK:
            return ffa_set_regs_error(ret)
        assert tx_buf is not None
        goto = ""
        trans = FfaMemTransactionInt()
        dst_id = region_offs = 0
        impdef = (0, 0)
        if frag_len > tx_size:
            ret, goto = abi.FFA_RET_DENIED, "out_unlock"
        if not goto:
            ret, trans = self.read_mem_transaction(ctx.guest_vers.read(), tx_buf, frag_len)
            if ret:
                goto = "out_unlock"
        if not goto:
            if trans.mem_reg_attr & abi.FFA_MEM_ATTR_NS:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            elif trans.mem_reg_attr != abi.FFA_NORMAL_MEM_REG_ATTR or trans.mem_access_count != 1:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
            elif trans.sender_id != ffa_get_vm_id(d) or trans.mem_access_size < FFA_MEM_ACCESS.size:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            elif trans.mem_access_offs + trans.mem_access_size > frag_len:
                ret, goto = abi.FFA_RET_DENIED, "out_unlock"
        if not goto:
            mem_access = trans.mem_access_offs
            dst_id = tx_buf.u16(mem_access)
            perm = tx_buf.u8(mem_access + 2)
            region_offs = tx_buf.u32(mem_access + 4)
            if trans.mem_access_size >= FFA_MEM_ACCESS_1_2.size:
                lo, hi = struct.unpack("<QQ", tx_buf.load(mem_access + 8, 16))
                impdef = (lo, hi)
            if (
                not FFA_ID_IS_SECURE(dst_id)
                or perm != abi.FFA_MEM_ACC_RW
                or FFA_MEM_REGION.size + region_offs > frag_len
            ):
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
        if not goto:
            range_count = tx_buf.u32(region_offs + 4)
            page_count = tx_buf.u32(region_offs)
            if not page_count:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            else:
                shm = self.alloc_ffa_shm_mem(d, page_count)
                if shm is None:
                    ret, goto = abi.FFA_RET_NO_MEMORY, "out_unlock"
                else:
                    shm.sender_id = trans.sender_id
                    shm.ep_id = dst_id
                    shm.impdef = impdef
                    if (
                        FFA_MEM_REGION.size + region_offs + range_count * FFA_ADDRESS_RANGE.size
                        > frag_len
                    ):
                        ret = abi.FFA_RET_INVALID_PARAMETERS
                    else:
                        ret = self.get_shm_pages(
                            d, shm, tx_buf, region_offs + FFA_MEM_REGION.size, range_count
                        )
                    if not ret:
                        ret = self.share_shm(shm, self.ffa_fw_version)
                    if not ret:
                        spin_lock(ctx.lock)
                        ctx.shm_list.set([*ctx.shm_list.get(), shm])
                        spin_unlock(ctx.lock)
                        handle = shm.handle
        if ret and goto != "out_unlock":
            self.free_ffa_shm_mem(d, shm)
        self.ffa_tx_release(ctx)
        if ret == 0:
            return ffa_set_regs_success(abi.handle_lo(handle), abi.handle_hi(handle))
        return ffa_set_regs_error(ret)

    # -- ffa_rxtx.c: a producer keeps rx_lock while it fills the guest's RX -----------------------
    def ffa_rx_acquire(
        self, ctx: FfaCtx, trylock: bool = False
    ) -> tuple[int, MappedBuf | None, int]:
        """Upstream, but on success it returns with ``ctx->rx_lock`` still held: the caller
        fills the buffer under it and unlocks (``ffa_handle_partition_info_get``,
        ``ffa_msg_send2_vm``). Upstream drops the lock before the caller writes, so the guest's
        own FFA_RX_RELEASE from another vCPU frees the buffer for its producers, and its
        FFA_RXTX_UNMAP then unmaps Xen's global mapping while Xen still writes through it: a
        data abort in Xen (docs/findings.md, "RX filled after the lock is dropped").

        With ``trylock`` (a caller that holds another domain's ``tx_lock``: SEND2), a busy
        ``rx_lock`` is BUSY instead of a wait (docs/findings.md, "SEND2 against RXTX_MAP and
        RXTX_UNMAP: a lock-order deadlock")."""
        ret = abi.FFA_RET_OK
        if not trylock:
            spin_lock(ctx.rx_lock)
        elif not spin_trylock(ctx.rx_lock):
            return abi.FFA_RET_BUSY, None, 0
        if not ctx.page_count:
            ret = abi.FFA_RET_DENIED
            self.printk("RX acquire denied, no RX/TX mapped")
        elif not ctx.rx_is_free.get():
            ret = abi.FFA_RET_BUSY
        elif self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
            ret = self.ffa_simple_call(abi.FFA_RX_ACQUIRE, ctx.ffa_id, 0, 0, 0)
        if ret != abi.FFA_RET_OK:
            spin_unlock(ctx.rx_lock)  # out:
            return ret, None, 0
        ctx.rx_is_free.set(False)
        return ret, ctx.rx.get(), ctx.page_count * FFA_PAGE_SIZE  # rx_lock held

    def ffa_handle_partition_info_get(self, d: Domain, regs: Regs) -> Regs:
        """Upstream, with ``rx_lock`` held from ``ffa_rx_acquire`` until the entries are written
        (see ``ffa_rx_acquire`` above); on an error the lock is dropped, then the buffer is
        released as upstream does."""
        ctx = d.tee
        assert ctx is not None
        flags = regs[5] & abi.MASK32
        if flags:
            return super().ffa_handle_partition_info_get(d, regs)  # a count: no buffer
        uuid = ffa_uuid_set(regs[1], regs[2], regs[3], regs[4])
        vm_count = sp_count = 0
        if ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
            dst_size = FFA_PARTITION_INFO_1_0.size
        else:
            dst_size = FFA_PARTITION_INFO_1_1.size
        ret, rx, buf_size = self.ffa_rx_acquire(ctx)
        if ret == abi.FFA_RET_OK:
            assert rx is not None
            dst_buf = Cursor(rx)
            if buf_size < dst_size:
                ret = abi.FFA_RET_INVALID_PARAMETERS
            elif self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                ret, sp_count = self.ffa_get_sp_partinfo(uuid, dst_buf, buf_size, dst_size)
            if not ret:
                ret, vm_count = self.ffa_get_vm_partinfo(d, uuid, 0, dst_buf, buf_size, dst_size)
            spin_unlock(ctx.rx_lock)  # the entries are written
            if ret:  # out_rx_release:
                self.ffa_rx_release(ctx)
        if ret:  # out:
            return ffa_set_regs_error(ret)
        if ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
            dst_size = 0
        return ffa_set_regs_success(sp_count + vm_count, dst_size)

    # -- ffa_msg.c --------------------------------------------------------------------------------
    def ffa_handle_msg_send_direct_req(self, d: Domain, regs: Regs, fid: int) -> Regs:
        """Upstream, plus: a guest's FFA_MSG_SEND_DIRECT_REQ_32/64 with the framework bit
        (w2[31]) set is INVALID_PARAMETERS. Upstream passes w2 through (``ffa_msg.c:134``), and
        the SPMC cannot tell a guest from the hypervisor (Hafnium checks the receiver's
        subscription only), so a guest can tell a partition that another VM was destroyed
        (docs/findings.md, "Guests can send framework messages")."""
        if fid != abi.FFA_MSG_SEND_DIRECT_REQ2 and regs[2] & abi.FFA_MSG_FLAG_FRAMEWORK:
            self.printk(f"direct req with framework bit: w2 {regs[2] & abi.MASK32:#x}")
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        return super().ffa_handle_msg_send_direct_req(d, regs, fid)

    def ffa_msg_send2_vm(
        self, src_d: Domain, dst_id: int, src_buf: MappedBuf, src_msg: FfaPartMsgRxtx
    ) -> int:
        """Upstream, with the receiver's ``rx_lock`` held from ``ffa_rx_acquire`` until the
        message is written (see ``ffa_rx_acquire`` above): the receiving VM cannot release and
        unmap its RX under the copy. The receiver's ``rx_lock`` is tried, not waited for: the
        sender holds its own ``tx_lock`` here, and RXTX_MAP/UNMAP take ``rx_lock`` then
        ``tx_lock``, so two VMs sending to each other while each unmaps on another vCPU would
        deadlock (docs/findings.md, "SEND2 against RXTX_MAP and RXTX_UNMAP")."""
        ret, dst_d = self.ffa_endpoint_domain_lookup(src_d, dst_id)
        if ret or dst_d is None:
            return ret
        dst_ctx = dst_d.tee
        assert dst_ctx is not None
        ret, rx_buf, rx_size = self.ffa_rx_acquire(dst_ctx, trylock=True)
        if not ret:
            assert rx_buf is not None
            if rx_size - FFA_PART_MSG_RXTX_1_2.size < src_msg.msg_size:
                ret = abi.FFA_RET_NO_MEMORY
                spin_unlock(dst_ctx.rx_lock)
                self.ffa_rx_release(dst_ctx)
            else:
                write_msg_1_2(rx_buf, src_buf, src_msg)
                spin_unlock(dst_ctx.rx_lock)
        if ret:  # out_unlock:
            self.printk(f"msg_send2 to {dst_id:#x} failed: {ret}")
        else:
            self.ffa_raise_rx_buffer_full(dst_d)
        return ret

    # -- ffa_notif.c ------------------------------------------------------------------------------
    def ffa_notif_domain_destroy(self, d: Domain) -> None:
        """Upstream, plus: take what is still pending for the dying VM, on each of its vCPUs,
        before destroying its bitmap. The SPMC refuses FFA_NOTIFICATION_BITMAP_DESTROY while
        notifications are pending (Hafnium: DENIED), upstream ignores that, and the SPMC then
        keeps the VM's bitmap and slot for good: the next VM with that ID cannot create one,
        and enough such deaths fill the SPMC's VM table (docs/findings.md, "Notifications
        pending at teardown")."""
        if not self.fw_notif_enabled:
            return
        vm_id = ffa_get_vm_id(d)
        drain = abi.FFA_NOTIF_FLAG_BITMAP_SP | abi.FFA_NOTIF_FLAG_BITMAP_SPM
        for vcpu in range(d.max_vcpus):
            self.smc(abi.FFA_NOTIFICATION_GET, (vcpu << 16) | vm_id, drain)
        self.ffa_notification_bitmap_destroy(vm_id)

    # -- ffa_partinfo.c: the SP cap ----------------------------------------------------------------
    def ffa_partinfo_init(self) -> bool:
        """Upstream, with ``count > FFA_MAX_NUM_SP`` where upstream tests ``>=``: the macro is
        "the maximum number of Secure partitions we support", and ffa.c's header says the list
        is capped at that many, but a platform with exactly 64 partitions fails the probe and
        loses FF-A altogether (docs/findings.md, "64 partitions disable FF-A")."""
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
            if count > FFA_MAX_NUM_SP:
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
