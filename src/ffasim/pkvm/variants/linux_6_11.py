"""Variant ``linux-6.11``: ffa.c as released in Linux 6.11, which stayed so until 6.17: the
FF-A 1.1 series (kvm-arm64/ffa-1p1: c9c012625e12 VERSION trap, 894376385a2d
PARTITION_INFO_GET, 0dd60c4632a1 function range to 0xFF, 42fb33dde42b FF-A 1.1) on top of
``linux-6.10``.

No stored copy of a 6.11 ``ffa.c`` was found: this is the 6.18 text with the 6.18 series
(6f4c348b1d5c, 79195f342417, 8d24683e3e0f, 3f5952917498, 162190f2ccdc, f41426939244,
103e17aac09c) taken back out as their patches and the 2025 review thread show them. Against
``linux-6.18``, under their C names:

- ``ffa_set_retval`` writes x0..x3 only (``struct arm_smccc_res``): x4..x17 keep the host's own
  values; EL2 stack words reach x1..x3 after FFA_VERSION (D12);
- ``ffa_call_supported`` does not deny the notification interfaces nor the optional 1.2 ones:
  a host's NOTIFICATION_BIND/SET/GET for any VM ID reaches the SPMC (D6);
- ``hyp_ffa_post_init`` switches on the whole of FEATURES' w2: an SPMC reporting v1.2
  properties (a page count in w2[31:16]) fails negotiation, and every FF-A call then gets
  INVALID_PARAMETERS (D5);
- ``do_ffa_version`` answers a lower minor after negotiation with the negotiated version: a
  v1.0 driver loaded after a v1.1 one sends v1.0 descriptors that EL2 parses as v1.1 (D4);
- ``hyp_ffa_init`` asks EL3 for 1.1;
- ``__do_ffa_mem_xfer`` checks ``fraglen < offset + sizeof(struct ffa_composite_mem_region)``
  without 103e17aac09c; the sum is computed in size_t (64 bits), so it never wraps and the
  check rejects the offsets the fix was about (D7 is not reproducible on arm64; see
  docs/pkvm.md). The minimum fragment is 48 + 16 bytes (no impdef_val yet);
- mem_protect's ``__pkvm_host_{,un}share_ffa`` have no range checks (before f71f7afd0a0c).
"""

from __future__ import annotations

from ... import abi
from ...machine import spin_lock, spin_unlock
from ...machine.memory import PAGE_SHIFT, PAGE_SIZE
from .. import arm_ffa as ffa
from ..arm_ffa import FFA_MAJOR_VERSION, FFA_MINOR_VERSION
from ..ffa import (
    _M32,
    _M64,
    _NOT_SUPPORTED,
    DENIED_6_10,
    HOST_FFA_ID,
    MBOX_SIZE,
    MIN_RXTX_SZ,
    KvmCpuContext,
    Res,
    cpu_reg,
)
from ..mem_protect import EINVAL, EOPNOTSUPP, OWNED, SHARED_OWNED, hyp_pfn_to_phys
from .linux_6_18 import Linux618

_INVALID = abi.FFA_RET_INVALID_PARAMETERS


class Linux611(Linux618):
    """Linux 6.11 to 6.17 (see the module docstring)."""

    variant = "linux-6.11"
    SIZEOF_FFA_MEM_REGION_ATTRIBUTES = ffa.SIZEOF_EMAD_V1_0

    def ffa_set_retval(self, ctxt: KvmCpuContext, res: Res) -> None:
        """x0..x3 only: ``struct arm_smccc_res`` has no more (before 6f4c348b1d5c)."""
        ctxt.regs[0:4] = res[0:4]

    def ffa_call_supported(self, func_id: int) -> bool:
        """The deny list before 79195f342417 and 8d24683e3e0f."""
        return func_id not in DENIED_6_10

    def hyp_ffa_post_init(self) -> int:
        """Before 3f5952917498: the switch is on the whole of w2."""
        res: Res = [0] * abi.NUM_REGS
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
        return 0

    def do_ffa_version(self, res: Res, ctxt: KvmCpuContext) -> None:
        """Before f41426939244: once negotiated, any 1.x request gets the negotiated version."""
        ffa_req_version = cpu_reg(ctxt, 1) & _M32
        if FFA_MAJOR_VERSION(ffa_req_version) != 1:
            res[0] = _NOT_SUPPORTED & _M64
            return
        spin_lock(self.version_lock)
        if self.has_version_negotiated.read():
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
        """42fb33dde42b: FF-A 1.1 asked of EL3; the ID and features checks moved to
        ``hyp_ffa_post_init`` (c9c012625e12)."""
        res: Res = [0] * abi.NUM_REGS
        if self.smccc_version < 0x10002:
            return 0
        self.hyp_smccc_1_2_smc((ffa.FFA_VERSION, ffa.FFA_VERSION_1_1), res)
        if res[0] == _NOT_SUPPORTED & _M64:
            return 0
        if FFA_MAJOR_VERSION(res[0]) != 1:
            return -EOPNOTSUPP
        if FFA_MINOR_VERSION(res[0]) < FFA_MINOR_VERSION(ffa.FFA_VERSION_1_1):
            self.hyp_ffa_version.set(res[0] & _M32)
        else:
            self.hyp_ffa_version.set(ffa.FFA_VERSION_1_1)
        self.hyp_ffa_init_buffers(pages)
        return 0

    def _do_ffa_mem_xfer(self, func_id: int, res: Res, ctxt: KvmCpuContext) -> None:
        """Before 103e17aac09c: ``fraglen < offset + sizeof(...)``, in size_t arithmetic."""
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
            # u32 + size_t: the u32 is converted, the sum is 64-bit and cannot wrap.
            if fraglen < offset + ffa.SIZEOF_FFA_COMPOSITE_MEM_REGION:
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

    def _pkvm_host_share_ffa(self, pfn: int, nr_pages: int) -> int:
        """Before f71f7afd0a0c: no range check (``size = PAGE_SIZE * nr_pages``)."""
        phys, size = hyp_pfn_to_phys(pfn), (nr_pages << PAGE_SHIFT) & _M64
        self.host_lock_component()
        ret = self._host_check_page_state_range(phys, size, OWNED)
        if not ret:
            ret = self._host_set_page_state_range(phys, size, SHARED_OWNED)
        self.host_unlock_component()
        return ret

    def _pkvm_host_unshare_ffa(self, pfn: int, nr_pages: int) -> int:
        phys, size = hyp_pfn_to_phys(pfn), (nr_pages << PAGE_SHIFT) & _M64
        self.host_lock_component()
        ret = self._host_check_page_state_range(phys, size, SHARED_OWNED)
        if not ret:
            ret = self._host_set_page_state_range(phys, size, OWNED)
        self.host_unlock_component()
        return ret
