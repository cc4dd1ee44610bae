"""The public entry point: a machine with an SPMC, Xen's FF-A mediator and guest VMs.

``System()`` boots: it builds the SPMC with its partitions, probes it from Xen (context
``"boot"``: version, features, Xen's RX/TX pair, partition info, notifications), and is then
ready for ``create_vm``. A VM handle issues SMCs as one of its vCPUs (``vm.smc``), reads and
writes its RAM, and sees the virtual interrupts Xen injected.

Domain destruction follows Xen: ``domain_pause`` first (it waits until no vCPU of the domain is
inside a hypercall; under the checker the toolstack blocks until they leave, in a sequential
run none can be inside), then the mediator's teardown; the domain is freed when its last
reference goes (shares outstanding keep it as a zombie until the teardown timer reclaims them).
Time and deferred work are virtual: ``run_timers`` and ``run_tasklets`` run them on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import abi
from .machine import (
    P2M,
    AccessFault,
    Machine,
    SmcConduit,
)
from .machine.events import DOM, REF
from .machine.memory import PAGE_SHIFT, PAGE_SIZE
from .xen import variants
from .xen.ffa import Ffa
from .xen.ffa_private import ARM_SMCCC_NOT_SUPPORTED, Domain

if TYPE_CHECKING:
    from .pkvm.host import Host
    from .spmc import SecurePartition, Spmc

HYPERVISORS = ("xen", "pkvm")
"""What may stand between the caller and the SPMC (``System(hypervisor=...)``)."""

GUEST_RAM_BASE = 0x4000_0000
"""IPA of guest RAM page 0 (Xen's GUEST_RAM0_BASE)."""

ARCHES = ("aarch64", "aarch32")
"""What a VM's kernel runs as: ``d->arch.type`` (DOMAIN_64BIT or DOMAIN_32BIT)."""


class DomainCreationError(Exception):
    """Xen refused to create the domain (``errno`` as Xen's negative code, e.g. -EIO when a
    partition did not acknowledge VM_CREATED); the domain was torn down again."""

    def __init__(self, domid: int, errno: int) -> None:
        super().__init__(f"creating domain d{domid} failed: error {errno}")
        self.domid = domid
        self.errno = errno


class DomainDestroyedError(Exception):
    """A call through the handle of a domain that was destroyed."""


_MASK64 = abi.MASK64
_MASK32 = abi.MASK32
_ZEROS = (0,) * 17


class VM:
    """A guest domain: ``smc`` as one of its vCPUs, its RAM, its injected virtual IRQs.

    ``arch`` is ``"aarch64"`` or ``"aarch32"``. An AArch32 guest holds 32-bit registers: the
    values it passes are truncated to 32 bits, and it sees the low 32 bits of x0..x7 (r0..r7)
    of an answer; Xen never writes x8..x17 for it (``ffa_set_regs`` zeroes them only for a
    64-bit guest), so those come back as the guest left them."""

    def __init__(self, system: System, d: Domain, pages: int) -> None:
        self.system = system
        self.domain = d
        self.arch = "aarch64" if d.is_64bit else "aarch32"
        self.domid = d.domain_id
        self.id = d.domain_id + 1
        self.vcpus = d.max_vcpus
        self.pages = pages
        self.party = f"d{d.domain_id}"
        self._ctx_names = [f"d{d.domain_id}v{i}" for i in range(d.max_vcpus)]

    def __repr__(self) -> str:
        return f"<VM d{self.domid} id {self.id:#x}>"

    def ctx(self, vcpu: int = 0) -> str:
        """The context name of vCPU ``vcpu`` ("dNvI")."""
        return self._ctx_names[vcpu]

    # -- calls ----------------------------------------------------------------------------------
    def smc(self, fid: int, *args: int, vcpu: int = 0) -> abi.Regs:
        """Issue an SMC as vCPU ``vcpu``: x0 = ``fid``, x1.. = ``args``; the 18 result registers.

        Routed as Xen's vsmc does: FF-A function numbers go to the mediator, anything else (or
        a domain without FF-A) gets SMCCC NOT_SUPPORTED in x0."""
        d = self.domain
        if not 0 <= vcpu < self.vcpus:
            raise ValueError(f"{self!r} has no vCPU {vcpu} (it has {self.vcpus})")
        if len(args) > 17:
            raise ValueError(f"at most 18 registers, got {len(args) + 1}")
        m = self.system.machine
        sink = m.sink
        ctx = self._ctx_names[vcpu]
        sink.access(DOM, d.party, False)  # is the domain paused for destruction?
        if d.is_dying:
            sink.deschedule((ctx,))  # under the checker, this vCPU stops here for good
            raise DomainDestroyedError(f"{self!r} was destroyed: it cannot issue calls")
        # abi.regs(), inlined: this is the hot path of every call.
        mask = _MASK64 if d.is_64bit else _MASK32
        regs = (fid & mask, *map(mask.__and__, args), *_ZEROS[len(args) :])
        prev = m.current
        m.current = ctx
        sink.call("hvc", ctx, regs)
        sink.access(DOM, ctx, True)  # in a hypercall: domain_pause waits for its end
        d.in_hypercall += 1
        r = None
        xen = self.system.xen
        if xen.is_ffa_fid(regs[0]):
            r = xen.ffa_handle_call(d, regs)
            if r is not None and not xen.ffa_set_regs_clears_x8_x17(d):
                # Xen wrote x0..x7 only: x8..x17 are still the caller's.
                r = (*r[:8], *regs[8:])
        if r is None:
            r = (ARM_SMCCC_NOT_SUPPORTED, *regs[1:])  # vsmc writes x0 only
        if not d.is_64bit:
            r = (*map(_MASK32.__and__, r[:8]), *r[8:])  # what r0..r7 hold
        d.in_hypercall -= 1
        xen.rcu_quiescent(ctx)  # this CPU leaves Xen: RCU callbacks it held back may run
        sink.access(DOM, ctx, True)
        if not d.in_hypercall:
            # What this vCPU did is visible to a later domain_pause (vcpu_sleep_sync).
            sink.released(d.pause_lock)
        sink.ret("hvc", ctx, r)
        m.current = prev
        return r

    # -- memory ---------------------------------------------------------------------------------
    def ipa(self, n: int) -> int:
        """IPA of guest RAM page ``n``."""
        return GUEST_RAM_BASE + n * PAGE_SIZE

    def _translate(self, ipa: int, size: int) -> list[tuple[int, int]]:
        out = []
        pos = ipa
        end = ipa + size
        while pos < end:
            pa = self.domain.p2m.translate(pos)
            if pa is None:
                raise AccessFault(self.party, pos, size, "no RAM mapped at this IPA")
            n = min(end - pos, PAGE_SIZE - (pos & (PAGE_SIZE - 1)))
            out.append((pa, n))
            pos += n
        return out

    def write(self, ipa: int, data: bytes | bytearray) -> None:
        """Write ``data`` into guest RAM at ``ipa`` (as the guest: an event on each page)."""
        self.system.machine.sink.access(DOM, self.party, False)
        if self.domain.destroyed:
            raise DomainDestroyedError(f"{self!r} was destroyed")
        view = memoryview(bytes(data))
        pos = 0
        for pa, n in self._translate(ipa, len(view)):
            self.system.machine.mem.write(pa, view[pos : pos + n], self.party)
            pos += n

    def read(self, ipa: int, size: int) -> bytes:
        """``size`` bytes of guest RAM at ``ipa``."""
        self.system.machine.sink.access(DOM, self.party, False)
        if self.domain.destroyed:
            raise DomainDestroyedError(f"{self!r} was destroyed")
        return b"".join(
            self.system.machine.mem.read(pa, n, self.party) for pa, n in self._translate(ipa, size)
        )

    # -- virtual interrupts ---------------------------------------------------------------------
    def pending_virqs(self, vcpu: int = 0) -> list[int]:
        """The virtual IRQs injected into ``vcpu`` and not yet taken, oldest first."""
        return list(self.domain.vcpu[vcpu].injected)

    def take_virqs(self, vcpu: int = 0) -> list[int]:
        """Return and clear the virtual IRQs injected into ``vcpu`` (the guest took them)."""
        v = self.domain.vcpu[vcpu]
        out, v.injected = v.injected, []
        return out

    @property
    def destroyed(self) -> bool:
        return self.domain.is_dying


class System:
    """Machine + SPMC + Xen's mediator + VMs: the public API (see design.md).

    ``partitions`` defaults to ``ffasim.default_partitions()``; ``variant`` names a mediator
    variant (``ffasim.xen.variants.names()``; default ``"reference"``); ``vm_to_vm`` is Xen's
    ``CONFIG_FFA_VM_TO_VM``; ``machine`` lets the checker pass a machine with its sink
    installed, so that even the boot probe runs under it. ``spmc_version`` is the FF-A version
    the SPMC implements and ``spmc_max_vms`` the size of its VM table (Hafnium's build-time
    limit); ``spmc_ffa=False`` is firmware without FF-A, ``spmc_v1_2_properties`` an SPMC that
    reports v1.2 feature properties to every caller, ``spmc_unaligned`` one that accepts
    unaligned constituent addresses.

    ``hypervisor="pkvm"`` puts Linux pKVM's FF-A proxy in Xen's place (variants
    ``ffasim.pkvm.names()``, default ``"head"``): the caller is then the host kernel
    (``create_host``), and the system is ``ffasim.pkvm.PkvmSystem`` underneath (``pkvm_system``;
    ``pkvm`` is the hypervisor object).
    """

    def __init__(
        self,
        partitions: Sequence[SecurePartition] | None = None,
        variant: str | None = None,
        vm_to_vm: bool = False,
        *,
        machine: Machine | None = None,
        spmc_version: int = abi.FFA_VERSION_1_2,
        spmc_max_vms: int | None = None,
        hypervisor: str = "xen",
        spmc_ffa: bool = True,
        spmc_v1_2_properties: bool = False,
        spmc_unaligned: bool = False,
    ) -> None:
        from .spmc import Spmc, default_partitions

        if hypervisor not in HYPERVISORS:
            raise ValueError(f"unknown hypervisor {hypervisor!r} (known: {', '.join(HYPERVISORS)})")
        self.hypervisor = hypervisor
        self.vms: list[VM] = []
        if hypervisor == "pkvm":
            self._init_pkvm(
                partitions,
                variant or "head",
                machine=machine,
                spmc_version=spmc_version,
                spmc_max_vms=spmc_max_vms,
                spmc_ffa=spmc_ffa,
                spmc_v1_2_properties=spmc_v1_2_properties,
                spmc_unaligned=spmc_unaligned,
            )
            return
        variant = variant or "reference"
        cls = variants.get(variant)
        self.variant = variant
        self.machine = machine if machine is not None else Machine()
        parts = list(partitions) if partitions is not None else default_partitions()
        options: dict[str, Any] = {
            "ffa": spmc_ffa,
            "v1_2_properties": spmc_v1_2_properties,
            "unaligned": spmc_unaligned,
        }
        if spmc_max_vms is not None:
            options["max_vms"] = spmc_max_vms
        self.spmc: Spmc = Spmc(self.machine, parts, spmc_version, **options)
        self.conduit = SmcConduit(self.machine, self.spmc.entry)
        self.xen: Ffa = cls(self.machine, self.conduit, vm_to_vm)
        self.xen.complete_domain_destroy = self._complete_domain_destroy
        self.domains: dict[int, Domain] = self.xen.domains
        self.dead_domains: list[Domain] = []
        self._next_domid = 0
        self.spmc.on_sri = self.xen.notif_irq_handler
        m = self.machine
        prev = m.current
        m.current = "boot"
        self.probed = self.xen.ffa_probe()
        m.current = prev

    def __repr__(self) -> str:
        if self.hypervisor == "pkvm":
            return f"<System pkvm {self.variant}>"
        return f"<System {self.variant} with {len(self.vms)} VMs>"

    # -- pKVM -------------------------------------------------------------------------------------
    def _init_pkvm(
        self, partitions: Sequence[SecurePartition] | None, variant: str, **options: Any
    ) -> None:
        from .pkvm import PkvmSystem

        self.pkvm_system = PkvmSystem(partitions, variant, **options)
        self.variant = variant
        self.machine = self.pkvm_system.machine
        self.spmc = self.pkvm_system.spmc
        self.conduit = self.pkvm_system.conduit
        self.pkvm = self.pkvm_system.pkvm

    def create_host(self, cpus: int = 1, pages: int = 64) -> Host:
        """pKVM only: the host kernel, FF-A ID 0, with ``cpus`` CPUs (contexts ``"host0"``..)
        and ``pages`` pages of identity-mapped RAM; ``smc``/``read``/``write``/``ipa`` as a VM."""
        if self.hypervisor != "pkvm":
            raise ValueError("create_host() needs System(hypervisor='pkvm'): Xen serves VMs")
        return self.pkvm_system.create_host(cpus=cpus, pages=pages)

    # -- domains ----------------------------------------------------------------------------------
    def create_vm(self, vcpus: int = 1, pages: int = 64, arch: str = "aarch64") -> VM:
        """Create a domain with the next free domid (from 0), ``vcpus`` vCPUs and ``pages`` pages
        of physically contiguous RAM at IPA 0x40000000, and run Xen's FF-A domain init.
        ``arch`` is ``"aarch64"`` or ``"aarch32"`` (a 32-bit guest: its SMCs carry 32-bit
        values, and Xen treats it as ``is_64bit_domain()`` false once its kernel is loaded,
        which happens after the mediator's domain init, as in Xen's domain builder).

        Raises :class:`DomainCreationError` when the mediator refuses (after tearing down)."""
        if self.hypervisor == "pkvm":
            raise ValueError("pKVM's FF-A proxy serves the host kernel only: use create_host()")
        if vcpus < 1 or pages < 1:
            raise ValueError("a VM needs at least one vCPU and one page of RAM")
        if arch not in ARCHES:
            raise ValueError(f"unknown VM architecture {arch!r} (known: {', '.join(ARCHES)})")
        m = self.machine
        prev = m.current
        if prev == "boot":
            m.current = "toolstack"
        domid = self._next_domid
        self._next_domid += 1
        party = f"d{domid}"
        frames = m.heap.alloc_contiguous(pages, party, tag=f"{party} RAM")
        if frames is None:
            m.current = prev
            raise MemoryError(f"no room for {pages} pages of RAM for {party}")
        p2m = P2M(m, party)
        base_gfn = GUEST_RAM_BASE >> PAGE_SHIFT
        for n, f in enumerate(frames):
            p2m.map(base_gfn + n, f)
        d = Domain(m, domid, vcpus, p2m)
        d.ram = frames
        self.domains[domid] = d
        ret = self.xen.ffa_domain_init(d)
        if ret:
            # arch_domain_create failed: Xen still runs the teardown, then frees the domain.
            self._destroy_domain(d)
            m.current = prev
            raise DomainCreationError(domid, ret)
        # The toolstack loads the kernel now: d->arch.type is known from here on.
        d.is_64bit = arch == "aarch64"
        vm = VM(self, d, pages)
        self.vms.append(vm)
        m.current = prev
        return vm

    def destroy_vm(self, vm: VM) -> None:
        """Destroy ``vm``'s domain: pause it, run the mediator's teardown, drop the domain's
        own reference (it is freed now, or later when its last share is reclaimed)."""
        d = vm.domain
        if d.is_dying:
            raise DomainDestroyedError(f"{vm!r} is already destroyed")
        m = self.machine
        prev = m.current
        if prev == "boot":
            m.current = "toolstack"
        self.domain_pause(d)
        if vm in self.vms:
            self.vms.remove(vm)
        self._destroy_domain(d)
        m.current = prev

    def domain_pause(self, d: Domain) -> None:
        """Wait until no vCPU of ``d`` is inside a hypercall, then deschedule them for good
        (Xen's ``domain_pause`` on a dying domain: its vCPUs never run again)."""
        sink = self.machine.sink
        sink.access(DOM, d.party, True)
        d.is_dying = True
        vcpus = tuple(f"{d.party}v{i}" for i in range(d.max_vcpus))
        while True:
            for ctx in vcpus:
                sink.access(DOM, ctx, False)
            if not d.in_hypercall:
                break
            d.pause_waiters += 1
            sink.block(d.pause_lock)
            d.pause_waiters -= 1
        sink.acquired(d.pause_lock)
        sink.deschedule(vcpus)

    def _destroy_domain(self, d: Domain) -> None:
        self.machine.sink.access(DOM, d.party, True)
        d.is_dying = True
        self.xen.ffa_domain_teardown(d)
        self.xen.ffa_relinquish_resources(d)
        self.xen.put_domain(d)  # the domain's own reference

    def _complete_domain_destroy(self, d: Domain) -> None:
        """The last reference went: free the ctx and the RAM (frames still referenced by
        someone, a leaked share, stay allocated: the audit reports them)."""
        self.xen.ffa_free_domain_ctx(d)
        self.machine.sink.access(DOM, d.party, True)
        d.destroyed = True
        self.domains.pop(d.domain_id, None)
        self.dead_domains.append(d)
        heap = self.machine.heap
        sink = self.machine.sink
        for f in d.ram:
            sink.access(REF, f.mfn, False)
            if f.owner == d.party and f.refcount == 0:
                heap.free_page(f)
        d.p2m.clear()

    # -- virtual time and deferred work ---------------------------------------------------------
    def run_timers(self, advance: float = 1.0) -> int:
        """Advance virtual time by ``advance`` seconds and run Xen's teardown timer while it is
        due (context ``"timer"``); how many callbacks ran."""
        xen = self.xen
        xen.now += advance
        ran = 0
        m = self.machine
        while xen.ffa_teardown_timer is not None and xen.ffa_teardown_timer <= xen.now:
            xen.ffa_teardown_timer = None
            prev = m.current
            m.current = "timer"
            xen.ffa_teardown_timer_callback()
            m.current = prev
            ran += 1
        return ran

    def run_tasklets(self) -> int:
        """Run the SRI tasklet if it is scheduled (context ``"sri"``); how many ran."""
        xen = self.xen
        if not xen.notif_sri_tasklet_scheduled:
            return 0
        xen.notif_sri_tasklet_scheduled = False
        m = self.machine
        prev = m.current
        m.current = "sri"
        xen.notif_sri_action()
        m.current = prev
        return 1

    # -- audit ------------------------------------------------------------------------------------
    def audit(self) -> list[str]:
        """What is left behind, one line each (empty when clean): meant for after every VM is
        destroyed and the timers drained. Under pKVM: see ``PkvmSystem.audit``."""
        if self.hypervisor == "pkvm":
            return self.pkvm_system.audit()
        xen = self.xen
        out: list[str] = []
        own = {f.mfn for f in xen.ffa_fw_buffers()}
        live_parties = {d.party for d in self.domains.values()}
        for mfn, f in sorted(self.machine.mem.frames.items()):
            if f.owner == "xen" and mfn not in own:
                out.append(f"xen page {mfn:#x} ({f.tag or 'untagged'}) still allocated")
            elif f.owner is not None and f.owner.startswith("d") and f.owner not in live_parties:
                if f.refcount:
                    out.append(
                        f"page {mfn:#x} of destroyed {f.owner} still referenced "
                        f"({f.refcount} reference{'s' if f.refcount > 1 else ''})"
                    )
                else:
                    out.append(f"page {mfn:#x} of destroyed {f.owner} still allocated")
        for d in self.domains.values():
            if d.is_dying:
                out.append(f"domain {d.party} is a zombie ({d.refcnt} references left)")
            ctx = d.tee
            if ctx is not None and d.is_dying:
                for shm in ctx.shm_list.value:
                    out.append(f"{d.party}: share {shm.handle:#x} not reclaimed")
        for shm in xen.leaked_shms:
            out.append(
                f"share {shm.handle:#x} of vm {shm.sender_id:#x} dropped after a permanent "
                f"reclaim failure ({len(shm.pages)} pages stay referenced)"
            )
        for ctx in xen.ffa_teardown_head.value:
            out.append(f"vm {ctx.ffa_id:#x} still on the teardown list")
        for ctx in xen.ffa_ctx_head:
            if ctx.teardown_d.is_dying:
                out.append(f"vm {ctx.ffa_id:#x} still on the FF-A context list")
        live_ids = {d.domain_id + 1 for d in self.domains.values() if not d.is_dying}
        for vm_id in self.spmc.vms:
            if vm_id not in live_ids:
                out.append(f"SPMC still tracks destroyed VM {vm_id:#x} (mailbox or bitmap)")
        for handle, st in sorted(self.spmc.shares.items()):
            if not abi.is_secure_id(st.sender) and st.sender not in live_ids:
                out.append(f"SPMC share {handle:#x} of destroyed VM {st.sender:#x} remains")
        out += self.spmc.invariant_problems()
        for lock in self.machine.held:
            out.append(f"lock {lock.name} still held by {lock.describe_holder()}")
        return out

    # -- convenience ------------------------------------------------------------------------------
    def vm(self, vm_id: int) -> VM | None:
        """The live VM with FF-A ID ``vm_id``."""
        for vm in self.vms:
            if vm.id == vm_id:
                return vm
        return None

    def describe(self) -> dict[str, Any]:
        """A summary for front ends: variant, negotiated firmware version, partitions."""
        if self.hypervisor == "pkvm":
            return self.pkvm_system.describe()
        return {
            "variant": self.variant,
            "ffa_fw_version": abi.version_str(self.xen.ffa_fw_version),
            "partitions": [f"{int.from_bytes(e[:2], 'little'):#06x}" for e in self.xen.sp_list],
            "vms": [vm.id for vm in self.vms],
        }
