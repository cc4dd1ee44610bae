"""Variant ``linux-6.5``: the proxy as first released (Linux 6.5: 048be5fea43d ..
0a9f15fd5674, with 20936cd11479's FFA_FEATURES handler), from the raspberrypi/linux copy of that
era (its tracepoint left out).

Against ``linux-6.10``, under their C names:

- ``ffa_call_supported`` denies the 32-bit FFA_MSG_SEND_DIRECT_REQ while the 64-bit one passes
  (D2, fixed by ae69e7740770);
- ``do_ffa_mem_reclaim`` never releases the hypervisor's RX after FFA_MEM_RETRIEVE_RESP or
  FFA_MEM_FRAG_TX: EL3 keeps it FULL, and the next reclaim or partition-info call gets BUSY
  (D1, fixed by d66e50beb911);
- ``struct ffa_mem_region`` is 32 bytes (the v1.0 layout, with the EMAD array at 32);
- ``hyp_ffa_init`` needs SMCCC 1.1 only; ``kvm_host_ffa_handler`` reads the function ID from the
  whole of x0 (no SMCCC hint bits stripped).
"""

from __future__ import annotations

from ... import abi
from ...machine import spin_lock, spin_unlock
from ...machine.memory import PAGE_SIZE
from .. import arm_ffa as ffa
from ..arm_ffa import FFA_MAJOR_VERSION, PACK_HANDLE
from ..ffa import (
    _M32,
    _M64,
    _NOT_SUPPORTED,
    _RET_OK,
    DENIED_6_10,
    HOST_FFA_ID,
    MBOX_SIZE,
    MIN_RXTX_SZ,
    KvmCpuContext,
    Res,
    cpu_reg,
)
from ..mem_protect import EINVAL, EOPNOTSUPP
from .linux_6_10 import Linux610

_INVALID = abi.FFA_RET_INVALID_PARAMETERS

DENIED_6_5 = DENIED_6_10 | {ffa.FFA_MSG_SEND_DIRECT_REQ}


class Linux65(Linux610):
    """Linux 6.5 (see the module docstring)."""

    variant = "linux-6.5"
    SIZEOF_FFA_MEM_REGION = ffa.SIZEOF_FFA_MEM_REGION_V1_0

    def ffa_call_supported(self, func_id: int) -> bool:
        """The first deny list: the 32-bit DIRECT_REQ is among the "32-bit variants of 64-bit
        calls"."""
        return func_id not in DENIED_6_5

    def handle_host_smc(self, host_ctxt: KvmCpuContext) -> None:
        """6.5: ``kvm_host_ffa_handler(host_ctxt)`` reads x0 as a u64."""
        if not self.kvm_host_ffa_handler(host_ctxt, cpu_reg(host_ctxt, 0)):
            self.default_host_smc_handler(host_ctxt)

    def hyp_ffa_init(self, pages: int) -> int:
        """The 6.5 text: SMCCC 1.1 is enough."""
        res: Res = [0] * abi.NUM_REGS
        if self.smccc_version < 0x10001:
            return 0
        self.hyp_smccc_1_2_smc((ffa.FFA_VERSION, ffa.FFA_VERSION_1_0), res)
        if res[0] == _NOT_SUPPORTED & _M64:
            return 0
        if FFA_MAJOR_VERSION(res[0]) != 1:
            return -EOPNOTSUPP
        self.hyp_smccc_1_2_smc((ffa.FFA_ID_GET,), res)
        if res[0] != ffa.FFA_SUCCESS:
            return -EOPNOTSUPP
        if res[2] != HOST_FFA_ID:
            return -EINVAL
        self.hyp_smccc_1_2_smc((ffa.FFA_FEATURES, ffa.FFA_FN64_RXTX_MAP), res)
        if res[0] != ffa.FFA_SUCCESS:
            return -EOPNOTSUPP
        min_rxtx_sz = MIN_RXTX_SZ.get(res[2])
        if min_rxtx_sz is None:
            return -EINVAL
        if min_rxtx_sz > PAGE_SIZE:
            return -EOPNOTSUPP
        self.hyp_ffa_version.set(ffa.FFA_VERSION_1_0)
        self.hyp_ffa_init_buffers(pages)
        return 0

    def do_ffa_mem_reclaim(self, res: Res, ctxt: KvmCpuContext) -> None:
        """The 6.5 text: no FFA_RX_RELEASE anywhere."""
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
                return abi.FFA_RET_ABORTED
            if len_ > desc.len:
                return abi.FFA_RET_NO_MEMORY
            self.memcpy(desc.buf, buf, fraglen)
            fragoff = fraglen
            while fragoff < len_:
                self.ffa_mem_frag_rx(res, handle_lo, handle_hi, fragoff)
                if res[0] != ffa.FFA_MEM_FRAG_TX:
                    return _INVALID
                fraglen = res[3] & _M32
                self.memcpy(desc.buf + fragoff, buf, fraglen)
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
