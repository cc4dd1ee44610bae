"""The rules of the memory transaction descriptor, and the general path that applies them in order.

``MemTransaction.decode`` (``mem.py``) reads the common layout, valid, through one fused
``unpack_from``; every other descriptor, and every descriptor that breaks a rule, comes here:
each structure is read at the offset the header gives, the rules are applied in the order
``docs/desc.md`` lists them, and the first broken one raises :class:`DescriptorError` with its
offset and field. The decoders return the plain field tuples that ``mem.py``'s records keep.

Constituent arrays are read whole by ``iter_unpack`` and checked as one integer: the reserved
words and the low 12 address bits under a mask, the page counts summed in C. Only an array that
fails is walked range by range, to name the first bad one.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Any, Final, NoReturn

from ._errors import invalid
from ._layouts import (
    COMPOSITE,
    CONSTITUENT,
    EMAD_V1_0,
    EMAD_V1_2,
    TRANSACTION_V1_0,
    TRANSACTION_V1_1,
)

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
# Hafnium requires the composite descriptor at a 16-byte aligned offset
# (hafnium-spmc.md §4.3 step 11); every known writer puts it right after the EMAD array.
COMPOSITE_ALIGN: Final = 16

# Permission bytes with reserved bits [7:4] or a reserved access value (0b11) in either field.
BAD_PERM: Final = tuple(bool(p & 0xF0 or p & 3 == 3 or p & 12 == 12) for p in range(256))

# The plain forms that the memory records keep: a constituent's (address, page_count), an
# EMAD's (receiver, permissions, flags, composite_offset, impdef), a composite's
# (total_page_count, ranges). Each is what tuple() of the typed record gives.
RangeFields = tuple[int, int]
EmadFields = tuple[int, int, int, int, bytes]
CompositeFields = tuple[int, tuple[RangeFields, ...]]

_Buffer = bytes | bytearray | memoryview
_NIL16 = bytes(16)
V1_0_HEADER: Final = TRANSACTION_V1_0.size
V1_1_HEADER: Final = TRANSACTION_V1_1.size

# A constituent without its reserved word, which the mask below checks.
_RANGE: Final = struct.Struct("<QI4x")
assert _RANGE.size == CONSTITUENT.size
_iter_ranges = _RANGE.iter_unpack
_unpack_composite = COMPOSITE.unpack_from
_unpack_constituent = CONSTITUENT.unpack_from
_unpack_emad16 = EMAD_V1_0.unpack_from
_unpack_emad32 = EMAD_V1_2.unpack_from
_unpack_tx10 = TRANSACTION_V1_0.unpack_from
_unpack_tx11 = TRANSACTION_V1_1.unpack_from
_page_count = itemgetter(1)

# The bits of a constituent array, read as one little-endian integer, that must be zero: in
# each 128-bit range, the low 12 bits of the address (4 KiB alignment) and the reserved word
# (bits 96-127). The mask is built once for 256 ranges (a 4 KiB page of them); an AND costs
# the length of the shorter operand, and a longer array gets a mask of its own.
_RANGE_MBZ: Final = 0xFFF | 0xFFFFFFFF << 96


def _ranges_mbz(count: int) -> int:
    # _RANGE_MBZ repeated count times: times 1 + 2**128 + 2**256 + ... (count terms).
    return _RANGE_MBZ * (((1 << (128 * count)) - 1) // ((1 << 128) - 1))


_RANGES_MBZ_COUNT: Final = 256
_RANGES_MBZ: Final = _ranges_mbz(_RANGES_MBZ_COUNT)


def read_ranges(buf: _Buffer, off: int, count: int, total: int) -> tuple[RangeFields, ...] | None:
    """The ``count`` constituents at ``off`` (in bounds) as pairs, or ``None`` when one is
    misaligned or has its reserved word set, or their pages do not add up to ``total``."""
    if count == 1:
        address, page_count, res = _unpack_constituent(buf, off)
        if address & 0xFFF or res or page_count != total:
            return None
        return ((address, page_count),)
    raw = buf[off : off + 16 * count]
    mbz = _RANGES_MBZ if count <= _RANGES_MBZ_COUNT else _ranges_mbz(count)
    if int.from_bytes(raw, "little") & mbz:
        return None
    ranges = tuple(_iter_ranges(raw))
    if sum(map(_page_count, ranges)) != total:
        return None
    return ranges


def ranges_error(buf: _Buffer, off: int, count: int, total: int) -> NoReturn:
    """Raise the error for the first rule the ``count`` constituents at ``off`` break: range by
    range, its reserved word, then its alignment; then the total page count."""
    pages = 0
    for i, (address, page_count, res) in enumerate(
        CONSTITUENT.iter_unpack(buf[off : off + 16 * count])
    ):
        at = off + 16 * i
        if res:
            raise invalid("reserved field is not zero", at + 12, "constituent.reserved")
        if address & 0xFFF:
            raise invalid(f"address 0x{address:x} is not 4 KiB aligned", at, "constituent.address")
        pages += page_count
    raise invalid(
        f"total page count {total} differs from the constituents' sum {pages}",
        off - 16,
        "total_page_count",
    )


def decode_composite(buf: _Buffer, off: int, end: int, strict: bool) -> CompositeFields:
    """The composite at ``off``, which must end within ``end``; ``strict`` applies the memory
    sharing rules (reserved fields, alignment, page sum), else only bounds are checked."""
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
    if not strict:
        return total, tuple(_iter_ranges(buf[c_off : c_off + 16 * count]))
    if reserved:
        raise invalid("reserved field is not zero", off + 8, "composite.reserved")
    ranges = read_ranges(buf, c_off, count, total)
    if ranges is None:
        ranges_error(buf, c_off, count, total)
    return total, ranges


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
        if eoff < V1_1_HEADER:
            raise invalid(f"EMAD offset {eoff} points into the 48-byte header", 32, "emad_offset")
        if eoff & 15:
            raise invalid(f"EMAD offset {eoff} is not 16-byte aligned", 32, "emad_offset")
    _check_flags(flags)


def _check_flags(flags: int) -> None:
    if flags & MEM_FLAGS_MBZ_MASK:
        raise invalid(
            f"flag bits 0x{flags & MEM_FLAGS_MBZ_MASK:x} set in MBZ bits [31:11]", 4, "flags"
        )


def _emad_error(perm: int, eflags: int, off: int, res_off: int) -> NoReturn:
    """Raise the error for an EMAD whose permissions, flags or reserved field are wrong."""
    if BAD_PERM[perm]:
        raise invalid(
            f"permissions 0x{perm:02x} use reserved bits or values", off + 2, "permissions"
        )
    if eflags & MEM_EMAD_FLAGS_MBZ_MASK:
        raise invalid(f"EMAD flags 0x{eflags:02x} set MBZ bits", off + 3, "emad.flags")
    raise invalid("reserved field is not zero", res_off, "emad.reserved")


def decode_transaction(buf: _Buffer, end: int, minor: int) -> tuple[Any, ...]:
    """A transaction descriptor of any layout, every rule applied in order: the fields of a
    ``MemTransaction`` (``mem.py``), its receivers and composite as plain tuples."""
    if minor:
        if end < V1_1_HEADER:
            raise invalid(f"{end} bytes is shorter than the 48-byte header", 0, "header")
        (sender, attr, flags, handle, tag, esz, count, eoff, res0, res1) = _unpack_tx11(buf, 0)
        if (
            attr & MEM_ATTR_MBZ_MASK
            or flags & MEM_FLAGS_MBZ_MASK
            or res0
            or res1
            or (esz != 16 and (esz != 32 or minor < 2))
            or eoff < V1_1_HEADER
            or eoff & 15
        ):
            _v1_1_header_error(attr, flags, res0, res1, esz, count, eoff, minor)
        emad_size: int | None = esz
        emad_offset: int | None = eoff
    else:
        if end < V1_0_HEADER:
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
        eoff = V1_0_HEADER
        emad_size = None
        emad_offset = None
    emad_end = eoff + count * esz
    if emad_end > end:
        raise invalid(
            f"{count} EMADs of {esz} bytes at {eoff} overrun the {end}-byte descriptor",
            28,
            "emad_count",
        )
    emads, coff = _decode_emads(buf, eoff, esz, count)
    region = None
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
        region = decode_composite(buf, coff, end, True)
    return (sender, attr, flags, handle, tag, emads, region, emad_size, emad_offset)


def _decode_emads(
    buf: _Buffer, eoff: int, esz: int, count: int
) -> tuple[tuple[EmadFields, ...], int]:
    """``count`` EMADs of ``esz`` bytes from ``eoff`` (in bounds), validated, and the composite
    offset they all give (0 with no EMADs)."""
    emads = []
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
        if BAD_PERM[perm] or eflags & MEM_EMAD_FLAGS_MBZ_MASK or res:
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
        emads.append((ep, perm, eflags, c, impdef))
        off += esz
    return tuple(emads), coff
