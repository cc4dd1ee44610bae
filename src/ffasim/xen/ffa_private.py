"""Shared definitions of the mediator. Mirrors ``ffa_private.h``.

Holds the limits (each with its reason), Xen's own wire structs that more than one file uses,
``struct ffa_ctx`` (:class:`FfaCtx`, fields grouped by access rule as in the C header and declared
through the machine layer so that the race monitor checks the comments), ``struct domain`` as
far as the mediator sees it (:class:`Domain`), the inline helpers (``ffa_set_regs*``,
``ffa_get_ret_code``, ``FFA_ABI_BITNUM``, ``ffa_get_vm_id``, the UUID helpers,
``ffa_safe_addr_add``), and how Xen touches memory through a pointer (:class:`MappedBuf`: one
memory event per C access, nothing cached).

Not modelled: more than one RX/TX page, ``struct vcpu`` beyond a list of injected virtual IRQs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .. import abi
from ..machine import (
    P2M,
    PAGE_SHIFT,
    Atomic,
    Frame,
    Guarded,
    HypervisorPanic,
    Machine,
    RwLock,
    Shared,
    SmcConduit,
    Spinlock,
)
from ..machine.events import DOM, MEM

Regs = abi.Regs

# ---------------------------------------------------------------------------------------------
# Limits and constants (ffa_private.h)

FFA_PAGE_SIZE: Final = 4096
"""FF-A's page unit, kept apart from Xen's PAGE_SIZE on purpose (they happen to be equal; Xen
BUILD_BUGs on it)."""

FFA_RXTX_PAGE_COUNT: Final = 1
"""Pages in each of Xen's own RX/TX buffers registered with the SPMC."""

FFA_MAX_RXTX_PAGE_COUNT: Final = 1
"""Most pages a guest may map as RX or TX: the code only handles one page per buffer."""

FFA_MAX_SHM_PAGE_COUNT: Final = 2 * 512 * 1024 // FFA_PAGE_SIZE
"""256: GlobalPlatform's 512 KiB limit for a shared buffer, doubled for headroom."""

FFA_MAX_SHM_COUNT: Final = 32
"""Shares a guest may hold at once; arbitrary, it stops a guest from exhausting Xen's memory."""

FFA_MAX_NUM_SP: Final = 64
"""Secure partitions Xen is willing to handle: bounds the time spent copying partition info."""

FFA_CTX_TEARDOWN_DELAY: Final = 1.0
"""Seconds between retries of an unfinished domain teardown (VM_DESTROYED, reclaim)."""

FFA_MIN_SPMC_VERSION: Final = abi.FFA_VERSION_1_1

DOMID_FIRST_RESERVED: Final = 0x7FF0
"""Domain IDs from here on are reserved by Xen; they would collide with FF-A IDs above."""

FFA_FNUM_MIN_VALUE: Final = 0x60
FFA_FNUM_MAX_VALUE: Final = 0x8E
"""vsmc.c routes only function numbers in [0x60, 0x8E] to the mediator (asm/tee/ffa.h)."""

FFA_ABI_BITMAP_SIZE: Final = 2 * (FFA_FNUM_MAX_VALUE - FFA_FNUM_MIN_VALUE + 1)

FFA_PART_VM_PROP: Final = (
    abi.FFA_PART_PROP_DIRECT_REQ_SEND
    | abi.FFA_PART_PROP_INDIRECT_MSGS
    | abi.FFA_PART_PROP_RECV_NOTIF
)
"""Properties Xen reports for a VM in partition info (0x0E; bit 8 added for 64-bit VMs)."""

GUEST_FFA_NOTIF_PEND_INTR_ID: Final = 8
GUEST_FFA_SCHEDULE_RECV_INTR_ID: Final = 9

ARM_SMCCC_NOT_SUPPORTED: Final = abi.MASK64
"""What vsmc answers for a function nobody handles (SMCCC ``NOT_SUPPORTED``, -1)."""

ENODEV: Final = 19
ERANGE: Final = 34
ENOMEM: Final = 12
EIO: Final = 5

# ---------------------------------------------------------------------------------------------
# Xen's own copies of the wire structs used by more than one file (little-endian, packed).

# struct ffa_address_range: address u64, page_count u32, reserved u32.
FFA_ADDRESS_RANGE: Final = struct.Struct("<QII")
# struct ffa_mem_region: total_page_count u32, address_range_count u32, reserved u64.
FFA_MEM_REGION: Final = struct.Struct("<IIQ")
# struct ffa_partition_info_1_0: id u16, execution_context u16, partition_properties u32.
FFA_PARTITION_INFO_1_0: Final = struct.Struct("<HHI")
# struct ffa_partition_info_1_1: the 1.0 fields then uuid[16].
FFA_PARTITION_INFO_1_1: Final = struct.Struct("<HHI16s")
assert FFA_ADDRESS_RANGE.size == 16 and FFA_MEM_REGION.size == 16
assert FFA_PARTITION_INFO_1_0.size == 8 and FFA_PARTITION_INFO_1_1.size == 24


# ---------------------------------------------------------------------------------------------
# Inline helpers


def FFA_ABI_BITNUM(fid: int) -> int:  # Xen's macro name
    """Bit of ``ffa_fw_abi_supported`` for ``fid``: function number, then the SMC64 bit."""
    return (((fid & 0xFFFF) - FFA_FNUM_MIN_VALUE) << 1) | ((fid >> 30) & 1)


_ZEROS14: Final = (0,) * 14


def ffa_set_regs(*values: int) -> Regs:
    """Registers x0.. as given, the rest zero (the guest sees exactly these)."""
    return abi.regs(*values)


def ffa_set_regs_error(code: int) -> Regs:
    """FFA_ERROR with ``code`` in w2, masked to 32 bits as patch 07 made it."""
    return (abi.FFA_ERROR, 0, code & 0xFFFFFFFF, 0, *_ZEROS14)


def ffa_set_regs_success(w2: int, w3: int) -> Regs:
    return (abi.FFA_SUCCESS_32, 0, w2 & 0xFFFFFFFF, w3 & 0xFFFFFFFF, *_ZEROS14)


def ffa_get_ret_code(resp: Regs) -> int:
    """0 for FFA_SUCCESS, the signed w2 of FFA_ERROR, NOT_SUPPORTED for any other reply.

    An FFA_ERROR whose x2 is 0 carries no code: Xen answers NOT_SUPPORTED rather than let it
    pass as success (only the whole register is tested; its low 32 bits are the code)."""
    x0 = resp[0]
    if x0 == abi.FFA_ERROR:
        if not resp[2]:
            return abi.FFA_RET_NOT_SUPPORTED
        return abi.to_s32(resp[2])
    if x0 in (abi.FFA_SUCCESS_32, abi.FFA_SUCCESS_64):
        return abi.FFA_RET_OK
    return abi.FFA_RET_NOT_SUPPORTED


def FFA_ID_IS_SECURE(ep: int) -> bool:  # Xen's macro name
    return bool(ep & abi.FFA_ID_SECURE_BIT)


def ffa_get_vm_id(d: Domain) -> int:
    """A domain's FF-A ID: ``domain_id + 1`` (ID 0 is the hypervisor)."""
    return d.domain_id + 1


def ffa_uuid_is_nil(uuid: bytes) -> bool:
    return uuid == abi.NIL_UUID


def ffa_uuid_equal(id1: bytes, id2: bytes) -> bool:
    return id1 == id2


def ffa_uuid_set(val0: int, val1: int, val2: int, val3: int) -> bytes:
    """The 16 UUID bytes from four 32-bit register values (w1..w4 of PARTITION_INFO_GET)."""
    return abi.uuid_from_regs32(val0, val1, val2, val3)


def ffa_safe_addr_add(addr: int, pages: int) -> bool:
    """Whether ``addr + pages * 4K`` stays inside 64 bits (and the product does not wrap)."""
    off = (pages * FFA_PAGE_SIZE) & abi.MASK64
    return off // FFA_PAGE_SIZE == pages and addr <= abi.MASK64 - off


# ---------------------------------------------------------------------------------------------
# struct domain / struct vcpu, as far as the mediator uses them


class Vcpu:
    """One vCPU: only the virtual interrupts the mediator injected are modelled."""

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.online = True
        self.injected: list[int] = []


class Domain:
    """Xen's ``struct domain`` as the mediator uses it.

    ``refcnt`` mirrors the domain reference count: 1 while alive, +1 while it holds shares
    (``get_knownalive_domain``), so a destroyed domain with shares outstanding stays a zombie.
    ``is_64bit`` is ``d->arch.type == DOMAIN_64BIT``: false (zero-initialised) until the domain
    builder loads the kernel, which happens after ``arch_domain_create`` (and so after the
    mediator's ``ffa_domain_init``), as the system does.
    """

    def __init__(self, machine: Machine, domain_id: int, max_vcpus: int, p2m: P2M) -> None:
        self.machine = machine
        self.domain_id = domain_id
        self.max_vcpus = max_vcpus
        self.p2m = p2m
        self.vcpu = [Vcpu(i) for i in range(max_vcpus)]
        self.tee: FfaCtx | None = None  # d->arch.tee
        self.refcnt = 1
        self.is_dying = False
        self.destroyed = False
        self.is_64bit = False
        self.ram: list[Frame] = []
        # vCPUs inside a hypercall now: domain_pause waits for this to reach 0 (see system.py).
        self.in_hypercall = 0
        self.pause_waiters = 0
        self.pause_lock = Spinlock(machine, f"d{domain_id}.pause")
        """Never taken: what a toolstack waiting in domain_pause blocks on (see system.py)."""
        # Hypercalls holding this domain by rcu_lock_*: complete_domain_destroy is an RCU
        # callback, so it waits until they have left Xen (see rcu_quiescent).
        self.rcu_readers = 0
        self.complete_pending = False

    @property
    def party(self) -> str:
        return f"d{self.domain_id}"

    def __repr__(self) -> str:
        return f"<domain d{self.domain_id}>"


def is_64bit_domain(d: Domain) -> bool:
    return d.is_64bit


# ---------------------------------------------------------------------------------------------
# struct ffa_shm_mem (defined in ffa_shm.c, here because teardown and audit see it too)


@dataclass(eq=False)
class FfaShmMem:
    """One share: the pages (each with a reference held) and the SPMC's handle."""

    sender_id: int
    ep_id: int
    page_count: int
    handle: int = 0
    impdef: tuple[int, int] = (0, 0)
    pages: list[Frame] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# struct ffa_ctx


class FfaCtx:
    """Per-domain mediator state (``struct ffa_ctx``), grouped by access rule as in the header.

    - Set before the context is published, then read without a lock: ``ffa_id``,
      ``num_vcpus``, ``teardown_d``; ``is_64bit`` is written once at version finalisation and
      read only under ``ffa_ctx_list_rwlock``.
    - Accessed atomically (``ACCESS_ONCE``/test-and-set): ``guest_vers`` (0 = not negotiated;
      published once, never changed), ``secure_pending``, ``vm_pending``,
      ``buff_full_pending``.
    - Under ``guest_vers_lock``: ``guest_vers_tmp``.
    - Under ``lock``: ``shm_count``, ``shm_list``.
    - Under ``rx_lock``: ``rx`` (Xen's global mapping of the guest RX page), ``rx_pg``,
      ``rx_is_free`` (what serialises RX ownership between guest and producers).
    - Under ``tx_lock``: ``tx``, ``tx_pg``.
    - ``page_count`` is written with both ``rx_lock`` and ``tx_lock`` held and read with either
      one, which a single-guard declaration cannot express: a :class:`Shared` attribute (each
      access declared to the checker, not judged by the race monitor). Released versions touch
      it with neither lock, which is why the checker must see every access.
    - Teardown: ``teardown_expire`` and the teardown-list link are under ``ffa_teardown_lock``;
      ``vm_destroy_bitmap`` is owned by whoever runs the teardown (one at a time). ``freed``,
      ``in_ctx_list`` and ``queued_ref`` are :class:`Shared` too: the toolstack, the teardown
      timer and the vCPUs of other domains meet them.
    """

    page_count = Shared(0)
    freed = Shared(False)
    in_ctx_list = Shared(False)
    queued_ref = Shared(False)
    teardown_expire = Shared(0.0)

    def __init__(self, machine: Machine, d: Domain) -> None:
        m = machine
        p = f"d{d.domain_id}.ffa"
        self.machine = machine
        self.shared_key = p
        # Published once.
        self.teardown_d = d
        self.ffa_id = 0
        self.num_vcpus = 0
        self.is_64bit = False
        # Atomic.
        self.guest_vers = Atomic(m, p + ".guest_vers")
        self.secure_pending = Atomic(m, p + ".notif.secure_pending")
        self.vm_pending = Atomic(m, p + ".notif.vm_pending")
        self.buff_full_pending = Atomic(m, p + ".notif.buff_full_pending")
        # Under guest_vers_lock.
        self.guest_vers_lock = Spinlock(m, p + ".guest_vers_lock")
        self.guest_vers_tmp: Guarded[int] = Guarded(
            m, p + ".guest_vers_tmp", 0, self.guest_vers_lock
        )
        # Under lock.
        self.lock = Spinlock(m, p + ".lock")
        self.shm_count: Guarded[int] = Guarded(m, p + ".shm_count", 0, self.lock)
        self.shm_list: Guarded[list[FfaShmMem]] = Guarded(m, p + ".shm_list", [], self.lock)
        # Under rx_lock / tx_lock (initialised by ffa_rxtx_domain_init, as patch 04 does).
        self.rx_lock = Spinlock(m, p + ".rx_lock")
        self.tx_lock = Spinlock(m, p + ".tx_lock")
        self.rx: Guarded[MappedBuf | None] = Guarded(m, p + ".rx", None, self.rx_lock)
        self.rx_pg: Guarded[Frame | None] = Guarded(m, p + ".rx_pg", None, self.rx_lock)
        self.rx_is_free: Guarded[bool] = Guarded(m, p + ".rx_is_free", False, self.rx_lock)
        self.tx: Guarded[MappedBuf | None] = Guarded(m, p + ".tx", None, self.tx_lock)
        self.tx_pg: Guarded[Frame | None] = Guarded(m, p + ".tx_pg", None, self.tx_lock)
        # page_count (Shared, above): 0 while no RX/TX pair is mapped.
        # Teardown. queued_ref (Shared): whether the queued teardown holds a domain reference
        # (the reference variant's fix); freed (Shared): set by ffa_free_domain_ctx, touching
        # the ctx afterwards is a use after free.
        self.vm_destroy_bitmap: list[bool] | None = None

    def __repr__(self) -> str:
        return f"<ffa_ctx vm {self.ffa_id:#x}>"


# ---------------------------------------------------------------------------------------------
# The global state every file shares (the file-scope variables of ffa.c and the inline helpers
# of ffa_private.h), as the root of the mediator's class chain.


class FfaBase:
    """Mediator-wide state and the inline helpers of ``ffa_private.h``.

    The mediator is one object whose class chain mirrors the C files, one class per file
    (``FfaRxtx`` for ffa_rxtx.c, ... ``Ffa`` for ffa.c), so a call from one file to another is
    ``self.<xen name>(...)`` and picks up a variant's override; two mediators of different
    variants coexist in one process. Globals of ffa.c live here: ``ffa_fw_version``,
    ``ffa_fw_abi_supported``, the ctx list and its rwlock, ``ffa_vm_count``.

    ``ffa_ctx_list_rwlock`` protects ``ffa_ctx_head``: many readers (partition info), few
    writers (version finalisation, teardown), hence a rwlock.
    """

    variant = "head"
    FFA_MY_VERSION = abi.FFA_VERSION_1_2
    FFA_FNUM_MAX_VALUE = FFA_FNUM_MAX_VALUE  # asm/tee/ffa.h: 0x86 before a9eb6c6269

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        self.machine = machine
        self.shared_key = "xen"  # the prefix of the Shared attributes' names
        self.conduit = conduit
        self.CONFIG_FFA_VM_TO_VM = vm_to_vm
        self.smccc_ver = 0x10002  # SMCCC 1.2, as TF-A reports it
        self.ffa_fw_version = 0
        self.ffa_fw_abi_supported: set[int] = set()
        self.ffa_ctx_head: list[FfaCtx] = []
        self.ffa_ctx_list_rwlock = RwLock(machine, "ffa_ctx_list_rwlock")
        self.ffa_vm_count = Atomic(machine, "ffa_vm_count")
        # rcu_lock_domain_by_id(): the live domains by domid (filled by the system).
        self.domains: dict[int, Domain] = {}

    # -- asm/tee/ffa.h, as vsmc.c uses it --------------------------------------------------------
    def is_ffa_fid(self, fid: int) -> bool:
        """Whether vsmc.c routes ``fid`` to the mediator: a fast standard-service call whose
        function number is in [FFA_FNUM_MIN_VALUE, FFA_FNUM_MAX_VALUE]."""
        fid &= abi.MASK32
        return (fid & 0xBF00_0000) == 0x8400_0000 and (
            FFA_FNUM_MIN_VALUE <= (fid & 0xFFFF) <= self.FFA_FNUM_MAX_VALUE
        )

    def ffa_fw_buffers(self) -> list[Frame]:
        """Xen's own RX/TX pages registered with the SPMC (what the audit expects Xen to keep
        allocated); each file that holds them answers."""
        return []

    # -- logging ----------------------------------------------------------------------------------
    def printk(self, text: str) -> None:
        self.machine.sink.log(self.machine.current, "ffa: " + text)

    # -- the guest's registers --------------------------------------------------------------------
    def ffa_set_regs_clears_x8_x17(self, d: Domain) -> bool:
        """Whether Xen's ``ffa_set_regs`` also zeroes x8..x17 for ``d``: only for a 64-bit guest
        that negotiated v1.2 or later (patch 12). Otherwise a reply writes x0..x7 only and the
        guest finds its own x8..x17 as it left them (the seed never zeroes them)."""
        ctx = d.tee
        return (
            ctx is not None and ctx.guest_vers.value >= abi.FFA_VERSION_1_2 and is_64bit_domain(d)
        )

    # -- SMC helpers ------------------------------------------------------------------------------
    def smc(self, *args: int) -> Regs:
        """``arm_smccc_1_2_smc``: a world switch into the SPMC, as the hypervisor (ID 0)."""
        return self.conduit.smc(*args)

    def ffa_simple_call(self, fid: int, a1: int, a2: int, a3: int, a4: int) -> int:
        return ffa_get_ret_code(self.smc(fid, a1, a2, a3, a4))

    def ffa_fw_supports_fid(self, fid: int) -> bool:
        bit = FFA_ABI_BITNUM(fid)
        if bit >= FFA_ABI_BITMAP_SIZE:
            return False
        return bit in self.ffa_fw_abi_supported

    # -- VM count (only meaningful with CONFIG_FFA_VM_TO_VM; the constant 1 otherwise) ------------
    def get_ffa_vm_count(self) -> int:
        if self.CONFIG_FFA_VM_TO_VM:
            return self.ffa_vm_count.read()
        return 1

    def inc_ffa_vm_count(self) -> None:
        if self.CONFIG_FFA_VM_TO_VM:
            self.ffa_vm_count.inc()

    def dec_ffa_vm_count(self) -> None:
        if self.CONFIG_FFA_VM_TO_VM:
            self.ffa_vm_count.dec()

    # -- domain lookup ----------------------------------------------------------------------------
    def ffa_rcu_lock_domain_by_vm_id(self, vm_id: int) -> Domain | None:
        """The domain with FF-A ID ``vm_id`` while it exists (a dying one included, as
        ``rcu_lock_domain_by_id``), or None; ID 0 and secure IDs are no domain."""
        if not vm_id or FFA_ID_IS_SECURE(vm_id):
            return None
        self.machine.sink.access(DOM, f"d{vm_id - 1}", False)  # the RCU-read domain list
        return self.domains.get(vm_id - 1)

    def rcu_lock_live_remote_domain_by_id(self, cur: Domain, vm_id: int) -> Domain | None:
        """Like :meth:`ffa_rcu_lock_domain_by_vm_id` but only a live domain other than
        ``cur`` (Xen's ``rcu_lock_live_remote_domain_by_id``)."""
        d = self.ffa_rcu_lock_domain_by_vm_id(vm_id)
        if d is None or d.is_dying or d is cur:
            return None
        self.rcu_hold(d)
        return d

    def rcu_hold(self, d: Domain) -> None:
        """The current context reads ``d`` under RCU until it leaves the hypervisor: Xen
        frees the domain (``complete_domain_destroy``, an RCU callback: ``arch_domain_destroy``
        -> ``tee_free_domain_ctx``) only after every CPU has passed a quiescent state, which a
        CPU inside a hypercall has not. ``rcu_unlock_domain`` ends the read section in the C;
        the model keeps the domain until the hypercall returns, when the grace period can
        end at the earliest."""
        held: dict[str, list[Domain]] = self.__dict__.setdefault("_rcu_held", {})
        held.setdefault(self.machine.current, []).append(d)
        d.rcu_readers += 1

    def rcu_quiescent(self, ctx: str) -> None:
        """``ctx`` left the hypervisor: complete what its RCU reads held back."""
        held: dict[str, list[Domain]] = self.__dict__.get("_rcu_held", {})
        for d in held.pop(ctx, ()):
            d.rcu_readers -= 1
            if not d.rcu_readers and d.complete_pending and self.complete_domain_destroy:
                d.complete_pending = False
                self.complete_domain_destroy(d)

    def ffa_endpoint_domain_lookup(
        self, cur: Domain, endpoint_id: int
    ) -> tuple[int, Domain | None]:
        """Mirrors ``ffa_endpoint_domain_lookup()`` (ffa.c, HEAD): a live, FF-A-enabled,
        negotiated domain other than ``cur`` (current->domain: the lookup is of a *remote*
        domain), or INVALID_PARAMETERS."""
        if endpoint_id == 0:
            return abi.FFA_RET_INVALID_PARAMETERS, None
        d = self.rcu_lock_live_remote_domain_by_id(cur, endpoint_id)
        if d is None:
            return abi.FFA_RET_INVALID_PARAMETERS, None
        ctx = d.tee
        if ctx is None or not ctx.guest_vers.read():
            return abi.FFA_RET_INVALID_PARAMETERS, None
        return abi.FFA_RET_OK, d

    def vgic_inject_irq(self, d: Domain, vcpu: int, virq: int) -> None:
        """Inject ``virq`` into ``d``'s vCPU ``vcpu``: recorded on the vCPU for the test/guest."""
        d.vcpu[vcpu].injected.append(virq)
        self.machine.sink.log(self.machine.current, f"vgic: inject vIRQ {virq} into {d}v{vcpu}")

    # -- domain references ------------------------------------------------------------------------
    def get_knownalive_domain(self, d: Domain) -> None:
        d.refcnt += 1

    def put_domain(self, d: Domain) -> None:
        """Drop a reference; the last one completes the destruction of a dying domain."""
        d.refcnt -= 1
        if d.refcnt == 0 and d.rcu_readers:
            d.complete_pending = True  # an RCU callback: after the readers' grace period
        elif d.refcnt == 0 and self.complete_domain_destroy is not None:
            self.complete_domain_destroy(d)

    complete_domain_destroy: Callable[[Domain], None] | None = None
    """Set by the system: frees the domain (its ctx through ``ffa_free_domain_ctx``, its RAM)."""


# ---------------------------------------------------------------------------------------------
# Memory Xen reaches through a pointer


class MappedBuf:
    """A buffer Xen reaches through a pointer it holds: a guest's RX or TX page through Xen's
    global mapping of it (``ctx->rx``, ``ctx->tx``), or one of Xen's own pages shared with the
    SPMC (``ffa_spmc_rx``, ``ffa_spmc_tx``).

    Each method is one C access and reports one memory event: :meth:`load` is a field read, an
    ``ACCESS_ONCE`` or a ``memcpy`` out of the buffer, :meth:`store` a field write or a ``memcpy``
    into it, :meth:`memset` a ``memset``. Nothing is cached, so the C reading the same guest bytes
    twice is two reads here too (what the double-fetch monitor looks for). An access outside the
    mapping, or through a mapping Xen has dropped (``unmap_domain_page_global``), is a data abort
    in the hypervisor."""

    __slots__ = ("machine", "mapped", "name", "pa", "size")

    def __init__(self, machine: Machine, pa: int, size: int, name: str) -> None:
        self.machine = machine
        self.pa = pa
        self.size = size
        self.name = name
        self.mapped = True

    def __repr__(self) -> str:
        return f"<{self.name} at {self.pa:#x}+{self.size:#x}>"

    @classmethod
    def null(cls, machine: Machine, size: int, name: str) -> MappedBuf:
        """A NULL pointer with ``size`` bytes behind it as far as the C's bounds go: any
        access through it is a NULL dereference."""
        buf = cls(machine, 0, size, name)
        buf.mapped = False
        return buf

    def _reach(self, off: int, n: int, what: str) -> int:
        if not self.mapped and not self.pa:
            raise HypervisorPanic(
                f"NULL pointer dereference: Xen {what} {self.name} at {off:#x}+{n}"
            )
        if not self.mapped:
            # The abort depends on the unmap that came first (a MEM point on the page): the
            # attempted access must say so, or the search never tries it the other way round.
            self.machine.sink.access(MEM, self.pa >> PAGE_SHIFT, write=what == "writes")
            raise HypervisorPanic(
                f"data abort: Xen {what} {self.name} at {off:#x}+{n} through a mapping it "
                "already dropped"
            )
        if off < 0 or off + n > self.size:
            raise HypervisorPanic(
                f"data abort: Xen {what} {off:#x}+{n} of {self.name}, past its "
                f"{self.size:#x}-byte mapping"
            )
        return self.pa + off

    def load(self, off: int, n: int) -> bytes:
        return self.machine.mem.read(self._reach(off, n, "reads"), n, "xen")

    def u8(self, off: int) -> int:
        return self.load(off, 1)[0]

    def u16(self, off: int) -> int:
        return int.from_bytes(self.load(off, 2), "little")

    def u32(self, off: int) -> int:
        return int.from_bytes(self.load(off, 4), "little")

    def u64(self, off: int) -> int:
        return int.from_bytes(self.load(off, 8), "little")

    def store(self, off: int, data: bytes) -> None:
        if data:
            self.machine.mem.write(self._reach(off, len(data), "writes"), data, "xen")

    def memset(self, off: int, value: int, n: int) -> None:
        if n:
            self.machine.mem.write(self._reach(off, n, "writes"), bytes([value & 0xFF]) * n, "xen")


class StackBuf(MappedBuf):
    """Memory private to Xen (a local array such as ``out_regs``): the same accesses as a
    :class:`MappedBuf`, which no other party can reach, so they report no event."""

    __slots__ = ("data",)

    def __init__(self, machine: Machine, size: int, name: str) -> None:
        super().__init__(machine, 0, size, name)
        self.data = bytearray(size)

    def load(self, off: int, n: int) -> bytes:
        self._reach(off, n, "reads")
        return bytes(self.data[off : off + n])

    def store(self, off: int, data: bytes) -> None:
        self._reach(off, len(data), "writes")
        self.data[off : off + len(data)] = data

    def memset(self, off: int, value: int, n: int) -> None:
        self._reach(off, n, "writes")
        self.data[off : off + n] = bytes([value & 0xFF]) * n


class Cursor:
    """A ``void **``: where in ``buf`` the next entry goes (``ffa_copy_info`` moves it)."""

    __slots__ = ("buf", "off")

    def __init__(self, buf: MappedBuf, off: int = 0) -> None:
        self.buf = buf
        self.off = off
