"""The host kernel as an FF-A caller: FF-A ID 0, identity-mapped RAM, several CPUs.

A :class:`Host` handle is what ``system.create_host()`` returns, with a VM handle's calling
surface (``smc``, ``read``, ``write``, ``ipa``, ``id``, ``pages``, ``vcpus``), so that the guest
FF-A driver (``ffasim.guest``) and scenario code drive either. Each CPU is a context for the
checker (``"host0"``, ``"host1"``...). The host's stage-2 is an identity map: ``ipa(n)`` is the
physical address of RAM page ``n``, and the host may touch any page of memory pKVM still maps
for it (not one donated to EL2 or to a guest: that is an ``AccessFault``, as the stage-2 fault
the host would take).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import abi
from ..machine import AccessFault, Frame
from ..machine.events import P2M
from ..machine.memory import PAGE_SHIFT, PAGE_SIZE
from .ffa import KvmCpuContext
from .mem_protect import HOST_PARTY, NOPAGE

if TYPE_CHECKING:
    from .system import PkvmSystem

_MASK64 = abi.MASK64
_ZEROS = (0,) * 17


class Host:
    """The host kernel: ``smc`` as one of its CPUs, its RAM."""

    id = 0
    """The host's FF-A ID, shared with the hypervisor."""

    def __init__(self, system: PkvmSystem, frames: list[Frame], cpus: int) -> None:
        self.system = system
        self.frames = frames
        self.pages = len(frames)
        self.vcpus = cpus
        self.party = HOST_PARTY
        self.host_ctxt = [KvmCpuContext(i) for i in range(cpus)]
        self._ctx_names = [f"host{i}" for i in range(cpus)]

    def __repr__(self) -> str:
        return f"<pKVM host, {self.vcpus} CPUs, {self.pages} pages>"

    def ctx(self, vcpu: int = 0) -> str:
        """The context name of CPU ``vcpu`` ("hostN")."""
        return self._ctx_names[vcpu]

    # -- calls ------------------------------------------------------------------------------------
    def smc(self, fid: int, *args: int, vcpu: int = 0) -> abi.Regs:
        """Issue an SMC on CPU ``vcpu``: x0 = ``fid``, x1.. = ``args`` (the rest 0); the 18
        registers the host finds when EL2 returns (``handle_host_smc``)."""
        if not 0 <= vcpu < self.vcpus:
            raise ValueError(f"{self!r} has no CPU {vcpu} (it has {self.vcpus})")
        if len(args) > 17:
            raise ValueError(f"at most 18 registers, got {len(args) + 1}")
        m = self.system.machine
        sink = m.sink
        ctx = self._ctx_names[vcpu]
        regs = (fid & _MASK64, *map(_MASK64.__and__, args), *_ZEROS[len(args) :])
        prev = m.current
        m.current = ctx
        sink.call("hvc", ctx, regs)  # the SMC traps to EL2: a call into the hypervisor
        host_ctxt = self.host_ctxt[vcpu]
        host_ctxt.regs[:] = regs
        self.system.pkvm.handle_host_smc(host_ctxt)
        r = tuple(host_ctxt.regs)
        sink.ret("hvc", ctx, r)
        m.current = prev
        return r

    # -- memory -----------------------------------------------------------------------------------
    def ipa(self, n: int) -> int:
        """The address of RAM page ``n`` (IPA = PA: the host's stage-2 is an identity map)."""
        return self.frames[0].pa + n * PAGE_SIZE

    def _check(self, pa: int, size: int) -> None:
        """The host stage-2: every page of [pa, pa + size) must be memory the host still has."""
        vmemmap = self.system.pkvm.hyp_vmemmap
        access = self.system.machine.sink.access
        page = pa & ~(PAGE_SIZE - 1)
        while page < pa + size:
            pfn = page >> PAGE_SHIFT
            access(P2M, ("host", pfn), False)
            entry = vmemmap.get(pfn)
            if entry is None:
                raise AccessFault(self.party, pa, size, "not memory")
            if entry.host_state is NOPAGE:
                raise AccessFault(self.party, pa, size, f"page owned by {entry.frame.owner}")
            page += PAGE_SIZE

    def write(self, ipa: int, data: bytes | bytearray) -> None:
        """Write ``data`` at ``ipa`` as the host (an event on each page)."""
        self._check(ipa, len(data))
        self.system.machine.mem.write(ipa, bytes(data), self.party)

    def read(self, ipa: int, size: int) -> bytes:
        """``size`` bytes at ``ipa``, as the host reads them."""
        self._check(ipa, size)
        return self.system.machine.mem.read(ipa, size, self.party)


class Guest:
    """A protected guest's memory, donated by the host: what FF-A must never reach. The model
    runs no guest code; ``pa(n)`` is the address of its page ``n``."""

    def __init__(self, party: str, frames: list[Frame]) -> None:
        self.party = party
        self.frames = frames
        self.pages = len(frames)

    def __repr__(self) -> str:
        return f"<pKVM guest {self.party}, {self.pages} pages>"

    def pa(self, n: int) -> int:
        return self.frames[0].pa + n * PAGE_SIZE
