"""Variant ``linux-6.18``: ffa.c as released in Linux 6.18 (the text of torvalds/linux at
a4a508df2aa3, which has the 6.18 FF-A 1.2 series and 103e17aac09c, and not 7.0's 582234b0d841).

Against ``head`` (7.2) it lacks, under their C names:

- ``kvm_host_ffa_handler``'s ``res`` is not initialised (no 2bd3c6c702f3): the words a handler
  does not write reach the host as EL2 stack contents (D12);
- ``ffa_mem_desc_offset`` assumes the EMAD array at 48 for v1.1+ whatever the header's
  ``ep_mem_offset`` says (no b4d961351aa8), and ``__do_ffa_mem_xfer`` / ``do_ffa_mem_reclaim``
  do not check that the EMAD lies in the fragment (no a6b49d27c179): pKVM checks one EMAD, the
  SPMC uses another (D8, as a parse differential; see docs/pkvm.md);
- ``do_ffa_mem_reclaim`` checks only ``composite_off <= len`` (WARN_ON), not that the
  composite and its ``addr_range_cnt`` constituents lie within ``len`` (no 8c6db30d7952, D9);
- ``__ffa_host_{,un}share_ranges`` check the size's alignment, not the address's (no
  6a7a181f6921, D10);
- ``hyp_ffa_init`` and ``do_ffa_version`` compare EL3's 64-bit a0 with -1, so a 32-bit
  NOT_SUPPORTED from firmware without FF-A reads as version 0x7FFF.0xFFFF and pKVM init fails
  (no 582234b0d841, D11).

mem_protect.c is the newest text's (f71f7afd0a0c's range checks are in 6.18);
HOST_CHECK_NULL_REFCNT may be later, which changes nothing here (a pinned page is never host
OWNED).
"""

from __future__ import annotations

from ... import abi
from ...machine import spin_lock, spin_unlock
from ...machine.memory import PAGE_SIZE
from .. import arm_ffa as ffa
from ..arm_ffa import FFA_MAJOR_VERSION, FFA_MINOR_VERSION, PACK_HANDLE
from ..ffa import (
    _M32,
    _M64,
    _NOT_SUPPORTED,
    _RET_OK,
    HOST_FFA_ID,
    MBOX_SIZE,
    PAGE_ALIGNED,
    KvmCpuContext,
    Res,
    cpu_reg,
    el2_stack_words,
)
from ..hyp_main import Pkvm
from ..mem_protect import EOPNOTSUPP, hyp_phys_to_pfn

_INVALID = abi.FFA_RET_INVALID_PARAMETERS


class Linux618(Pkvm):
    """Linux 6.18's proxy (see the module docstring)."""

    variant = "linux-6.18"

    def hyp_stack_res(self, ctxt: KvmCpuContext) -> Res:
        """``struct arm_smccc_1_2_regs res;``: whatever EL2's stack held there."""
        return list(el2_stack_words(ctxt.cpu))

    def ffa_mem_desc_offset(self, buf: int, count: int, ffa_version: int) -> int:
        """The header before b4d961351aa8: a fixed offset (32 for v1.0, 48 after); ``buf``
        is not read."""
        offset = count * ffa.ffa_emad_size_get(ffa_version)
        if not ffa.FFA_MEM_REGION_HAS_EP_MEM_OFFSET(ffa_version):
            return offset + ffa.SIZEOF_FFA_MEM_REGION_V1_0
        return offset + ffa.SIZEOF_FFA_MEM_REGION

    def _ffa_host_share_ranges(self, ranges: int, nranges: int) -> int:
        """Before 6a7a181f6921 only the size is checked for alignment: an address inside a
        page shares the page it lies in (``hyp_phys_to_pfn`` truncates)."""
        i = 0
        while i < nranges:
            r = ranges + i * ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE
            sz = self.hyp_read_u32(r + ffa.ADDR_RANGE_PG_CNT) * ffa.FFA_PAGE_SIZE
            pfn = hyp_phys_to_pfn(self.hyp_read_u64(r + ffa.ADDR_RANGE_ADDRESS))
            if not PAGE_ALIGNED(sz):
                break
            if self._pkvm_host_share_ffa(pfn, sz // PAGE_SIZE):
                break
            i += 1
        return i

    def _ffa_host_unshare_ranges(self, ranges: int, nranges: int) -> int:
        i = 0
        while i < nranges:
            r = ranges + i * ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE
            sz = self.hyp_read_u32(r + ffa.ADDR_RANGE_PG_CNT) * ffa.FFA_PAGE_SIZE
            pfn = hyp_phys_to_pfn(self.hyp_read_u64(r + ffa.ADDR_RANGE_ADDRESS))
            if not PAGE_ALIGNED(sz):
                break
            if self._pkvm_host_unshare_ffa(pfn, sz // PAGE_SIZE):
                break
            i += 1
        return i

    def _do_ffa_mem_xfer(self, func_id: int, res: Res, ctxt: KvmCpuContext) -> None:
        """The 6.18 text: the minimum fragment is the struct sizes of the header, and the EMAD
        offset is taken as given."""
        len_ = cpu_reg(ctxt, 1) & _M32
        fraglen = cpu_reg(ctxt, 2) & _M32
        addr_mbz = cpu_reg(ctxt, 3)
        npages_mbz = cpu_reg(ctxt, 4) & _M32
        hb = self.host_buffers

        def locked() -> int:
            host_tx = hb.tx.get()
            if host_tx is None:
                return _INVALID
            if len_ > self.ffa_desc_buf.len:
                return abi.FFA_RET_NO_MEMORY
            buf = self.hyp_buffers.tx.get()
            assert buf is not None
            self.memcpy(buf, host_tx, fraglen)
            emad = buf + self.ffa_mem_desc_offset(buf, 0, self.hyp_ffa_version.get())
            offset = self.hyp_read_u32(emad + ffa.EMAD_COMPOSITE_OFF)
            if (
                not offset
                or self.hyp_read_u32(buf + ffa.MEM_REGION_EP_COUNT) != 1
                or self.hyp_read_u16(buf + ffa.MEM_REGION_SENDER_ID) != HOST_FFA_ID
            ):
                return _INVALID
            checked_offset = offset + ffa.SIZEOF_FFA_COMPOSITE_MEM_REGION
            if checked_offset > _M32:  # check_add_overflow() (103e17aac09c)
                return _INVALID
            if fraglen < checked_offset:
                return _INVALID
            return self.ffa_mem_xfer_constituents(func_id, res, buf, offset, len_, fraglen)

        if (
            addr_mbz
            or npages_mbz
            or fraglen > len_
            or fraglen > MBOX_SIZE
            or fraglen < self.SIZEOF_FFA_MEM_REGION + self.SIZEOF_FFA_MEM_REGION_ATTRIBUTES
        ):
            ret = _INVALID
        else:
            spin_lock(hb.lock)
            ret = locked()
            spin_unlock(hb.lock)  # out_unlock:
        if ret:  # out:
            self.ffa_to_smccc_res(res, ret)

    def do_ffa_mem_reclaim(self, res: Res, ctxt: KvmCpuContext) -> None:
        """The 6.18 text (the same from 6.10, d66e50beb911): only ``composite_off <= len`` is
        checked; the constituents are unshared by ``addr_range_cnt``, wherever that leads in
        ``ffa_desc_buf``."""
        handle_lo = cpu_reg(ctxt, 1) & _M32
        handle_hi = cpu_reg(ctxt, 2) & _M32
        flags = cpu_reg(ctxt, 3) & _M32
        handle = PACK_HANDLE(handle_lo, handle_hi)
        hb = self.host_buffers
        desc = self.ffa_desc_buf

        def locked() -> int:
            self.ffa_hyp_retrieve_req(res, handle)
            buf = self.hyp_buffers.rx.get()
            assert buf is not None
            if res[0] != ffa.FFA_MEM_RETRIEVE_RESP:
                return _RET_OK
            len_ = res[1] & _M32
            fraglen = res[2] & _M32
            emad = buf + self.ffa_mem_desc_offset(buf, 0, self.hyp_ffa_version.get())
            offset = self.hyp_read_u32(emad + ffa.EMAD_COMPOSITE_OFF)
            if self.WARN_ON(
                offset > len_ or fraglen > MBOX_SIZE,
                "offset > len || fraglen > KVM_FFA_MBOX_NR_PAGES * PAGE_SIZE",
            ):
                self.ffa_rx_release(res)
                return abi.FFA_RET_ABORTED
            if len_ > desc.len:
                self.ffa_rx_release(res)
                return abi.FFA_RET_NO_MEMORY
            self.memcpy(desc.buf, buf, fraglen)
            self.ffa_rx_release(res)
            fragoff = fraglen
            while fragoff < len_:
                self.ffa_mem_frag_rx(res, handle_lo, handle_hi, fragoff)
                if res[0] != ffa.FFA_MEM_FRAG_TX:
                    return _INVALID
                fraglen = res[3] & _M32
                self.memcpy(desc.buf + fragoff, buf, fraglen)
                self.ffa_rx_release(res)
                fragoff = (fragoff + fraglen) & _M32
            self.ffa_mem_reclaim(res, handle_lo, handle_hi, flags)
            if res[0] != ffa.FFA_SUCCESS:
                return _RET_OK
            reg = desc.buf + offset
            # If the SPMD was happy, then we should be too.
            count = self.hyp_read_u32(reg + ffa.COMPOSITE_ADDR_RANGE_CNT)
            self.WARN_ON(
                self.ffa_host_unshare_ranges(reg + ffa.SIZEOF_FFA_COMPOSITE_MEM_REGION, count) != 0,
                "ffa_host_unshare_ranges(reg->constituents, reg->addr_range_cnt)",
            )
            return _RET_OK

        spin_lock(hb.lock)
        ret = locked()
        spin_unlock(hb.lock)  # out_unlock:
        if ret:
            self.ffa_to_smccc_res(res, ret)

    def do_ffa_version(self, res: Res, ctxt: KvmCpuContext) -> None:
        """The 6.18 text: EL3's answer to a downgrade is compared as a 64-bit value."""
        ffa_req_version = cpu_reg(ctxt, 1) & _M32
        if FFA_MAJOR_VERSION(ffa_req_version) != 1:
            res[0] = _NOT_SUPPORTED & _M64
            return
        spin_lock(self.version_lock)
        if self.has_version_negotiated.read():
            if FFA_MINOR_VERSION(ffa_req_version) < FFA_MINOR_VERSION(self.hyp_ffa_version.get()):
                res[0] = _NOT_SUPPORTED & _M64
            else:
                res[0] = self.hyp_ffa_version.get()
            spin_unlock(self.version_lock)  # unlock:
            return
        if FFA_MINOR_VERSION(ffa_req_version) < FFA_MINOR_VERSION(self.hyp_ffa_version.get()):
            self.hyp_smccc_1_2_smc((ffa.FFA_VERSION, ffa_req_version), res)
            if res[0] == _NOT_SUPPORTED & _M64:
                spin_unlock(self.version_lock)  # unlock:
                return
            self.hyp_ffa_version.set(ffa_req_version)
        if self.hyp_ffa_post_init():
            res[0] = _NOT_SUPPORTED & _M64
        else:
            self.has_version_negotiated.set(1)  # smp_store_release
            res[0] = self.hyp_ffa_version.get()
        spin_unlock(self.version_lock)  # unlock:

    def hyp_ffa_init(self, pages: int) -> int:
        """The 6.18 text: ``res.a0 == FFA_RET_NOT_SUPPORTED`` on the 64-bit a0."""
        res: Res = [0] * abi.NUM_REGS
        if self.smccc_version < 0x10002:
            return 0
        self.hyp_smccc_1_2_smc((ffa.FFA_VERSION, ffa.FFA_VERSION_1_2), res)
        if res[0] == _NOT_SUPPORTED & _M64:
            return 0
        if FFA_MAJOR_VERSION(res[0]) != 1:
            return -EOPNOTSUPP
        if FFA_MINOR_VERSION(res[0]) < FFA_MINOR_VERSION(ffa.FFA_VERSION_1_2):
            self.hyp_ffa_version.set(res[0] & _M32)
        else:
            self.hyp_ffa_version.set(ffa.FFA_VERSION_1_2)
        self.hyp_ffa_init_buffers(pages)
        return 0
