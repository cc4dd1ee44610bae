"""The endpoint RX/TX descriptor (§3.3): how a hypervisor forwards a VM's FFA_RXTX_MAP.

The hypervisor writes it into its own TX buffer and calls FFA_RXTX_MAP_64 with x1 = x2 = x3 = 0.
A header names the VM and the offsets of two composite descriptors, one for the RX buffer and
one for the TX buffer, each normally with one physically contiguous range.

Two layouts exist in the wild: the canonical one (16-byte header, composites at 16 and 48;
Hafnium and Xen since the Feb 2026 fix) and Xen's older packing with a 12-byte header and
composites at 12 and 44, which the seed writes and Hafnium master refuses as misaligned.
:meth:`RxTxDescriptor.decode` reads both; ``align=8`` applies Hafnium master's check.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import invalid
from ._layouts import RXTX_HEADER, RXTX_HEADER_V1_1_XEN
from ._mem_rules import decode_composite
from .mem import Composite, Constituent

__all__ = ["RxTxDescriptor"]

_HDR12 = RXTX_HEADER_V1_1_XEN.size
_HDR16 = RXTX_HEADER.size


@dataclass(frozen=True, slots=True)
class RxTxDescriptor:
    """Endpoint RX/TX descriptor: the VM's ID and its RX and TX buffers as composites."""

    endpoint_id: int
    rx: Composite
    tx: Composite
    rx_offset: int = _HDR16
    tx_offset: int = 48

    @classmethod
    def for_pages(
        cls, endpoint_id: int, rx_pa: int, tx_pa: int, page_count: int = 1, *, legacy: bool = False
    ) -> RxTxDescriptor:
        """One range per buffer, as every known writer builds it; ``legacy`` gives 12/44."""
        rx = Composite(page_count, (Constituent(rx_pa, page_count),))
        tx = Composite(page_count, (Constituent(tx_pa, page_count),))
        if legacy:
            return cls(endpoint_id, rx, tx, _HDR12, _HDR12 + rx.size)
        return cls(endpoint_id, rx, tx, _HDR16, _HDR16 + rx.size)

    @property
    def size(self) -> int:
        return max(
            self.rx_offset + self.rx.size,
            self.tx_offset + self.tx.size,
            _HDR16 if self.rx_offset >= _HDR16 and self.tx_offset >= _HDR16 else _HDR12,
        )

    def encode(self) -> bytes:
        """The descriptor with the composites at the given offsets.

        The 16-byte header (with its zero pad) is written when both offsets leave room for it,
        else the 12-byte one, so ``rx_offset=12, tx_offset=44`` reproduces the seed's bytes.
        """
        out = bytearray(self.size)
        if self.rx_offset >= _HDR16 and self.tx_offset >= _HDR16:
            RXTX_HEADER.pack_into(out, 0, self.endpoint_id, 0, self.rx_offset, self.tx_offset, 0)
        else:
            RXTX_HEADER_V1_1_XEN.pack_into(
                out, 0, self.endpoint_id, 0, self.rx_offset, self.tx_offset
            )
        self.rx.encode_into(out, self.rx_offset)
        self.tx.encode_into(out, self.tx_offset)
        return bytes(out)

    @classmethod
    def decode(
        cls, buf: bytes | bytearray | memoryview, *, length: int | None = None, align: int = 1
    ) -> RxTxDescriptor:
        """Read the descriptor, following the offsets its header gives.

        INVALID_PARAMETERS when: the buffer is shorter than the 12-byte header; the reserved
        field at 2 is set; an offset points into the header, is not a multiple of ``align``
        (pass 8 for Hafnium master's rule) or puts its composite, or the composite's ranges,
        beyond the buffer. The composites are read leniently (no sum or reserved checks), as
        Hafnium reads them.
        """
        end = len(buf) if length is None else min(length, len(buf))
        if end < _HDR12:
            raise invalid(f"{end} bytes is shorter than the 12-byte header", 0, "header")
        ep, reserved, rx_off, tx_off = RXTX_HEADER_V1_1_XEN.unpack_from(buf, 0)
        if reserved:
            raise invalid("reserved field is not zero", 2, "reserved")
        for name, field_off, value in (("rx_offset", 4, rx_off), ("tx_offset", 8, tx_off)):
            if value < _HDR12:
                raise invalid(f"{name} {value} points into the header", field_off, name)
            if value % align:
                raise invalid(f"{name} {value} is not {align}-byte aligned", field_off, name)
        rx = Composite._make(decode_composite(buf, rx_off, end, False))
        tx = Composite._make(decode_composite(buf, tx_off, end, False))
        return cls(ep, rx, tx, rx_off, tx_off)
