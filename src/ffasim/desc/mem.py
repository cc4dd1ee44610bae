"""Memory management descriptors: transaction, EMAD, composite, constituent, relinquish (§3.4-3.8).

The transaction descriptor comes in two layouts chosen by the negotiated version of whoever
wrote it: v1.0 (32-byte header, 16-byte EMADs at 32) and v1.1+ (48-byte header that names the
EMAD size, 16 or 32 bytes, and the offset of the EMAD array). The composite descriptor follows
the EMADs, at the offset each EMAD gives.

Decoding validates as Hafnium's SPMC does before it looks at the memory itself
(``ffa_memory_region_sanity_check`` and the layout part of ``ffa_memory_send_validate``): every
rule that fails raises :class:`DescriptorError` with INVALID_PARAMETERS and the field's offset.
Rules that depend on the operation (SHARE may not set "zero memory", how many receivers, which
permissions) are left to the caller, which knows the operation.

Decoders read each field once with ``struct.unpack_from`` at an explicit offset and keep no
view into the buffer, so a caller can hand them a guest page and then forget it.

:class:`Constituent`, :class:`Composite`, :class:`MemAccess` and :class:`MemTransaction` are
immutable records built on ``typing.NamedTuple`` rather than frozen dataclasses: a decoder
creates seven of them for a one-receiver, four-range descriptor, and CPython builds a tuple
about twice as fast as it fills an instance ``__dict__`` (``docs/desc.md``, Benchmarks). They
compare equal only to records of their own class (never to a plain tuple), hash like the
tuple of their fields as the dataclasses did, and refuse attribute assignment.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from .. import abi
from ._errors import DescriptorError, check_version, invalid
from ._layouts import (
    COMPOSITE,
    CONSTITUENT,
    EMAD_V1_0,
    EMAD_V1_2,
    RELINQUISH_HEADER,
    TRANSACTION_V1_0,
    TRANSACTION_V1_1,
)

__all__ = [
    "MEM_ATTR_MBZ_MASK",
    "MEM_FLAGS_MBZ_MASK",
    "MEM_PERM_MBZ_MASK",
    "Composite",
    "Constituent",
    "MemAccess",
    "MemTransaction",
    "Relinquish",
    "hyp_retrieve_request",
    "retrieve_request",
]

_NIL16 = bytes(16)
_INVALID = abi.FFA_RET_INVALID_PARAMETERS

# Attribute bits [15:7] are MBZ from v1.1 (Hafnium FFA_MEMORY_ATTRIBUTES_MBZ_MASK); v1.0's
# attributes are one byte, of which bit 7 is reserved (bit 6, NS, may be opted into).
MEM_ATTR_MBZ_MASK: Final = 0xFF80
MEM_ATTR_MBZ_MASK_V1_0: Final = 0x80
# No operation defines a transaction flag above bit 10 (bypass multiple-borrower check, v1.2).
MEM_FLAGS_MBZ_MASK: Final = 0xFFFFF800
# Permissions bits [7:4] are reserved; the value 0b11 of either access field is reserved too.
MEM_PERM_MBZ_MASK: Final = 0xF0
# EMAD flags: only bit 0 (non-retrieval borrower) is defined.
MEM_EMAD_FLAGS_MBZ_MASK: Final = 0xFE
# Relinquish flags: bit 0 zero memory after relinquish, bit 1 time slicing.
RELINQUISH_FLAGS_MBZ_MASK: Final = 0xFFFFFFFC

# Hafnium requires the composite descriptor at a 16-byte aligned offset
# (hafnium-spmc.md §4.3 step 11); every known writer puts it right after the EMAD array.
COMPOSITE_ALIGN: Final = 16

_V1_0_HEADER = TRANSACTION_V1_0.size
_V1_1_HEADER = TRANSACTION_V1_1.size

_unpack_composite = COMPOSITE.unpack_from
_unpack_constituent = CONSTITUENT.unpack_from
_unpack_emad16 = EMAD_V1_0.unpack_from
_unpack_emad32 = EMAD_V1_2.unpack_from
_unpack_tx10 = TRANSACTION_V1_0.unpack_from
_unpack_tx11 = TRANSACTION_V1_1.unpack_from
_pack_composite = COMPOSITE.pack_into
_pack_constituent = CONSTITUENT.pack_into
_pack_emad16 = EMAD_V1_0.pack_into
_pack_emad32 = EMAD_V1_2.pack_into
_pack_tx10 = TRANSACTION_V1_0.pack_into
_pack_tx11 = TRANSACTION_V1_1.pack_into

_Buffer = bytes | bytearray | memoryview
# tuple.__new__(Record, fields) builds a record without running its Python __new__: the
# decoders use it once the fields are validated.
_tn = tuple.__new__
_tuple_eq = tuple.__eq__
_iter_constituents = CONSTITUENT.iter_unpack


# Permission bytes with reserved bits [7:4] or a reserved access value (0b11) in either field.
_BAD_PERM: Final = tuple(bool(p & 0xF0 or p & 3 == 3 or p & 12 == 12) for p in range(256))


def _v1_1_header_error(
    attr: int, flags: int, res0: int, res1: int, esz: int, count: int, eoff: int, minor: int
) -> None:
    """Raise the error for the first rule a v1.1+ header breaks, in the order the rules are
    documented; return when it breaks none (the bare hypervisor retrieve request, whose EMAD
    count, size and offset are all 0, takes this path)."""
    if attr & MEM_ATTR_MBZ_MASK:
        raise invalid(
            f"attribute bits 0x{attr & MEM_ATTR_MBZ_MASK:x} set in MBZ bits [15:7]",
            2,
            "attributes",
        )
    if res0 or res1:
        raise invalid("reserved field is not zero", 36 if res0 else 40, "reserved")
    if count or esz or eoff:
        if esz != 16 and esz != 32:
            raise invalid(f"EMAD size {esz} is neither 16 nor 32", 24, "emad_size")
        if esz == 32 and minor < 2:
            raise invalid(
                f"32-byte EMADs need FF-A v1.2, the writer negotiated v1.{minor}", 24, "emad_size"
            )
        if eoff < _V1_1_HEADER:
            raise invalid(f"EMAD offset {eoff} points into the 48-byte header", 32, "emad_offset")
        if eoff & 15:
            raise invalid(f"EMAD offset {eoff} is not 16-byte aligned", 32, "emad_offset")
    _check_flags(flags)


def _check_flags(flags: int) -> None:
    if flags & MEM_FLAGS_MBZ_MASK:
        raise invalid(
            f"flag bits 0x{flags & MEM_FLAGS_MBZ_MASK:x} set in MBZ bits [31:11]", 4, "flags"
        )


def _emad_error(perm: int, eflags: int, off: int, res_off: int) -> None:
    """Raise the error for an EMAD whose permissions, flags or reserved field are wrong."""
    if _BAD_PERM[perm]:
        raise invalid(
            f"permissions 0x{perm:02x} use reserved bits or values", off + 2, "permissions"
        )
    if eflags & MEM_EMAD_FLAGS_MBZ_MASK:
        raise invalid(f"EMAD flags 0x{eflags:02x} set MBZ bits", off + 3, "emad.flags")
    raise invalid("reserved field is not zero", res_off, "emad.reserved")


# -- records -------------------------------------------------------------------------------
# Each record is a NamedTuple (its fields, defaults, repr and _replace) subclassed to compare
# like the frozen dataclass it replaces: equal only to the same class, hashed as its fields.


def _record_eq(self: tuple[Any, ...], other: object) -> Any:
    if type(other) is type(self):
        return _tuple_eq(self, other)
    return False if isinstance(other, tuple) else NotImplemented


def _record_ne(self: tuple[Any, ...], other: object) -> Any:
    if type(other) is type(self):
        return not _tuple_eq(self, other)
    return True if isinstance(other, tuple) else NotImplemented


class _ConstituentFields(NamedTuple):
    address: int
    page_count: int


class Constituent(_ConstituentFields):
    """One address range: a 4 KiB-aligned base address and a count of 4 KiB pages."""

    __slots__ = ()
    __eq__ = _record_eq
    __ne__ = _record_ne
    __hash__ = tuple.__hash__


class _CompositeFields(NamedTuple):
    total_page_count: int
    constituents: tuple[Constituent, ...]


class Composite(_CompositeFields):
    """A composite memory region: the total page count and the address ranges that make it."""

    __slots__ = ()
    __eq__ = _record_eq
    __ne__ = _record_ne
    __hash__ = tuple.__hash__

    @classmethod
    def of(cls, ranges: Iterable[Constituent | tuple[int, int]]) -> Composite:
        """A composite whose total page count is the sum of ``ranges`` (Constituents or pairs)."""
        cons = tuple(r if isinstance(r, Constituent) else Constituent(*r) for r in ranges)
        return cls(sum(c.page_count for c in cons), cons)

    @property
    def size(self) -> int:
        """Bytes the descriptor takes: 16 plus 16 per constituent."""
        return COMPOSITE.size + CONSTITUENT.size * len(self.constituents)

    def encode(self) -> bytes:
        out = bytearray(self.size)
        self.encode_into(out, 0)
        return bytes(out)

    def encode_into(self, out: bytearray, offset: int) -> None:
        """Write the descriptor into ``out`` at ``offset`` (which must be large enough)."""
        COMPOSITE.pack_into(out, offset, self.total_page_count, len(self.constituents), 0)
        pack = CONSTITUENT.pack_into
        off = offset + 16
        for c in self.constituents:
            pack(out, off, c.address, c.page_count, 0)
            off += 16

    @classmethod
    def decode(
        cls, buf: _Buffer, offset: int = 0, *, length: int | None = None, strict: bool = True
    ) -> Composite:
        """Read the composite at ``offset``; the descriptor must end within ``length`` bytes.

        ``strict`` (the memory-sharing rules) also requires the reserved fields to be zero, each
        base address to be 4 KiB aligned and the total page count to equal the constituents'
        sum. The endpoint RX/TX descriptor is read with ``strict=False``: Hafnium only takes the
        first constituent from it.
        """
        end = len(buf) if length is None else min(length, len(buf))
        return _decode_composite(buf, offset, end, strict)


def _constituent_error(address: int, res: int, off: int) -> None:
    """Raise the error for the constituent at ``off``: reserved field set, or misaligned."""
    if res:
        raise invalid("reserved field is not zero", off + 12, "constituent.reserved")
    raise invalid(f"address 0x{address:x} is not 4 KiB aligned", off, "constituent.address")


def _decode_composite(buf: _Buffer, off: int, end: int, strict: bool) -> Composite:
    if off < 0 or off + 16 > end:
        raise invalid(
            f"composite descriptor at {off} does not fit in {end} bytes", off, "composite"
        )
    total, count, reserved = _unpack_composite(buf, off)
    if count * 16 > end - off - 16:
        raise invalid(
            f"{count} constituents at {off + 16} overrun the {end}-byte descriptor",
            off + 4,
            "address_range_count",
        )
    c_off = off + 16
    # One slice of the constituent array, read by iter_unpack: each byte once, no per-range
    # offset arithmetic. On failure the range's index is how many were accepted before it.
    ranges = _iter_constituents(buf[c_off : c_off + 16 * count])
    cons: list[Constituent] = []
    append = cons.append
    if not strict:
        for address, page_count, _res in ranges:
            append(_tn(Constituent, (address, page_count)))
        return _tn(Composite, (total, tuple(cons)))
    if reserved:
        raise invalid("reserved field is not zero", off + 8, "composite.reserved")
    pages = 0
    for address, page_count, res in ranges:
        if address & 0xFFF or res:
            _constituent_error(address, res, c_off + 16 * len(cons))
        pages += page_count
        append(_tn(Constituent, (address, page_count)))
    if pages != total:
        raise invalid(
            f"total page count {total} differs from the constituents' sum {pages}",
            off,
            "total_page_count",
        )
    return _tn(Composite, (total, tuple(cons)))


class _MemAccessFields(NamedTuple):
    receiver: int
    permissions: int
    flags: int = 0
    composite_offset: int = 0
    impdef: bytes = _NIL16


class MemAccess(_MemAccessFields):
    """One endpoint memory access descriptor (EMAD): who gets access, with what permissions.

    ``permissions``: bits [1:0] data access (1 RO, 2 RW), bits [3:2] instruction access (1 NX,
    2 X); 0 in either means "not specified". ``composite_offset`` is counted from the start of
    the transaction descriptor; 0 in a retrieve request (the handle identifies the memory), and
    filled in by :meth:`MemTransaction.encode` when left 0 and a composite is given.
    ``impdef`` exists only in v1.2 (32-byte) EMADs; any bytes-like value of 16 bytes is kept
    as ``bytes``.
    """

    __slots__ = ()
    __eq__ = _record_eq
    __ne__ = _record_ne
    __hash__ = tuple.__hash__

    def __new__(
        cls,
        receiver: int,
        permissions: int,
        flags: int = 0,
        composite_offset: int = 0,
        impdef: bytes | bytearray | memoryview = _NIL16,
    ) -> MemAccess:
        if type(impdef) is not bytes or len(impdef) != 16:
            impdef = bytes(impdef)
            if len(impdef) != 16:
                raise ValueError(f"impdef is 16 bytes, got {len(impdef)}")
        return _tn(cls, (receiver, permissions, flags, composite_offset, impdef))


def _emad_size_for(minor: int) -> int:
    return 32 if minor >= 2 else 16


class _MemTransactionFields(NamedTuple):
    sender: int
    attributes: int
    flags: int
    handle: int
    tag: int
    receivers: tuple[MemAccess, ...]
    composite: Composite | None
    emad_size: int | None = None
    emad_offset: int | None = None


class MemTransaction(_MemTransactionFields):
    """A memory transaction descriptor: SHARE/LEND/DONATE, RETRIEVE_REQ or RETRIEVE_RESP.

    ``emad_size`` and ``emad_offset`` are header fields of v1.1+ only. Left ``None`` they follow
    the version given to :meth:`encode`: 16-byte EMADs up to v1.1 and 32-byte from v1.2, at 48
    (v1.0: 16 bytes at 32, fixed). :meth:`decode` fills them with what the buffer says (``None``
    for v1.0, which has no such fields), and each EMAD's ``composite_offset`` too, so
    ``decode(t.encode(v), v) == t.resolved(v)``. To re-encode a decoded descriptor for a
    different version (a mediator converting a v1.0 guest's descriptor for a v1.1 SPMC), use
    :meth:`relaid` first: it drops the layout so that ``encode`` recomputes it.
    """

    __slots__ = ()
    __eq__ = _record_eq
    __ne__ = _record_ne
    __hash__ = tuple.__hash__

    # -- layout ------------------------------------------------------------------------------

    def layout(self, version: int) -> tuple[int, int, int]:
        """``(emad_offset, emad_size, composite_offset)`` that :meth:`encode` uses for ``version``.

        The composite offset is where the composite is written (right after the EMAD array),
        whether or not there is one.
        """
        minor = check_version(version)
        if minor == 0:
            eoff, esz = _V1_0_HEADER, 16
        else:
            esz = self.emad_size if self.emad_size is not None else _emad_size_for(minor)
            eoff = self.emad_offset if self.emad_offset is not None else _V1_1_HEADER
        return eoff, esz, eoff + len(self.receivers) * esz

    def resolved(self, version: int) -> MemTransaction:
        """This transaction as :meth:`decode` returns it after ``encode(version)``."""
        eoff, esz, coff = self.layout(version)
        receivers = self.receivers
        if self.composite is not None:
            receivers = tuple(
                m if m.composite_offset else m._replace(composite_offset=coff) for m in receivers
            )
        if esz != 32:  # only 32-byte EMADs carry the implementation-defined value
            receivers = tuple(
                m if m.impdef == _NIL16 else m._replace(impdef=_NIL16) for m in receivers
            )
        if check_version(version) == 0:
            return self._replace(receivers=receivers, emad_size=None, emad_offset=None)
        return self._replace(receivers=receivers, emad_size=esz, emad_offset=eoff)

    def relaid(self) -> MemTransaction:
        """The same transaction with its layout forgotten: sizes, offsets, composite offsets."""
        return self._replace(
            emad_size=None,
            emad_offset=None,
            receivers=tuple(m._replace(composite_offset=0) for m in self.receivers),
        )

    # -- encode ------------------------------------------------------------------------------

    def encode(self, version: int) -> bytes:
        """The descriptor in the layout of ``version`` (``abi.FFA_VERSION_1_0`` ... ``_1_2``).

        Writes what it is given, valid or not, so that tests can build malformed descriptors;
        only values that do not fit their field raise (``struct.error``).
        """
        minor = version & 0xFFFF if version >> 16 == 1 else check_version(version)
        # One unpacking of the record instead of an attribute load per field.
        sender, attributes, flags, handle, tag, receivers, comp, emad_size, emad_offset = self
        n = len(receivers)
        esz: int = 16
        eoff: int = _V1_0_HEADER
        if minor:
            esz = emad_size if emad_size is not None else (32 if minor >= 2 else 16)
            eoff = emad_offset if emad_offset is not None else _V1_1_HEADER
        coff = eoff + n * esz
        if comp is None:
            out = bytearray(max(coff, _V1_1_HEADER if minor else _V1_0_HEADER))
            fill = 0
        else:
            total, constituents = comp
            out = bytearray(max(coff, _V1_1_HEADER) + 16 + 16 * len(constituents))
            fill = coff
        if minor == 0:
            _pack_tx10(out, 0, sender, attributes, 0, flags, handle, tag, 0, n)
        else:
            _pack_tx11(out, 0, sender, attributes, flags, handle, tag, esz, n, eoff, 0, 0)
        off = eoff
        if esz == 32:
            for receiver, perm, eflags, c, impdef in receivers:
                _pack_emad32(out, off, receiver, perm, eflags, c or fill, impdef, 0)
                off += 32
        else:
            for receiver, perm, eflags, c, _impdef in receivers:
                _pack_emad16(out, off, receiver, perm, eflags, c or fill, 0)
                off += esz
        if comp is not None:
            _pack_composite(out, coff, total, len(constituents), 0)
            off = coff + 16
            for address, page_count in constituents:
                _pack_constituent(out, off, address, page_count, 0)
                off += 16
        return bytes(out)

    # -- decode ------------------------------------------------------------------------------

    @classmethod
    def decode(cls, buf: _Buffer, version: int, *, length: int | None = None) -> MemTransaction:
        """Read and validate a transaction descriptor written in ``version``'s layout.

        ``length`` is how many bytes of ``buf`` hold the descriptor (the caller's fragment
        length), default all of it; nothing is read beyond it.

        Raises :class:`DescriptorError` (INVALID_PARAMETERS unless noted) when: the buffer is
        shorter than ``length`` or the header; a reserved header field, attribute bit [15:7] or
        flag bit [31:11] is set; (v1.1+) the EMAD size is not 16 or 32, or is 32 below v1.2;
        the EMAD offset is below 48 or not 16-aligned (both may be 0 only with no EMADs: the
        hypervisor retrieve request); the EMAD array overruns ``length``; an EMAD has reserved
        permission bits, a reserved access value (0b11), reserved flag bits or a non-zero
        reserved field; two EMADs name the same receiver or give different composite offsets;
        the composite offset points into the header or EMADs, is not 16-aligned or overruns;
        the constituents overrun; a constituent is not 4 KiB aligned or has a reserved field
        set; the total page count differs from the constituents' sum. An unknown major
        version is NOT_SUPPORTED.
        """
        n = len(buf)
        if length is None:
            end = n
        elif 0 <= length <= n:
            end = length
        else:
            raise invalid(f"length {length} exceeds the {n}-byte buffer", 0, "length")
        minor = version & 0xFFFF if version >> 16 == 1 else check_version(version)
        if minor:
            if end < _V1_1_HEADER:
                raise invalid(f"{end} bytes is shorter than the 48-byte header", 0, "header")
            (sender, attr, flags, handle, tag, esz, count, eoff, res0, res1) = _unpack_tx11(buf, 0)
            # One test on the path every valid descriptor takes; the details only on failure.
            if (
                attr & 0xFF80
                or flags & MEM_FLAGS_MBZ_MASK
                or res0
                or res1
                or (esz != 16 and (esz != 32 or minor < 2))
                or eoff < 48
                or eoff & 15
            ):
                _v1_1_header_error(attr, flags, res0, res1, esz, count, eoff, minor)
            emad_size: int | None = esz
            emad_offset: int | None = eoff
        else:
            if end < _V1_0_HEADER:
                raise invalid(f"{end} bytes is shorter than the 32-byte v1.0 header", 0, "header")
            sender, attr, res0, flags, handle, tag, res1, count = _unpack_tx10(buf, 0)
            if attr & MEM_ATTR_MBZ_MASK_V1_0:
                raise invalid(f"attribute bits 0x{attr:x} set in MBZ bit 7", 2, "attributes")
            if res0:
                raise invalid("reserved field is not zero", 3, "reserved")
            if res1:
                raise invalid("reserved field is not zero", 24, "reserved")
            _check_flags(flags)
            esz = 16
            eoff = _V1_0_HEADER
            emad_size = None
            emad_offset = None
        emad_end = eoff + count * esz
        if emad_end > end:
            raise invalid(
                f"{count} EMADs of {esz} bytes at {eoff} overrun the {end}-byte descriptor",
                28,
                "emad_count",
            )

        if count == 1 and esz == 16:
            # The common case (one borrower), without the duplicate and agreement checks.
            ep, perm, eflags, coff, res = _unpack_emad16(buf, eoff)
            if _BAD_PERM[perm] or eflags & 0xFE or res:
                _emad_error(perm, eflags, eoff, eoff + 8)
            receivers: tuple[MemAccess, ...] = (_tn(MemAccess, (ep, perm, eflags, coff, _NIL16)),)
        else:
            receivers, coff = _decode_emads(buf, eoff, esz, count)

        composite = None
        if coff:
            if coff < emad_end:
                raise invalid(
                    f"composite offset {coff} points into the header or EMADs (end {emad_end})",
                    eoff + 4,
                    "composite_offset",
                )
            if coff & (COMPOSITE_ALIGN - 1):
                raise invalid(
                    f"composite offset {coff} is not {COMPOSITE_ALIGN}-byte aligned",
                    eoff + 4,
                    "composite_offset",
                )
            composite = _decode_composite(buf, coff, end, True)
        return _tn(
            cls, (sender, attr, flags, handle, tag, receivers, composite, emad_size, emad_offset)
        )


def _decode_emads(
    buf: _Buffer, eoff: int, esz: int, count: int
) -> tuple[tuple[MemAccess, ...], int]:
    """``count`` EMADs of ``esz`` bytes from ``eoff`` (in bounds), validated, and the composite
    offset they all give (0 with no EMADs)."""
    receivers = []
    seen: list[int] = []
    coff = 0
    off = eoff
    for i in range(count):
        if esz == 16:
            ep, perm, eflags, c, res = _unpack_emad16(buf, off)
            impdef = _NIL16
            res_off = off + 8
        else:
            ep, perm, eflags, c, impdef, res = _unpack_emad32(buf, off)
            res_off = off + 24
        if _BAD_PERM[perm] or eflags & 0xFE or res:
            _emad_error(perm, eflags, off, res_off)
        if i == 0:
            coff = c
        elif c != coff:
            raise invalid(
                f"composite offset {c} differs from the first EMAD's {coff}",
                off + 4,
                "composite_offset",
            )
        if i and ep in seen:
            raise invalid(f"receiver 0x{ep:04x} is listed twice", off, "receiver")
        seen.append(ep)
        receivers.append(_tn(MemAccess, (ep, perm, eflags, c, impdef)))
        off += esz
    return tuple(receivers), coff


def retrieve_request(
    handle: int,
    sender: int,
    receivers: Sequence[int | MemAccess],
    version: int,
    *,
    attributes: int = 0,
    flags: int = 0,
    tag: int = 0,
    permissions: int = abi.FFA_MEM_ACC_RW,
) -> bytes:
    """An FFA_MEM_RETRIEVE_REQ descriptor for ``handle`` in ``version``'s layout.

    ``receivers`` are endpoint IDs (each given ``permissions``) or full :class:`MemAccess`
    entries; the composite offsets stay 0, as a request names the memory by handle.
    """
    emads = tuple(r if isinstance(r, MemAccess) else MemAccess(r, permissions) for r in receivers)
    return MemTransaction(sender, attributes, flags, handle, tag, emads, None).encode(version)


def hyp_retrieve_request(handle: int) -> bytes:
    """The hypervisor retrieve request (§3.7): a bare 48-byte header naming only ``handle``.

    The SPMC answers with the whole original descriptor (pKVM's reclaim path; Hafnium needs
    every other field zero).
    """
    out = bytearray(_V1_1_HEADER)
    struct.pack_into("<Q", out, 8, handle)
    return bytes(out)


@dataclass(frozen=True)
class Relinquish:
    """The FFA_MEM_RELINQUISH descriptor (§3.8): handle, flags, the endpoints giving it back."""

    handle: int
    flags: int
    endpoints: tuple[int, ...]

    def encode(self) -> bytes:
        n = len(self.endpoints)
        return RELINQUISH_HEADER.pack(self.handle, self.flags, n) + struct.pack(
            f"<{n}H", *self.endpoints
        )

    @classmethod
    def decode(cls, buf: _Buffer, *, length: int | None = None) -> Relinquish:
        """Read and validate; INVALID_PARAMETERS for a short buffer, an endpoint count that
        overruns it, or flags outside bits [1:0]."""
        end = len(buf) if length is None else min(length, len(buf))
        if end < 16:
            raise invalid(f"{end} bytes is shorter than the 16-byte header", 0, "header")
        handle, flags, count = RELINQUISH_HEADER.unpack_from(buf, 0)
        if flags & RELINQUISH_FLAGS_MBZ_MASK:
            raise invalid(f"flags 0x{flags:x} set MBZ bits [31:2]", 8, "flags")
        if count * 2 > end - 16:
            raise DescriptorError(
                _INVALID,
                f"{count} endpoint IDs at 16 overrun the {end}-byte descriptor",
                12,
                "endpoint_count",
            )
        return cls(handle, flags, struct.unpack_from(f"<{count}H", buf, 16))
