"""Memory sharing: FFA_MEM_SHARE/LEND/DONATE, FRAG_TX/FRAG_RX, RETRIEVE, RELINQUISH, RECLAIM.

Mirrors Hafnium ``src/ffa_memory.c`` (``ffa_memory_send``, ``ffa_memory_region_sanity_check``,
``ffa_memory_send_validate``, ``ffa_send_check_update``, ``ffa_memory_retrieve``,
``ffa_memory_relinquish``, ``ffa_memory_reclaim``) and ``api_ffa_mem_*`` in ``src/api.c``,
as hafnium-spmc.md §4 describes them, checks in their order.

Design note. A transaction's descriptor is kept as the bytes the sender wrote, in the sender's
own layout (v1.0, v1.1 or v1.2), fragment after fragment; so the offset the SPMC answers in
FFA_MEM_FRAG_RX is naturally "bytes received so far in the caller's layout". Guest buffers are
read once per call: each handler copies what it needs out of the TX buffer and validates the
copy. Page state lives in ``spmc.page_share`` (mfn -> handle of the share covering it) and
``spmc.donated`` (mfn -> partition that received it for good); partitions reach retrieved
pages through ``Endpoint.mapped`` and machine grants, which relinquish revokes.

Handles are the index of the first free slot of a 100-entry table (Hafnium
``share_states[MAX_MEM_SHARES]``): bit 63 clear, reused after reclaim.

Locks, as Hafnium takes them: the caller's VM lock (the hypervisor's, VM 0, for everything
the normal world sends, retrieves or reclaims), then ``share_states_lock`` around the sharing
table (handles, which pages are shared or donated, borrowers' retrievals), then
``mm_stage1_lock`` while the SPMC maps pages to clear them. A send or FRAG_TX first looks at
the caller's TX buffer under its lock and copies the descriptor without it (Hafnium: "the TX
mailbox address can only be configured once"); a retrieve, relinquish, reclaim or FRAG_RX
holds the caller's lock throughout. Whether a page is shared, donated or mapped for a
partition is also declared to the checker (``vm.declare_pages``): a partition's own memory
check reads it with no lock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .. import abi
from ..machine import Frame, grant, revoke, spin_lock, spin_unlock
from ..machine.events import MEM
from ..machine.memory import MAX_MFN, PAGE_MASK, PAGE_SIZE
from .mailbox import FULL, Endpoint
from .spmc import HYP_ID, Handler, Regs, is_vm_id, success

if TYPE_CHECKING:
    from .spmc import Spmc

MAX_MEM_SHARES = 100  # share_states[] slots
MAX_MEM_SHARE_RECIPIENTS = 2  # plat_max_mem_share_recipients
MAX_FRAGMENTS = 20
# Model limit (not Hafnium's): pages in one transaction. Hafnium would run out of page-table
# memory somewhere; the model answers NO_MEMORY before walking millions of frames.
MAX_SHARE_PAGES = 1 << 16

INVALID = abi.FFA_RET_INVALID_PARAMETERS
DENIED = abi.FFA_RET_DENIED

# Layouts (FF-A v1.2 §10.11; hafnium-spmc.md §4.1).
HDR_V1_0 = struct.Struct("<HBBIQQII")  # sender, attrs, res, flags, handle, tag, res, count
HDR_V1_1 = struct.Struct("<HHIQQIII12s")  # ... emad size, count, emad offset, reserved
EMAD_V1_1 = struct.Struct("<HBBIQ")  # receiver, perms, flags, composite offset, reserved
EMAD_V1_2 = struct.Struct("<HBBI16s8s")  # ... impdef, reserved
COMPOSITE = struct.Struct("<IIQ")  # total pages, constituent count, reserved
CONSTITUENT = struct.Struct("<QII")  # address, pages, reserved
RELINQUISH = struct.Struct("<QII")  # handle, flags, endpoint count
RELINQUISH_FIRST = struct.Struct("<QIIH")  # ... and the first endpoint ID
assert HDR_V1_0.size == 32 and HDR_V1_1.size == 48
assert EMAD_V1_1.size == 16 and EMAD_V1_2.size == 32
assert COMPOSITE.size == 16 and CONSTITUENT.size == 16 and RELINQUISH.size == 16

_ZERO8 = bytes(8)
_ZERO12 = bytes(12)
_RETRIEVE_RESP = abi.FFA_MEM_RETRIEVE_RESP
_ZEROS_15 = (0,) * (abi.NUM_REGS - 3)

# Memory region attributes.
ATTR_SHAREABILITY_MASK = 0x3
ATTR_INNER_SHAREABLE = 0x3
ATTR_CACHEABILITY_SHIFT = 2
ATTR_TYPE_SHIFT = 4
ATTR_TYPE_NOT_SPECIFIED = 0
ATTR_TYPE_DEVICE = 1
ATTR_TYPE_NORMAL = 2
ATTR_CACHE_WRITE_BACK = 3
ATTR_DEVICE_NGNRNE = 0
ATTR_NS = abi.FFA_MEM_ATTR_NS
ATTR_MBZ_MASK = 0xFF80
# Permissions: bits[1:0] data access, bits[3:2] instruction access.
DATA_NOT_SPECIFIED, DATA_RO, DATA_RW, DATA_RESERVED = 0, 1, 2, 3
INSTR_NOT_SPECIFIED, INSTR_NX, INSTR_X, INSTR_RESERVED = 0, 1, 2, 3
# Transaction flags.
FLAG_CLEAR = 1 << 0
FLAG_TIME_SLICE = 1 << 1
FLAG_CLEAR_RELINQUISH = 1 << 2
FLAG_TYPE_SHIFT = 3
FLAG_TYPE_MASK = 0x3 << FLAG_TYPE_SHIFT
FLAG_HINT_MASK = 0xF << 5
FLAG_HINT_VALID = 1 << 9
FLAG_BYPASS_BORROWERS = 1 << 10
RETRIEVE_FLAGS_MBZ = ~0x7FF & abi.MASK32

KIND_OF_FID = {
    abi.FFA_MEM_SHARE_32: "share",
    abi.FFA_MEM_SHARE_64: "share",
    abi.FFA_MEM_LEND_32: "lend",
    abi.FFA_MEM_LEND_64: "lend",
    abi.FFA_MEM_DONATE_32: "donate",
    abi.FFA_MEM_DONATE_64: "donate",
}
TYPE_OF_KIND = {"share": 1, "lend": 2, "donate": 3}

# Retrieval states of a borrower.
NOT_RETRIEVED, PARTIAL, RETRIEVED = 0, 1, 2


class Emad(NamedTuple):
    receiver: int
    perms: int
    flags: int
    composite_offset: int
    impdef: bytes
    reserved: int


class Txn(NamedTuple):
    """A transaction descriptor header and its EMADs, copied out of a buffer."""

    sender: int
    attributes: int
    flags: int
    handle: int
    tag: int
    emad_size: int
    emad_count: int
    emad_offset: int
    reserved_ok: bool
    emads: tuple[Emad, ...]


@dataclass(eq=False, slots=True)
class Borrower:
    """One receiver of a transaction, as the sender described it, and its retrieval."""

    id: int
    perms: int
    flags: int
    impdef: bytes
    state: int = NOT_RETRIEVED
    granted: int = 0  # permissions given at retrieval
    clear_on_relinquish: bool = False
    pending: bytes = b""  # retrieve response not yet delivered
    delivered: int = 0
    relinquished: int = 0  # completed relinquishes (a borrower may retrieve again)


@dataclass(eq=False, slots=True)
class ShareState:
    """Hafnium ``struct ffa_memory_share_state``: one handle's transaction."""

    handle: int
    kind: str  # "share", "lend" or "donate"
    sender: int
    caller: int  # 0 (the hypervisor) or the sending partition
    version: int  # layout of ``raw``
    attributes: int
    flags: int
    tag: int
    borrowers: list[Borrower]
    total_length: int
    composite_offset: int
    raw: bytearray
    fragments: int = 1
    complete: bool = False
    constituents: list[tuple[int, int]] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    total_page_count: int = 0
    hyp_pending: bytes | None = None  # hypervisor retrieve response not yet delivered
    hyp_delivered: int = 0

    @property
    def receivers(self) -> list[int]:
        return [b.id for b in self.borrowers]

    @property
    def retrieved(self) -> dict[int, bool]:
        """Borrower ID -> whether it holds the memory now (retrieved, not relinquished)."""
        return {b.id: b.state != NOT_RETRIEVED for b in self.borrowers}

    @property
    def relinquished(self) -> dict[int, int]:
        """Borrower ID -> how many times it relinquished the memory."""
        return {b.id: b.relinquished for b in self.borrowers}

    @property
    def ns(self) -> bool:
        return is_vm_id(self.sender)

    def borrower(self, ep_id: int) -> Borrower | None:
        for b in self.borrowers:
            if b.id == ep_id:
                return b
        return None


# ---------------------------------------------------------------------------------------------
# Decoding


# Descriptors decoded and sanity-checked, by (bytes, version, retrieve): both are pure
# functions of the copy the SPMC took of the buffer, and scenarios (and the checker's replays
# of them) send the same descriptors again and again. Bounded: cleared when full.
_CHECKED: dict[tuple[bytes, int, bool], tuple[Txn | int, int]] = {}
_CHECKED_MAX = 256


def _decode_checked(buf: bytes, version: int, retrieve: bool) -> tuple[Txn | int, int]:
    """``_decode(buf, version)`` and, when it decodes, its ``_sanity_check`` for a fragment of
    ``len(buf)`` bytes (else 0): the two first steps of a send or a retrieve request."""
    key = (buf, version, retrieve)
    hit = _CHECKED.get(key)
    if hit is None:
        txn = _decode(buf, version)
        ret = 0 if isinstance(txn, int) else _sanity_check(txn, len(buf), version, retrieve)
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        hit = _CHECKED[key] = (txn, ret)
    return hit


def _decode(buf: bytes, version: int) -> Txn | int:
    """Header and EMADs of a transaction descriptor in ``version``'s layout, or an error."""
    if version < abi.FFA_VERSION_1_1:
        if len(buf) < HDR_V1_0.size:
            return INVALID
        sender, attrs, res8, flags, handle, tag, res32, count = HDR_V1_0.unpack_from(buf)
        size, offset, reserved_ok = EMAD_V1_1.size, HDR_V1_0.size, not res8 and not res32
    else:
        if len(buf) < HDR_V1_1.size:
            return INVALID
        sender, attrs, flags, handle, tag, size, count, offset, res = HDR_V1_1.unpack_from(buf)
        reserved_ok = res == _ZERO12
    emads: list[Emad] = []
    if (
        size in (EMAD_V1_1.size, EMAD_V1_2.size)
        and count <= MAX_MEM_SHARE_RECIPIENTS
        and offset + count * size <= len(buf)
    ):
        for i in range(count):
            at = offset + i * size
            if size == EMAD_V1_1.size:
                rid, perms, eflags, comp, res64 = EMAD_V1_1.unpack_from(buf, at)
                emads.append(Emad(rid, perms, eflags, comp, b"", res64))
            else:
                rid, perms, eflags, comp, impdef, _res = EMAD_V1_2.unpack_from(buf, at)
                emads.append(Emad(rid, perms, eflags, comp, impdef, 0))
    return Txn(sender, attrs, flags, handle, tag, size, count, offset, reserved_ok, tuple(emads))


def _sanity_check(txn: Txn, frag_len: int, version: int, retrieve: bool) -> int:
    """Hafnium ``ffa_memory_region_sanity_check`` (every failure INVALID_PARAMETERS)."""
    if not txn.reserved_ok:
        return INVALID
    if txn.emad_size not in (EMAD_V1_1.size, EMAD_V1_2.size):
        return INVALID
    if txn.emad_size == EMAD_V1_2.size and version < abi.FFA_VERSION_1_2:
        return INVALID
    if version >= abi.FFA_VERSION_1_1 and txn.emad_offset < HDR_V1_1.size:
        return INVALID
    if txn.emad_count == 0 or txn.emad_count > MAX_MEM_SHARE_RECIPIENTS:
        return INVALID
    emads_end = txn.emad_offset + txn.emad_count * txn.emad_size
    if frag_len < emads_end or len(txn.emads) != txn.emad_count:
        return INVALID
    first = txn.emads[0].composite_offset
    if retrieve:
        if first:
            return INVALID  # and, checked below, every other offset equals this one
    elif first == 0 or first < emads_end or first + COMPOSITE.size > frag_len:
        return INVALID
    check_reserved = txn.emad_size == EMAD_V1_1.size
    for e in txn.emads:  # explicit loop: one or two EMADs, on the hot path
        if check_reserved and e.reserved:
            return INVALID
    for e in txn.emads:
        if e.composite_offset != first:
            return INVALID
    return abi.FFA_RET_OK


def _data(perms: int) -> int:
    return perms & 0x3


def _instr(perms: int) -> int:
    return (perms >> 2) & 0x3


def _attrs_check(kind: str, count: int, attrs: int) -> int:
    """The memory-attribute rules of ``ffa_memory_send_validate``."""
    if attrs & ATTR_NS or attrs & ATTR_MBZ_MASK:
        return INVALID
    mtype = (attrs >> ATTR_TYPE_SHIFT) & 0x3
    if kind == "donate" or (kind == "lend" and count == 1):
        return INVALID if mtype != ATTR_TYPE_NOT_SPECIFIED else abi.FFA_RET_OK
    cache = (attrs >> ATTR_CACHEABILITY_SHIFT) & 0x3
    if mtype == ATTR_TYPE_NORMAL and cache != ATTR_CACHE_WRITE_BACK:
        return DENIED
    if mtype == ATTR_TYPE_DEVICE and cache != ATTR_DEVICE_NGNRNE:
        return DENIED
    if mtype == 3:
        return DENIED
    if attrs & ATTR_SHAREABILITY_MASK != ATTR_INNER_SHAREABLE:
        return DENIED
    return abi.FFA_RET_OK


# ---------------------------------------------------------------------------------------------
# Encoding (retrieve responses)


def encode_txn(
    version: int,
    sender: int,
    attrs: int,
    flags: int,
    handle: int,
    tag: int,
    emads: list[tuple[int, int, int, bytes]],
    total_pages: int,
    constituents: list[tuple[int, int]],
) -> bytes:
    """A whole transaction descriptor in ``version``'s layout; ``emads`` are
    ``(receiver, permissions, flags, impdef)`` and all point at the one composite."""
    count = len(emads)
    if version < abi.FFA_VERSION_1_1:
        size, offset = EMAD_V1_1.size, HDR_V1_0.size
        head = HDR_V1_0.pack(sender, attrs & 0xFF, 0, flags, handle, tag, 0, count)
    else:
        size = EMAD_V1_2.size if version >= abi.FFA_VERSION_1_2 else EMAD_V1_1.size
        offset = HDR_V1_1.size
        head = HDR_V1_1.pack(sender, attrs, flags, handle, tag, size, count, offset, _ZERO12)
    comp = offset + count * size
    parts = [head]
    for rid, perms, eflags, impdef in emads:
        if size == EMAD_V1_1.size:
            parts.append(EMAD_V1_1.pack(rid, perms, eflags, comp, 0))
        else:
            parts.append(
                EMAD_V1_2.pack(rid, perms, eflags, comp, impdef, _ZERO8)  # pack pads impdef
            )
    parts.append(COMPOSITE.pack(total_pages, len(constituents), 0))
    for a, n in constituents:
        parts.append(CONSTITUENT.pack(a, n, 0))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Share states and pages


def _alloc_handle(spmc: Spmc) -> int | None:
    shares = spmc._shares
    for i in range(MAX_MEM_SHARES):
        if i not in shares:
            return i
    return None


def _find(spmc: Spmc, handle: int) -> ShareState | None:
    """The share with SPMC-allocated ``handle`` (bit 63 clear), if any."""
    if handle & abi.FFA_HANDLE_HYP_FLAG:
        return None
    return spmc._shares.get(handle)


def _free_share(spmc: Spmc, share: ShareState) -> None:
    """Hafnium ``share_state_free``: the handle and its pages' marks go (share-states lock)."""
    access = spmc.machine.sink.access  # the pages' state changes (vm.declare_pages)
    page_share = spmc.page_share
    for f in share.frames:
        access(MEM, f.mfn, True)
        if page_share.get(f.mfn) == share.handle:
            del page_share[f.mfn]
    spmc._shares.pop(share.handle, None)


def zero_frames(spmc: Spmc, frames: list[Frame]) -> None:
    """Clear pages as the SPMC does: mapped for the duration, under ``mm_stage1_lock``
    (Hafnium ``ffa_clear_memory_constituents``)."""
    mem = spmc.machine.mem
    zero = bytes(PAGE_SIZE)
    stage1 = spmc.mm_stage1_lock
    spin_lock(stage1)
    for f in frames:
        grant(f, "spmc")
        mem.write(f.pa, zero, "spmc")
        revoke(f, "spmc")
    spin_unlock(stage1)


def _sender_frames(spmc: Spmc, share: ShareState) -> list[Frame] | int:
    """The pages of a complete transaction if its sender may give them, else DENIED."""
    mem = spmc.machine.mem
    known = mem.frames
    ns_excluded, page_share, donated = spmc.ns_excluded, spmc.page_share, spmc.donated
    frames: list[Frame] = []
    sp_party = None
    mailbox_mfns: set[int] | tuple[()] = ()
    if not is_vm_id(share.sender):
        sp_party = f"sp{share.sender:04x}"
        mbox = spmc.endpoints[share.sender].mailbox
        mailbox_mfns = {f.mfn for f in mbox.rx_frames + mbox.tx_frames}
    for addr, pages in share.constituents:
        first = addr // PAGE_SIZE
        count = (addr + pages * PAGE_SIZE + PAGE_MASK) // PAGE_SIZE - first  # pages + 1 unaligned
        if first + count > MAX_MFN:
            return DENIED
        if sp_party is None and not spmc.ns_range_ok(addr, count):
            return DENIED
        for mfn in range(first, first + count):
            if mfn in ns_excluded or mfn in page_share or mfn in donated:
                return DENIED
            f = known.get(mfn) or mem.frame(mfn)
            if sp_party is not None and (
                f.owner != sp_party or not f.secure or mfn in mailbox_mfns
            ):
                return DENIED
            frames.append(f)
    return frames


def _send_complete(spmc: Spmc, share: ShareState) -> Regs:
    """Hafnium ``ffa_send_check_update``: validate the constituents, take the pages."""
    raw = share.raw
    comp = share.composite_offset
    total_pages, count, _ = COMPOSITE.unpack_from(raw, comp)
    start = comp + COMPOSITE.size  # the validated lengths put exactly ``count`` entries here
    consts = []
    for at in range(start, start + CONSTITUENT.size * count, CONSTITUENT.size):
        a, n, _ = CONSTITUENT.unpack_from(raw, at)
        consts.append((a, n))
    # Each failure below is the same INVALID_PARAMETERS, so only whether one fails matters.
    error = abi.FFA_RET_OK
    if count > 1:
        # Overlap scan; a zero-page constituent ends it early, as in Hafnium.
        for i, (a, n) in enumerate(consts):
            if n == 0:
                break
            for b, m in consts[i + 1 :]:
                if m and a < b + m * PAGE_SIZE and b < a + n * PAGE_SIZE:
                    error = INVALID
                    break
            if error:
                break
    if not error:
        pages = 0
        for a, n in consts:
            pages += n
            if a & PAGE_MASK and not spmc.unaligned:
                error = INVALID  # unaligned constituent
        if pages != total_pages or total_pages == 0:
            error = INVALID
    if error:
        _free_share(spmc, share)
        return spmc.refuse(error, f"memory send 0x{share.handle:x}: bad constituents")
    if total_pages > MAX_SHARE_PAGES:
        _free_share(spmc, share)
        return spmc.refuse(abi.FFA_RET_NO_MEMORY, f"memory send: {total_pages} pages")
    share.constituents = consts
    share.total_page_count = total_pages
    frames = _sender_frames(spmc, share)
    if isinstance(frames, int):
        _free_share(spmc, share)
        return spmc.refuse(frames, f"memory send 0x{share.handle:x}: pages not the sender's")
    share.frames = frames
    handle = share.handle
    page_share = spmc.page_share
    access = spmc.machine.sink.access  # the pages' state changes (vm.declare_pages)
    for f in frames:
        access(MEM, f.mfn, True)
        page_share[f.mfn] = handle
    if share.flags & FLAG_CLEAR:
        zero_frames(spmc, frames)
    share.complete = True
    share.raw = bytearray()  # fully parsed; keep no second copy
    return success(handle & abi.MASK32, handle >> 32)  # handle_lo, handle_hi


# ---------------------------------------------------------------------------------------------
# FFA_MEM_SHARE / LEND / DONATE


def ffa_mem_send(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MEM_SHARE/LEND/DONATE_32/64: the descriptor is in the caller's TX buffer."""
    kind = KIND_OF_FID[r[0]]
    total, frag = r[1] & abi.MASK32, r[2] & abi.MASK32
    if r[3] or r[4]:
        return spmc.refuse(INVALID, "memory send: only the TX buffer method")
    if frag > total:
        return spmc.refuse(INVALID, "memory send: fragment longer than total")
    # Hafnium reads the TX address and the version under the sender's lock (sl_lock), then
    # copies the descriptor without it.
    spin_lock(ep.lock)
    tx_frames = ep.mailbox.tx_frames  # the Mailbox properties spelt out: this is the hot path
    version = ep.version
    spin_unlock(ep.lock)
    if not tx_frames:  # not mbox.mapped
        return spmc.refuse(INVALID, "memory send: caller has no TX buffer")
    if frag > len(tx_frames) * PAGE_SIZE or (version < abi.FFA_VERSION_1_1 and frag > PAGE_SIZE):
        return spmc.refuse(INVALID, "memory send: fragment longer than the TX buffer")
    buf = spmc.machine.mem.read(tx_frames[0].pa, frag, "spmc")  # read once
    # The descriptor checks depend only on these (the partition table is fixed at boot), and
    # scenarios and the checker's replays send the same descriptors again and again.
    key = (buf, version, kind, total, ep.id)
    verdict = spmc.send_verdicts.get(key)
    if verdict is None:
        verdict = _check_send(spmc, ep, kind, buf, total, version)
        if len(spmc.send_verdicts) >= _CHECKED_MAX:
            spmc.send_verdicts.clear()
        spmc.send_verdicts[key] = verdict
    txn, ret, why = verdict
    if txn is None or ret:
        return spmc.refuse(ret, why)
    spin_lock(ep.lock)  # vm_lock
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_memory_send(spmc, ep, kind, txn, buf, total, version)
    spin_unlock(table)
    spin_unlock(ep.lock)  # vm_unlock
    return out


def ffa_memory_send(
    spmc: Spmc, ep: Endpoint, kind: str, txn: Txn, buf: bytes, total: int, version: int
) -> Regs:
    """Hafnium ``ffa_memory_send`` once the descriptor passed its checks, with the sender's
    lock and the share-states lock held: a share state, then the pages (or FRAG_RX)."""
    handle = _alloc_handle(spmc)
    if handle is None:
        return spmc.refuse(abi.FFA_RET_NO_MEMORY, "memory send: no free share state")
    comp = txn.emads[0].composite_offset
    borrowers = []
    for e in txn.emads:
        borrowers.append(Borrower(e.receiver, e.perms, e.flags, e.impdef))
    # Positional: a dataclass call with a dozen keywords costs more than the rest of the send.
    share = ShareState(
        handle,
        kind,
        txn.sender,  # sender
        ep.id,  # caller
        version,
        txn.attributes,
        txn.flags,
        txn.tag,
        borrowers,
        total,  # total_length
        comp,  # composite_offset
        bytearray(buf),  # raw
    )
    spmc._shares[handle] = share
    frag = len(buf)
    if frag < total:
        w4 = (txn.sender << 16) if ep.id == HYP_ID else 0
        return abi.regs(abi.FFA_MEM_FRAG_RX, abi.handle_lo(handle), abi.handle_hi(handle), frag, w4)
    return _send_complete(spmc, share)


def _check_send(
    spmc: Spmc, ep: Endpoint, kind: str, buf: bytes, total: int, version: int
) -> tuple[Txn | None, int, str]:
    """The checks of a send's descriptor copy ``buf`` (the first fragment) in the layout of
    ``version`` (the sender's, read under its lock), in Hafnium's order: ``(txn, 0, "")``
    when it passes, else ``(txn or None, error, why)``."""
    frag = len(buf)
    txn, ret = _decode_checked(buf, version, retrieve=False)
    if isinstance(txn, int):
        return None, txn, "memory send: descriptor shorter than its header"
    if ret:
        return txn, ret, "memory send: descriptor fails the sanity check"
    if version < abi.FFA_VERSION_1_1 and frag + (HDR_V1_1.size - HDR_V1_0.size) > PAGE_SIZE:
        return txn, abi.FFA_RET_NOT_SUPPORTED, "memory send: v1.0 descriptor too long"
    if (kind == "share" and txn.flags & FLAG_CLEAR) or txn.flags & ~(FLAG_CLEAR | FLAG_TIME_SLICE):
        return txn, INVALID, f"memory send: bad flags 0x{txn.flags:x}"
    if kind == "donate" and txn.emad_count != 1:
        return txn, INVALID, "memory donate: exactly one borrower"
    for e in txn.emads:
        if (not is_vm_id(e.receiver) and e.receiver not in spmc.partitions) or e.receiver == ep.id:
            return txn, INVALID, f"memory send: bad receiver 0x{e.receiver:x}"
    ret = _world_rule(ep, kind, txn)
    if ret:
        return txn, ret, "memory send: receivers not allowed for this sender"
    ret = _send_validate(ep, kind, txn, buf, total)
    if ret:
        return txn, ret, "memory send: descriptor refused"
    return txn, abi.FFA_RET_OK, ""


def _world_rule(ep: Endpoint, kind: str, txn: Txn) -> int:
    """Hafnium ``ffa_memory_is_send_valid`` (SPMC): which worlds may borrow."""
    for e in txn.emads:
        if is_vm_id(e.receiver):
            break
    else:
        return abi.FFA_RET_OK  # no VM borrower
    if ep.id != HYP_ID or kind != "share" or txn.emad_count == 1:
        return DENIED
    return abi.FFA_RET_OK


def _send_validate(ep: Endpoint, kind: str, txn: Txn, buf: bytes, total: int) -> int:
    """Hafnium ``ffa_memory_send_validate``, in its order."""
    frag = len(buf)
    if frag < txn.emad_offset + txn.emad_size + COMPOSITE.size:
        return INVALID
    if frag % 16 or total % 16:
        return INVALID
    if ep.id == HYP_ID:
        if not is_vm_id(txn.sender):
            return DENIED
    elif txn.sender != ep.id:
        return DENIED
    emads_end = txn.emad_offset + txn.emad_count * txn.emad_size
    if total < emads_end + COMPOSITE.size + CONSTITUENT.size:
        return INVALID
    comp = txn.emads[0].composite_offset
    if comp < emads_end or comp % 16 or comp + COMPOSITE.size > frag:
        return INVALID
    _pages, count, _ = COMPOSITE.unpack_from(buf, comp)
    rest = total - (comp + COMPOSITE.size)
    if rest % CONSTITUENT.size or rest != CONSTITUENT.size * count:
        return INVALID
    if (kind == "share" and txn.flags & FLAG_CLEAR) or txn.flags & ~FLAG_CLEAR:
        return INVALID
    seen: set[int] = set()
    for e in txn.emads:
        if e.receiver == txn.sender or e.receiver in seen or e.composite_offset != comp:
            return INVALID
        seen.add(e.receiver)
        data, instr = e.perms & 0x3, (e.perms >> 2) & 0x3  # _data(), _instr()
        if data == DATA_RESERVED or instr == INSTR_RESERVED or instr != INSTR_NOT_SPECIFIED:
            return INVALID
        if kind != "donate" and data == DATA_NOT_SPECIFIED:
            return INVALID
        if kind == "donate" and data != DATA_NOT_SPECIFIED:
            return INVALID
    return _attrs_check(kind, txn.emad_count, txn.attributes)


# ---------------------------------------------------------------------------------------------
# FFA_MEM_FRAG_TX


def ffa_mem_frag_tx(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MEM_FRAG_TX: the next fragment of a send; the last completes it."""
    handle = abi.make_handle(r[1], r[2])
    frag = r[3] & abi.MASK32
    sender = abi.ffa_sender(r[4])
    if ep.id != HYP_ID and sender:
        return spmc.refuse(INVALID, "FRAG_TX: w4 MBZ for partitions")
    spin_lock(ep.lock)  # Hafnium: sl_lock(&from->lock) to read the TX address
    mbox = ep.mailbox
    tx_pa, size = mbox.tx, mbox.size
    spin_unlock(ep.lock)
    if not size:
        return spmc.refuse(INVALID, "FRAG_TX: caller has no TX buffer")
    limit = PAGE_SIZE if handle & abi.FFA_HANDLE_HYP_FLAG else size
    if frag > limit or frag < 16 or frag % 16:
        return spmc.refuse(INVALID, f"FRAG_TX: bad fragment length {frag}")
    data = spmc.machine.mem.read(tx_pa, frag, "spmc")  # read once
    spin_lock(ep.lock)  # vm_lock
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_memory_send_continue(spmc, ep, handle, sender, data)
    spin_unlock(table)
    spin_unlock(ep.lock)  # vm_unlock
    return out


def ffa_memory_send_continue(
    spmc: Spmc, ep: Endpoint, handle: int, sender: int, data: bytes
) -> Regs:
    """Hafnium ``ffa_memory_send_continue``, with the sender's lock and the share-states lock
    held: add a fragment; the last one completes the send."""
    share = _find(spmc, handle)
    if share is None:
        return spmc.refuse(INVALID, f"FRAG_TX: unknown handle 0x{handle:x}")
    if (ep.id != HYP_ID and share.sender != ep.id) or (ep.id == HYP_ID and share.caller != HYP_ID):
        return spmc.refuse(INVALID, "FRAG_TX: caller is not the sender")
    if ep.id == HYP_ID and sender != share.sender:
        return spmc.refuse(INVALID, "FRAG_TX: w4 does not name the sender")
    if share.complete:
        return spmc.refuse(INVALID, "FRAG_TX: transaction already complete")
    if share.fragments >= MAX_FRAGMENTS:
        _free_share(spmc, share)
        return spmc.refuse(abi.FFA_RET_NO_MEMORY, "FRAG_TX: too many fragments, discarded")
    if any(is_vm_id(b.id) for b in share.borrowers):
        return spmc.refuse(INVALID, "FRAG_TX: fragmented share with a VM borrower")
    frag = len(data)
    if len(share.raw) + frag > share.total_length:
        _free_share(spmc, share)
        return spmc.refuse(INVALID, "FRAG_TX: fragments exceed the total length, discarded")
    share.raw += data
    share.fragments += 1
    if len(share.raw) < share.total_length:
        w4 = (share.sender << 16) if ep.id == HYP_ID else 0
        return abi.regs(
            abi.FFA_MEM_FRAG_RX, abi.handle_lo(handle), abi.handle_hi(handle), len(share.raw), w4
        )
    return _send_complete(spmc, share)


# ---------------------------------------------------------------------------------------------
# FFA_MEM_RETRIEVE_REQ and FFA_MEM_FRAG_RX


def _deliver(spmc: Spmc, ep: Endpoint, data: bytes, offset: int) -> int:
    """Write the fragment of ``data`` starting at ``offset`` that fits in the caller's RX
    (whole constituents only after the head); mark the RX FULL; return its length."""
    mbox = ep.mailbox
    room = mbox.size
    size = len(data)
    n = size - offset
    if n <= room and offset == 0:
        piece = data  # the whole response fits: no copy
    else:
        if n > room:
            n = room - (room % CONSTITUENT.size) if offset else room
        if offset == 0 and n < size:
            # First fragment: cut at a constituent boundary past the composite header.
            head = _response_head_len(data)
            n = head + ((room - head) // CONSTITUENT.size) * CONSTITUENT.size
        piece = data[offset : offset + n]
    spmc.machine.mem.write(mbox.rx, piece, "spmc")
    spmc.mailbox_changed(mbox.endpoint)
    mbox.state = FULL
    mbox.recv_func = _RETRIEVE_RESP
    return n


def _response_head_len(data: bytes) -> int:
    """Bytes before the first constituent of an encoded response (whatever its layout)."""
    # The EMAD area ends where the composite starts; every EMAD points there.
    size, count, offset = HDR_V1_1.unpack_from(data)[5:8]
    if size in (EMAD_V1_1.size, EMAD_V1_2.size) and offset == HDR_V1_1.size:
        return offset + count * size + COMPOSITE.size
    count = HDR_V1_0.unpack_from(data)[7]
    return HDR_V1_0.size + count * EMAD_V1_1.size + COMPOSITE.size


def _hyp_retrieve(spmc: Spmc, ep: Endpoint, txn: Txn) -> Regs:
    """The hypervisor retrieve request: the whole transaction, every EMAD."""
    if (
        txn.sender
        or txn.attributes
        or txn.flags
        or txn.tag
        or txn.emad_count
        or (ep.version >= abi.FFA_VERSION_1_1 and (txn.emad_size or txn.emad_offset))
        or not txn.reserved_ok
        or ep.id != HYP_ID
    ):
        return spmc.refuse(INVALID, "hypervisor retrieve request: fields MBZ")
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_hypervisor_retrieve_request(spmc, ep, txn)
    spin_unlock(table)
    return out


def ffa_hypervisor_retrieve_request(spmc: Spmc, ep: Endpoint, txn: Txn) -> Regs:
    """Hafnium ``ffa_hypervisor_retrieve_request``, with VM 0's lock and the share-states
    lock held: the whole transaction, every EMAD, into the hypervisor's RX buffer."""
    share = _find(spmc, txn.handle)
    if share is None or not share.complete:
        return spmc.refuse(INVALID, f"hypervisor retrieve: unknown handle 0x{txn.handle:x}")
    if share.hyp_pending is not None:
        return spmc.refuse(DENIED, "hypervisor retrieve already in progress")
    data = encode_txn(
        ep.version,
        share.sender,
        share.attributes,
        share.flags | (TYPE_OF_KIND[share.kind] << FLAG_TYPE_SHIFT),
        share.handle,
        share.tag,
        [(b.id, b.perms, b.flags, b.impdef) for b in share.borrowers],
        share.total_page_count,
        share.constituents,
    )
    n = _deliver(spmc, ep, data, 0)
    if n < len(data):
        share.hyp_pending = data
        share.hyp_delivered = n
    return abi.regs(abi.FFA_MEM_RETRIEVE_RESP, len(data), n)


def ffa_mem_retrieve_req(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MEM_RETRIEVE_REQ_32/64: a borrower (or the hypervisor) asks for a transaction."""
    total, frag = r[1] & abi.MASK32, r[2] & abi.MASK32
    if r[3] or r[4]:
        return spmc.refuse(INVALID, "retrieve: only the TX buffer method")
    spin_lock(ep.lock)  # vm_lock
    out = _retrieve_req(spmc, ep, total, frag)
    spin_unlock(ep.lock)  # vm_unlock
    return out


def _retrieve_req(spmc: Spmc, ep: Endpoint, total: int, frag: int) -> Regs:
    """The part of ``api_ffa_mem_retrieve_req`` run with the caller's lock held."""
    mbox = ep.mailbox
    rx_frames = mbox.rx_frames  # the Mailbox properties spelt out: this is the hot path
    if frag != total or total > len(rx_frames) * PAGE_SIZE or not rx_frames:
        return spmc.refuse(INVALID, "retrieve: bad length or no TX buffer")
    buf = spmc.machine.mem.read(mbox.tx_frames[0].pa, total, "spmc")  # read once
    if mbox.busy():
        return spmc.refuse(abi.FFA_RET_BUSY, f"retrieve: RX of 0x{ep.id:x} is busy")
    version = ep.version
    txn, ret = _decode_checked(buf, version, True)  # retrieve; the check is used only below
    if isinstance(txn, int):
        return spmc.refuse(txn, "retrieve: request shorter than its header")
    if txn.emad_count == 0:
        return _hyp_retrieve(spmc, ep, txn)
    if ret:
        return spmc.refuse(ret, "retrieve: request fails the sanity check")
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_memory_retrieve(spmc, ep, txn, total)
    spin_unlock(table)
    return out


def ffa_memory_retrieve(spmc: Spmc, ep: Endpoint, txn: Txn, total: int) -> Regs:
    """Hafnium ``ffa_memory_retrieve``, with the caller's lock and the share-states lock held:
    check the request against the transaction, map the pages, write the response."""
    version = ep.version
    share = _find(spmc, txn.handle)
    if share is None:
        return spmc.refuse(INVALID, f"retrieve: unknown handle 0x{txn.handle:x}")
    if not share.complete:
        return spmc.refuse(INVALID, f"retrieve: 0x{txn.handle:x} is still being sent")
    if total != txn.emad_offset + txn.emad_count * txn.emad_size:
        return spmc.refuse(INVALID, "retrieve: length does not match the EMADs")
    if txn.sender != share.sender:
        return spmc.refuse(DENIED, "retrieve: wrong sender")
    # The VM borrowers named: the hypervisor retrieves for one of them.
    nw_borrowers = [e for e in txn.emads if is_vm_id(e.receiver)] if ep.id == HYP_ID else []
    if ep.id == HYP_ID and len(nw_borrowers) > 1:
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "retrieve: several VM borrowers at once")
    ttype = (txn.flags & FLAG_TYPE_MASK) >> FLAG_TYPE_SHIFT
    if ttype and ttype != TYPE_OF_KIND[share.kind]:
        return spmc.refuse(INVALID, "retrieve: wrong transaction type")
    if txn.tag != share.tag:
        return spmc.refuse(INVALID, "retrieve: wrong tag")
    me = nw_borrowers[0].receiver if ep.id == HYP_ID and nw_borrowers else ep.id
    borrower = share.borrower(me) if (ep.id != HYP_ID or nw_borrowers) else None
    if borrower is None:
        return spmc.refuse(INVALID, f"retrieve: 0x{me:x} is not a borrower")
    flags = txn.flags
    if flags & FLAG_HINT_VALID or flags & FLAG_HINT_MASK or flags & RETRIEVE_FLAGS_MBZ:
        return spmc.refuse(INVALID, f"retrieve: bad flags 0x{flags:x}")
    if share.kind == "share" and flags & (FLAG_CLEAR | FLAG_CLEAR_RELINQUISH):
        return spmc.refuse(INVALID, "retrieve: clear flags on a share")
    if flags & FLAG_CLEAR and not share.flags & FLAG_CLEAR:
        return spmc.refuse(DENIED, "retrieve: clear asked but the sender did not clear")
    if txn.attributes & ATTR_NS:
        return spmc.refuse(INVALID, "retrieve: NS bit set in the request")
    mtype = (txn.attributes >> ATTR_TYPE_SHIFT) & 0x3
    if mtype != ATTR_TYPE_NOT_SPECIFIED:
        cache = (txn.attributes >> ATTR_CACHEABILITY_SHIFT) & 0x3
        ok = (mtype == ATTR_TYPE_NORMAL and cache == ATTR_CACHE_WRITE_BACK) or (
            mtype == ATTR_TYPE_DEVICE and cache == ATTR_DEVICE_NGNRNE
        )
        if not ok or txn.attributes & ATTR_SHAREABILITY_MASK != ATTR_INNER_SHAREABLE:
            return spmc.refuse(DENIED, "retrieve: memory type not allowed")
    # The EMAD list.
    bypass = flags & FLAG_BYPASS_BORROWERS
    if not bypass and txn.emad_count != len(share.borrowers):
        return spmc.refuse(INVALID, "retrieve: borrower count differs from the transaction")
    if bypass and (txn.emad_count != 1 or len(share.borrowers) < 2):
        return spmc.refuse(INVALID, "retrieve: bad borrower-check bypass")
    granted = 0
    found_me = False
    for e in txn.emads:
        b = share.borrower(e.receiver)
        if b is None:
            return spmc.refuse(DENIED, f"retrieve: 0x{e.receiver:x} is not a borrower")
        want_d, want_i = e.perms & 0x3, (e.perms >> 2) & 0x3  # _data(), _instr()
        have_d = b.perms & 0x3  # _data()
        # A donation carries no data access: the borrower names it (RW when it does not).
        if want_d == DATA_RESERVED or (want_d == DATA_RW and have_d == DATA_RO):
            return spmc.refuse(DENIED, "retrieve: more data access than granted")
        single = len(share.borrowers) == 1
        if share.kind == "share" and want_i != INSTR_NOT_SPECIFIED:
            return spmc.refuse(INVALID, "retrieve: instruction access on a share")
        if share.kind == "lend" and not single and want_i != INSTR_NOT_SPECIFIED:
            return spmc.refuse(INVALID, "retrieve: instruction access on a shared lend")
        if share.kind != "share" and single and want_i == INSTR_NOT_SPECIFIED:
            return spmc.refuse(INVALID, "retrieve: instruction access not specified")
        if want_i == INSTR_X and is_vm_id(share.sender):  # share.ns
            return spmc.refuse(INVALID, "retrieve: executable NS memory")
        if want_i == INSTR_RESERVED:
            return spmc.refuse(INVALID, "retrieve: reserved instruction access")
        if have_d == DATA_RO and flags & (FLAG_CLEAR | FLAG_CLEAR_RELINQUISH):
            return spmc.refuse(DENIED, "retrieve: read-only borrower asks to clear")
        if e.impdef and b.impdef and e.impdef != b.impdef:
            return spmc.refuse(INVALID, "retrieve: implementation-defined value differs")
        if e.receiver == me:
            found_me = True
            data_access = want_d or have_d or DATA_RW
            instr = INSTR_NX if share.kind == "share" else (want_i or INSTR_NX)
            granted = data_access | (instr << 2)
    if not found_me:
        return spmc.refuse(INVALID, "retrieve: the caller's own EMAD is missing")
    if borrower.state != NOT_RETRIEVED:
        return spmc.refuse(DENIED, f"retrieve: 0x{me:x} already retrieved 0x{share.handle:x}")

    # Map the pages for a partition borrower; the hypervisor maps a VM's itself.
    borrower.granted = granted
    borrower.clear_on_relinquish = bool(flags & FLAG_CLEAR_RELINQUISH)
    if not is_vm_id(me):
        target = spmc.endpoints[me]  # the caller, locked
        party = target.party
        writable = _data(granted) == DATA_RW
        for f in share.frames:  # grant() declares the page's change to the checker
            grant(f, party)
            target.mapped[f.mfn] = writable
    resp_flags = (share.flags & FLAG_CLEAR) | (TYPE_OF_KIND[share.kind] << FLAG_TYPE_SHIFT)
    ns = is_vm_id(share.sender)  # share.ns
    attrs = share.attributes | (ATTR_NS if ns and version >= abi.FFA_VERSION_1_1 else 0)
    data = encode_txn(
        version,
        share.sender,
        attrs,
        resp_flags,
        share.handle,
        share.tag,
        [(me, granted, 0, borrower.impdef)],
        share.total_page_count,
        share.constituents,
    )
    n = _deliver(spmc, ep, data, 0)
    if n < len(data):
        borrower.state = PARTIAL
        borrower.pending = data
        borrower.delivered = n
    else:
        _retrieved(spmc, share, borrower)
    return (_RETRIEVE_RESP, len(data), n, *_ZEROS_15)


def _retrieved(spmc: Spmc, share: ShareState, borrower: Borrower) -> None:
    """A borrower has the whole response; a donation is then final."""
    borrower.state = RETRIEVED
    borrower.pending = b""
    if share.kind == "donate":
        for f in share.frames:  # declared by _free_share
            spmc.donated[f.mfn] = borrower.id
        _free_share(spmc, share)


def ffa_mem_frag_rx(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MEM_FRAG_RX: the next fragment of a retrieve response."""
    handle = abi.make_handle(r[1], r[2])
    offset = r[3] & abi.MASK32
    sender = abi.ffa_sender(r[4])
    if ep.id != HYP_ID and sender:
        return spmc.refuse(INVALID, "FRAG_RX: w4 MBZ for partitions")
    spin_lock(ep.lock)  # vm_lock
    if ep.mailbox.busy():
        spin_unlock(ep.lock)  # vm_unlock
        return spmc.refuse(abi.FFA_RET_BUSY, f"FRAG_RX: RX of 0x{ep.id:x} is busy")
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_memory_retrieve_continue(spmc, ep, handle, offset, sender)
    spin_unlock(table)
    spin_unlock(ep.lock)  # vm_unlock
    return out


def ffa_memory_retrieve_continue(
    spmc: Spmc, ep: Endpoint, handle: int, offset: int, sender: int
) -> Regs:
    """Hafnium ``ffa_memory_retrieve_continue``, with the caller's lock and the share-states
    lock held: the next fragment of a retrieve response into the caller's RX buffer."""
    share = _find(spmc, handle)
    if share is None or not share.complete:
        return spmc.refuse(INVALID, f"FRAG_RX: unknown handle 0x{handle:x}")
    borrower: Borrower | None = None
    if ep.id == HYP_ID and share.hyp_pending is not None:
        if sender != share.sender:
            return spmc.refuse(INVALID, "FRAG_RX: w4 does not name the sender")
        data, done = share.hyp_pending, share.hyp_delivered
    else:
        if ep.id == HYP_ID:
            borrower = next(
                (b for b in share.borrowers if is_vm_id(b.id) and b.state == PARTIAL), None
            )
        else:
            borrower = share.borrower(ep.id)
        if borrower is None or borrower.state != PARTIAL:
            return spmc.refuse(INVALID, "FRAG_RX: no partial retrieval outstanding")
        data, done = borrower.pending, borrower.delivered
    if offset != done:
        return spmc.refuse(INVALID, f"FRAG_RX: offset {offset} is not {done}")
    n = _deliver(spmc, ep, data, done)
    done += n
    if borrower is None:
        share.hyp_delivered = done
        if done >= len(data):
            share.hyp_pending = None
            share.hyp_delivered = 0
    else:
        borrower.delivered = done
        if done >= len(data):
            _retrieved(spmc, share, borrower)
    w4 = (share.sender << 16) if ep.id == HYP_ID else 0
    return abi.regs(abi.FFA_MEM_FRAG_TX, abi.handle_lo(handle), abi.handle_hi(handle), n, w4)


# ---------------------------------------------------------------------------------------------
# FFA_MEM_RELINQUISH and FFA_MEM_RECLAIM


def ffa_mem_relinquish(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MEM_RELINQUISH: a borrower gives retrieved memory back (descriptor in TX)."""
    spin_lock(ep.lock)  # vm_lock
    out = _relinquish(spmc, ep)
    spin_unlock(ep.lock)  # vm_unlock
    return out


def _relinquish(spmc: Spmc, ep: Endpoint) -> Regs:
    """The part of ``api_ffa_mem_relinquish`` run with the caller's lock held."""
    mbox = ep.mailbox
    if not mbox.rx_frames:  # not mbox.mapped
        return spmc.refuse(INVALID, "relinquish: caller has no TX buffer")
    buf = spmc.machine.mem.read(mbox.tx_frames[0].pa, RELINQUISH_FIRST.size, "spmc")  # read once
    handle, flags, count, endpoint = RELINQUISH_FIRST.unpack(buf)
    if count != 1:
        return spmc.refuse(INVALID, "relinquish: exactly one endpoint")
    if ep.id != HYP_ID and endpoint != ep.id:
        return spmc.refuse(INVALID, "relinquish: a partition names another endpoint")
    if ep.id == HYP_ID and not is_vm_id(endpoint):
        return spmc.refuse(INVALID, "relinquish: the hypervisor names a partition")
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_memory_relinquish(spmc, ep, handle, flags, endpoint)
    spin_unlock(table)
    return out


def ffa_memory_relinquish(spmc: Spmc, ep: Endpoint, handle: int, flags: int, endpoint: int) -> Regs:
    """Hafnium ``ffa_memory_relinquish``, with the caller's lock and the share-states lock
    held: unmap the pages from the borrower ``endpoint`` (the caller, or a VM the hypervisor
    names), clearing them if asked and nobody else holds them."""
    share = _find(spmc, handle)
    if share is None or not share.complete:
        return spmc.refuse(INVALID, f"relinquish: unknown handle 0x{handle:x}")
    borrower = share.borrower(endpoint)
    if borrower is None:
        return spmc.refuse(INVALID, f"relinquish: 0x{endpoint:x} is not a borrower")
    if borrower.state != RETRIEVED:
        return spmc.refuse(INVALID, f"relinquish: 0x{endpoint:x} has not retrieved")
    others_gone = True  # no other borrower holds the memory
    for b in share.borrowers:
        if b is not borrower and b.state != NOT_RETRIEVED:
            others_gone = False
    clear = bool(flags & FLAG_CLEAR) or borrower.clear_on_relinquish
    if flags & FLAG_CLEAR and others_gone:
        if share.kind == "share":
            return spmc.refuse(INVALID, "relinquish: clear on a share")
        if _data(borrower.granted) == DATA_RO:
            return spmc.refuse(DENIED, "relinquish: read-only borrower asks to clear")
    if not is_vm_id(endpoint):
        target = ep  # a partition relinquishes only for itself
        for f in share.frames:  # revoke() declares the page's change to the checker
            revoke(f, target.party)
            target.mapped.pop(f.mfn, None)
    borrower.state = NOT_RETRIEVED
    borrower.granted = 0
    borrower.clear_on_relinquish = False
    borrower.relinquished += 1
    if clear and others_gone and share.kind != "share":
        zero_frames(spmc, share.frames)
    return success()


def ffa_mem_reclaim(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MEM_RECLAIM: the sender takes its memory back once no borrower holds it."""
    handle = abi.make_handle(r[1], r[2])
    flags = r[3] & abi.MASK32
    if handle & abi.FFA_HANDLE_HYP_FLAG:
        return spmc.refuse(INVALID, f"reclaim: 0x{handle:x} is not an SPMC handle")
    spin_lock(ep.lock)  # vm_lock
    table = spmc.share_states_lock
    spin_lock(table)
    out = ffa_memory_reclaim(spmc, ep, handle, flags)
    spin_unlock(table)
    spin_unlock(ep.lock)  # vm_unlock
    return out


def ffa_memory_reclaim(spmc: Spmc, ep: Endpoint, handle: int, flags: int) -> Regs:
    """Hafnium ``ffa_memory_reclaim``, with the caller's lock and the share-states lock held:
    the sender takes its pages back once no borrower holds them."""
    share = _find(spmc, handle)
    if share is None or not share.complete:
        return spmc.refuse(INVALID, f"reclaim: unknown handle 0x{handle:x}")
    if ep.id != HYP_ID and share.sender != ep.id:
        return spmc.refuse(INVALID, "reclaim: caller is not the sender")
    if ep.id == HYP_ID and not is_vm_id(share.sender):  # not share.ns
        return spmc.refuse(INVALID, "reclaim: the hypervisor reclaims a partition's memory")
    # Hafnium reclaim_shared_state: only borrowers' retrievals hold the memory; a hypervisor
    # retrieve request still being read (FRAG_RX) does not, and is cut short by the reclaim.
    held = False
    for b in share.borrowers:
        held = held or b.state != NOT_RETRIEVED
    if held:
        return spmc.refuse(DENIED, f"reclaim: 0x{handle:x} is still borrowed")
    if flags & FLAG_CLEAR:
        zero_frames(spmc, share.frames)
    _free_share(spmc, share)
    return success()


HANDLERS: dict[int, Handler] = {
    **{fid: ffa_mem_send for fid in KIND_OF_FID},
    abi.FFA_MEM_FRAG_TX: ffa_mem_frag_tx,
    abi.FFA_MEM_FRAG_RX: ffa_mem_frag_rx,
    abi.FFA_MEM_RETRIEVE_REQ_32: ffa_mem_retrieve_req,
    abi.FFA_MEM_RETRIEVE_REQ_64: ffa_mem_retrieve_req,
    abi.FFA_MEM_RELINQUISH: ffa_mem_relinquish,
    abi.FFA_MEM_RECLAIM: ffa_mem_reclaim,
}
