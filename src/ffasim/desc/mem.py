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

Design note. Decoding aims at twice the cost of a bare ``struct`` parse of the same fields at
most (``docs/desc.md``, Benchmarks), and in CPython creating a record costs more than the
``unpack_from`` that reads its fields (``_records.py``). So:

- :class:`Constituent` and :class:`MemAccess` are ``NamedTuple`` records. :class:`Composite` and
  :class:`MemTransaction` are too, but keep their nested records as the plain tuples that
  ``struct`` yields (``Composite.ranges``, ``MemTransaction.emads`` and ``.region``) and build
  the typed ``constituents``, ``receivers`` and ``composite`` each time one is read. A decoder
  creates one record and a few tuples; a reader pays for the records it looks at. Iterating
  or indexing a record gives its stored fields, so the plain forms.
- The common layout (one EMAD right after the header, the composite right after it) is read by
  one ``unpack_from`` of a fused layout and checked by one expression. Every other descriptor,
  and every one that breaks a rule, goes through the general path (``_mem_rules.py``), which
  reads it again structure by structure and reports the first broken rule in documented order.

Decoders keep no view into the buffer, so a caller can hand them a guest page and then forget it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
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
from ._mem_rules import BAD_PERM as _BAD_PERM
from ._mem_rules import MEM_ATTR_MBZ_MASK as MEM_ATTR_MBZ_MASK
from ._mem_rules import MEM_FLAGS_MBZ_MASK as MEM_FLAGS_MBZ_MASK
from ._mem_rules import MEM_PERM_MBZ_MASK as MEM_PERM_MBZ_MASK
from ._mem_rules import V1_0_HEADER as _V1_0_HEADER
from ._mem_rules import V1_1_HEADER as _V1_1_HEADER
from ._mem_rules import (
    CompositeFields,
    EmadFields,
    RangeFields,
    decode_composite,
    decode_transaction,
    read_ranges,
)
from ._records import record_eq, record_ne, records

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
# Relinquish flags: bit 0 zero memory after relinquish, bit 1 time slicing.
RELINQUISH_FLAGS_MBZ_MASK: Final = 0xFFFFFFFC

_V1_0: Final = abi.FFA_VERSION_1_0
_V1_1: Final = abi.FFA_VERSION_1_1
_V1_2: Final = abi.FFA_VERSION_1_2

# The common layouts, fused: header, one EMAD, composite header and first constituent, read by
# one unpack_from each.
_AFTER_EMAD = COMPOSITE.format[1:] + CONSTITUENT.format[1:]
_COMMON_V1_0: Final = struct.Struct(TRANSACTION_V1_0.format + EMAD_V1_0.format[1:] + _AFTER_EMAD)
_COMMON_V1_1: Final = struct.Struct(TRANSACTION_V1_1.format + EMAD_V1_0.format[1:] + _AFTER_EMAD)
_COMMON_V1_2: Final = struct.Struct(TRANSACTION_V1_1.format + EMAD_V1_2.format[1:] + _AFTER_EMAD)
assert (_COMMON_V1_0.size, _COMMON_V1_1.size, _COMMON_V1_2.size) == (80, 96, 112)

_unpack_common10 = _COMMON_V1_0.unpack_from
_unpack_common11 = _COMMON_V1_1.unpack_from
_unpack_common12 = _COMMON_V1_2.unpack_from
_pack_composite = COMPOSITE.pack_into
_pack_constituent = CONSTITUENT.pack_into
_pack_emad16 = EMAD_V1_0.pack_into
_pack_emad32 = EMAD_V1_2.pack_into
_pack_tx10 = TRANSACTION_V1_0.pack_into
_pack_tx11 = TRANSACTION_V1_1.pack_into
_page_count = itemgetter(1)
# tuple.__new__(Record, fields) builds a record without running its Python __new__: for fields
# that are validated (decode) or already in the record's plain form.
_tn = tuple.__new__

_Buffer = bytes | bytearray | memoryview


# -- records -------------------------------------------------------------------------------


class _ConstituentFields(NamedTuple):
    address: int
    page_count: int


class Constituent(_ConstituentFields):
    """One address range: a 4 KiB-aligned base address and a count of 4 KiB pages."""

    __slots__ = ()
    __eq__ = record_eq
    __ne__ = record_ne
    __hash__ = tuple.__hash__


class _CompositeFields(NamedTuple):
    total_page_count: int
    ranges: tuple[RangeFields, ...]


class Composite(_CompositeFields):
    """A composite memory region: the total page count and the address ranges that make it.

    ``constituents`` gives the ranges as :class:`Constituent` records, built at each read;
    ``ranges`` gives them as the plain ``(address, page_count)`` pairs the record keeps.
    """

    __slots__ = ()
    __eq__ = record_eq
    __ne__ = record_ne
    __hash__ = tuple.__hash__

    def __new__(
        cls, total_page_count: int, constituents: Iterable[Constituent | RangeFields]
    ) -> Composite:
        return _tn(cls, (total_page_count, tuple(map(tuple, constituents))))

    @property
    def constituents(self) -> tuple[Constituent, ...]:
        return records(Constituent, self.ranges)

    def __repr__(self) -> str:
        return (
            f"Composite(total_page_count={self.total_page_count!r}, "
            f"constituents={self.constituents!r})"
        )

    def _replace(self, **changes: Any) -> Composite:
        fields: dict[str, Any] = {"total_page_count": self[0], "constituents": self[1]}
        fields.update(changes)
        return Composite(**fields)

    __replace__ = _replace

    @classmethod
    def of(cls, ranges: Iterable[Constituent | RangeFields]) -> Composite:
        """A composite whose total page count is the sum of ``ranges`` (Constituents or pairs)."""
        pairs = tuple(map(tuple, ranges))
        return _tn(cls, (sum(map(_page_count, pairs)), pairs))

    @property
    def size(self) -> int:
        """Bytes the descriptor takes: 16 plus 16 per constituent."""
        return COMPOSITE.size + CONSTITUENT.size * len(self.ranges)

    def encode(self) -> bytes:
        out = bytearray(self.size)
        self.encode_into(out, 0)
        return bytes(out)

    def encode_into(self, out: bytearray, offset: int) -> None:
        """Write the descriptor into ``out`` at ``offset`` (which must be large enough)."""
        _encode_composite(out, offset, self)

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
        return _tn(cls, decode_composite(buf, offset, end, strict))


def _encode_composite(out: bytearray, offset: int, region: CompositeFields) -> None:
    total, ranges = region
    _pack_composite(out, offset, total, len(ranges), 0)
    off = offset + 16
    for address, page_count in ranges:
        _pack_constituent(out, off, address, page_count, 0)
        off += 16


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
    __eq__ = record_eq
    __ne__ = record_ne
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
    emads: tuple[EmadFields, ...]
    region: CompositeFields | None
    emad_size: int | None = None
    emad_offset: int | None = None


_MEM_TRANSACTION_ARGS: Final = (
    "sender",
    "attributes",
    "flags",
    "handle",
    "tag",
    "receivers",
    "composite",
    "emad_size",
    "emad_offset",
)


class MemTransaction(_MemTransactionFields):
    """A memory transaction descriptor: SHARE/LEND/DONATE, RETRIEVE_REQ or RETRIEVE_RESP.

    ``emad_size`` and ``emad_offset`` are header fields of v1.1+ only. Left ``None`` they follow
    the version given to :meth:`encode`: 16-byte EMADs up to v1.1 and 32-byte from v1.2, at 48
    (v1.0: 16 bytes at 32, fixed). :meth:`decode` fills them with what the buffer says (``None``
    for v1.0, which has no such fields), and each EMAD's ``composite_offset`` too, so
    ``decode(t.encode(v), v) == t.resolved(v)``. To re-encode a decoded descriptor for a
    different version (a mediator converting a v1.0 guest's descriptor for a v1.1 SPMC), use
    :meth:`relaid` first: it drops the layout so that ``encode`` recomputes it.

    ``receivers`` and ``composite`` are built from the plain ``emads`` and ``region`` at each
    read (see the module's design note).
    """

    __slots__ = ()
    __eq__ = record_eq
    __ne__ = record_ne
    __hash__ = tuple.__hash__

    def __new__(
        cls,
        sender: int,
        attributes: int,
        flags: int,
        handle: int,
        tag: int,
        receivers: Iterable[MemAccess | EmadFields],
        composite: Composite | CompositeFields | None,
        emad_size: int | None = None,
        emad_offset: int | None = None,
    ) -> MemTransaction:
        region = None if composite is None else (composite[0], tuple(map(tuple, composite[1])))
        emads = tuple(map(tuple, receivers))
        return _tn(
            cls, (sender, attributes, flags, handle, tag, emads, region, emad_size, emad_offset)
        )

    @property
    def receivers(self) -> tuple[MemAccess, ...]:
        return records(MemAccess, self.emads)

    @property
    def composite(self) -> Composite | None:
        region = self.region
        return None if region is None else _tn(Composite, region)

    def __repr__(self) -> str:
        return (
            f"MemTransaction(sender={self.sender!r}, attributes={self.attributes!r}, "
            f"flags={self.flags!r}, handle={self.handle!r}, tag={self.tag!r}, "
            f"receivers={self.receivers!r}, composite={self.composite!r}, "
            f"emad_size={self.emad_size!r}, emad_offset={self.emad_offset!r})"
        )

    def _replace(self, **changes: Any) -> MemTransaction:
        """A copy with the fields named in ``changes`` replaced (``receivers``, ``composite``
        and the other constructor arguments)."""
        fields: dict[str, Any] = dict(zip(_MEM_TRANSACTION_ARGS, self, strict=True))
        fields.update(changes)
        return MemTransaction(**fields)

    __replace__ = _replace

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
        return eoff, esz, eoff + len(self.emads) * esz

    def resolved(self, version: int) -> MemTransaction:
        """This transaction as :meth:`decode` returns it after ``encode(version)``."""
        eoff, esz, coff = self.layout(version)
        emads = self.emads
        if self.region is not None:
            emads = tuple(e if e[3] else (e[0], e[1], e[2], coff, e[4]) for e in emads)
        if esz != 32:  # only 32-byte EMADs carry the implementation-defined value
            emads = tuple(e if e[4] == _NIL16 else (*e[:4], _NIL16) for e in emads)
        if check_version(version) == 0:
            return self._replace(receivers=emads, emad_size=None, emad_offset=None)
        return self._replace(receivers=emads, emad_size=esz, emad_offset=eoff)

    def relaid(self) -> MemTransaction:
        """The same transaction with its layout forgotten: sizes, offsets, composite offsets."""
        return self._replace(
            emad_size=None,
            emad_offset=None,
            receivers=tuple((e[0], e[1], e[2], 0, e[4]) for e in self.emads),
        )

    # -- encode ------------------------------------------------------------------------------

    def encode(self, version: int) -> bytes:
        """The descriptor in the layout of ``version`` (``abi.FFA_VERSION_1_0`` ... ``_1_2``).

        Writes what it is given, valid or not, so that tests can build malformed descriptors;
        only values that do not fit their field raise (``struct.error``).
        """
        minor = version & 0xFFFF if version >> 16 == 1 else check_version(version)
        sender, attributes, flags, handle, tag, emads, region, emad_size, emad_offset = self
        n = len(emads)
        esz: int = 16
        eoff: int = _V1_0_HEADER
        if minor:
            esz = emad_size if emad_size is not None else (32 if minor >= 2 else 16)
            eoff = emad_offset if emad_offset is not None else _V1_1_HEADER
        coff = eoff + n * esz
        if region is None:
            out = bytearray(max(coff, _V1_1_HEADER if minor else _V1_0_HEADER))
            fill = 0
        else:
            out = bytearray(max(coff, _V1_1_HEADER) + 16 + 16 * len(region[1]))
            fill = coff
        if minor == 0:
            _pack_tx10(out, 0, sender, attributes, 0, flags, handle, tag, 0, n)
        else:
            _pack_tx11(out, 0, sender, attributes, flags, handle, tag, esz, n, eoff, 0, 0)
        off = eoff
        if esz == 32:
            for receiver, perm, eflags, c, impdef in emads:
                _pack_emad32(out, off, receiver, perm, eflags, c or fill, impdef, 0)
                off += 32
        else:
            for receiver, perm, eflags, c, _impdef in emads:
                _pack_emad16(out, off, receiver, perm, eflags, c or fill, 0)
                off += esz
        if region is not None:
            _encode_composite(out, coff, region)
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
        # The common layout (one EMAD right after the header, the composite right after it,
        # its first range read with it), valid: one unpack, one test. Else the general path.
        if version == _V1_1 and end >= 96:
            (sender, attr, flags, handle, tag, esz, count, eoff, res0, res1,
             ep, perm, eflags, coff, eres, total, nr, cres,
             address, pages, res) = _unpack_common11(buf, 0)  # fmt: skip
            common = esz == 16 and count == 1 and eoff == 48 and coff == 64 and attr < 0x80
            impdef = _NIL16
        elif version == _V1_2 and end >= 112:
            (sender, attr, flags, handle, tag, esz, count, eoff, res0, res1,
             ep, perm, eflags, coff, impdef, eres, total, nr, cres,
             address, pages, res) = _unpack_common12(buf, 0)  # fmt: skip
            common = esz == 32 and count == 1 and eoff == 48 and coff == 80 and attr < 0x80
        elif version == _V1_0 and end >= 80:
            (sender, attr, res0, flags, handle, tag, res1, count,
             ep, perm, eflags, coff, eres, total, nr, cres,
             address, pages, res) = _unpack_common10(buf, 0)  # fmt: skip
            common = count == 1 and coff == 48 and attr < 0x80
            esz = eoff = None
            impdef = _NIL16
        else:
            common = False
        # The MBZ masks as comparisons: attr & 0xFF80 (v1.0: & 0x80), flags & 0xFFFFF800 and
        # eflags & 0xFE are 0 exactly when attr < 0x80, flags < 0x800 and eflags < 2.
        if (
            common
            and flags < 0x800
            and eflags < 2
            and not (res0 or res1 or eres or cres or _BAD_PERM[perm])
        ):
            if nr == 1:
                ranges: tuple[RangeFields, ...] | None = None
                if not (address & 0xFFF or res or pages != total):
                    ranges = ((address, pages),)
            elif nr * 16 <= end - coff - 16:
                ranges = read_ranges(buf, coff + 16, nr, total)
            else:
                ranges = None
            if ranges is not None:
                emads = ((ep, perm, eflags, coff, impdef),)
                return _tn(
                    cls, (sender, attr, flags, handle, tag, emads, (total, ranges), esz, eoff)
                )
        minor = version & 0xFFFF if version >> 16 == 1 else check_version(version)
        return _tn(cls, decode_transaction(buf, end, minor))


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
