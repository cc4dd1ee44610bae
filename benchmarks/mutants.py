"""The mutation benchmark's catalogue: defects to seed, one at a time, into the ``reference``
mediator, to measure how many of them a finder (``ffasim hunt``, or the built-in scenarios under
``ffasim check``) catches and how fast.

Each :class:`Mutant` is a text replacement in one file under ``src/ffasim/``: ``old`` must occur
exactly once there (``tests/test_mutants.py`` checks it, so a change to the model that moves a
snippet fails a test instead of silently turning its mutant into a no-op), and the function it
sits in must be one that ``reference`` runs (not overridden by a method of
``xen/variants/reference.py``; the same test checks that too).

``why`` says how a correct checker sees the defect: which monitor or which rule, and what a
guest (or a partition, or the toolstack) has to do to reach it. ``origin`` is either
``xen-history: <commit>: <what it fixed>`` (a defect that Xen's FF-A mediator had, put back) or
``generic: <class>`` (a classic concurrency or resource bug, written where Xen could have made
it). The first paragraph of issue 10 names twelve defects; each is here (the ``ISSUE10`` tuple
lists them by name).

``benchmarks/bench_mutants.py`` applies and runs them; ``docs/mutants.md`` is this catalogue as a
table (``python benchmarks/bench_mutants.py --markdown``) and the measured results.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE = "src/ffasim/xen/variants/reference.py"
RXTX = "src/ffasim/xen/ffa_rxtx.py"
SHM = "src/ffasim/xen/ffa_shm.py"
MSG = "src/ffasim/xen/ffa_msg.py"
NOTIF = "src/ffasim/xen/ffa_notif.py"
PARTINFO = "src/ffasim/xen/ffa_partinfo.py"
FFA = "src/ffasim/xen/ffa.py"


@dataclass(frozen=True)
class Mutant:
    """One seeded defect: replace ``old`` (exactly once in ``path``) with ``new``."""

    name: str
    path: str
    """Relative to the repository root, under ``src/ffasim/``."""
    old: str
    new: str
    why: str
    """One line: why a guest or a monitor can observe it, and how."""
    origin: str
    """``xen-history: <commit>: <what it fixed>`` or ``generic: <class>``."""


def _lines(*lines: str) -> str:
    """A multi-line snippet, each line with its indentation as in the file."""
    return "\n".join(lines)


MUTANTS: tuple[Mutant, ...] = (
    # -- the twelve defects of issue 10 ---------------------------------------------------------
    Mutant(
        "send2-no-tx-mapped",
        MSG,
        _lines(
            "        ret, tx_buf, tx_size = self.ffa_tx_acquire(src_ctx)",
            "        if ret != abi.FFA_RET_OK:",
            "            return ret",
            "        assert tx_buf is not None",
        ),
        _lines(
            "        from ..machine import spin_lock  # mutant: no check that a TX is mapped",
            "",
            "        spin_lock(src_ctx.tx_lock)",
            "        ret = abi.FFA_RET_OK",
            '        tx_buf = src_ctx.tx.get() or MappedBuf.null(self.machine, 4096, "TX")',
            "        tx_size = 4096",
        ),
        "FFA_MSG_SEND2 before FFA_RXTX_MAP (or after RXTX_UNMAP) reads the header through a "
        "NULL TX pointer: a hypervisor panic (crash)",
        "xen-history: 3528248b8c: ffa_tx_acquire answers DENIED with no TX mapped; SEND2 "
        "dereferenced NULL since df8a0eec1c",
    ),
    Mutant(
        "notif-set-wrong-halfword",
        NOTIF,
        "if FFA_ID_IS_SECURE(src_dst & 0xFFFF) and self.fw_notif_enabled:",
        "if FFA_ID_IS_SECURE(src_dst >> 16) and self.fw_notif_enabled:",
        "NOTIFICATION_SET from a VM to an SP tests the sender (a VM, never secure): NOT_SUPPORTED "
        "although FFA_FEATURES offers it and the SPMC would accept it (answer conformance)",
        "xen-history: 00c4db5731: NOTIFICATION_SET tested the sender's halfword since 911b305e7b",
    ),
    Mutant(
        "rxtx-unmap-while-rx-owned",
        RXTX,
        _lines(
            "        elif not ctx.rx_is_free.get() and not teardown:",
            '            self.printk("RXTX_UNMAP denied, RX buffer owned by VM")',
            "            ret = abi.FFA_RET_DENIED",
            "",
        ),
        "",
        "RXTX_UNMAP succeeds while the guest owns its RX (it read partition info or a message "
        "and has not released it): SUCCESS where the spec and the SPMC's ownership say DENIED, "
        "and the SPMC unmaps a mailbox it still counts as full (answer conformance, ownership)",
        "xen-history: 309e8edfe3: Fix RXTX_UNMAP ownership race (deny unmap while RX is owned)",
    ),
    Mutant(
        "share-frag-longer-than-tx",
        REFERENCE,
        _lines(
            "        if frag_len > tx_size:",
            '            ret, goto = abi.FFA_RET_DENIED, "out_unlock"',
        ),
        _lines(
            "        if frag_len > tx_size:",
            '            ret, goto = abi.FFA_RET_OK, "out_unlock"  # mutant: as upstream, ret 0',
        ),
        "FFA_MEM_SHARE of a fragment longer than the TX buffer answers SUCCESS with handle 0 "
        "while the SPMC never saw a share (share-too-long's expectation; answer conformance: "
        "a handle the SPMC does not know)",
        "xen-history: 3528248b8c: the frag_len > tx_size exit left ret at 0 (still so at head "
        "c447b7308b; reference fixes it)",
    ),
    Mutant(
        "rxtx-map-desc-misaligned",
        RXTX,
        "rx_offs = ROUNDUP(FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size, 8)",
        "rx_offs = FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size  # mutant: 12, not 8-byte aligned",
        "the RXTX_MAP descriptor Xen forwards to the SPMC puts the RX region at offset 12 and "
        "the TX region at 44, not 8-byte aligned as FF-A requires (wire conformance)",
        "xen-history: d1b958a92c: Fix RX/TX map layout (descriptor offsets 12 -> 16)",
    ),
    Mutant(
        "rx-acquire-never-probed",
        FFA,
        "                self.ffa_fw_abi_supported.add(FFA_ABI_BITNUM(abi.FFA_RX_ACQUIRE))",
        "                pass  # mutant: RX_ACQUIRE is never known to be supported",
        "with an SPMC that does not list RX_ACQUIRE in FFA_FEATURES (Hafnium v2.14, the default) "
        "VM buffers are never registered with it: SEND2 to an SP is NOT_SUPPORTED and an SP's "
        "SEND2 to a VM fails at the SPMC (send2-sp's expectation; answer conformance)",
        "xen-history: 4992308e97: Fix FFA_FEATURES validation (probe RX_ACQUIRE, the Hafnium "
        "workaround)",
    ),
    Mutant(
        "send2-header-read-twice",
        MSG,
        _lines(
            "    size = src_msg.msg_size",
            "    rx_buf.store(FFA_PART_MSG_RXTX_1_2.size, src_buf.load(src_msg.msg_offset, size))",
        ),
        _lines(
            "    size = src_buf.u32(16)  # mutant: msg_size and msg_offset loaded again",
            "    rx_buf.store(FFA_PART_MSG_RXTX_1_2.size, src_buf.load(src_buf.u32(8), size))",
        ),
        "a VM-to-VM SEND2 loads msg_offset and msg_size from the sender's TX again after "
        "validating the copy (double fetch); a sibling vCPU rewriting them in between makes Xen "
        "read past the TX or write past the receiver's RX (crash)",
        "xen-history: c447b7308b: Harden SEND2 against invented loads (barrier after the "
        "header copy; Fixes 98af565b1e)",
    ),
    Mutant(
        "lock-order-inverted-unmap",
        RXTX,
        _lines(
            "        spin_lock(ctx.rx_lock)",
            "        spin_lock(ctx.tx_lock)",
            "        if not ctx.page_count:",
        ),
        _lines(
            "        spin_lock(ctx.tx_lock)  # mutant: tx_lock before rx_lock",
            "        spin_lock(ctx.rx_lock)",
            "        if not ctx.page_count:",
        ),
        "RXTX_UNMAP takes tx_lock then rx_lock where RXTX_MAP takes rx_lock first: two vCPUs "
        "of one VM mapping and unmapping at once deadlock (AB-BA); a lock-order monitor sees "
        "the inversion across executions even without the deadlock",
        "generic: inverted lock order",
    ),
    Mutant(
        "shm-count-unlocked",
        SHM,
        _lines(
            "        ret = False",
            "        spin_lock(ctx.lock)",
            "        count = ctx.shm_count.get()",
            "        if count < FFA_MAX_SHM_COUNT:",
            "            if not count:",
            "                self.get_knownalive_domain(d)",
            "            ctx.shm_count.set(count + 1)",
            "            ret = True",
            "        spin_unlock(ctx.lock)",
        ),
        _lines(
            "        ret = False  # mutant: shm_count read and written without ctx->lock",
            "        count = ctx.shm_count.get()",
            "        if count < FFA_MAX_SHM_COUNT:",
            "            if not count:",
            "                self.get_knownalive_domain(d)",
            "            ctx.shm_count.set(count + 1)",
            "            ret = True",
        ),
        "two vCPUs of one VM sharing at once update shm_count without ctx->lock: a data race on "
        "a guarded field (race monitor); a lost update leaves the count and the domain "
        "reference wrong (leak at teardown)",
        "generic: counter updated without its lock",
    ),
    Mutant(
        "shm-pages-off-by-one",
        SHM,
        "if len(shm.pages) >= shm.page_count:",
        "if len(shm.pages) > shm.page_count:  # mutant: one page too many accepted",
        "ranges adding up to one page more than the descriptor's total_page_count are accepted: "
        "Xen references that page and forwards a composite whose ranges do not add up to its "
        "total (wire conformance), which the SPMC refuses",
        "generic: off-by-one in a page count",
    ),
    Mutant(
        "direct-req-no-sender-check",
        MSG,
        "if (src_dst >> 16) != vm_id or (src_dst & 0xFFFF) == vm_id:",
        "if (src_dst & 0xFFFF) == vm_id:  # mutant: the sender ID is not checked",
        "a VM sends a direct request as another endpoint (another VM, or 0: the hypervisor, "
        "so a forged VM_CREATED/VM_DESTROYED framework message) and Xen forwards it "
        "(framework-message monitor, isolation)",
        "generic: missing sender check",
    ),
    Mutant(
        "partinfo-error-keeps-rx",
        REFERENCE,
        _lines(
            "            spin_unlock(ctx.rx_lock)  # the entries are written",
            "            if ret:  # out_rx_release:",
            "                self.ffa_rx_release(ctx)",
        ),
        "            spin_unlock(ctx.rx_lock)  # the entries are written (mutant: no release)",
        "a PARTITION_INFO_GET that fails after taking the RX (a UUID no partition has: "
        "INVALID_PARAMETERS) leaves the RX taken: the guest was told of an error yet every "
        "later producer finds it BUSY (ownership; answer conformance)",
        "generic: failure path that forgets to release",
    ),
    # -- more of Xen's history ------------------------------------------------------------------
    Mutant(
        "notif-bind-halves-swapped",
        NOTIF,
        "abi.FFA_NOTIFICATION_BIND, src_dst, flags, bitmap_lo, bitmap_hi",
        "abi.FFA_NOTIFICATION_BIND, src_dst, flags, bitmap_hi, bitmap_lo",
        "NOTIFICATION_BIND forwards the bitmap halves swapped: the SP binds notifications "
        "other than those the VM named, and its SET of a bound one is DENIED by the SPMC "
        "(wire conformance; answer conformance)",
        "xen-history: 39c45caef2: fix bind/unbind notification (w3/w4 swapped)",
    ),
    Mutant(
        "rxtx-map-zero-pages",
        RXTX,
        "if page_count > FFA_MAX_RXTX_PAGE_COUNT or not page_count:",
        "if page_count > FFA_MAX_RXTX_PAGE_COUNT:  # mutant: 0 pages accepted",
        "FFA_RXTX_MAP with a page count of 0 succeeds; the pair can then never be unmapped "
        "(RXTX_UNMAP answers INVALID_PARAMETERS) and its page references leak at teardown "
        "(answer conformance, leak)",
        "xen-history: a3075e2fda: harden RX/TX mapping (a page count of 0 was accepted)",
    ),
    Mutant(
        "rxtx-map-rx-null-page",
        RXTX,
        _lines(
            "            e = get_page_from_gfn(d.p2m, rx_addr >> 12)",
            "            if e is None:",
            '                goto = "err_put_tx_pg"',
        ),
        _lines(
            "            e = get_page_from_gfn(d.p2m, rx_addr >> 12)",
            "            if e is None:  # mutant: tests tx_pg where it means rx_pg",
            "                from ..machine import HypervisorPanic",
            "",
            '                raise HypervisorPanic("NULL pointer dereference: put_page(NULL)")',
        ),
        "FFA_RXTX_MAP with an RX address outside the guest's RAM goes on with a NULL rx_pg "
        "and reaches put_page(NULL): a hypervisor panic (crash)",
        "xen-history: 6dceb1378d: ffa_handle_rxtx_map tested tx_pg after fetching rx_pg "
        "(Xen 4.19), so a NULL rx_pg reached put_page",
    ),
    Mutant(
        "spmc-partinfo-release-always",
        REFERENCE,
        "        e = self.ffa_rxtx_spmc_rx_release(notify_fw)  # out_release_rx:",
        "        e = self.ffa_rxtx_spmc_rx_release(True)  # mutant: even after a failed GET",
        "after a failed boot-time PARTITION_INFO_GET (an injected SMC error) Xen still sends "
        "FFA_RX_RELEASE for a buffer the SPMC never filled: DENIED by the SPMC (wire/answer "
        "conformance on Xen<->SPMC)",
        "xen-history: a97fe0a4c7: Fix PARTINFO RX release errors (notify_fw)",
    ),
    Mutant(
        "teardown-no-force-release",
        RXTX,
        "            if not ctx.rx_is_free.get() and self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):",
        "            if False:  # mutant: no forced RX release at teardown",
        "a VM destroyed while it owns its RX: Xen asks the SPMC to unmap a mailbox whose RX is "
        "still out, the SPMC refuses, and the pair stays mapped and referenced for good (leak)",
        "xen-history: 309e8edfe3: Fix RXTX_UNMAP ownership race (force release during teardown)",
    ),
    Mutant(
        "share-ns-bit-wrong-code",
        REFERENCE,
        _lines(
            "            if trans.mem_reg_attr & abi.FFA_MEM_ATTR_NS:",
            '                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"',
            "            elif",
        ),
        _lines(
            "            if False:  # mutant: the NS bit is not singled out",
            "                pass",
            "            elif",
        ),
        "FFA_MEM_SHARE with the NS attribute bit set answers NOT_SUPPORTED where the spec "
        "says INVALID_PARAMETERS (answer conformance)",
        "xen-history: edf036fac2: Fix MEM_SHARE NS attribute handling",
    ),
    Mutant(
        "shm-unaligned-range",
        SHM,
        _lines(
            "            if addr % FFA_PAGE_SIZE:",
            "                return abi.FFA_RET_INVALID_PARAMETERS",
        ),
        "            pass  # mutant: a range's address need not be page aligned",
        "a share naming an address range that is not 4 KiB aligned is accepted and silently "
        "rounded down to its page: SUCCESS for a descriptor the spec makes INVALID_PARAMETERS, "
        "and a page the guest did not name is shared (answer conformance, isolation)",
        "xen-history: 01c79ad9c6: Harden shm page parsing (range alignment)",
    ),
    Mutant(
        "shm-addr-wraps",
        SHM,
        _lines(
            "                if not ffa_safe_addr_add(addr, m):",
            "                    return abi.FFA_RET_INVALID_PARAMETERS",
            "                gaddr = addr + m * FFA_PAGE_SIZE",
        ),
        "                gaddr = (addr + m * FFA_PAGE_SIZE) & 0xFFFFFFFFFFFFFFFF  # mutant: wraps",
        "a range starting near the top of the address space wraps to low addresses: its "
        "last pages are other pages than the guest named (answer conformance; isolation when "
        "the wrapped pages are not the guest's own range)",
        "xen-history: 01c79ad9c6: Harden shm page parsing (ffa_safe_addr_add)",
    ),
    Mutant(
        "direct-req2-offered-to-v1-1",
        FFA,
        "ok = gv() >= abi.FFA_VERSION_1_2 and supports(abi.FFA_MSG_SEND_DIRECT_REQ2)",
        "ok = supports(abi.FFA_MSG_SEND_DIRECT_REQ2)  # mutant: whatever the guest's version",
        "FFA_FEATURES offers DIRECT_REQ2 to a v1.0/v1.1 guest, whose DIRECT_REQ2 the "
        "dispatcher then answers NOT_SUPPORTED (answer conformance: features and calls agree)",
        "xen-history: 3ca6aca20d: add MSG_SEND_DIRECT_REQ2 support (v1.2 guests only)",
    ),
    Mutant(
        "call-before-version",
        REFERENCE,
        _lines(
            "            tmp = ctx.guest_vers_tmp.get()",
            "            if not tmp:",
        ),
        _lines(
            "            tmp = ctx.guest_vers_tmp.get() or self.FFA_MY_VERSION",
            "            if not tmp:  # mutant: never taken",
        ),
        "a guest's first FF-A call before FFA_VERSION is handled (as v1.2) instead of "
        "NOT_SUPPORTED, and fixes the version it can no longer negotiate (answer conformance)",
        "xen-history: ad2d3a7daf: per-VM FFA_VERSION negotiation state",
    ),
    Mutant(
        "version-mbz-bit31",
        REFERENCE,
        "        if in_vers & (1 << 31):  # the fix",
        "        if False:  # mutant: bit 31 (MBZ) not checked, as upstream",
        "FFA_VERSION with bit 31 set (MBZ) is taken as a version that compares above every "
        "real one instead of NOT_SUPPORTED (version-mbz's expectation; answer conformance)",
        "xen-history: head c447b7308b does not check bit 31 (reference fixes it)",
    ),
    Mutant(
        "partinfo-64-sps-refused",
        REFERENCE,
        "            if count > FFA_MAX_NUM_SP:",
        "            if count >= FFA_MAX_NUM_SP:  # mutant: as upstream",
        "an SPMC with exactly 64 partitions fails the probe and every guest loses FF-A: "
        "NOT_SUPPORTED to calls that FF-A with 64 SPs must serve (answer conformance)",
        "xen-history: head c447b7308b refuses exactly FFA_MAX_NUM_SP partitions "
        "(docs/findings.md; reference fixes it)",
    ),
    Mutant(
        "rx-lock-dropped-before-fill",
        REFERENCE,
        "        return ret, ctx.rx.get(), ctx.page_count * FFA_PAGE_SIZE  # rx_lock held",
        _lines(
            "        buf = ctx.rx.get()  # mutant: the lock is dropped before the caller fills",
            "        spin_unlock(ctx.rx_lock)",
            "        spin_lock(ctx.rx_lock)",
            "        return ret, buf, ctx.page_count * FFA_PAGE_SIZE",
        ),
        "between taking the RX and filling it Xen drops rx_lock: the guest's RX_RELEASE and "
        "RXTX_UNMAP from another vCPU get in, and Xen writes through the dropped mapping "
        "(crash: data abort; partinfo-vs-release-unmap)",
        "xen-history: head c447b7308b fills the RX after dropping rx_lock (docs/findings.md; "
        "reference fixes it)",
    ),
    Mutant(
        "notif-destroy-no-drain",
        REFERENCE,
        _lines(
            "        for vcpu in range(d.max_vcpus):",
            "            self.smc(abi.FFA_NOTIFICATION_GET, (vcpu << 16) | vm_id, drain)",
        ),
        "        drain = 0  # mutant: pending notifications are not taken first",
        "a VM destroyed with a notification pending: the SPMC refuses BITMAP_DESTROY and keeps "
        "the VM's bitmap and slot for good (leak; destroy-with-pending-notification)",
        "xen-history: head c447b7308b ignores the refused BITMAP_DESTROY (docs/findings.md; "
        "reference fixes it)",
    ),
    Mutant(
        "teardown-retry-no-domain-ref",
        REFERENCE,
        _lines(
            "            if not ctx.queued_ref:",
            "                self.get_knownalive_domain(ctx.teardown_d)",
            "                ctx.queued_ref = True",
        ),
        "            pass  # mutant: a queued teardown holds no domain reference",
        "a partition answering VM_DESTROYED with RETRY queues the teardown without a domain "
        "reference: the domain and its context are freed while the timer still points at "
        "them, and the retry uses freed memory (use-after-free)",
        "xen-history: head c447b7308b (since 7356bb5e47's timer) queues a VM_DESTROYED retry "
        "without a reference (reference fixes it)",
    ),
    Mutant(
        "vm-partinfo-count-lost",
        REFERENCE,
        _lines(
            "                    if ret:",
            "                        read_unlock(self.ffa_ctx_list_rwlock)",
            "                        return ret, count",
        ),
        _lines(
            "                    if ret:",
            "                        read_unlock(self.ffa_ctx_list_rwlock)",
            "                        return ret, 0  # mutant: as upstream",
        ),
        "PARTITION_INFO_GET_REGS counts no VM entry in a window that fills up: the VMs past "
        "the first window are never listed, and the answer's last index disagrees with the "
        "entries returned (answer conformance; needs more than five entries)",
        "xen-history: head c447b7308b (500ee5fe0f) stores the VM count only on success "
        "(reference fixes it)",
    ),
    Mutant(
        "spmc-destroy-free-before-unmap",
        REFERENCE,
        _lines(
            "        if rx is not None and tx is not None and self.ffa_spmc_mapped:",
            "            self.ffa_rxtx_unmap(0)",
            "        self.ffa_spmc_mapped = False",
            "        if tx is not None:",
            "            self.machine.heap.free_page(tx)",
            "            self.ffa_spmc_tx.set(None)",
            "        if rx is not None:",
            "            self.machine.heap.free_page(rx)",
            "            self.ffa_spmc_rx.set(None)",
        ),
        _lines(
            "        mapped = rx is not None and tx is not None and self.ffa_spmc_mapped",
            "        self.ffa_spmc_mapped = False",
            "        if tx is not None:  # mutant: freed before the SPMC unmaps them",
            "            self.machine.heap.free_page(tx)",
            "            self.ffa_spmc_tx.set(None)",
            "        if rx is not None:",
            "            self.machine.heap.free_page(rx)",
            "            self.ffa_spmc_rx.set(None)",
            "        if mapped:",
            "            self.ffa_rxtx_unmap(0)",
        ),
        "when the probe fails after Xen's pair was registered (an allocation failure caching "
        "the SPs) the pages go back to the heap while the SPMC still maps them (isolation)",
        "xen-history: seed defect 4 (9e9504ef32, still at head c447b7308b; reference fixes it)",
    ),
    # -- generic: failure paths and locks -------------------------------------------------------
    Mutant(
        "tx-acquire-denied-keeps-lock",
        RXTX,
        _lines(
            "            spin_unlock(ctx.tx_lock)  # err_unlock:",
            "            return abi.FFA_RET_DENIED, None, 0",
        ),
        "            return abi.FFA_RET_DENIED, None, 0  # mutant: tx_lock still held",
        "MEM_SHARE or SEND2 with no TX mapped answers DENIED with tx_lock still held: the "
        "lock-leak monitor sees it, and the VM's next RXTX_MAP deadlocks",
        "generic: missing unlock on an error path",
    ),
    Mutant(
        "rx-acquire-error-keeps-lock",
        REFERENCE,
        _lines(
            "        if ret != abi.FFA_RET_OK:",
            "            spin_unlock(ctx.rx_lock)  # out:",
            "            return ret, None, 0",
        ),
        _lines(
            "        if ret != abi.FFA_RET_OK:",
            "            return ret, None, 0  # mutant: rx_lock still held",
        ),
        "a producer that finds the RX busy or unmapped returns with rx_lock held: lock leak, "
        "then a deadlock on the guest's next RX_RELEASE",
        "generic: missing unlock on an error path",
    ),
    Mutant(
        "rxtx-map-error-keeps-rx-lock",
        RXTX,
        _lines(
            "        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx:",
            "        spin_unlock(ctx.rx_lock)",
            "        return ret",
            "",
            "    # -- guest FFA_RXTX_UNMAP",
        ),
        _lines(
            "        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx: (mutant: rx_lock kept)",
            "        return ret",
            "",
            "    # -- guest FFA_RXTX_UNMAP",
        ),
        "a failed FFA_RXTX_MAP (mapped twice, a bad address) leaves rx_lock held: lock leak, "
        "and every later producer or RX_RELEASE of that VM deadlocks",
        "generic: missing unlock on an error path",
    ),
    Mutant(
        "send2-error-keeps-tx-lock",
        MSG,
        _lines(
            "        self.ffa_tx_release(src_ctx)  # out:",
            "        return ret",
        ),
        _lines(
            "        if not ret:  # mutant: the error paths keep tx_lock",
            "            self.ffa_tx_release(src_ctx)",
            "        return ret",
        ),
        "a SEND2 refused for a bad header or destination keeps the sender's tx_lock: lock leak; "
        "the sender's every later MEM_SHARE or SEND2 is BUSY",
        "generic: missing unlock on an error path",
    ),
    Mutant(
        "send2-nomem-keeps-rx",
        REFERENCE,
        _lines(
            "                spin_unlock(dst_ctx.rx_lock)",
            "                self.ffa_rx_release(dst_ctx)",
        ),
        "                spin_unlock(dst_ctx.rx_lock)  # mutant: the RX is not given back",
        "a v1.1 sender's message too big for the receiver's RX is refused NO_MEMORY but the "
        "receiver's RX stays taken with nothing in it: every later producer gets BUSY "
        "(ownership)",
        "generic: failure path that forgets to release",
    ),
    Mutant(
        "share-failure-keeps-pages",
        REFERENCE,
        _lines(
            '        if ret and goto != "out_unlock":',
            "            self.free_ffa_shm_mem(d, shm)",
        ),
        "        pass  # mutant: a failed share keeps its pages and its count",
        "a share that fails after its pages were referenced (a bad range, an SPMC refusal) "
        "keeps them and its slot: the guest's pages stay referenced and its domain a zombie "
        "at teardown (leak); 32 failures exhaust the share count",
        "generic: failure path that forgets to release",
    ),
    Mutant(
        "reclaim-failure-drops-share",
        SHM,
        _lines(
            "        if ret:",
            "            spin_lock(ctx.lock)",
            "            ctx.shm_list.set([*ctx.shm_list.get(), shm])",
            "            spin_unlock(ctx.lock)",
        ),
        _lines(
            "        if ret:",
            "            pass  # mutant: the refused share is not put back on the list",
        ),
        "a MEM_RECLAIM the SPMC refuses (an SP still has the share) drops the share from "
        "Xen's list: it can never be reclaimed, its pages stay referenced and the domain "
        "never dies (leak)",
        "generic: leaked share on reclaim failure",
    ),
    Mutant(
        "reclaim-frees-on-refusal",
        SHM,
        _lines(
            "        ret = self.ffa_spmc_reclaim(shm, flags & abi.MASK32)",
            "        if ret:",
        ),
        _lines(
            "        ret = self.ffa_spmc_reclaim(shm, flags & abi.MASK32)",
            "        if False:  # mutant: freed whatever the SPMC said",
        ),
        "a MEM_RECLAIM the SPMC refuses still drops Xen's page references: the guest can "
        "be destroyed and its pages reused while an SP still maps them (isolation)",
        "generic: resource freed on a failed release",
    ),
    Mutant(
        "shm-domain-ref-never-dropped",
        SHM,
        "drop_ref = count == 1",
        "drop_ref = count == 0  # mutant: off by one",
        "the domain reference taken by the first share is never dropped when the last share "
        "is reclaimed: a destroyed VM stays a zombie (leak)",
        "generic: off-by-one in a reference count",
    ),
    Mutant(
        "shm-count-cap-off-by-one",
        SHM,
        "if count < FFA_MAX_SHM_COUNT:",
        "if count <= FFA_MAX_SHM_COUNT:  # mutant: 33 shares",
        "a VM may hold 33 shares where Xen's cap (FFA_MAX_SHM_COUNT, stated in ffa.c's list "
        "of limits) is 32: the 33rd MEM_SHARE succeeds where NO_MEMORY is due (answer "
        "conformance to the mediator's documented limits)",
        "generic: off-by-one in a limit",
    ),
    Mutant(
        "shm-ranges-need-not-add-up",
        SHM,
        _lines(
            "        if len(shm.pages) < shm.page_count:",
            "            return abi.FFA_RET_INVALID_PARAMETERS  # the ranges must add up",
        ),
        "        pass  # mutant: fewer pages than total_page_count accepted",
        "ranges adding up to fewer pages than the descriptor's total are accepted: Xen "
        "forwards a composite whose ranges do not match its total (wire conformance), and the "
        "SPMC's refusal reaches the guest instead of Xen's INVALID_PARAMETERS",
        "generic: missing consistency check",
    ),
    Mutant(
        "share-total-pages-off-by-one",
        SHM,
        'buf.store(region_offs, struct.pack("<I", shm.page_count))',
        'buf.store(region_offs, struct.pack("<I", shm.page_count + 1))  # mutant',
        "Xen's forwarded composite claims one page more than its ranges hold: the SPMC "
        "refuses every share, so a well-formed FFA_MEM_SHARE fails (wire conformance; any "
        "scenario that shares)",
        "generic: off-by-one in a page count",
    ),
    Mutant(
        "share-handle-halves-swapped",
        REFERENCE,
        "            return abi.FFA_RET_OK, abi.make_handle(resp[2], resp[3])",
        "            return abi.FFA_RET_OK, abi.make_handle(resp[3], resp[2])  # mutant",
        "the handle returned to the guest has its halves swapped: a handle the SPMC does not "
        "know, so MEM_RECLAIM of it fails and the share leaks (answer conformance, leak)",
        "generic: swapped register halves",
    ),
    # -- generic: bounds checks -----------------------------------------------------------------
    Mutant(
        "share-frag-len-unchecked",
        REFERENCE,
        _lines(
            "        if frag_len > tx_size:",
            '            ret, goto = abi.FFA_RET_DENIED, "out_unlock"',
            "        if not goto:",
        ),
        "        if not goto:  # mutant: frag_len not bounded by the TX size",
        "a MEM_SHARE whose fragment length exceeds the one-page TX buffer is parsed up to that "
        "length: an EMAD or range placed past 4 KiB makes Xen read past its TX mapping (crash: "
        "data abort)",
        "generic: missing bounds check",
    ),
    Mutant(
        "share-region-offs-unchecked",
        REFERENCE,
        "                or FFA_MEM_REGION.size + region_offs > frag_len\n",
        "",
        "an EMAD whose composite offset lies past the fragment (or the TX page) is followed: "
        "Xen reads the composite past its TX mapping (crash: data abort)",
        "generic: missing bounds check",
    ),
    Mutant(
        "share-range-count-unchecked",
        REFERENCE,
        _lines(
            "                    if (",
            "                        FFA_MEM_REGION.size + region_offs + range_count * "
            "FFA_ADDRESS_RANGE.size",
            "                        > frag_len",
            "                    ):",
        ),
        "                    if False:  # mutant: the range array need not fit",
        "a composite whose address_range_count runs past the fragment is walked: Xen reads "
        "ranges past its TX mapping (crash: data abort)",
        "generic: missing bounds check",
    ),
    Mutant(
        "send2-msg-past-tx",
        MSG,
        "            or src_msg.msg_size > tx_size - src_msg.msg_offset",
        "            or src_msg.msg_size > tx_size  # mutant: the offset is not counted",
        "a SEND2 whose payload starts inside the TX but runs past its end is copied: Xen reads "
        "past the sender's TX mapping (crash: data abort)",
        "generic: missing bounds check",
    ),
    Mutant(
        "partinfo-regs-unbounded",
        PARTINFO,
        _lines(
            "            if filled >= max_entries:",
            "                break",
        ),
        "            pass  # mutant: no bound on the entries copied",
        "PARTITION_INFO_GET_REGS with more than five matching partitions writes a sixth entry "
        "past Xen's 15-register array (crash: a stack overflow)",
        "generic: missing bounds check on partition count",
    ),
    Mutant(
        "partinfo-count-own-entry",
        PARTINFO,
        "                    vm_count -= 1  # the Linux workaround: no own entry before v1.2",
        "                    pass  # mutant: the own entry is counted",
        "PARTITION_INFO_GET with the count flag counts the caller for a v1.1 guest while the "
        "listing leaves it out: the count disagrees with the entries (answer conformance)",
        "generic: off-by-one in a count",
    ),
    # -- generic: ownership and isolation -------------------------------------------------------
    Mutant(
        "rxtx-unmap-keeps-pointers",
        RXTX,
        _lines(
            "    ctx.rx.set(None)",
            "    ctx.tx.set(None)",
            "    ctx.rx_pg.set(None)",
            "    ctx.tx_pg.set(None)",
            "    ctx.page_count = 0",
        ),
        _lines(
            "    ctx.rx_pg.set(None)  # mutant: the dropped mappings stay in the ctx",
            "    ctx.tx_pg.set(None)",
        ),
        "after RXTX_UNMAP the buffer pointers and page count survive: a MEM_SHARE or SEND2 "
        "afterwards reads the TX through the dropped mapping (crash: data abort)",
        "generic: use after unmap",
    ),
    Mutant(
        "rxtx-unmap-spmc-not-told",
        RXTX,
        _lines(
            "            if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):",
            "                ret = self.ffa_rxtx_unmap(ffa_get_vm_id(d))",
        ),
        "            pass  # mutant: the SPMC keeps the VM's buffers mapped",
        "RXTX_UNMAP (and teardown) put the pages without telling the SPMC: it still maps them "
        "as the VM's mailbox and an SP's SEND2 writes into pages the VM reuses or the heap "
        "took back (isolation; leak: SPMC still tracks the dead VM)",
        "generic: release without telling the other owner",
    ),
    Mutant(
        "rx-release-not-forwarded",
        RXTX,
        _lines(
            "            if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):",
            "                ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, ctx.ffa_id, 0, 0, 0)",
            "                ok = ret == abi.FFA_RET_OK",
        ),
        "            pass  # mutant: the SPMC is not told",
        "a guest's FFA_RX_RELEASE frees its RX in Xen but not at the SPMC, which keeps it "
        "owned: the next RX_ACQUIRE is refused and an SP's SEND2 to the VM is BUSY for good "
        "(ownership: Xen and the SPMC disagree)",
        "generic: release not propagated",
    ),
    Mutant(
        "rx-release-unowned-ok",
        RXTX,
        _lines(
            "        ret = abi.FFA_RET_DENIED",
            "        spin_lock(ctx.rx_lock)",
            "        if ctx.page_count and not ctx.rx_is_free.get():",
        ),
        _lines(
            "        ret = abi.FFA_RET_OK  # mutant",
            "        spin_lock(ctx.rx_lock)",
            "        if ctx.page_count and not ctx.rx_is_free.get():",
        ),
        "FFA_RX_RELEASE of an RX the guest does not own (or with none mapped) answers SUCCESS "
        "where the spec says DENIED (answer conformance)",
        "generic: wrong error code",
    ),
    Mutant(
        "rx-acquire-ignores-spmc",
        REFERENCE,
        "            ret = self.ffa_simple_call(abi.FFA_RX_ACQUIRE, ctx.ffa_id, 0, 0, 0)",
        "            self.ffa_simple_call(abi.FFA_RX_ACQUIRE, ctx.ffa_id, 0, 0, 0)  # mutant",
        "Xen fills a VM's RX even when the SPMC refused FFA_RX_ACQUIRE (an SP's message is "
        "in it): Xen overwrites a buffer the SPMC owns (ownership; the SP's message is lost)",
        "generic: error return ignored",
    ),
    Mutant(
        "rxtx-map-twice-wrong-code",
        RXTX,
        'ret, goto = abi.FFA_RET_DENIED, "err_unlock_rxtx"  # already mapped',
        'ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "err_unlock_rxtx"  # mutant',
        "a second FFA_RXTX_MAP answers INVALID_PARAMETERS where the spec says DENIED (answer "
        "conformance)",
        "generic: wrong error code",
    ),
    Mutant(
        "reclaim-unknown-handle-ok",
        SHM,
        _lines(
            "        if shm is None:",
            "            return abi.FFA_RET_INVALID_PARAMETERS",
            "        ret = self.ffa_spmc_reclaim(shm, flags & abi.MASK32)",
        ),
        _lines(
            "        if shm is None:",
            "            return abi.FFA_RET_OK  # mutant",
            "        ret = self.ffa_spmc_reclaim(shm, flags & abi.MASK32)",
        ),
        "FFA_MEM_RECLAIM of a handle the VM does not hold answers SUCCESS without asking the "
        "SPMC (answer conformance: SUCCESS the SPMC never gave)",
        "generic: wrong error code",
    ),
    Mutant(
        "share-to-vm-forwarded",
        REFERENCE,
        _lines(
            "                not FFA_ID_IS_SECURE(dst_id)",
            "                or perm != abi.FFA_MEM_ACC_RW",
        ),
        "                perm != abi.FFA_MEM_ACC_RW  # mutant: a VM receiver is forwarded",
        "a share whose receiver is a VM (which Xen does not support) is forwarded to the "
        "SPMC, which records a non-secure receiver (wire conformance; isolation when the "
        "receiver retrieves it)",
        "generic: missing receiver check",
    ),
    Mutant(
        "share-no-sender-check",
        REFERENCE,
        "elif trans.sender_id != ffa_get_vm_id(d) or trans.mem_access_size < FFA_MEM_ACCESS.size:",
        "elif trans.mem_access_size < FFA_MEM_ACCESS.size:  # mutant: the sender is not checked",
        "a VM shares its pages under another endpoint's ID: the SPMC records the share as the "
        "other VM's, which can then reclaim or see it (isolation; wire conformance)",
        "generic: missing sender check",
    ),
    Mutant(
        "send2-no-sender-check",
        MSG,
        "if src_id != vm_id or dst_id == vm_id:",
        "if dst_id == vm_id:  # mutant: the sender is not checked",
        "a VM-to-VM SEND2 claiming another VM as sender is delivered with the forged ID in the "
        "receiver's RX header (isolation; answer conformance)",
        "generic: missing sender check",
    ),
)

ISSUE10: tuple[str, ...] = (
    "send2-no-tx-mapped",
    "notif-set-wrong-halfword",
    "rxtx-unmap-while-rx-owned",
    "share-frag-longer-than-tx",
    "rxtx-map-desc-misaligned",
    "rx-acquire-never-probed",
    "send2-header-read-twice",
    "lock-order-inverted-unmap",
    "shm-count-unlocked",
    "shm-pages-off-by-one",
    "direct-req-no-sender-check",
    "partinfo-error-keeps-rx",
)
"""The defects the first paragraph of issue 10 names, in its order."""


def by_name() -> dict[str, Mutant]:
    """The catalogue keyed by name."""
    return {m.name: m for m in MUTANTS}
