"""The SPMC: entry point, dispatcher, endpoint table, FFA_VERSION / FFA_FEATURES / ID calls.

Models Hafnium as SPMC (``src/api.c``, ``src/ffa/spmc/``), v2.14 behaviour (FF-A v1.2) as
``/work/shared/reference/hafnium-spmc.md`` describes it, check by check and code by code. The
ABI handlers live one area per module (``rxtx.py``, ``partinfo.py``, ``messaging.py``,
``memory.py``, ``notifications.py``); this module owns the state they share and the one
dispatcher that turns their answers into registers.

Locks: Hafnium's, in its order (``vm.py`` holds the lock helpers and the order): each
endpoint's VM lock, each vCPU's lock, the normal-world VM table lock, the share-states lock and
the SPMC's stage-1 lock; each ABI module says at its top which it takes. There is no SPMC-wide
lock: calls of different endpoints, and of different execution contexts of one partition, run
at once and interleave at the machine's scheduling points. A partition's handler runs with no
SPMC lock held (Hafnium has switched to the partition's vCPU), and its calls into the SPMC
take the locks afresh. The SRI hook runs when the calling context's outermost SMC returns.

Untrusted input (registers, buffer contents) gets an FF-A error, never an exception; a Python
exception escaping here is a firmware crash (or a partition handler's crash) and is a finding.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import abi
from ..machine import Machine, grant
from ..machine.events import MAILBOX
from ..machine.memory import MAX_MFN, NS_DRAM_BASE_MFN, PAGE_SIZE
from .mailbox import Endpoint, Mailbox, Notifications
from .partition import SP_PRIVATE_PAGES, SecurePartition
from .vm import (
    SPMC_STATE,
    SRI,
    VERSION,
    WAITING,
    Vcpu,
    cpu_index,
    current_vcpu,
    vcpu_lock,
    vcpu_unlock,
    version_unlocked,
    vm_lock,
    vm_unlock,
)

if TYPE_CHECKING:
    from .memory import ShareState

Regs = abi.Regs
Handler = Callable[["Spmc", Endpoint, Regs], Regs]

SPMC_ID = 0x8000  # HF_SPMC_VM_ID
HYP_ID = abi.HYPERVISOR_ID
# Size of Hafnium's nwd_vms table (src/ffa/spmc/vm.c): VMs the SPMC can track at once. The
# build default is platform-specific; 16 is ample for scenarios and keeps "table full" testable.
MAX_NWD_VMS = 16
# FF-A feature IDs answered to normal-world callers (Hafnium: SRI is SGI 8; NPI/MEI are
# secure-world interrupts, 5 and 4, reported to partitions only).
SRI_INTID = 8
NPI_INTID = 5
MEI_INTID = 4


_ZEROS_14 = (0,) * (abi.NUM_REGS - 4)
_ZEROS_15 = (0,) * (abi.NUM_REGS - 3)
_SUCCESS_32 = abi.FFA_SUCCESS_32
_ERROR = abi.FFA_ERROR
_FFA_VERSION = abi.FFA_VERSION
_FFA_INTERRUPT = abi.FFA_INTERRUPT
# What EL3 without an SPMD answers to any FF-A function: SMCCC NOT_SUPPORTED in w0 (32 bits).
_NO_FFA = abi.regs(abi.to_u32(abi.FFA_RET_NOT_SUPPORTED))


def success(w2: int = 0, w3: int = 0) -> Regs:
    """FFA_SUCCESS_32 with w2/w3 (the hot-path form of ``abi.success``; values < 2**32)."""
    return (_SUCCESS_32, 0, w2, w3, *_ZEROS_14)


def error(code: int) -> Regs:
    """FFA_ERROR with ``code`` (the hot-path form of ``abi.error``)."""
    return (_ERROR, 0, code & 0xFFFFFFFF, *_ZEROS_15)


def is_vm_id(ep: int) -> bool:
    """Hafnium ``ffa_is_vm_id``: bit 15 clear (the hypervisor, ID 0, included)."""
    return not ep & 0x8000


class Spmc:
    """The secure partition manager: answers every FF-A call of the hypervisor and partitions.

    ``entry(caller_id, regs)`` is the SMC entry (caller 0: the hypervisor; a partition ID:
    that partition). Read-only introspection for monitors: :attr:`mailboxes`, :attr:`shares`,
    :attr:`vms`, :meth:`invariant_problems`.
    """

    def __init__(
        self,
        machine: Machine,
        partitions: list[SecurePartition] | None = None,
        version: int = abi.FFA_VERSION_1_2,
        max_vms: int = MAX_NWD_VMS,
        *,
        ffa: bool = True,
        v1_2_properties: bool = False,
        unaligned: bool = False,
    ) -> None:
        # The ABI modules import this one (for Spmc's helpers), so they are loaded here.
        from . import memory, messaging, notifications, partinfo, rxtx

        if partitions is None:
            from .defaults import default_partitions

            partitions = default_partitions()
        self.machine = machine
        self.version = version
        self.max_vms = max_vms
        # Firmware variants the pKVM history needs (all off: Hafnium v2.14 as it is).
        self.ffa = ffa
        """False: EL3 firmware without FF-A, which answers every call NOT_SUPPORTED in w0."""
        self.v1_2_properties = v1_2_properties
        """FFA_FEATURES reports v1.2 properties (RXTX_MAP's page count) to every caller."""
        self.unaligned = unaligned
        """A memory send may name constituents at unaligned addresses; every 4 KiB page the
        range touches is taken (Hafnium refuses them: INVALID_PARAMETERS)."""
        self.nwd_vms_lock = machine.spinlock("spmc.nwd_vms_lock")
        """Hafnium ``nwd_vms_lock_instance``: the table of normal-world VMs (``vm_slots``)."""
        self.share_states_lock = machine.spinlock("spmc.share_states_lock")
        """Hafnium ``share_states_lock_instance``: the memory-sharing table (``memory.py``)."""
        self.mm_stage1_lock = machine.spinlock("spmc.mm_stage1_lock")
        """Hafnium ``mm_stage1_lock``: the SPMC's own mappings."""
        self.on_sri: Callable[[], None] | None = None
        """Called (outside the SPMC lock) each time the SPMC raises the schedule-receiver
        interrupt; the system wires Xen's IRQ handler here."""
        self.sri_pending = False
        """True from raising the SRI until the hypervisor's next FFA_NOTIFICATION_INFO_GET."""
        # Contexts that raised the SRI in their current SMC, and how deep each context is in
        # SMCs (a partition's calls from its handler nest in the call that runs it).
        self._sri_due: set[str] = set()
        self._depth: dict[str, int] = {}
        self.partitions: dict[int, SecurePartition] = {}
        self.endpoints: dict[int, Endpoint] = {}
        # Hafnium's nwd_vms table: slot -> VM ID (None: free). A new VM takes the first free
        # slot, and FFA_NOTIFICATION_INFO_GET walks the table in slot order.
        self.vm_slots: list[int | None] = [None] * max_vms
        # Memory sharing (memory.py): handle -> state, mfn -> handle of the share covering it,
        # mfn -> partition that received the page by a completed FFA_MEM_DONATE.
        self._shares: dict[int, ShareState] = {}
        self.page_share: dict[int, int] = {}
        self.donated: dict[int, int] = {}
        # Normal-world frames mapped as some endpoint's RX/TX: out of the NS memory view.
        self.ns_excluded: dict[int, int] = {}
        # Verdicts of memory-send descriptor checks, a pure function of the descriptor copy
        # and the caller (memory.py); bounded.
        self.send_verdicts: dict[tuple[bytes, int, str, int, int], tuple[Any, int, str]] = {}
        self._dispatch: dict[int, Handler] = {}
        self._dispatch.update(
            {
                abi.FFA_VERSION: ffa_version,
                abi.FFA_FEATURES: ffa_features,
                abi.FFA_ID_GET: ffa_id_get,
                abi.FFA_SPM_ID_GET: ffa_spm_id_get,
                abi.FFA_CONSOLE_LOG_32: ffa_console_log,
                abi.FFA_CONSOLE_LOG_64: ffa_console_log,
            }
        )
        for module in (rxtx, partinfo, messaging, memory, notifications):
            self._dispatch.update(module.HANDLERS)

        hyp_ep = self._endpoint(HYP_ID, version, Notifications(enabled=False))
        self.endpoints[HYP_ID] = hyp_ep
        # Who may call entry(): the hypervisor and each partition (never a VM directly).
        self._callers: dict[int, Endpoint] = {HYP_ID: hyp_ep}
        for sp in partitions:
            self._adopt(sp)

    # -- boot -----------------------------------------------------------------------------
    def _adopt(self, sp: SecurePartition) -> None:
        """Load a partition: give it memory and RX/TX buffers, mapped as FFA_RXTX_MAP does."""
        if sp.id in self.partitions:
            raise ValueError(f"two partitions with ID 0x{sp.id:04x}")
        if sp.spmc is not None:
            raise ValueError(f"{sp!r} already belongs to an SPMC")
        heap = self.machine.secure_heap
        frames = [heap.alloc_page(sp.party, tag=f"{sp.party} memory") for _ in range(2)]
        private = [
            heap.alloc_page(sp.party, tag=f"{sp.party} memory") for _ in range(SP_PRIVATE_PAGES)
        ]
        if any(f is None for f in frames + private):
            raise MemoryError("secure memory exhausted while loading partitions")
        notif = Notifications(
            enabled=bool(sp.properties & abi.FFA_PART_PROP_RECV_NOTIF),
            vcpu_count=max(1, sp.exec_ctx),
        )
        if sp.ffa_version is None:
            sp.ffa_version = self.version
        ep = self._endpoint(sp.id, sp.ffa_version, notif)
        # A partition's execution contexts wait for their first direct request.
        ep.vcpus = [Vcpu(self.machine, sp.id, i, WAITING) for i in range(max(1, sp.exec_ctx))]
        rx, tx = frames[0], frames[1]
        assert rx is not None and tx is not None
        ep.mailbox.rx_frames = [rx]
        ep.mailbox.tx_frames = [tx]
        grant(rx, "spmc")
        grant(tx, "spmc")
        self.partitions[sp.id] = sp
        self.endpoints[sp.id] = ep
        self._callers[sp.id] = ep
        sp.spmc = self
        sp.rx = rx.pa
        sp.tx = tx.pa
        sp.pages = [f.pa for f in private if f is not None]

    def _endpoint(self, ep_id: int, version: int, notif: Notifications) -> Endpoint:
        lock = self.machine.spinlock(f"spmc.vm{ep_id:x}.lock")
        return Endpoint(ep_id, version, Mailbox(ep_id), notif, lock)

    # -- introspection ----------------------------------------------------------------------
    @property
    def mailboxes(self) -> dict[int, Mailbox]:
        """Endpoint ID -> its mailbox (``rx_frames``, ``tx_frames``, ``state``, ``owner``)."""
        return {i: ep.mailbox for i, ep in self.endpoints.items()}

    @property
    def shares(self) -> dict[int, ShareState]:
        """Handle -> memory-share state (a copy of the table; the states are live)."""
        return dict(self._shares)

    @property
    def vms(self) -> list[int]:
        """FF-A IDs of the normal-world VMs the SPMC tracks (its ``nwd_vms`` table)."""
        return sorted(i for i in self.endpoints if i and is_vm_id(i))

    def calls_under_way(self) -> list[str]:
        """The contexts that are inside an SMC to the SPMC now."""
        return sorted(self._depth)

    def invariant_problems(self) -> list[str]:
        """Inconsistencies in the SPMC's state (empty when consistent); see ``invariants.py``."""
        from .invariants import invariant_problems

        return invariant_problems(self)

    # -- helpers shared by the ABI modules --------------------------------------------------
    def log(self, text: str) -> None:
        self.machine.sink.log("spmc", text)

    def refuse(self, code: int, text: str) -> Regs:
        """An FFA_ERROR answer, with a log line saying why."""
        self.machine.sink.log("spmc", f"{abi.error_name(code)}: {text}")
        return error(code)

    def mailbox_changed(self, endpoint: int) -> None:
        """Declare to the checker that this step changes ``endpoint``'s mailbox (its state,
        its mapping, or whether it exists): the ownership monitor judges by it."""
        self.machine.sink.access(MAILBOX, endpoint, True)

    def raise_sri(self) -> None:
        """Mark the schedule-receiver interrupt pending; the hook runs once the calling
        context's outermost SMC ends (Hafnium triggers the SGI on the caller's CPU)."""
        self.machine.sink.access(SPMC_STATE, SRI, True)
        self.sri_pending = True
        self._sri_due.add(self.machine.current)

    def vm_slot_take(self, vm_id: int) -> Endpoint | None:
        """The first free slot of the normal-world VM table, given to VM ``vm_id`` (None when
        full). With ``nwd_vms_lock`` held (``vm.ffa_vm_nwd_alloc``)."""
        slots = self.vm_slots
        if len(slots) < self.max_vms:  # max_vms may be raised after construction
            slots.extend([None] * (self.max_vms - len(slots)))
        try:
            slot = slots.index(None, 0, self.max_vms)
        except ValueError:
            return None
        slots[slot] = vm_id
        # Hafnium ffa_vm_init gives every nwd_vms slot the hypervisor's version *at SPMC
        # boot*, which is the compiled version: a later FFA_VERSION from the hypervisor
        # changes only its own endpoint (hafnium-spmc.md §7).
        ep = self._endpoint(vm_id, self.version, Notifications(enabled=False))
        self.mailbox_changed(vm_id)
        self.endpoints[vm_id] = ep
        return ep

    def vm_slot_free(self, ep: Endpoint) -> None:
        """Give VM ``ep``'s slot back (``vm.ffa_vm_nwd_free``, with the VM's lock held)."""
        self.mailbox_changed(ep.id)
        del self.endpoints[ep.id]
        self.vm_slots[self.vm_slots.index(ep.id)] = None

    def ns_range_ok(self, pa: int, pages: int) -> bool:
        """Whether ``[pa, pa + pages*4K)`` lies in normal-world DRAM (the SPMC's NS view)."""
        first = pa // PAGE_SIZE
        return first >= NS_DRAM_BASE_MFN and first + pages <= MAX_MFN and pages >= 0

    def sender_has_access(self, mfn: int) -> bool:
        """Whether the owner of ``mfn`` still has it (not lent or donated away)."""
        if mfn in self.donated:
            return False
        handle = self.page_share.get(mfn)
        if handle is None:
            return True
        share = self._shares.get(handle)
        return share is None or share.kind == "share"

    # -- the entry point --------------------------------------------------------------------
    def entry(self, caller_id: int, regs: Regs) -> Regs:
        """The SMC entry: run the call in ``regs`` for endpoint ``caller_id``; return x0..x17."""
        if not self.ffa:
            return _NO_FFA
        ep = self._callers.get(caller_id)
        if ep is None:
            return abi.error(abi.FFA_RET_NOT_SUPPORTED)
        r = _normalise(regs)
        ctx = self.machine.current
        inside = self._depth
        depth = inside.get(ctx)  # None: the context's outermost call
        inside[ctx] = 1 if depth is None else depth + 1
        fid = r[0]
        handler = self._dispatch.get(fid)
        if handler is None:
            out = self.refuse(abi.FFA_RET_NOT_SUPPORTED, f"unknown function {abi.name(fid)}")
        else:
            out = handler(self, ep, r)
        if fid != _FFA_VERSION and fid != _FFA_INTERRUPT and not ep.negotiated:
            # Hafnium ffa_handler sets ffa_version_negotiated under the VM lock after every
            # call but FFA_VERSION; the flag only goes from false to true, so the model takes
            # the lock only until it is set.
            vm_lock(ep)
            ep.negotiated = True
            vm_unlock(ep)
        if depth is not None:
            inside[ctx] = depth
            return out
        del inside[ctx]
        due = self._sri_due
        if ctx in due:
            due.discard(ctx)
            if self.on_sri is not None:
                self.on_sri()
        return out


# Packing validates all 18 registers in C: the cheapest "every value is an int in range" test.
_PACK_U32 = struct.Struct(f"<{abi.NUM_REGS}I").pack
_PACK_U64 = struct.Struct(f"<{abi.NUM_REGS}Q").pack
_PACK_U32_X1_X7 = struct.Struct("<7I").pack


def _normalise(regs: Regs) -> Regs:
    """18 unsigned 64-bit registers; SMC32 calls see only the low 32 bits of x0..x7."""
    if type(regs) is tuple and len(regs) == abi.NUM_REGS:
        try:
            _PACK_U32(*regs)
            return regs  # the common case: every register already fits in 32 bits
        except struct.error:
            pass
        try:
            _PACK_U64(*regs)
            if regs[0] <= abi.MASK32:
                if not regs[0] & abi.SMC64_BIT:
                    _PACK_U32_X1_X7(*regs[1:8])
                return regs  # already in range for its calling convention
        except struct.error:
            pass
    vals = [int(v) & abi.MASK64 for v in tuple(regs)[: abi.NUM_REGS]]
    vals += [0] * (abi.NUM_REGS - len(vals))
    vals[0] &= abi.MASK32
    if not vals[0] & abi.SMC64_BIT:
        for i in range(1, 8):
            vals[i] &= abi.MASK32
    return tuple(vals)


# ---------------------------------------------------------------------------------------------
# FFA_VERSION, FFA_FEATURES, FFA_ID_GET, FFA_SPM_ID_GET


def ffa_version(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """Hafnium ``api_ffa_version``: the compiled version in w0, or NOT_SUPPORTED in w0.

    The requested version becomes the caller's; once the caller made any other call, only
    the same value is accepted again.
    """
    requested = r[1] & abi.MASK32
    bad = abi.regs(abi.to_u32(abi.FFA_RET_NOT_SUPPORTED))
    if requested & 0x80000000 or not abi.versions_compatible(requested, spmc.version):
        spmc.log(f"FFA_VERSION 0x{requested:x} from 0x{ep.id:x} not supported")
        return bad
    vm_lock(ep)
    if ep.negotiated and requested != ep.version:
        vm_unlock(ep)
        spmc.log(f"FFA_VERSION: 0x{ep.id:x} cannot change version after other FF-A calls")
        return bad
    spmc.machine.sink.access(SPMC_STATE, (VERSION, ep.id), True)
    ep.version = requested  # the caller's only: VMs keep the boot version (ffa_vm_init)
    vm_unlock(ep)
    return abi.regs(spmc.version)


_FEATURES_BOTH: frozenset[int] = frozenset(
    {
        abi.FFA_ERROR,
        abi.FFA_SUCCESS_32,  # not FFA_SUCCESS_64: v2.14 does not list it (master does)
        abi.FFA_INTERRUPT,
        abi.FFA_VERSION,
        abi.FFA_FEATURES,
        abi.FFA_RX_RELEASE,
        abi.FFA_RXTX_UNMAP,
        abi.FFA_PARTITION_INFO_GET,
        abi.FFA_ID_GET,
        abi.FFA_MSG_WAIT,
        abi.FFA_RUN,
        abi.FFA_MEM_DONATE_32,
        abi.FFA_MEM_DONATE_64,
        abi.FFA_MEM_LEND_32,
        abi.FFA_MEM_LEND_64,
        abi.FFA_MEM_SHARE_32,
        abi.FFA_MEM_SHARE_64,
        abi.FFA_MEM_RETRIEVE_RESP,
        abi.FFA_MEM_RELINQUISH,
        abi.FFA_MEM_RECLAIM,
        abi.FFA_MEM_FRAG_RX,
        abi.FFA_MEM_FRAG_TX,
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND_DIRECT_RESP_32,
        abi.FFA_MSG_SEND_DIRECT_RESP_64,
        abi.FFA_SPM_ID_GET,
        abi.FFA_NOTIFICATION_BITMAP_CREATE,
        abi.FFA_NOTIFICATION_BITMAP_DESTROY,
        abi.FFA_NOTIFICATION_BIND,
        abi.FFA_NOTIFICATION_UNBIND,
        abi.FFA_NOTIFICATION_SET,
        abi.FFA_NOTIFICATION_GET,
        abi.FFA_MSG_SEND2,
        # v2.14 answers FFA_NOTIFICATION_INFO_GET_64 to every caller; master only to the
        # primary scheduler (the hypervisor).
        abi.FFA_NOTIFICATION_INFO_GET_64,
        abi.FFA_CONSOLE_LOG_32,
        abi.FFA_CONSOLE_LOG_64,
    }
)
# FF-A v1.2 interfaces: offered when the SPMC is built for v1.2 (whatever the caller's version,
# as Hafnium does; a v1.1 caller's DIRECT_REQ2 is then refused by the call itself).
_FEATURES_V1_2: frozenset[int] = frozenset(
    {
        abi.FFA_PARTITION_INFO_GET_REGS,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
        abi.FFA_MSG_SEND_DIRECT_RESP2,
    }
)
# v2.14's ffa_features_function has no case for FFA_RX_ACQUIRE: the call works for the
# hypervisor but FFA_FEATURES says NOT_SUPPORTED to everyone (master advertises it to the
# hypervisor; Xen's mediator carries a workaround for the older behaviour).
_FEATURES_HYP_ONLY: frozenset[int] = frozenset()
_FEATURES_SP_ONLY: frozenset[int] = frozenset({abi.FFA_YIELD})


def ffa_features(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """Hafnium ``api_ffa_features``: which ABIs and feature IDs the caller may use."""
    w1 = r[1] & abi.MASK32
    w2 = r[2] & abi.MASK32
    from_nwd = ep.id == HYP_ID
    unsupported = abi.error(abi.FFA_RET_NOT_SUPPORTED)
    if not w1 & 0x80000000:
        # A feature ID: bits [30:8] and w2 MBZ.
        if w1 & 0x7FFFFF00 or w2:
            return unsupported
        if w1 == abi.FFA_FEAT_SCHEDULE_RECV_INTR and from_nwd:
            return abi.success(SRI_INTID)
        if w1 == abi.FFA_FEAT_NOTIF_PEND_INTR and not from_nwd:
            return abi.success(NPI_INTID)
        if w1 == abi.FFA_FEAT_MANAGED_EXIT_INTR and not from_nwd:
            return abi.success(MEI_INTID)
        return unsupported
    fid = w1
    if fid == abi.FFA_RXTX_MAP_64:
        # bits[1:0] = 0: 4 KiB granule; bits[31:16]: max pages, for v1.2+ callers only.
        v12 = version_unlocked(spmc, ep) >= abi.FFA_VERSION_1_2
        max_pages = 1 if v12 or spmc.v1_2_properties else 0
        return abi.success(max_pages << 16)
    if fid in (abi.FFA_MEM_RETRIEVE_REQ_32, abi.FFA_MEM_RETRIEVE_REQ_64):
        # A v1.1+ caller must say it handles the NS bit (input w2 bit 1).
        if version_unlocked(spmc, ep) >= abi.FFA_VERSION_1_1 and not w2 & 0x2:
            return unsupported
        return abi.success(0x6)
    if fid in _FEATURES_BOTH:
        return abi.success()
    if fid in _FEATURES_V1_2:
        return success() if spmc.version >= abi.FFA_VERSION_1_2 else unsupported
    if fid in _FEATURES_HYP_ONLY:
        return abi.success() if from_nwd else unsupported
    if fid in _FEATURES_SP_ONLY:
        return unsupported if from_nwd else abi.success()
    return unsupported


def ffa_id_get(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """The caller's own ID: 0 for the hypervisor, the partition's ID for a partition."""
    return abi.success(ep.id)


def ffa_spm_id_get(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """The SPMC's ID, 0x8000."""
    return abi.success(SPMC_ID)


def ffa_console_log(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_CONSOLE_LOG_32/64: w1[7:0] characters packed little-endian from x2 (4 per register
    for SMC32 up to w7, 8 per register for SMC64 up to x17), logged as the caller's line."""
    count = r[1] & 0xFF
    wide = bool(r[0] & abi.SMC64_BIT)
    per_reg = 8 if wide else 4
    last = abi.NUM_REGS if wide else 8
    if count == 0 or count > per_reg * (last - 2):
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, f"CONSOLE_LOG of {count} chars")
    raw = b"".join((r[i] & ((1 << (8 * per_reg)) - 1)).to_bytes(per_reg, "little")
                   for i in range(2, last))  # fmt: skip
    who = spmc.partitions[ep.id].party if ep.id in spmc.partitions else "hyp"
    current = current_vcpu(spmc, ep, cpu_index(spmc.machine))
    vcpu_lock(current)  # Hafnium buffers the line in the vCPU's log buffer
    spmc.log(f"{who}: {raw[:count].decode('ascii', 'replace')}")
    vcpu_unlock(current)
    return success()
