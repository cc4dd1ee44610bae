"""Variant ``linux-6.10``: ffa.c as released in Linux 6.10: ``linux-6.5`` plus 76cf932c95b9
(6.7: ``ffa_mem_desc_offset(buf, 0, FFA_VERSION_1_0)`` instead of ``ep_mem_access[0]``, the
48-byte ``struct ffa_mem_region``), the SMCCC 1.2 requirement (seen in a 6.8/6.9 copy; the commit
was not identified), ae69e7740770 (FFA_MSG_SEND_DIRECT_REQ no longer denied) and d66e50beb911
(reclaim releases the hypervisor's RX). The text is linux-surface/kernel's 6.9-era copy with
those two 6.10 patches applied.

Against ``linux-6.11``, under their C names:

- ``kvm_host_ffa_handler`` neither traps FFA_VERSION nor gates other calls on it, and does not
  handle FFA_PARTITION_INFO_GET: both pass through, so the host negotiates its version with EL3
  directly while EL2 parses every descriptor in the v1.0 layout (D3: a v1.1 host driver's
  MEM_SHARE gets INVALID_PARAMETERS, its composite offset read from reserved bytes);
- ``is_ffa_call`` stops at function 0x7F (FFA_MAX_FUNC_NUM): the FF-A 1.1/1.2 functions from
  0x80 (notifications, MSG_SEND2, console log...) go to EL3 without any check (D6);
- ``hyp_ffa_init`` asks EL3 for 1.0 and checks FFA_ID_GET and FFA_FEATURES(RXTX_MAP) itself.

The model keeps ``hyp_ffa_version`` (6.11's variable) at 1.0 to stand for 6.10's fixed
``FFA_VERSION_1_0`` arguments.
"""

from __future__ import annotations

from ... import abi
from ...machine.memory import PAGE_SIZE
from .. import arm_ffa as ffa
from ..arm_ffa import FFA_MAJOR_VERSION
from ..ffa import _M64, _NOT_SUPPORTED, HOST_FFA_ID, MIN_RXTX_SZ, KvmCpuContext, Res
from ..mem_protect import EINVAL, EOPNOTSUPP
from .linux_6_11 import Linux611


class Linux610(Linux611):
    """Linux 6.10 (see the module docstring)."""

    variant = "linux-6.10"
    FFA_MAX_FUNC_NUM = 0x7F

    def kvm_host_ffa_handler(self, host_ctxt: KvmCpuContext, func_id: int) -> bool:
        """Before c9c012625e12 and 894376385a2d: no version gate, no FFA_VERSION or
        FFA_PARTITION_INFO_GET case."""
        res = self.hyp_stack_res(host_ctxt)
        if not self.is_ffa_call(func_id):
            return False
        match func_id:
            case ffa.FFA_FEATURES:
                if not self.do_ffa_features(res, host_ctxt):
                    return False
            case ffa.FFA_FN64_RXTX_MAP:
                self.do_ffa_rxtx_map(res, host_ctxt)
            case ffa.FFA_RXTX_UNMAP:
                self.do_ffa_rxtx_unmap(res, host_ctxt)
            case ffa.FFA_MEM_SHARE | ffa.FFA_FN64_MEM_SHARE:
                self.do_ffa_mem_xfer(ffa.FFA_FN64_MEM_SHARE, res, host_ctxt)
            case ffa.FFA_MEM_RECLAIM:
                self.do_ffa_mem_reclaim(res, host_ctxt)
            case ffa.FFA_MEM_LEND | ffa.FFA_FN64_MEM_LEND:
                self.do_ffa_mem_xfer(ffa.FFA_FN64_MEM_LEND, res, host_ctxt)
            case ffa.FFA_MEM_FRAG_TX:
                self.do_ffa_mem_frag_tx(res, host_ctxt)
            case _:
                if self.ffa_call_supported(func_id):
                    return False  # Pass through
                self.ffa_to_smccc_error(res, _NOT_SUPPORTED)
        self.ffa_set_retval(host_ctxt, res)  # out_handled:
        return True

    def hyp_ffa_init(self, pages: int) -> int:
        """FF-A 1.0 from EL3, then FFA_ID_GET == 0 and a 4K minimum buffer, all at init."""
        res: Res = [0] * abi.NUM_REGS
        if self.smccc_version < 0x10002:
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
