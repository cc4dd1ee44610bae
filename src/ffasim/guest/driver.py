"""A guest FF-A driver, modelled on Linux's ``drivers/firmware/arm_ffa``.

It is what a guest kernel does on the wire: every method issues real FF-A calls through
``vm.smc(..., vcpu=)`` and builds byte-exact descriptors in the guest's own TX buffer (transaction
descriptors, indirect-message headers) or reads them from its RX buffer (partition information,
indirect messages). Nothing reaches into the mediator or the SPMC.

Errors are never hidden. With ``check=True`` (the default) a method whose call did not succeed
raises :class:`FfaCallError`, carrying the function ID, the raw registers and the FF-A code. With
``check=False`` it returns the raw registers of the failing call instead of the parsed result,
so a test can assert on exact codes without ``try``.

State that belongs to the guest as a whole (the negotiated version, where the RX/TX buffers are,
which pages the driver handed out) lives in one :class:`GuestState` per VM, shared by the
drivers of its vCPUs (:meth:`FfaDriver.on_vcpu`), as one Linux driver serves every CPU.

Limits: single-fragment memory transactions only (as Xen accepts); FFA_INTERRUPT and FFA_YIELD
answers to a direct request are returned as errors rather than resumed with FFA_RUN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from .. import abi, desc
from ..machine.events import GUEST

if TYPE_CHECKING:
    from uuid import UUID

    from ..desc import PartitionInfo

Regs = abi.Regs

# Where the driver puts its RX and TX buffers by default: the first two pages of guest RAM.
# Pages for sharing are handed out after them.
DEFAULT_RX_PAGE = 0
DEFAULT_TX_PAGE = 1

# FFA_MSG_SEND2 has no flags a VM may set (w2 bit 1, "delay SRI", is for partitions only).
_SEND2_FLAGS = 0


class FfaCallError(Exception):
    """An FF-A call answered something other than the success the caller asked for.

    ``fid`` is the function called, ``regs`` the 18 registers it returned, ``code`` the FF-A
    error (``abi.FFA_RET_*``, negative) or 0 when the answer was not an FFA_ERROR at all (an
    unexpected function ID such as FFA_INTERRUPT, or SMCCC NOT_SUPPORTED in x0).
    """

    def __init__(self, fid: int, regs: Regs, note: str = "") -> None:
        self.fid = fid
        self.regs = regs
        self.code = abi.error_code(regs)
        if not self.code and (regs[0] & abi.MASK32) == abi.MASK32:
            self.code = abi.FFA_RET_NOT_SUPPORTED  # FFA_VERSION / SMCCC: NOT_SUPPORTED in w0
        self.note = note
        text = f"{abi.name(fid)} returned {abi.describe(regs)}"
        super().__init__(f"{text}: {note}" if note else text)

    @property
    def error_name(self) -> str:
        """``'DENIED'`` for FFA_ERROR(DENIED); the answer's description for anything else."""
        if self.code:
            return abi.error_name(self.code)
        if self.fid == abi.FFA_VERSION:
            return f"version {abi.version_str(self.regs[0])}"
        return abi.describe(self.regs)


class DriverError(ValueError):
    """The driver cannot do what it was asked before any call is made: no buffer mapped, no
    RAM page left, a payload too long for the registers. A guest kernel's own -EINVAL."""


class NotificationBitmaps(NamedTuple):
    """What FFA_NOTIFICATION_GET returned: the pending bitmaps by source."""

    sp: int
    vm: int
    spm: int
    hyp: int


class NotificationInfo(NamedTuple):
    """What FFA_NOTIFICATION_INFO_GET returned: ``lists`` of (endpoint ID, *vCPU IDs)."""

    more: bool
    lists: tuple[tuple[int, ...], ...]


_STATE_FIELDS = frozenset({"version", "rx_page", "tx_page", "page_count", "next_page", "shares"})


@dataclass
class GuestState:
    """What the guest kernel knows about its FF-A setup; shared by all vCPUs of one VM.

    Every vCPU's driver reads and changes it, without a scheduling point: once bound to its
    VM's machine (:meth:`bind`), each access is declared to the machine's sink (kind
    ``"guest"``, the VM's party), so that the checker orders a vCPU's unmap before or after
    another vCPU's use of the buffers as it would any shared state.
    """

    version: int | None = None
    """The negotiated FF-A version (None until :meth:`FfaDriver.negotiate` succeeded)."""
    rx_page: int | None = None
    tx_page: int | None = None
    page_count: int = 0
    """Size of each buffer in 4 KiB pages (0 when not mapped)."""
    next_page: int = 2
    """The lowest RAM page :meth:`FfaDriver.alloc_pages` may hand out next."""
    shares: dict[int, tuple[int, ...]] = field(default_factory=dict)
    """Handle -> RAM pages, for the shares this guest made and has not reclaimed (change it
    through :meth:`changed`: a dict updated in place is a write the checker must see)."""

    _machine: Any = None  # not a field: set by bind()
    _party = ""

    def bind(self, machine: Any, party: str) -> None:
        """Declare every later access to ``machine``'s sink as guest state of ``party``."""
        object.__setattr__(self, "_machine", machine)
        object.__setattr__(self, "_party", party)

    def changed(self) -> None:
        """Declare a write (before changing ``shares`` in place)."""
        self._declare(True)

    def _declare(self, write: bool) -> None:
        m = object.__getattribute__(self, "_machine")
        if m is not None:
            m.sink.access(GUEST, object.__getattribute__(self, "_party"), write)

    def __getattribute__(self, name: str) -> Any:
        if name in _STATE_FIELDS:
            object.__getattribute__(self, "_declare")(False)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _STATE_FIELDS:
            self._declare(True)
        object.__setattr__(self, name, value)


class FfaDriver:
    """The FF-A driver of one VM, issuing its calls on vCPU ``vcpu``.

    ``vm`` is a :class:`ffasim.system` VM handle (``vm.smc``, ``vm.ipa``, ``vm.read``,
    ``vm.write``, ``vm.id``, ``vm.pages``).
    """

    def __init__(self, vm: Any, vcpu: int = 0, *, state: GuestState | None = None) -> None:
        self.vm = vm
        self.vcpu = vcpu
        self.state = state if state is not None else GuestState()
        machine = getattr(getattr(vm, "system", None), "machine", None)
        if machine is not None:
            self.state.bind(machine, getattr(vm, "party", ""))
        self.last: Regs = abi.regs()
        """The registers the last call returned."""
        self.last_fid: int | None = None
        """The function the last call issued (None before the first)."""

    def on_vcpu(self, vcpu: int) -> FfaDriver:
        """A driver for another vCPU of the same VM, sharing this one's guest state."""
        return FfaDriver(self.vm, vcpu, state=self.state)

    @property
    def id(self) -> int:
        """This VM's FF-A ID (what FFA_ID_GET answers; Linux asks once at probe)."""
        return int(self.vm.id)

    @property
    def version(self) -> int:
        """The negotiated version; 1.2 is assumed by layouts if nothing was negotiated yet."""
        return self.state.version if self.state.version is not None else abi.FFA_VERSION_1_2

    # -- raw calls ---------------------------------------------------------------------------

    def word_bits(self, bits: Literal[32, 64] | None = None) -> int:
        """The calling convention to use: ``bits`` when given, else the VM's own (SMC64 for an
        AArch64 guest; an AArch32 guest can only issue SMC32 calls, as 32-bit Linux does)."""
        if bits is not None:
            return bits
        return 32 if getattr(self.vm, "arch", "aarch64") == "aarch32" else 64

    def call(self, fid: int, *args: int, check: bool = False) -> Regs:
        """Issue ``fid`` with ``args`` in x1.. on this vCPU and return the 18 result registers.

        With ``check=True`` an FFA_ERROR answer raises :class:`FfaCallError`.
        """
        r: Regs = tuple(self.vm.smc(fid, *args, vcpu=self.vcpu))
        self.last, self.last_fid = r, fid
        if check and (abi.is_error(r) or (r[0] & abi.MASK32) == abi.MASK32):
            raise FfaCallError(fid, r)
        return r

    def _expect(self, fid: int, r: Regs, ok: Iterable[int], check: bool) -> bool:
        """Whether ``r`` answers ``fid`` with one of the function IDs ``ok``; raise if not and
        ``check``. Returns False when the caller should hand ``r`` back raw."""
        if (r[0] & abi.MASK32) in ok or r[0] in ok:
            return True
        if check:
            raise FfaCallError(fid, r)
        return False

    def _success(self, fid: int, r: Regs, check: bool) -> bool:
        return self._expect(fid, r, (abi.FFA_SUCCESS_32, abi.FFA_SUCCESS_64), check)

    # -- setup and discovery ------------------------------------------------------------------

    def negotiate(self, version: int = abi.FFA_VERSION_1_2, *, check: bool = True) -> int | Regs:
        """FFA_VERSION: offer ``version``; return the version both sides will use.

        Like Linux: a callee with the same major and a lower minor wins; a higher minor keeps
        ours. Another major, or NOT_SUPPORTED in w0, is a failure.
        """
        r = self.call(abi.FFA_VERSION, version)
        theirs = r[0] & abi.MASK32
        if theirs & 0x80000000 or abi.version_major(theirs) != abi.version_major(version):
            if check:
                raise FfaCallError(abi.FFA_VERSION, r, "incompatible version")
            return r
        use = min(version, theirs)
        self.state.version = use
        return use

    def id_get(self, *, check: bool = True) -> int | Regs:
        """FFA_ID_GET: this endpoint's ID as the hypervisor reports it (w2[15:0])."""
        r = self.call(abi.FFA_ID_GET)
        if not self._success(abi.FFA_ID_GET, r, check):
            return r
        return r[2] & 0xFFFF

    def features(self, fid: int, props: int = 0, *, check: bool = True) -> tuple[int, int] | Regs:
        """FFA_FEATURES(``fid`` or a feature ID): the interface properties (w2, w3)."""
        r = self.call(abi.FFA_FEATURES, fid, props)
        if not self._success(abi.FFA_FEATURES, r, check):
            return r
        return (r[2] & abi.MASK32, r[3] & abi.MASK32)

    def map_buffers(
        self,
        rx_page: int = DEFAULT_RX_PAGE,
        tx_page: int = DEFAULT_TX_PAGE,
        page_count: int = 1,
        *,
        bits: Literal[32, 64] | None = None,
        check: bool = True,
    ) -> Regs | None:
        """FFA_RXTX_MAP: register RAM pages ``rx_page`` and ``tx_page`` as the RX/TX buffers.

        Note the register order: x1 is the TX buffer, x2 the RX buffer, w3 the page count.
        ``bits`` picks the SMC32 or SMC64 form (default: the VM's own, :meth:`word_bits`).
        """
        fid = abi.FFA_RXTX_MAP_64 if self.word_bits(bits) == 64 else abi.FFA_RXTX_MAP_32
        r = self.call(fid, self.vm.ipa(tx_page), self.vm.ipa(rx_page), page_count)
        if not self._success(fid, r, check):
            return r
        st = self.state
        st.rx_page, st.tx_page, st.page_count = rx_page, tx_page, page_count
        st.next_page = max(st.next_page, rx_page + page_count, tx_page + page_count)
        return None

    def unmap_buffers(self, *, check: bool = True) -> Regs | None:
        """FFA_RXTX_UNMAP (w1 = 0: a VM may not name another endpoint)."""
        r = self.call(abi.FFA_RXTX_UNMAP, 0)
        if not self._success(abi.FFA_RXTX_UNMAP, r, check):
            return r
        self.state.rx_page = self.state.tx_page = None
        self.state.page_count = 0
        return None

    def rx_release(self, *, check: bool = True) -> Regs | None:
        """FFA_RX_RELEASE: hand the RX buffer back to its producers."""
        r = self.call(abi.FFA_RX_RELEASE)
        if not self._success(abi.FFA_RX_RELEASE, r, check):
            return r
        return None

    @overload
    def partition_info(
        self,
        uuid: str | bytes | UUID | None = ...,
        count_only: Literal[False] = ...,
        *,
        check: Literal[True] = ...,
    ) -> list[PartitionInfo]: ...
    @overload
    def partition_info(
        self,
        uuid: str | bytes | UUID | None = ...,
        *,
        count_only: Literal[True],
        check: Literal[True] = ...,
    ) -> int: ...
    @overload
    def partition_info(
        self,
        uuid: str | bytes | UUID | None = ...,
        count_only: bool = ...,
        *,
        check: bool = ...,
    ) -> list[PartitionInfo] | int | Regs: ...

    def partition_info(
        self,
        uuid: str | bytes | UUID | None = None,
        count_only: bool = False,
        *,
        check: bool = True,
    ) -> list[PartitionInfo] | int | Regs:
        """FFA_PARTITION_INFO_GET for ``uuid`` (None: every partition).

        The descriptors land in the RX buffer, which the call hands to the guest: the driver reads
        them (``count`` entries of the size the answer gives in w3; 8 bytes when it gives 0, the
        v1.0 layout) and gives the buffer back with FFA_RX_RELEASE. ``count_only`` asks only for
        the count (w5 bit 0), which does not touch the RX buffer, and returns an int.
        """
        words = abi.uuid_to_regs32(uuid) if uuid is not None else (0, 0, 0, 0)
        flags = abi.FFA_PARTITION_INFO_GET_COUNT_FLAG if count_only else 0
        fid = abi.FFA_PARTITION_INFO_GET
        r = self.call(fid, *words, flags)
        if not self._success(fid, r, check):
            return r
        count = r[2] & abi.MASK32
        if count_only:
            return count
        size = (r[3] & abi.MASK32) or desc.PARTINFO_V1_0.size
        rx = self.state.rx_page
        if rx is None:
            raise FfaCallError(fid, r, "succeeded but the driver mapped no RX buffer")
        limit = self.state.page_count * abi.FFA_PAGE_SIZE
        if size not in (desc.PARTINFO_V1_0.size, desc.PARTINFO_V1_1.size) or count * size > limit:
            raise FfaCallError(fid, r, f"{count} entries of {size} bytes do not fit the RX buffer")
        # Read the whole answer once, then hand the buffer back.
        buf = self.vm.read(self.vm.ipa(rx), count * size) if count else b""
        infos = [desc.PartitionInfo.decode(buf, i * size, size) for i in range(count)]
        released = self.rx_release(check=check)
        if released is not None:
            return released
        return infos

    def partition_info_regs(
        self, uuid: str | bytes | UUID | None = None, *, check: bool = True
    ) -> list[PartitionInfo] | Regs:
        """FFA_PARTITION_INFO_GET_REGS (v1.2): the same list, five entries per call, in x3..x17.

        Follows Linux: start at index 0 with tag 0, then ask from ``current + 1`` with the tag the
        first answer gave, until ``current == last``.
        """
        lo, hi = abi.uuid_to_regs64(uuid) if uuid is not None else (0, 0)
        fid = abi.FFA_PARTITION_INFO_GET_REGS
        infos: list[PartitionInfo] = []
        start, tag = 0, 0
        while True:
            r = self.call(fid, lo, hi, (tag << 16) | start)
            if not self._success(fid, r, check):
                return r
            x2 = r[2]
            last, current, tag = x2 & 0xFFFF, (x2 >> 16) & 0xFFFF, (x2 >> 32) & 0xFFFF
            n = current - start + 1
            if n < 1 or n > 5 or current > last:
                raise FfaCallError(fid, r, f"indices start {start}, current {current}, last {last}")
            for i in range(n):
                infos.append(desc.PartitionInfo.from_regs(*r[3 + 3 * i : 6 + 3 * i]))
            if current == last:
                return infos
            start = current + 1

    # -- messaging ----------------------------------------------------------------------------

    def direct_req(
        self,
        dst: int,
        payload: Sequence[int] = (0, 0, 0, 0, 0),
        *,
        bits: Literal[32, 64] = 32,
        check: bool = True,
    ) -> tuple[int, ...] | Regs:
        """FFA_MSG_SEND_DIRECT_REQ to ``dst`` with up to five payload words; return the five
        words (w3..w7, or x3..x7 for ``bits=64``) of its FFA_MSG_SEND_DIRECT_RESP."""
        if len(payload) > 5:
            raise DriverError(f"a direct request carries 5 payload registers, got {len(payload)}")
        mask = abi.MASK64 if bits == 64 else abi.MASK32
        fid = abi.FFA_MSG_SEND_DIRECT_REQ_64 if bits == 64 else abi.FFA_MSG_SEND_DIRECT_REQ_32
        words = [w & mask for w in payload] + [0] * (5 - len(payload))
        r = self.call(fid, abi.pack_target(self.id, dst), 0, *words)
        ok = (abi.FFA_MSG_SEND_DIRECT_RESP_32, abi.FFA_MSG_SEND_DIRECT_RESP_64)
        if not self._expect(fid, r, ok, check):
            return r
        return tuple(w & mask for w in r[3:8])

    def direct_req2(
        self,
        dst: int,
        uuid: str | bytes | UUID | None,
        payload: Sequence[int] = (),
        *,
        check: bool = True,
    ) -> tuple[int, ...] | Regs:
        """FFA_MSG_SEND_DIRECT_REQ2 (v1.2) to ``dst`` for service ``uuid``, up to 14 payload
        registers; return the 14 registers x4..x17 of FFA_MSG_SEND_DIRECT_RESP2."""
        if len(payload) > 14:
            raise DriverError(f"a REQ2 carries 14 payload registers, got {len(payload)}")
        lo, hi = abi.uuid_to_regs64(uuid) if uuid is not None else (0, 0)
        fid = abi.FFA_MSG_SEND_DIRECT_REQ2
        r = self.call(fid, abi.pack_target(self.id, dst), lo, hi, *payload)
        if not self._expect(fid, r, (abi.FFA_MSG_SEND_DIRECT_RESP2,), check):
            return r
        return tuple(r[4:18])

    def send2(self, dst: int, payload: bytes, *, check: bool = True) -> Regs | None:
        """FFA_MSG_SEND2: write an indirect message (header of the negotiated version, then
        ``payload``) into the TX buffer and send it to ``dst``."""
        tx = self._buffer(self.state.tx_page, "TX")
        v12 = self.version >= abi.FFA_VERSION_1_2
        head = desc.INDIRECT_MSG_V1_2.size if v12 else desc.INDIRECT_MSG_V1_1.size
        hdr = desc.IndirectMessage(
            flags=0, offset=head, sender=self.id, receiver=dst, size=len(payload)
        ).encode(abi.FFA_VERSION_1_2 if v12 else abi.FFA_VERSION_1_1)
        self.vm.write(self.vm.ipa(tx), hdr + bytes(payload))
        r = self.call(abi.FFA_MSG_SEND2, 0, _SEND2_FLAGS)
        if not self._success(abi.FFA_MSG_SEND2, r, check):
            return r
        return None

    def receive(self, *, check: bool = True) -> tuple[int, bytes] | Regs:
        """Read the indirect message in the RX buffer, give the buffer back, and return
        ``(sender, payload)``."""
        rx = self._buffer(self.state.rx_page, "RX")
        version = (
            abi.FFA_VERSION_1_2 if self.version >= abi.FFA_VERSION_1_2 else abi.FFA_VERSION_1_1
        )
        # Read the buffer once, then parse the copy.
        buf = self.vm.read(self.vm.ipa(rx), self.state.page_count * abi.FFA_PAGE_SIZE)
        try:
            hdr = desc.IndirectMessage.decode(buf, version)
        except desc.DescriptorError as e:
            raise DriverError(f"no valid message in the RX buffer: {e}") from None
        data = buf[hdr.offset : hdr.offset + hdr.size]
        released = self.rx_release(check=check)
        if released is not None:
            return released
        return hdr.sender, bytes(data)

    # -- memory sharing -----------------------------------------------------------------------

    def alloc_pages(self, count: int) -> tuple[int, ...]:
        """Hand out ``count`` consecutive RAM pages that the driver has not used yet."""
        st = self.state
        if count < 1 or st.next_page + count > self.vm.pages:
            raise DriverError(f"cannot hand out {count} more pages: the VM has {self.vm.pages}")
        pages = tuple(range(st.next_page, st.next_page + count))
        st.next_page += count
        return pages

    def share(
        self,
        receiver: int,
        pages: Sequence[int] | int = 1,
        perms: int = abi.FFA_MEM_ACC_RW,
        *,
        attributes: int = abi.FFA_NORMAL_MEM_REG_ATTR,
        flags: int = 0,
        tag: int = 0,
        bits: Literal[32, 64] | None = None,
        check: bool = True,
    ) -> int | Regs:
        """FFA_MEM_SHARE of RAM ``pages`` (page numbers, or a count to allocate) with
        ``receiver``; return the handle.

        The transaction descriptor is built for the negotiated version (v1.0: 32-byte header;
        v1.1: 48-byte header, 16-byte EMAD; v1.2: 32-byte EMAD), with consecutive pages merged
        into one address range, written into the TX buffer and sent in one fragment.
        """
        page_list = self.alloc_pages(pages) if isinstance(pages, int) else tuple(pages)
        tx = self._buffer(self.state.tx_page, "TX")
        buf = self.mem_transaction(receiver, page_list, perms, attributes, flags, tag)
        if len(buf) > self.state.page_count * abi.FFA_PAGE_SIZE:
            raise DriverError(f"a {len(buf)}-byte descriptor does not fit the TX buffer")
        self.vm.write(self.vm.ipa(tx), buf)
        fid = abi.FFA_MEM_SHARE_64 if self.word_bits(bits) == 64 else abi.FFA_MEM_SHARE_32
        r = self.call(fid, len(buf), len(buf), 0, 0)
        if not self._success(fid, r, check):
            return r
        handle = abi.make_handle(r[2], r[3])
        self.state.changed()
        self.state.shares[handle] = page_list
        return handle

    def mem_transaction(
        self,
        receiver: int,
        pages: Sequence[int],
        perms: int = abi.FFA_MEM_ACC_RW,
        attributes: int = abi.FFA_NORMAL_MEM_REG_ATTR,
        flags: int = 0,
        tag: int = 0,
    ) -> bytes:
        """The bytes of the lend/share/donate descriptor :meth:`share` writes, for this guest's
        negotiated version."""
        version = self.version
        ranges: list[desc.Constituent] = []
        for page in pages:
            ipa = self.vm.ipa(page)
            prev = ranges[-1] if ranges else None
            if prev is not None and prev.address + prev.page_count * abi.FFA_PAGE_SIZE == ipa:
                ranges[-1] = desc.Constituent(prev.address, prev.page_count + 1)
            else:
                ranges.append(desc.Constituent(ipa, 1))
        tx = desc.MemTransaction(
            sender=self.id,
            attributes=attributes,
            flags=flags,
            handle=0,
            tag=tag,
            receivers=(desc.MemAccess(receiver, perms),),
            composite=desc.Composite(len(pages), tuple(ranges)),
        )
        return tx.encode(version)

    def reclaim(self, handle: int, flags: int = 0, *, check: bool = True) -> Regs | None:
        """FFA_MEM_RECLAIM ``handle`` (w1 lo, w2 hi, w3 flags)."""
        fid = abi.FFA_MEM_RECLAIM
        r = self.call(fid, abi.handle_lo(handle), abi.handle_hi(handle), flags)
        if not self._success(fid, r, check):
            return r
        self.state.changed()
        self.state.shares.pop(handle, None)
        return None

    # -- notifications ------------------------------------------------------------------------

    def notification_bind(
        self, sender: int, bitmap: int, flags: int = 0, *, check: bool = True
    ) -> Regs | None:
        """FFA_NOTIFICATION_BIND: let ``sender`` signal the notifications in ``bitmap``."""
        return self._notif(abi.FFA_NOTIFICATION_BIND, sender, self.id, flags, bitmap, check)

    def notification_unbind(self, sender: int, bitmap: int, *, check: bool = True) -> Regs | None:
        """FFA_NOTIFICATION_UNBIND the notifications in ``bitmap`` from ``sender``."""
        return self._notif(abi.FFA_NOTIFICATION_UNBIND, sender, self.id, 0, bitmap, check)

    def notification_set(
        self, receiver: int, bitmap: int, flags: int = 0, *, check: bool = True
    ) -> Regs | None:
        """FFA_NOTIFICATION_SET: signal ``bitmap`` to ``receiver``."""
        return self._notif(abi.FFA_NOTIFICATION_SET, self.id, receiver, flags, bitmap, check)

    def _notif(
        self, fid: int, sender: int, receiver: int, flags: int, bitmap: int, check: bool
    ) -> Regs | None:
        r = self.call(
            fid, abi.pack_target(sender, receiver), flags, bitmap & abi.MASK32, bitmap >> 32
        )
        if not self._success(fid, r, check):
            return r
        return None

    def notification_get(
        self,
        flags: int = abi.FFA_NOTIF_FLAG_BITMAP_SP
        | abi.FFA_NOTIF_FLAG_BITMAP_SPM
        | abi.FFA_NOTIF_FLAG_BITMAP_HYP,
        *,
        check: bool = True,
    ) -> NotificationBitmaps | Regs:
        """FFA_NOTIFICATION_GET on this vCPU: the pending bitmaps ``flags`` asks for."""
        fid = abi.FFA_NOTIFICATION_GET
        r = self.call(fid, abi.pack_target(self.vcpu, self.id), flags)
        if not self._success(fid, r, check):
            return r
        m = abi.MASK32
        return NotificationBitmaps(
            sp=(r[2] & m) | (r[3] & m) << 32,
            vm=(r[4] & m) | (r[5] & m) << 32,
            spm=r[6] & m,
            hyp=r[7] & m,
        )

    def notification_info_get(
        self, *, bits: Literal[32, 64] | None = None, check: bool = True
    ) -> NotificationInfo | Regs:
        """FFA_NOTIFICATION_INFO_GET: which endpoints (and vCPUs) have notifications pending."""
        width = self.word_bits(bits)
        fid = abi.FFA_NOTIFICATION_INFO_GET_64 if width == 64 else abi.FFA_NOTIFICATION_INFO_GET_32
        r = self.call(fid)
        if not self._success(fid, r, check):
            return r
        return parse_notification_info(r, width)

    # -- helpers ------------------------------------------------------------------------------

    def _buffer(self, page: int | None, which: str) -> int:
        if page is None:
            raise DriverError(f"the driver has no {which} buffer mapped: call map_buffers() first")
        return page


def parse_notification_info(r: Regs, bits: int = 64) -> NotificationInfo:
    """Unpack an FFA_NOTIFICATION_INFO_GET success: x2 gives the list count (bits [11:7]) and
    each list's length - 1 (2 bits at 12 + 2i); x3.. hold the 16-bit IDs, four per register
    (two per register in the 32-bit form)."""
    x2 = r[2]
    nlists = (x2 >> abi.FFA_NOTIF_INFO_GET_ID_COUNT_SHIFT) & abi.FFA_NOTIF_INFO_GET_ID_COUNT_MASK
    per_reg = 4 if bits == 64 else 2
    ids = [(r[3 + i // per_reg] >> (16 * (i % per_reg))) & 0xFFFF for i in range(per_reg * 5)]
    lists: list[tuple[int, ...]] = []
    pos = 0
    for i in range(nlists):
        n = ((x2 >> (abi.FFA_NOTIF_INFO_GET_ID_LIST_SHIFT + 2 * i)) & 3) + 1
        lists.append(tuple(ids[pos : pos + n]))
        pos += n
    return NotificationInfo(bool(x2 & abi.FFA_NOTIF_INFO_GET_MORE_FLAG), tuple(lists))
