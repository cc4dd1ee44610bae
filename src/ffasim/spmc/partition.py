"""Secure partitions programmable in Python (the public ``SecurePartition`` API).

A partition is an FF-A endpoint in the secure world whose behaviour is a Python function:
``handler(sp, msg)`` runs when a direct request reaches it and returns the payload of the
direct response. Inside a handler the partition talks to the SPMC only through
:meth:`SecurePartition.smc` with real descriptors in its own RX/TX buffers, and touches memory
only through :meth:`read` / :meth:`write`, which fault (``AccessFault``) outside its own pages
and the pages it retrieved and has not relinquished.

A handler that raises is a firmware crash: the exception propagates to whoever made the SMC.

A partition with several execution contexts (``exec_ctx``) runs a handler on each at once: the
SPMC takes no lock around a handler, so two requests on two CPUs interleave at the machine's
scheduling points. State the contexts share must go through the machine, as Xen's does, for
the checker to see it: :meth:`SecurePartition.atomic`, :meth:`~SecurePartition.spinlock` and
:meth:`~SecurePartition.guarded` (one object per name and partition), and memory through
:meth:`~SecurePartition.read` / :meth:`~SecurePartition.write`. Plain Python attributes are
invisible to it: the code between two scheduling points runs as one step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .. import abi
from ..machine import AccessFault, Atomic, Frame, Guarded, Machine, Spinlock
from ..machine.events import MEM
from ..machine.memory import PAGE_MASK, PAGE_SHIFT

if TYPE_CHECKING:
    from .spmc import Spmc

# Pages of private memory each partition gets besides its RX/TX pair (its "heap": what it may
# share, lend or donate to other partitions).
SP_PRIVATE_PAGES = 4


@dataclass(frozen=True, slots=True)
class DirectMessage:
    """A direct request as a partition receives it.

    ``payload`` is x3..x7 (5 ints) for FFA_MSG_SEND_DIRECT_REQ_32/64 and x4..x17 (14 ints) for
    FFA_MSG_SEND_DIRECT_REQ2; ``uuid`` is the 16-byte service UUID of a REQ2 (else empty).
    """

    sender: int
    receiver: int
    payload: tuple[int, ...]
    fid: int
    uuid: bytes = b""


Handler = Callable[["SecurePartition", DirectMessage], Sequence[int]]
VmHook = Callable[[int], int]
_S = TypeVar("_S", Atomic, Spinlock, Guarded[Any])


class SecurePartition:
    """A secure partition: its manifest fields, behaviour, and (once attached) its buffers.

    ``properties`` are the FF-A partition properties the manifest declares (FF-A v1.2 Table
    6.2); the SPMC reports them masked as Hafnium does. ``on_vm_created`` / ``on_vm_destroyed``
    are called for the framework messages when ``properties`` bits 6 / 7 subscribe; they return
    the status word (0 or an FF-A error code). ``ffa_version`` is the version the partition
    speaks (descriptor layouts, partition-info format), by default the SPMC's.

    Handler results: a sequence of up to 5 ints (up to 14 for REQ2) is the response payload,
    zero-padded; an 18-register tuple whose x0 is FFA_ERROR (``abi.error(code)``) makes the
    partition answer FFA_ERROR with that code instead of a direct response.
    """

    def __init__(
        self,
        id: int,
        uuid: str | bytes,
        exec_ctx: int = 1,
        properties: int = abi.FFA_PART_PROP_DIRECT_REQ_RECV | abi.FFA_PART_PROP_AARCH64_STATE,
        handler: Handler | None = None,
        on_vm_created: VmHook | None = None,
        on_vm_destroyed: VmHook | None = None,
        ffa_version: int | None = None,
    ) -> None:
        if not 0x8001 <= id <= 0xFFBF:
            raise ValueError(f"a secure partition ID is 0x8001..0xffbf, got 0x{id:x}")
        self.id = id
        self.uuid = uuid
        self.uuid_bytes = abi.uuid_bytes(uuid)
        self.exec_ctx = exec_ctx
        self.properties = properties
        self.handler = handler
        self.on_vm_created = on_vm_created
        self.on_vm_destroyed = on_vm_destroyed
        self.ffa_version = ffa_version
        """The FF-A version the partition speaks (its manifest's ``ffa-version``); ``None``
        until adopted means the SPMC's own version."""
        self.party = f"sp{id:04x}"
        # Set when an Spmc adopts the partition at boot.
        self.spmc: Spmc | None = None
        self.rx = 0
        self.tx = 0
        self.pages: list[int] = []
        """Physical addresses of the partition's private pages."""
        self._shared: dict[str, Atomic | Spinlock | Guarded[Any]] = {}

    def __repr__(self) -> str:
        return f"<SecurePartition 0x{self.id:04x} {abi.uuid_str(self.uuid_bytes)}>"

    # -- state shared by the execution contexts ---------------------------------------------
    @property
    def machine(self) -> Machine:
        """The machine the partition runs on (once an SPMC adopted it)."""
        return self._attached().machine

    def atomic(self, name: str, value: int = 0) -> Atomic:
        """The partition's atomic integer ``name``, made with ``value`` on first use. Each
        operation (``read``, ``set``, ``add``, ``cmpxchg``...) is one scheduling point and
        orders what surrounds it: ``v = a.read(); a.set(v + 1)`` can lose an update that
        ``a.add(1)`` cannot."""
        return self._shared_object(name, Atomic, lambda n: Atomic(self.machine, n, value))

    def spinlock(self, name: str) -> Spinlock:
        """The partition's spinlock ``name``: take it with ``ffasim.machine.spin_lock`` and
        release it with ``spin_unlock``. The checker reports a handler that returns with it
        held (``lock-leak``) and contexts that wait for each other (``deadlock``)."""
        return self._shared_object(name, Spinlock, lambda n: Spinlock(self.machine, n))

    def guarded(self, name: str, value: Any = None, guard: Spinlock | None = None) -> Guarded[Any]:
        """The partition's shared field ``name`` (``get``/``set``), made with ``value`` on
        first use: accessed under ``guard`` (one of the partition's spinlocks), or, without a
        guard, written once and then only read. The checker reports every access that breaks
        the rule as a ``data-race``."""
        return self._shared_object(
            name, Guarded, lambda n: Guarded(self.machine, n, value, guard)
        )

    def _shared_object(self, name: str, kind: type[_S], make: Callable[[str], _S]) -> _S:
        obj = self._shared.get(name)
        if obj is None:
            obj = self._shared[name] = make(f"{self.party}.{name}")
        if not isinstance(obj, kind):
            what = f"{type(obj).__name__}, asked for as {kind.__name__}"
            raise TypeError(f"{self.party}.{name} was made as {what}")
        return obj

    # -- calls into the SPMC ----------------------------------------------------------------
    def smc(self, fid: int, *args: int) -> abi.Regs:
        """Call the SPMC as this partition: ``x0 = fid``, ``x1.. = args``; returns x0..x17."""
        spmc = self._attached()
        r = abi.regs(fid, *args)
        sink = spmc.machine.sink
        sink.call("smc", self.party, r)
        out = spmc.entry(self.id, r)
        sink.ret("smc", self.party, out)
        return out

    # -- memory -----------------------------------------------------------------------------
    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` (the partition's addresses are physical addresses)."""
        spmc = self._check(addr, n, write=False)
        return spmc.machine.mem.read(addr, n, self.party)

    def write(self, addr: int, data: bytes | bytearray) -> None:
        """Write ``data`` at ``addr``; faults on memory the partition may not write."""
        spmc = self._check(addr, len(data), write=True)
        spmc.machine.mem.write(addr, data, self.party)

    def may_access(self, frame: Frame, write: bool) -> bool:
        """Whether this partition may touch ``frame`` now (its own memory not lent away, or a
        page it retrieved and has not relinquished; writes need write permission)."""
        spmc = self._attached()
        return self._may_access(spmc, spmc.endpoints[self.id].mapped, frame, write)

    def _may_access(self, spmc: Spmc, mapped: dict[int, bool], frame: Frame, write: bool) -> bool:
        perm = mapped.get(frame.mfn)
        if perm is not None:
            return perm or not write
        return frame.owner == self.party and frame.secure and spmc.sender_has_access(frame.mfn)

    def _check(self, addr: int, n: int, write: bool) -> Spmc:
        """Fault unless the partition may access ``[addr, addr + n)``; return its SPMC."""
        if n < 0 or addr < 0:
            raise AccessFault(self.party, addr, n, "negative address or size")
        spmc = self._attached()
        if n == 0:
            return spmc
        mem = spmc.machine.mem
        mapped = spmc.endpoints[self.id].mapped
        first = addr >> PAGE_SHIFT
        last = (addr + n - 1) >> PAGE_SHIFT
        access = spmc.machine.sink.access
        for mfn in range(first, last + 1):
            # The MMU reads the partition's mappings with no SPMC lock (vm.declare_pages).
            access(MEM, mfn, False)
            frame = mem.frames.get(mfn)
            if frame is None:
                try:
                    frame = mem.frame(mfn)
                except AccessFault:
                    raise AccessFault(self.party, addr, n, "outside physical memory") from None
            if not self._may_access(spmc, mapped, frame, write):
                why = (
                    "read-only mapping"
                    if self._may_access(spmc, mapped, frame, False)
                    else "not mapped"
                )
                raise AccessFault(self.party, (mfn << PAGE_SHIFT) | (addr & PAGE_MASK), n, why)
        return spmc

    def _attached(self) -> Spmc:
        if self.spmc is None:
            raise RuntimeError(f"{self!r} is not attached to an SPMC")
        return self.spmc
