"""A machine with an SPMC, pKVM's FF-A proxy and the host kernel: what
``ffasim.System(hypervisor="pkvm")`` assembles (``ffasim.system`` dispatches here).

Boot follows pKVM: the proxy's pages (``hyp_ffa_proxy_pages()``: its TX, RX and
``ffa_desc_buf``) are carved out for EL2, then ``hyp_ffa_init`` asks EL3 for FF-A (context
``"boot"``). A negative answer means pKVM itself fails to initialise: :class:`PkvmInitError`.
The host's RAM comes next (``create_host``), then any protected guest's RAM, donated from the
host (``create_guest``), so that host and guest pages are neighbours in physical memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import abi
from ..machine import Frame, Machine, SmcConduit
from . import arm_ffa, variants
from .host import Guest, Host
from .hyp_main import Pkvm
from .mem_protect import HOST_PARTY, NOPAGE, OWNED, PKVM_PARTY, SHARED_BORROWED, SHARED_OWNED

if TYPE_CHECKING:
    from ..spmc import SecurePartition, Spmc


class PkvmInitError(Exception):
    """pKVM's initialisation failed in ``hyp_ffa_init`` (``errno`` negative, e.g. -95,
    EOPNOTSUPP, for a firmware version it cannot use): the host would boot without pKVM."""

    def __init__(self, errno: int) -> None:
        super().__init__(f"pKVM init failed: hyp_ffa_init returned {errno}")
        self.errno = errno


class PkvmSystem:
    """Machine + SPMC + pKVM (``pkvm``: the hypervisor object of ``variant``) + the host.

    SPMC options: ``spmc_ffa=False`` is firmware without FF-A (every FF-A call answered
    NOT_SUPPORTED in w0, 32 bits); ``spmc_v1_2_properties`` makes FFA_FEATURES report v1.2
    properties to every caller; ``spmc_unaligned`` accepts constituents at unaligned addresses
    (and maps every page they touch). ``machine`` lets the checker pass its own.
    """

    def __init__(
        self,
        partitions: Sequence[SecurePartition] | None = None,
        variant: str = "head",
        *,
        machine: Machine | None = None,
        spmc_version: int = abi.FFA_VERSION_1_2,
        spmc_max_vms: int | None = None,
        spmc_ffa: bool = True,
        spmc_v1_2_properties: bool = False,
        spmc_unaligned: bool = False,
    ) -> None:
        from ..spmc import Spmc, default_partitions

        cls = variants.get(variant)
        self.variant = variant
        self.machine = m = machine if machine is not None else Machine()
        parts = list(partitions) if partitions is not None else default_partitions()
        options: dict[str, Any] = {
            "ffa": spmc_ffa,
            "v1_2_properties": spmc_v1_2_properties,
            "unaligned": spmc_unaligned,
        }
        if spmc_max_vms is not None:
            options["max_vms"] = spmc_max_vms
        self.spmc: Spmc = Spmc(m, parts, spmc_version, **options)
        self.conduit = SmcConduit(m, self.spmc.entry, caller=PKVM_PARTY)
        self.forward = SmcConduit(m, self.spmc.entry, caller=HOST_PARTY)
        self.pkvm: Pkvm = cls(m, self.conduit, self.forward)
        self.host: Host | None = None
        self.guests: list[Guest] = []
        prev = m.current
        m.current = "boot"
        frames = m.heap.alloc_contiguous(arm_ffa.hyp_ffa_proxy_pages(), PKVM_PARTY)
        if frames is None:
            raise MemoryError("no room for the pKVM FF-A proxy's pages")
        for f, tag in zip(frames, ("hyp_buffers.tx", "hyp_buffers.rx"), strict=False):
            f.tag = tag
        for f in frames[2:]:
            f.tag = "ffa_desc_buf"
        self.pkvm.register_memory(frames, NOPAGE, OWNED)
        self.init_ret = self.pkvm.hyp_ffa_init(frames[0].pa)
        m.current = prev
        if self.init_ret < 0:
            raise PkvmInitError(self.init_ret)

    def __repr__(self) -> str:
        return f"<pKVM system {self.variant}>"

    # -- the host and guests ----------------------------------------------------------------------
    def create_host(self, cpus: int = 1, pages: int = 64) -> Host:
        """The host kernel with ``cpus`` CPUs and ``pages`` pages of RAM (physically contiguous,
        identity-mapped, all host OWNED). There is one host."""
        if self.host is not None:
            raise ValueError("the pKVM system already has its host")
        if cpus < 1 or pages < 1:
            raise ValueError("the host needs at least one CPU and one page of RAM")
        self.host = Host(self, self._alloc_host_pages(pages, "host RAM"), cpus)
        return self.host

    def create_guest(self, pages: int = 1) -> Guest:
        """A protected guest: ``pages`` pages of host memory donated to it (host NOPAGE),
        right after the memory allocated so far."""
        if pages < 1:
            raise ValueError("a guest needs at least one page of RAM")
        party = f"g{len(self.guests)}"
        frames = self._alloc_host_pages(pages, f"{party} RAM")
        m = self.machine
        prev = m.current
        if prev == "boot":
            m.current = "toolstack"
        ret = self.pkvm._pkvm_host_donate_guest(frames[0].mfn, pages, party)
        m.current = prev
        if ret:
            raise RuntimeError(f"__pkvm_host_donate_guest failed: {ret}")
        guest = Guest(party, frames)
        self.guests.append(guest)
        return guest

    def _alloc_host_pages(self, pages: int, tag: str) -> list[Frame]:
        frames = self.machine.heap.alloc_contiguous(pages, HOST_PARTY, tag=tag)
        if frames is None:
            raise MemoryError(f"no room for {pages} pages of {tag}")
        self.pkvm.register_memory(frames, OWNED, NOPAGE)
        return frames

    # -- audit ------------------------------------------------------------------------------------
    def audit(self) -> list[str]:
        """What is inconsistent or left behind, one line each (empty when clean): locks held,
        pages shared with FF-A that no SPMC share covers (stuck), SPMC shares of pages the host
        did not share, the hypervisor's RX left FULL, the SPMC's own invariants."""
        out = [f"lock {lk.name} still held by {lk.describe_holder()}" for lk in self.machine.held]
        pkvm = self.pkvm
        covered: dict[int, int] = {}
        for handle, share in sorted(self.spmc.shares.items()):
            if not share.complete:
                out.append(f"SPMC share 0x{handle:x} is incomplete (fragments still missing)")
            for f in share.frames:
                covered[f.mfn] = handle
                state = pkvm.host_page_state(f.mfn)
                if state is not SHARED_OWNED or f.owner != HOST_PARTY:
                    what = state.name if state is not None else "not memory"
                    out.append(
                        f"SPMC share 0x{handle:x} covers page 0x{f.mfn:x} ({f.owner or 'free'}) "
                        f"whose host state is {what}, not SHARED_OWNED"
                    )
        for pfn, page in sorted(pkvm.hyp_vmemmap.items()):
            if (
                page.host_state is SHARED_OWNED
                and page.hyp_state is not SHARED_BORROWED
                and pfn not in covered
            ):
                out.append(
                    f"host page 0x{pfn:x} is shared with FF-A (SHARED_OWNED) but no SPMC "
                    f"share covers it"
                )
        hyp = self.spmc.mailboxes.get(0)
        if hyp is not None and hyp.mapped and hyp.state.name == "FULL":
            out.append("the hypervisor's RX buffer is FULL at the SPMC: nobody released it")
        out += self.spmc.invariant_problems()
        return out

    def describe(self) -> dict[str, Any]:
        """A summary for front ends: hypervisor, variant, negotiated version, partitions."""
        pkvm = self.pkvm
        negotiated = bool(pkvm.has_version_negotiated.value)
        return {
            "hypervisor": "pkvm",
            "variant": self.variant,
            "ffa_version": abi.version_str(pkvm.hyp_ffa_version.value)
            if pkvm.hyp_ffa_version.value
            else None,
            "negotiated": negotiated,
            "partitions": [f"{sp:#06x}" for sp in sorted(self.spmc.partitions)],
            "host_cpus": self.host.vcpus if self.host is not None else 0,
        }
