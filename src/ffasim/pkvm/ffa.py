"""pKVM's FF-A proxy at EL2. Mirrors ``arch/arm64/kvm/hyp/nvhe/ffa.c`` function for function,
at the newest text obtainable (variant ``head`` = ``linux-7.2``: damonitor/linux at 6a7a181f6921
plus 2bd3c6c702f3, whose text the sources lack; see ``variants/``).

The host kernel is the only caller: it shares FF-A ID 0 with the hypervisor, so the SPMC sees
one normal-world endpoint whose RX/TX are the hypervisor's pages. Each host FF-A call is denied
(FFA_ERROR(NOT_SUPPORTED)), passed through to EL3 unchanged, or handled here: FFA_VERSION,
FFA_FEATURES (SHARE/LEND only), FFA_RXTX_MAP_64/UNMAP, FFA_MEM_SHARE/LEND (32 and 64, reissued as
64), FFA_MEM_FRAG_TX, FFA_MEM_RECLAIM and FFA_PARTITION_INFO_GET. Memory calls copy the host's
descriptor into the hypervisor's TX (one fetch), move every constituent page from host OWNED to
SHARED_OWNED (``mem_protect.py``) and reissue the call; reclaim retrieves the transaction as the
hypervisor to learn which pages to give back.

Locks: ``host_buffers.lock`` is held across every use of either RX/TX pair and across the SMCs
that use them, so those calls are serialised system-wide; inside it, mem_protect's host then hyp
component locks. ``version_lock`` is taken alone. ``hyp_buffers.lock`` exists and is never
taken (the C relies on host_buffers.lock, "as we only have one client"). Passed-through calls
take no lock at all, including the host's FFA_RX_RELEASE, which releases the *hypervisor's* RX
at EL3 (the host and EL2 are one endpoint there).

State, by access rule (declared through the machine so the race monitor checks it):
published once at init: ``hyp_buffers.tx/rx``, ``ffa_desc_buf``; under ``host_buffers.lock``:
``host_buffers.tx/rx`` and the contents of the hyp buffers and ``ffa_desc_buf``; under
``version_lock`` (read without it once negotiated): ``hyp_ffa_version``; store-release /
load-acquire: ``has_version_negotiated``.

Registers: ``res`` is ``struct arm_smccc_1_2_regs`` (18 words) and ``ffa_set_retval`` copies all
of it to the host's x0..x17 (6.18+). Before 2bd3c6c702f3 ``res`` was not initialised: the words a
handler does not write are EL2 stack contents, which the model represents by canary words
(:meth:`Ffa.hyp_private_words`) for the register-taint monitor to find.

Not modelled: the PSCI relay and SMCCC hint bits beyond stripping them, 16K/64K kernel pages
(PAGE_SIZE is 4 KiB: one FF-A page per buffer), guest (ACK) FF-A, the hypervisor tracing.
"""

from __future__ import annotations

from typing import Final

from .. import abi
from ..machine import Atomic, Guarded, Machine, SmcConduit, Spinlock, spin_lock, spin_unlock
from ..machine.memory import PAGE_SIZE
from . import arm_ffa as ffa
from .arm_ffa import (
    ARM_SMCCC_FUNC_NUM,
    ARM_SMCCC_IS_FAST_CALL,
    ARM_SMCCC_OWNER_NUM,
    ARM_SMCCC_OWNER_STANDARD,
    CONSTITUENTS_OFFSET,
    FFA_MAJOR_VERSION,
    FFA_MEM_REGION_SZ,
    FFA_MIN_FUNC_NUM,
    FFA_MINOR_VERSION,
    FFA_PAGE_SIZE,
    KVM_FFA_MBOX_NR_PAGES,
    PACK_HANDLE,
    ffa_emad_size_get,
)
from .mem_protect import EINVAL, EOPNOTSUPP, MemProtect, hyp_phys_to_pfn

Res = list[int]
"""``struct arm_smccc_1_2_regs``: a0..a17, mutable as the C struct is."""

HOST_FFA_ID: Final = 0
"""'ID value 0 must be returned at the Non-secure physical FF-A instance': shared with the host."""

MBOX_SIZE: Final = KVM_FFA_MBOX_NR_PAGES * PAGE_SIZE

_M32 = abi.MASK32
_M64 = abi.MASK64
_RET_OK = abi.FFA_RET_OK
_INVALID = abi.FFA_RET_INVALID_PARAMETERS
_NOT_SUPPORTED = abi.FFA_RET_NOT_SUPPORTED

# What the model puts where kvm_host_ffa_handler's uninitialised ``res`` lives on CPU n's EL2
# stack: words shaped like hypervisor addresses (per-CPU stack, hyp_vmemmap), which nothing
# else in the system produces. Only variants without 2bd3c6c702f3 ever show them to the host.
EL2_STACK_BASE: Final = 0xFFFF_0E12_0000_0000


def el2_stack_words(cpu: int) -> tuple[int, ...]:
    """The 18 canary words standing for CPU ``cpu``'s EL2 stack under ``res``."""
    return tuple(EL2_STACK_BASE | (cpu << 16) | (i << 3) for i in range(abi.NUM_REGS))


def PAGE_ALIGNED(x: int) -> bool:  # the kernel's macro name
    return not x & (PAGE_SIZE - 1)


class KvmCpuContext:
    """``struct kvm_cpu_context`` of one host CPU, as far as the proxy uses it: x0..x17."""

    __slots__ = ("cpu", "regs")

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.regs: list[int] = [0] * abi.NUM_REGS

    def __repr__(self) -> str:
        return f"<host_ctxt cpu{self.cpu} x0=0x{self.regs[0]:x}>"


def cpu_reg(ctxt: KvmCpuContext, n: int) -> int:
    return ctxt.regs[n]


class KvmFfaBuffers:
    """``struct kvm_ffa_buffers``: a lock and the EL2 addresses of a TX and an RX page.

    ``guarded``: the pointers are accessed under ``lock`` (host_buffers); otherwise they are
    published once at init and read without a lock (hyp_buffers)."""

    def __init__(self, machine: Machine, name: str, guarded: bool) -> None:
        self.lock = Spinlock(machine, f"{name}.lock")
        guard = self.lock if guarded else None
        self.tx: Guarded[int | None] = Guarded(machine, f"{name}.tx", None, guard)
        self.rx: Guarded[int | None] = Guarded(machine, f"{name}.rx", None, guard)


class KvmFfaDescriptorBuffer:
    """``struct kvm_ffa_descriptor_buffer``: where reclaim reassembles a fragmented
    RETRIEVE_RESP; its ``len`` also bounds the total length of a host SHARE/LEND."""

    __slots__ = ("buf", "len")

    def __init__(self) -> None:
        self.buf = 0
        self.len = 0


class Ffa(MemProtect):
    """ffa.c (and the arm_ffa.h helpers it calls) on top of mem_protect.c."""

    variant = "head"
    FFA_MAX_FUNC_NUM = 0xFF
    """nvhe/ffa.h: the highest FF-A function number the proxy looks at (0x7F until
    0dd60c4632a1, 6.11)."""

    def __init__(self, machine: Machine, conduit: SmcConduit) -> None:
        super().__init__(machine)
        self.conduit = conduit
        m = machine
        self.smccc_version = 0x10002  # kvm_host_psci_config.smccc_version: SMCCC 1.2
        self.ffa_desc_buf = KvmFfaDescriptorBuffer()
        self.hyp_buffers = KvmFfaBuffers(m, "hyp_buffers", guarded=False)
        self.host_buffers = KvmFfaBuffers(m, "host_buffers", guarded=True)
        self.version_lock = Spinlock(m, "version_lock")
        self.hyp_ffa_version: Guarded[int] = Guarded(m, "hyp_ffa_version", 0, self.version_lock)
        self.has_version_negotiated = Atomic(m, "has_version_negotiated")

    # -- the model's view ---------------------------------------------------------------------
    def WARN_ON(self, cond: bool, what: str) -> bool:  # the kernel's macro name
        """``cond``; when true, the warning EL2 prints: logged and reported to the checker as
        a broken invariant, and EL2 goes on (a hyp WARN is not fatal)."""
        if cond:
            self.machine.sink.log(self.machine.current, f"WARNING at EL2: {what}")
            self.machine.sink.violation("assertion", f"WARN_ON({what}) at EL2")
        return cond

    def hyp_private_words(self) -> frozenset[int]:
        """Values only EL2 holds (the stack canaries of every CPU): none of them may reach a
        host register (the register-taint monitor's rule)."""
        return _PRIVATE_WORDS

    def hyp_stack_res(self, ctxt: KvmCpuContext) -> Res:
        """kvm_host_ffa_handler's local ``res``: zero-initialised since 2bd3c6c702f3 ("Zero
        out the stack initialized data in the FFA handler", 7.2; text not in the sources, the
        title and D12 say what it does)."""
        return [0] * abi.NUM_REGS

    # -- result helpers -----------------------------------------------------------------------
    def ffa_to_smccc_error(self, res: Res, ffa_errno: int) -> None:
        """``*res = (struct ...){ .a0 = FFA_ERROR, .a2 = ffa_errno }``: every other word 0."""
        res[:] = [0] * abi.NUM_REGS
        res[0] = ffa.FFA_ERROR
        res[2] = ffa_errno & _M64

    def ffa_to_smccc_res_prop(self, res: Res, ret: int, prop: int) -> None:
        if ret == _RET_OK:
            res[:] = [0] * abi.NUM_REGS
            res[0] = ffa.FFA_SUCCESS
            res[2] = prop
        else:
            self.ffa_to_smccc_error(res, ret)

    def ffa_to_smccc_res(self, res: Res, ret: int) -> None:
        self.ffa_to_smccc_res_prop(res, ret, 0)

    def ffa_set_retval(self, ctxt: KvmCpuContext, res: Res) -> None:
        """x0..x17 from ``res``, unconditionally (6f4c348b1d5c: a 32-bit call may get a 64-bit
        answer in FF-A 1.2, and passthrough returns x0..x17 too)."""
        ctxt.regs[:] = res

    def is_ffa_call(self, func_id: int) -> bool:
        return (
            ARM_SMCCC_IS_FAST_CALL(func_id)
            and ARM_SMCCC_OWNER_NUM(func_id) == ARM_SMCCC_OWNER_STANDARD
            and FFA_MIN_FUNC_NUM <= ARM_SMCCC_FUNC_NUM(func_id) <= self.FFA_MAX_FUNC_NUM
        )

    # -- SMCs to EL3 --------------------------------------------------------------------------
    def hyp_smccc_1_2_smc(self, args: tuple[int, ...], res: Res) -> None:
        """An SMC from EL2 with x0.. = ``args``; EL3's x0..x17 land in ``res``. (The name of
        the 7.x copy; arm_smccc_1_2_smc in 6.18, arm_smccc_1_1_smc into a four-word
        ``struct arm_smccc_res`` before: the variants' ``ffa_set_retval`` shows the host only
        what those returned.)"""
        res[:] = self.conduit.smc(*args)

    def ffa_map_hyp_buffers(self, ffa_page_count: int) -> int:
        res: Res = [0] * abi.NUM_REGS
        tx, rx = self.hyp_buffers.tx.get(), self.hyp_buffers.rx.get()
        # hyp_virt_to_phys(NULL) when the proxy never initialised: 0 in the model.
        self.hyp_smccc_1_2_smc((ffa.FFA_FN64_RXTX_MAP, tx or 0, rx or 0, ffa_page_count), res)
        return _RET_OK if res[0] == ffa.FFA_SUCCESS else abi.to_s32(res[2])

    def ffa_unmap_hyp_buffers(self) -> int:
        res: Res = [0] * abi.NUM_REGS
        self.hyp_smccc_1_2_smc((ffa.FFA_RXTX_UNMAP, HOST_FFA_ID), res)
        return _RET_OK if res[0] == ffa.FFA_SUCCESS else abi.to_s32(res[2])

    def ffa_mem_frag_tx(
        self, res: Res, handle_lo: int, handle_hi: int, fraglen: int, endpoint_id: int
    ) -> None:
        self.hyp_smccc_1_2_smc(
            (ffa.FFA_MEM_FRAG_TX, handle_lo, handle_hi, fraglen, endpoint_id), res
        )

    def ffa_mem_frag_rx(self, res: Res, handle_lo: int, handle_hi: int, fragoff: int) -> None:
        self.hyp_smccc_1_2_smc(
            (ffa.FFA_MEM_FRAG_RX, handle_lo, handle_hi, fragoff, HOST_FFA_ID), res
        )

    def ffa_mem_xfer(self, res: Res, func_id: int, len_: int, fraglen: int) -> None:
        self.hyp_smccc_1_2_smc((func_id, len_, fraglen), res)

    def ffa_mem_reclaim(self, res: Res, handle_lo: int, handle_hi: int, flags: int) -> None:
        self.hyp_smccc_1_2_smc((ffa.FFA_MEM_RECLAIM, handle_lo, handle_hi, flags), res)

    def ffa_retrieve_req(self, res: Res, len_: int) -> None:
        self.hyp_smccc_1_2_smc((ffa.FFA_FN64_MEM_RETRIEVE_REQ, len_, len_), res)

    def ffa_rx_release(self, res: Res) -> None:
        self.hyp_smccc_1_2_smc((ffa.FFA_RX_RELEASE,), res)

    # -- FFA_RXTX_MAP / FFA_RXTX_UNMAP --------------------------------------------------------
    def do_ffa_rxtx_map(self, res: Res, ctxt: KvmCpuContext) -> None:
        """Map the hypervisor's pair at EL3, then share and pin the host's pair at EL2."""
        tx = cpu_reg(ctxt, 1)
        rx = cpu_reg(ctxt, 2)
        npages = cpu_reg(ctxt, 3) & _M32
        hb = self.host_buffers

        def locked() -> int:
            if hb.tx.get() is not None:
                return abi.FFA_RET_DENIED
            # Map our hypervisor buffers into the SPMD before mapping and pinning the host
            # buffers in our own address space.
            ret = self.ffa_map_hyp_buffers(npages)
            if ret:
                return ret
            if self._pkvm_host_share_hyp(hyp_phys_to_pfn(tx)):
                self.ffa_unmap_hyp_buffers()  # err_unmap:
                return _INVALID
            if self._pkvm_host_share_hyp(hyp_phys_to_pfn(rx)):
                self._pkvm_host_unshare_hyp(hyp_phys_to_pfn(tx))  # err_unshare_tx:
                self.ffa_unmap_hyp_buffers()
                return _INVALID
            if self.hyp_pin_shared_mem(tx, tx + 1):
                self._pkvm_host_unshare_hyp(hyp_phys_to_pfn(rx))  # err_unshare_rx:
                self._pkvm_host_unshare_hyp(hyp_phys_to_pfn(tx))
                self.ffa_unmap_hyp_buffers()
                return _INVALID
            if self.hyp_pin_shared_mem(rx, rx + 1):
                self.hyp_unpin_shared_mem(tx, tx + 1)  # err_unpin_tx:
                self._pkvm_host_unshare_hyp(hyp_phys_to_pfn(rx))
                self._pkvm_host_unshare_hyp(hyp_phys_to_pfn(tx))
                self.ffa_unmap_hyp_buffers()
                return _INVALID
            hb.tx.set(tx)
            hb.rx.set(rx)
            return _RET_OK

        if npages != (KVM_FFA_MBOX_NR_PAGES * PAGE_SIZE) // FFA_PAGE_SIZE or not (
            PAGE_ALIGNED(tx) and PAGE_ALIGNED(rx)
        ):
            ret = _INVALID
        else:
            spin_lock(hb.lock)
            ret = locked()
            spin_unlock(hb.lock)  # out_unlock:
        self.ffa_to_smccc_res(res, ret)  # out:

    def do_ffa_rxtx_unmap(self, res: Res, ctxt: KvmCpuContext) -> None:
        """Unpin and unshare the host's pair, then unmap the hypervisor's at EL3 (whose answer
        is ignored: EL2 forgets the buffers even if EL3 refused)."""
        id_ = cpu_reg(ctxt, 1) & _M32
        hb = self.host_buffers
        ret = _RET_OK
        if id_ != HOST_FFA_ID:
            ret = _INVALID
        else:
            spin_lock(hb.lock)
            tx = hb.tx.get()
            if tx is None:
                ret = _INVALID
            else:
                self.hyp_unpin_shared_mem(tx, tx + 1)
                self.WARN_ON(
                    self._pkvm_host_unshare_hyp(hyp_virt_to_pfn(tx)) != 0,
                    "__pkvm_host_unshare_hyp(hyp_virt_to_pfn(host_buffers.tx))",
                )
                hb.tx.set(None)
                rx = hb.rx.get()
                assert rx is not None
                self.hyp_unpin_shared_mem(rx, rx + 1)
                self.WARN_ON(
                    self._pkvm_host_unshare_hyp(hyp_virt_to_pfn(rx)) != 0,
                    "__pkvm_host_unshare_hyp(hyp_virt_to_pfn(host_buffers.rx))",
                )
                hb.rx.set(None)
                self.ffa_unmap_hyp_buffers()
            spin_unlock(hb.lock)  # out_unlock:
        self.ffa_to_smccc_res(res, ret)  # out:

    # -- constituent ranges -------------------------------------------------------------------
    def _ffa_host_share_ranges(self, ranges: int, nranges: int) -> int:
        """Share each range of the ``struct ffa_mem_region_addr_range`` array at EL2 address
        ``ranges``; stop at the first that fails. Returns how many were shared.

        Both the size and the address must be page aligned (6a7a181f6921, 7.2): before, a range
        at P + 0x800 shared page P only, while the SPMC may map P and P+1."""
        i = 0
        while i < nranges:
            r = ranges + i * ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE
            sz = self.hyp_read_u32(r + ffa.ADDR_RANGE_PG_CNT) * FFA_PAGE_SIZE
            address = self.hyp_read_u64(r + ffa.ADDR_RANGE_ADDRESS)
            if not PAGE_ALIGNED(sz | address):
                break
            if self._pkvm_host_share_ffa(hyp_phys_to_pfn(address), sz // PAGE_SIZE):
                break
            i += 1
        return i

    def _ffa_host_unshare_ranges(self, ranges: int, nranges: int) -> int:
        """The reverse of :meth:`_ffa_host_share_ranges`."""
        i = 0
        while i < nranges:
            r = ranges + i * ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE
            sz = self.hyp_read_u32(r + ffa.ADDR_RANGE_PG_CNT) * FFA_PAGE_SIZE
            address = self.hyp_read_u64(r + ffa.ADDR_RANGE_ADDRESS)
            if not PAGE_ALIGNED(sz | address):
                break
            if self._pkvm_host_unshare_ffa(hyp_phys_to_pfn(address), sz // PAGE_SIZE):
                break
            i += 1
        return i

    def ffa_host_share_ranges(self, ranges: int, nranges: int) -> int:
        """All or nothing: DENIED (and the ranges shared so far unshared) if one fails."""
        nshared = self._ffa_host_share_ranges(ranges, nranges)
        if nshared != nranges:
            self.WARN_ON(
                self._ffa_host_unshare_ranges(ranges, nshared) != nshared,
                "__ffa_host_unshare_ranges(ranges, nshared) != nshared",
            )
            return abi.FFA_RET_DENIED
        return _RET_OK

    def ffa_host_unshare_ranges(self, ranges: int, nranges: int) -> int:
        nunshared = self._ffa_host_unshare_ranges(ranges, nranges)
        if nunshared != nranges:
            self.WARN_ON(
                self._ffa_host_share_ranges(ranges, nunshared) != nunshared,
                "__ffa_host_share_ranges(ranges, nunshared) != nunshared",
            )
            return abi.FFA_RET_DENIED
        return _RET_OK

    # -- FFA_MEM_FRAG_TX ----------------------------------------------------------------------
    def do_ffa_mem_frag_tx(self, res: Res, ctxt: KvmCpuContext) -> None:
        """A further fragment of a host SHARE/LEND: only constituents; share them, forward.

        If this fails the earlier fragments' pages stay SHARED_OWNED for good (the C's own
        comment: "this will not compromise confidentiality")."""
        handle_lo = cpu_reg(ctxt, 1) & _M32
        handle_hi = cpu_reg(ctxt, 2) & _M32
        fraglen = cpu_reg(ctxt, 3) & _M32
        endpoint_id = cpu_reg(ctxt, 4) & _M32
        hb = self.host_buffers
        ret = _INVALID
        if fraglen <= MBOX_SIZE and not fraglen % ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE:
            spin_lock(hb.lock)
            host_tx = hb.tx.get()
            if host_tx is not None:
                buf = self.hyp_buffers.tx.get()
                assert buf is not None
                self.memcpy(buf, host_tx, fraglen)
                nr_ranges = fraglen // ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE
                ret = self.ffa_host_share_ranges(buf, nr_ranges)
                if ret:
                    # We're effectively aborting the transaction, so we need to restore the
                    # global state back to what it was prior to transmission of the first
                    # fragment.
                    self.ffa_mem_reclaim(res, handle_lo, handle_hi, 0)
                    self.WARN_ON(res[0] != ffa.FFA_SUCCESS, "res->a0 != FFA_SUCCESS")
                else:
                    self.ffa_mem_frag_tx(res, handle_lo, handle_hi, fraglen, endpoint_id)
                    if res[0] not in (ffa.FFA_SUCCESS, ffa.FFA_MEM_FRAG_RX):
                        self.WARN_ON(
                            self.ffa_host_unshare_ranges(buf, nr_ranges) != 0,
                            "ffa_host_unshare_ranges(buf, nr_ranges)",
                        )
            spin_unlock(hb.lock)  # out_unlock:
        if ret:  # out:
            self.ffa_to_smccc_res(res, ret)

    # -- FFA_MEM_SHARE / FFA_MEM_LEND ---------------------------------------------------------
    SIZEOF_FFA_MEM_REGION = ffa.SIZEOF_FFA_MEM_REGION
    """``sizeof(struct ffa_mem_region)`` as the release's header declares it: 48 from 6.7
    (76cf932c95b9 added ep_mem_offset and reserved[3]), 32 before."""
    SIZEOF_FFA_MEM_REGION_ATTRIBUTES = ffa.SIZEOF_EMAD_V1_2
    """``sizeof(struct ffa_mem_region_attributes)``: 32 from 11fb1a82aefa (6.18: impdef_val),
    16 before."""

    def ffa_mem_desc_offset(self, buf: int, count: int, ffa_version: int) -> int:
        """arm_ffa.h: where EMAD ``count`` starts: 32 + count*16 for v1.0; for v1.1 on, the
        header's ``ep_mem_offset`` (read from ``buf``) plus ``count`` EMADs (b4d961351aa8,
        7.2; before, the header's size, 48, was assumed whatever ep_mem_offset said)."""
        offset = count * ffa_emad_size_get(ffa_version)
        if not ffa.FFA_MEM_REGION_HAS_EP_MEM_OFFSET(ffa_version):
            return offset + ffa.SIZEOF_FFA_MEM_REGION_V1_0
        return (offset + self.hyp_read_u32(buf + ffa.MEM_REGION_EP_MEM_OFFSET)) & _M32

    def _do_ffa_mem_xfer(self, func_id: int, res: Res, ctxt: KvmCpuContext) -> None:
        """FFA_MEM_SHARE/LEND from the host (``func_id`` is the FN64 form, as reissued): check
        the first fragment's single EMAD, share every constituent in it, forward the call."""
        len_ = cpu_reg(ctxt, 1) & _M32
        fraglen = cpu_reg(ctxt, 2) & _M32
        addr_mbz = cpu_reg(ctxt, 3)
        npages_mbz = cpu_reg(ctxt, 4) & _M32
        version = self.hyp_ffa_version.get()
        mem_region_len = FFA_MEM_REGION_SZ(version)
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
            em_mem_access_off = self.ffa_mem_desc_offset(buf, 0, version)
            if em_mem_access_off + ffa_emad_size_get(version) > fraglen:
                return _INVALID
            offset = self.hyp_read_u32(buf + em_mem_access_off + ffa.EMAD_COMPOSITE_OFF)
            if (
                not offset
                or self.hyp_read_u32(buf + ffa.MEM_REGION_EP_COUNT) != 1
                or self.hyp_read_u16(buf + ffa.MEM_REGION_SENDER_ID) != HOST_FFA_ID
            ):
                return _INVALID
            checked_offset = offset + ffa.SIZEOF_FFA_COMPOSITE_MEM_REGION
            if checked_offset > _M32:  # check_add_overflow() into the u32 checked_offset
                return _INVALID
            if fraglen < checked_offset:
                return _INVALID
            return self.ffa_mem_xfer_constituents(func_id, res, buf, offset, len_, fraglen)

        if (
            addr_mbz
            or npages_mbz
            or fraglen > len_
            or fraglen > MBOX_SIZE
            or fraglen < mem_region_len + ffa_emad_size_get(version)
        ):
            ret = _INVALID
        else:
            spin_lock(hb.lock)
            ret = locked()
            spin_unlock(hb.lock)  # out_unlock:
        if ret:  # out:
            self.ffa_to_smccc_res(res, ret)

    def ffa_mem_xfer_constituents(
        self, func_id: int, res: Res, buf: int, offset: int, len_: int, fraglen: int
    ) -> int:
        """The tail of ``__do_ffa_mem_xfer`` from ``reg = (void *)buf + offset`` on, one text in
        every release: the constituents are all the bytes from the composite's array to the end
        of the fragment (not ``addr_range_cnt``); share them, forward the call, unshare them if
        EL3 did not take it (err_unshare)."""
        reg = buf + offset
        constituents = reg + ffa.SIZEOF_FFA_COMPOSITE_MEM_REGION
        # nr_ranges = ((void *)buf + fraglen) - (void *)reg->constituents, into a u32
        nr_ranges = (fraglen - (offset + ffa.SIZEOF_FFA_COMPOSITE_MEM_REGION)) & _M32
        if nr_ranges % ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE:
            return _INVALID
        nr_ranges //= ffa.SIZEOF_FFA_MEM_REGION_ADDR_RANGE
        ret = self.ffa_host_share_ranges(constituents, nr_ranges)
        if ret:
            return ret
        self.ffa_mem_xfer(res, func_id, len_, fraglen)
        if fraglen != len_:
            taken = res[0] == ffa.FFA_MEM_FRAG_RX and res[3] == fraglen
        else:
            taken = res[0] == ffa.FFA_SUCCESS
        if not taken:  # err_unshare:
            self.WARN_ON(
                self.ffa_host_unshare_ranges(constituents, nr_ranges) != 0,
                "ffa_host_unshare_ranges(reg->constituents, nr_ranges)",
            )
        return _RET_OK

    def do_ffa_mem_xfer(self, fid: int, res: Res, ctxt: KvmCpuContext) -> None:
        """The macro: BUILD_BUG_ON anything but the FN64 SHARE and LEND."""
        assert fid in (ffa.FFA_FN64_MEM_SHARE, ffa.FFA_FN64_MEM_LEND)
        self._do_ffa_mem_xfer(fid, res, ctxt)

    # -- FFA_MEM_RECLAIM ----------------------------------------------------------------------
    def ffa_hyp_retrieve_req(self, res: Res, handle: int) -> None:
        """``*buf = (struct ffa_mem_region){ .sender_id = HOST_FFA_ID, .handle = handle }`` in
        the hypervisor's TX, then FFA_MEM_RETRIEVE_REQ of ``sizeof(*buf)``: how every release's
        ``do_ffa_mem_reclaim`` starts."""
        buf = self.hyp_buffers.tx.get()
        assert buf is not None
        header = ffa.HYP_RETRIEVE_HEADER.pack(HOST_FFA_ID, 0, 0, handle, 0)
        self.hyp_write(buf, header + bytes(self.SIZEOF_FFA_MEM_REGION - len(header)))
        self.ffa_retrieve_req(res, self.SIZEOF_FFA_MEM_REGION)

    def do_ffa_mem_reclaim(self, res: Res, ctxt: KvmCpuContext) -> None:
        """Retrieve the transaction as the hypervisor to learn its constituents, reclaim it at
        EL3, then give the pages back to the host (OWNED). The composite and all its
        constituents must lie within the descriptor (8c6db30d7952, 7.2) and the EMAD within
        the first fragment (a6b49d27c179, 7.2)."""
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
            version = self.hyp_ffa_version.get()
            em_mem_access_off = self.ffa_mem_desc_offset(buf, 0, version)
            if em_mem_access_off + ffa_emad_size_get(version) > fraglen:
                self.ffa_rx_release(res)
                return _INVALID
            offset = self.hyp_read_u32(buf + em_mem_access_off + ffa.EMAD_COMPOSITE_OFF)
            # We can trust the SPMD to get this right, but let's at least check that we end up
            # with something that doesn't look _completely_ bogus.
            if offset + CONSTITUENTS_OFFSET(0) > len_ or fraglen > MBOX_SIZE:
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
                fraglen = res[3] & _M32  # trusted: neither checked against a page nor len
                self.memcpy(desc.buf + fragoff, buf, fraglen)
                self.ffa_rx_release(res)
                fragoff = (fragoff + fraglen) & _M32
            reg = desc.buf + offset
            count = self.hyp_read_u32(reg + ffa.COMPOSITE_ADDR_RANGE_CNT)
            if offset + CONSTITUENTS_OFFSET(count) > len_:
                return abi.FFA_RET_ABORTED
            self.ffa_mem_reclaim(res, handle_lo, handle_hi, flags)
            if res[0] != ffa.FFA_SUCCESS:
                return _RET_OK
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

    # -- FFA_FEATURES, FFA_VERSION, FFA_PARTITION_INFO_GET ------------------------------------
    def ffa_call_supported(self, func_id: int) -> bool:
        """Whether a function is forwarded or handled rather than denied (the 6.18+ list)."""
        return func_id not in DENIED_6_18

    def do_ffa_features(self, res: Res, ctxt: KvmCpuContext) -> bool:
        """Denied functions: NOT_SUPPORTED; SHARE/LEND: SUCCESS with no dynamic buffers
        (w2 = 0); anything else: False, the query passes through to EL3."""
        id_ = cpu_reg(ctxt, 1) & _M32
        prop = 0
        if not self.ffa_call_supported(id_):
            ret = _NOT_SUPPORTED
        elif id_ in _SHARE_LEND:
            ret = _RET_OK
            prop = 0  # No support for dynamic buffers
        else:
            return False
        self.ffa_to_smccc_res_prop(res, ret, prop)  # out_handled:
        return True

    def hyp_ffa_post_init(self) -> int:
        """What negotiation needs from EL3: FFA_ID_GET must answer 0, FFA_FEATURES(RXTX_MAP_64)
        a minimum buffer size that fits a page, read from w2[1:0] only (3f5952917498, 6.18:
        v1.2 puts the maximum page count in w2[31:16])."""
        res: Res = [0] * abi.NUM_REGS
        self.hyp_smccc_1_2_smc((ffa.FFA_ID_GET,), res)
        if res[0] != ffa.FFA_SUCCESS:
            return -EOPNOTSUPP
        if res[2] != HOST_FFA_ID:
            return -EINVAL
        self.hyp_smccc_1_2_smc((ffa.FFA_FEATURES, ffa.FFA_FN64_RXTX_MAP), res)
        if res[0] != ffa.FFA_SUCCESS:
            return -EOPNOTSUPP
        min_rxtx_sz = MIN_RXTX_SZ.get(res[2] & ffa.FFA_FEAT_RXTX_MIN_SZ_MASK)
        if min_rxtx_sz is None:
            return -EINVAL
        if min_rxtx_sz > PAGE_SIZE:
            return -EOPNOTSUPP
        return 0

    def do_ffa_version(self, res: Res, ctxt: KvmCpuContext) -> None:
        """FFA_VERSION from the host: negotiate once. Only x0 is written (FF-A answers the
        version, or NOT_SUPPORTED, in w0), as a 64-bit value: ``res->a0 = -1`` is all ones.
        Once negotiated a lower minor is refused (f41426939244, 6.18); EL3's NOT_SUPPORTED is
        read as a 32-bit value (582234b0d841, 7.0)."""
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
        # If the client driver tries to downgrade the version, we need to ask first if TEE
        # supports it.
        if FFA_MINOR_VERSION(ffa_req_version) < FFA_MINOR_VERSION(self.hyp_ffa_version.get()):
            self.hyp_smccc_1_2_smc((ffa.FFA_VERSION, ffa_req_version), res)
            if abi.to_s32(res[0]) == _NOT_SUPPORTED:
                spin_unlock(self.version_lock)  # unlock:
                return
            self.hyp_ffa_version.set(ffa_req_version)
        if self.hyp_ffa_post_init():
            res[0] = _NOT_SUPPORTED & _M64
        else:
            self.has_version_negotiated.set(1)  # smp_store_release
            res[0] = self.hyp_ffa_version.get()
        spin_unlock(self.version_lock)  # unlock:

    def do_ffa_part_get(self, res: Res, ctxt: KvmCpuContext) -> None:
        """FFA_PARTITION_INFO_GET: EL3 writes the entries into the hypervisor's RX; copy them
        to the host's RX. EL2 does not release its RX: the host's own (passed-through)
        FFA_RX_RELEASE does, at EL3."""
        uuid = [cpu_reg(ctxt, i) & _M32 for i in range(1, 5)]
        flags = cpu_reg(ctxt, 5) & _M32
        hb = self.host_buffers

        def locked() -> None:
            host_rx = hb.rx.get()
            if host_rx is None:
                self.ffa_to_smccc_res(res, abi.FFA_RET_BUSY)
                return
            self.hyp_smccc_1_2_smc((ffa.FFA_PARTITION_INFO_GET, *uuid, flags), res)
            if res[0] != ffa.FFA_SUCCESS:
                return
            count = res[2] & _M32
            if not count:
                return
            if self.hyp_ffa_version.get() > ffa.FFA_VERSION_1_0:
                # Get the number of partitions deployed in the system
                if flags & 0x1:
                    return
                partition_sz = res[3] & _M32
            else:
                # FFA_VERSION_1_0 lacks the size in the response
                partition_sz = ffa.FFA_1_0_PARTITON_INFO_SZ
            copy_sz = (partition_sz * count) & _M32
            if copy_sz > MBOX_SIZE:
                self.ffa_to_smccc_res(res, abi.FFA_RET_ABORTED)
                return
            rx = self.hyp_buffers.rx.get()
            assert rx is not None
            self.memcpy(host_rx, rx, copy_sz)

        spin_lock(hb.lock)
        locked()
        spin_unlock(hb.lock)  # out_unlock:

    # -- the dispatcher -----------------------------------------------------------------------
    def kvm_host_ffa_handler(self, host_ctxt: KvmCpuContext, func_id: int) -> bool:
        """Handle the host's SMC if it is an FF-A call the proxy filters; False: pass it on.

        There's no way to tell what a non-standard SMC call might be up to; given that the
        architecture requires EL3 to be trusted anyway, unrecognised calls are forwarded."""
        res = self.hyp_stack_res(host_ctxt)
        if not self.is_ffa_call(func_id):
            return False
        if func_id != ffa.FFA_VERSION and not self.has_version_negotiated.read():
            self.ffa_to_smccc_error(res, _INVALID)  # smp_load_acquire above
        else:
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
                case ffa.FFA_VERSION:
                    self.do_ffa_version(res, host_ctxt)
                case ffa.FFA_PARTITION_INFO_GET:
                    self.do_ffa_part_get(res, host_ctxt)
                case _:
                    if self.ffa_call_supported(func_id):
                        return False  # Pass through
                    self.ffa_to_smccc_error(res, _NOT_SUPPORTED)
        self.ffa_set_retval(host_ctxt, res)  # out_handled:
        return True

    # -- init -----------------------------------------------------------------------------------
    def hyp_ffa_init(self, pages: int) -> int:
        """At pKVM setup: ask EL3 for FF-A. 0 with the proxy left empty when EL3 has none (or
        SMCCC < 1.2); a negative errno when the firmware's version is unusable (pKVM init
        fails). ``pages``: the EL2 address of ``hyp_ffa_proxy_pages()`` pages."""
        res: Res = [0] * abi.NUM_REGS
        if self.smccc_version < 0x10002:
            return 0
        self.hyp_smccc_1_2_smc((ffa.FFA_VERSION, ffa.FFA_VERSION_1_2), res)
        if abi.to_s32(res[0]) == _NOT_SUPPORTED:
            return 0
        # Firmware returns the maximum version it supports; v1.x implementations that do not
        # support the v1.0 ABI answer NOT_SUPPORTED rather than a version (DEN0077A 18.6.4).
        if FFA_MAJOR_VERSION(res[0]) != 1:
            return -EOPNOTSUPP
        if FFA_MINOR_VERSION(res[0]) < FFA_MINOR_VERSION(ffa.FFA_VERSION_1_2):
            self.hyp_ffa_version.set(res[0] & _M32)
        else:
            self.hyp_ffa_version.set(ffa.FFA_VERSION_1_2)
        self.hyp_ffa_init_buffers(pages)
        return 0

    def hyp_ffa_init_buffers(self, pages: int) -> None:
        """The end of every release's ``hyp_ffa_init``: TX, RX and ``ffa_desc_buf`` carved
        from ``pages`` in that order."""
        self.hyp_buffers.tx.set(pages)
        self.hyp_buffers.rx.set(pages + MBOX_SIZE)
        self.ffa_desc_buf.buf = pages + 2 * MBOX_SIZE
        self.ffa_desc_buf.len = PAGE_SIZE * (ffa.hyp_ffa_proxy_pages() - 2 * KVM_FFA_MBOX_NR_PAGES)


def hyp_virt_to_pfn(virt: int) -> int:
    return hyp_phys_to_pfn(virt)  # EL2 addresses are physical ones in the model


_PRIVATE_WORDS: Final = frozenset(w for cpu in range(64) for w in el2_stack_words(cpu))

MIN_RXTX_SZ: Final = {
    ffa.FFA_FEAT_RXTX_MIN_SZ_4K: 0x1000,
    ffa.FFA_FEAT_RXTX_MIN_SZ_16K: 0x4000,
    ffa.FFA_FEAT_RXTX_MIN_SZ_64K: 0x10000,
}
"""hyp_ffa_post_init's switch: the FFA_FEATURES(RXTX_MAP) size field -> bytes."""

_SHARE_LEND: Final = frozenset(
    {ffa.FFA_MEM_SHARE, ffa.FFA_FN64_MEM_SHARE, ffa.FFA_MEM_LEND, ffa.FFA_FN64_MEM_LEND}
)

DENIED_6_10: Final = frozenset(
    {
        # Unsupported memory management calls
        ffa.FFA_FN64_MEM_RETRIEVE_REQ,
        ffa.FFA_MEM_RETRIEVE_RESP,
        ffa.FFA_MEM_RELINQUISH,
        ffa.FFA_MEM_OP_PAUSE,
        ffa.FFA_MEM_OP_RESUME,
        ffa.FFA_MEM_FRAG_RX,
        ffa.FFA_FN64_MEM_DONATE,
        # Indirect message passing via RX/TX buffers
        ffa.FFA_MSG_SEND,
        ffa.FFA_MSG_POLL,
        ffa.FFA_MSG_WAIT,
        # 32-bit variants of 64-bit calls
        ffa.FFA_MSG_SEND_DIRECT_RESP,
        ffa.FFA_RXTX_MAP,
        ffa.FFA_MEM_DONATE,
        ffa.FFA_MEM_RETRIEVE_REQ,
    }
)
"""``ffa_call_supported``'s deny list from ae69e7740770 (6.10) to 6.17."""

DENIED_6_18: Final = DENIED_6_10 | {
    # Optional notification interfaces added in FF-A 1.1 (79195f342417)
    ffa.FFA_NOTIFICATION_BITMAP_CREATE,
    ffa.FFA_NOTIFICATION_BITMAP_DESTROY,
    ffa.FFA_NOTIFICATION_BIND,
    ffa.FFA_NOTIFICATION_UNBIND,
    ffa.FFA_NOTIFICATION_SET,
    ffa.FFA_NOTIFICATION_GET,
    ffa.FFA_NOTIFICATION_INFO_GET,
    # Optional interfaces added in FF-A 1.2 (8d24683e3e0f)
    ffa.FFA_MSG_SEND_DIRECT_REQ2,
    ffa.FFA_MSG_SEND_DIRECT_RESP2,
    ffa.FFA_CONSOLE_LOG,
    ffa.FFA_PARTITION_INFO_GET_REGS,
}
"""The 6.18+ list. The SMC64 FFA_NOTIFICATION_INFO_GET and FFA_CONSOLE_LOG are not named
(arm_ffa.h's macros are the SMC32 ones) and so still pass through."""
