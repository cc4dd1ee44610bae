"""Variant ``head``: Xen's upstream mediator exactly as of c447b7308b ("xen/arm: ffa: Harden
SEND2 against invented loads", Aug 2026), the bugs it still has included.

Overrides only what the ``reference`` variant fixes, under Xen's names. Those that upstream has
had since the seed live in ``UpstreamFfa``, which ``seed-v1`` shares:

- seed defect 2 is still there: ``ffa_rxtx_spmc_{rx,tx}_acquire`` return NULL with the lock
  held (no ASSERT any more: v2 of the seed removed it);
- seed defect 4 is still there: ``ffa_rxtx_spmc_destroy`` frees the pages before
  FFA_RXTX_UNMAP and unmaps a pair whose map had failed;
- FFA_MEM_SHARE with a fragment longer than the guest's TX buffer answers FFA_SUCCESS with
  handle 0 and shares nothing (``ret`` is already 0 after ``ffa_tx_acquire``; patch 06);
- a FFA_MEM_FRAG_RX reply from the SPMC reaches the guest as FFA_ERROR with a positive code;
- FFA_VERSION bit 31 (MBZ) is not checked and the raw word becomes the negotiated version;
- a teardown queued only to retry VM_DESTROYED holds no domain reference (use after free);
- FFA_PARTITION_INFO_GET_REGS counts no VM entry when the VMs overflow its five-entry window,
  so it cannot page past five VMs (``ffa_get_vm_partinfo`` stores its count only on success).
"""

from __future__ import annotations

from ... import abi
from ...machine import spin_lock, spin_unlock
from ..ffa import Ffa
from ..ffa_private import Domain, FfaCtx, Regs
from ..ffa_shm import INT32_MAX


class UpstreamFfa(Ffa):
    """What upstream Xen has had from the seed (Dec 2025) to HEAD and ``reference`` fixes: the
    base of both ``head`` and ``seed-v1``, so that each of these functions is written once.
    Not a variant of its own."""

    # -- ffa.c --------------------------------------------------------------------------------
    def ffa_version_input_ok(self, in_vers: int) -> bool:
        return True  # bit 31 is not checked; the word is stored as given

    def ffa_teardown_queue(self, ctx: FfaCtx) -> None:
        """No domain reference for a queued teardown (the use after free of xen-mediator.md)."""

    def ffa_teardown_dequeued_done(self, ctx: FfaCtx) -> None:
        pass

    # -- ffa_rxtx.c ---------------------------------------------------------------------------
    # Seed defect 2: the acquire helpers return NULL with the lock still held.
    SPMC_ACQUIRE_NULL_UNLOCKS = False

    def ffa_rxtx_spmc_destroy(self) -> None:
        """Seed defect 4: free first, then unmap whenever both pages existed (even a pair
        whose FFA_RXTX_MAP_64 had failed)."""
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        tx = self.ffa_spmc_tx.get()
        rx = self.ffa_spmc_rx.get()
        need_unmap = tx is not None and rx is not None
        if tx is not None:
            self.machine.heap.free_page(tx)
            self.ffa_spmc_tx.set(None)
        if rx is not None:
            self.machine.heap.free_page(rx)
            self.ffa_spmc_rx.set(None)
        if need_unmap:
            self.ffa_rxtx_unmap(0)
        self.ffa_spmc_mapped = False
        spin_unlock(self.ffa_spmc_tx_lock)
        spin_unlock(self.ffa_spmc_rx_lock)

    # -- ffa_shm.c ----------------------------------------------------------------------------
    def ffa_spmc_share_frag_rx(self, resp: Regs) -> tuple[int, int]:
        """The offset of the next fragment is returned as if it were an error code."""
        handle = abi.make_handle(resp[1], resp[2])
        if resp[3] > INT32_MAX:
            return abi.FFA_RET_ABORTED, handle
        return resp[3] & INT32_MAX, handle


class HeadFfa(UpstreamFfa):
    """Xen upstream HEAD (see the module docstring for what differs from ``reference``)."""

    variant = "head"

    # -- ffa_partinfo.c -----------------------------------------------------------------------
    def ffa_get_vm_partinfo(
        self, d: Domain, uuid: bytes, start_index: int, out: bytearray, cap: int, dst_size: int
    ) -> tuple[int, int]:
        ret, count = super().ffa_get_vm_partinfo(d, uuid, start_index, out, cap, dst_size)
        if ret:
            return ret, 0  # *vm_count is only written on success
        return ret, count

    # -- ffa_shm.c ----------------------------------------------------------------------------
    def mem_share_frag_too_long(self) -> int:
        return abi.FFA_RET_OK  # goto out_unlock with ret == 0: SUCCESS, handle 0
