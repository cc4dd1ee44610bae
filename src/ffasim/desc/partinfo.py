"""Partition information descriptors (FF-A §3.1) and their ``_GET_REGS`` register packing (§3.2).

The v1.0 descriptor is 8 bytes (no UUID); v1.1 and v1.2 use the same 24-byte layout. The size a
caller gets depends on its negotiated version; FFA_PARTITION_INFO_GET reports it in w3.

:class:`PartitionInfo` is a ``NamedTuple`` record whose fields are exactly what ``struct``
reads from a 24-byte descriptor, and :func:`decode_partinfo_array` returns a
:class:`RecordArray` of the tuples ``iter_unpack`` gives (``_records.py`` says why).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, NamedTuple

from .. import abi
from ._errors import DescriptorError, invalid
from ._layouts import PARTINFO_V1_0, PARTINFO_V1_1
from ._records import RecordArray, record_eq, record_ne

if TYPE_CHECKING:
    from uuid import UUID

__all__ = ["PARTINFO_SIZES", "PartitionInfo", "decode_partinfo_array", "encode_partinfo_array"]

PARTINFO_SIZES: Final = (PARTINFO_V1_0.size, PARTINFO_V1_1.size)
_NIL = bytes(16)
_M16 = 0xFFFF
_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_tn = tuple.__new__
_iter_v1_0 = PARTINFO_V1_0.iter_unpack
_iter_v1_1 = PARTINFO_V1_1.iter_unpack


class _PartitionInfoFields(NamedTuple):
    id: int
    exec_ctx: int
    properties: int
    uuid: bytes = _NIL


class PartitionInfo(_PartitionInfoFields):
    """One partition information descriptor: ID, execution contexts, properties, UUID.

    The UUID may be given as text or ``uuid.UUID`` too; the record keeps its 16 raw bytes.
    """

    __slots__ = ()
    __eq__ = record_eq
    __ne__ = record_ne
    __hash__ = tuple.__hash__

    def __new__(
        cls, id: int, exec_ctx: int, properties: int, uuid: str | bytes | UUID = _NIL
    ) -> PartitionInfo:
        if type(uuid) is not bytes or len(uuid) != 16:
            uuid = abi.uuid_bytes(uuid)
        return _tn(cls, (id, exec_ctx, properties, uuid))

    def encode(self, size: int = 24) -> bytes:
        """The 8-byte (v1.0, no UUID) or 24-byte (v1.1+) descriptor."""
        if size == 24:
            return PARTINFO_V1_1.pack(self.id, self.exec_ctx, self.properties, bytes(self.uuid))
        if size == 8:
            return PARTINFO_V1_0.pack(self.id, self.exec_ctx, self.properties)
        raise ValueError(f"a partition info descriptor is 8 or 24 bytes, not {size}")

    @classmethod
    def decode(
        cls, buf: bytes | bytearray | memoryview, offset: int = 0, size: int = 24
    ) -> PartitionInfo:
        """Read one descriptor of ``size`` bytes (8 or 24) at ``offset``.

        Only bounds are checked: the properties are reported as written (a mediator copies what
        the SPMC gives it), so a reader that cares masks them by the caller's version.
        """
        if size != 24 and size != 8:
            raise invalid(f"descriptor size {size} is neither 8 nor 24", None, "size")
        if offset < 0 or offset + size > len(buf):
            raise invalid(
                f"a {size}-byte descriptor at {offset} overruns the {len(buf)}-byte buffer",
                offset,
                "partition_info",
            )
        if size == 24:
            return _tn(cls, PARTINFO_V1_1.unpack_from(buf, offset))
        return _tn(cls, (*PARTINFO_V1_0.unpack_from(buf, offset), _NIL))

    def to_regs(self) -> tuple[int, int, int]:
        """The three registers of FFA_PARTITION_INFO_GET_REGS (§3.2): id/ctx/props, UUID lo, hi."""
        reg0 = (self.id & _M16) | ((self.exec_ctx & _M16) << 16) | ((self.properties & _M32) << 32)
        u = bytes(self.uuid)
        return reg0, int.from_bytes(u[:8], "little"), int.from_bytes(u[8:16], "little")

    @classmethod
    def from_regs(cls, r0: int, r1: int, r2: int) -> PartitionInfo:
        """The descriptor that :meth:`to_regs` packed into three registers."""
        return cls(
            r0 & _M16,
            (r0 >> 16) & _M16,
            (r0 >> 32) & _M32,
            (r1 & _M64).to_bytes(8, "little") + (r2 & _M64).to_bytes(8, "little"),
        )

    @property
    def uuid_str(self) -> str:
        return abi.uuid_str(self.uuid)


def encode_partinfo_array(infos: Iterable[PartitionInfo], size: int = 24) -> bytes:
    """Consecutive descriptors of ``size`` bytes, as PARTITION_INFO_GET writes them to RX."""
    return b"".join(info.encode(size) for info in infos)


def decode_partinfo_array(
    buf: bytes | bytearray | memoryview, count: int, size: int = 24, offset: int = 0
) -> RecordArray[PartitionInfo]:
    """``count`` consecutive descriptors of ``size`` bytes from ``offset``, as a sequence of
    :class:`PartitionInfo` built on read.

    A count that would run past the buffer is INVALID_PARAMETERS, whatever its size.
    """
    if size != 24 and size != 8:
        raise invalid(f"descriptor size {size} is neither 8 nor 24", None, "size")
    if count < 0 or offset < 0 or offset + count * size > len(buf):
        raise DescriptorError(
            abi.FFA_RET_INVALID_PARAMETERS,
            f"{count} descriptors of {size} bytes at {offset} overrun the {len(buf)}-byte buffer",
            offset,
            "count",
        )
    raw = buf[offset : offset + count * size]
    if size == 24:
        return RecordArray(PartitionInfo, tuple(_iter_v1_1(raw)))
    return RecordArray(PartitionInfo, tuple((*f, _NIL) for f in _iter_v1_0(raw)))
