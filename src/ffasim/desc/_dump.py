"""Field-by-field dumps of descriptors, for ``ffasim decode`` and for people reading traces.

Each ``dump_*`` validates first (through the decoder, so bad input raises the same
:class:`DescriptorError`), then lists every field, reserved ones included, at its offset.
:func:`dump` picks the decoder by type name; :func:`guess_type` tries them in an order that
keeps loose layouts (relinquish, partition info) from shadowing strict ones.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .. import abi
from ._errors import DescriptorError, invalid
from ._layouts import PARTINFO_V1_0, PARTINFO_V1_1
from .meaning import (
    describe_attributes,
    describe_emad_flags,
    describe_endpoint,
    describe_mem_flags,
    describe_partition_properties,
    describe_permissions,
    describe_relinquish_flags,
)
from .mem import Composite, MemTransaction, Relinquish
from .msg import IndirectMessage
from .rxtx import RxTxDescriptor

__all__ = ["TYPES", "Dump", "Field", "dump", "guess_type"]

_Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class Field:
    """One field: where it is, what it is called, its value and what the value means."""

    offset: int
    size: int
    name: str
    value: int | str
    meaning: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "offset": self.offset,
            "size": self.size,
            "name": self.name,
            "value": self.value,
            "meaning": self.meaning,
        }


@dataclass
class Dump:
    """A decoded descriptor: its type name, a title, its length and its fields in order."""

    type: str
    title: str
    length: int
    fields: list[Field] = field(default_factory=list)

    def add(self, offset: int, size: int, name: str, value: int | str, meaning: str = "") -> None:
        self.fields.append(Field(offset, size, name, value, meaning))

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.type,
            "title": self.title,
            "length": self.length,
            "fields": [f.to_json() for f in self.fields],
        }

    def render(self) -> str:
        """A fixed-width table: offset, size, field, value, meaning."""
        rows = [(str(f.offset), str(f.size), f.name, _fmt(f), f.meaning) for f in self.fields]
        head = ("offset", "size", "field", "value", "meaning")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        lines = [f"{self.title} ({self.length} bytes)"]
        for r in [head, *rows]:
            lines.append(
                f"{r[0]:>{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  "
                f"{r[3]:<{widths[3]}}  {r[4]}".rstrip()
            )
        return "\n".join(lines)


def _fmt(f: Field) -> str:
    if isinstance(f.value, str):
        return f.value
    return f"0x{f.value:0{max(1, 2 * min(f.size, 8))}x}"


def _zero(value: int) -> str:
    return "" if value == 0 else "MBZ, not zero"


def _composite(d: Dump, buf: _Buffer, off: int, comp: Composite, prefix: str) -> None:
    _, _, reserved = struct.unpack_from("<IIQ", buf, off)
    d.add(off, 4, f"{prefix}total_page_count", comp.total_page_count, "4 KiB pages")
    d.add(off + 4, 4, f"{prefix}address_range_count", len(comp.constituents))
    d.add(off + 8, 8, f"{prefix}reserved", reserved, _zero(reserved))
    c_off = off + 16
    for i, c in enumerate(comp.constituents):
        res = struct.unpack_from("<I", buf, c_off + 12)[0]
        end = c.address + c.page_count * abi.FFA_PAGE_SIZE
        span = f"0x{c.address:x}-0x{end - 1:x}" if c.page_count else "empty range"
        d.add(c_off, 8, f"{prefix}range[{i}].address", c.address, span)
        d.add(c_off + 8, 4, f"{prefix}range[{i}].page_count", c.page_count, "4 KiB pages")
        d.add(c_off + 12, 4, f"{prefix}range[{i}].reserved", res, _zero(res))
        c_off += 16


def dump_mem(buf: _Buffer, version: int) -> Dump:
    """A memory transaction descriptor (SHARE/LEND/DONATE, RETRIEVE_REQ/RESP)."""
    t = MemTransaction.decode(buf, version)
    minor = version & 0xFFFF
    d = Dump(
        "mem" if minor == 1 else f"mem-v1.{minor}",
        f"FF-A memory transaction descriptor, v1.{minor} layout",
        len(buf),
    )
    d.add(0, 2, "sender", t.sender, describe_endpoint(t.sender))
    if minor == 0:
        d.add(2, 1, "attributes", t.attributes, describe_attributes(t.attributes))
        d.add(3, 1, "reserved", 0)
    else:
        d.add(2, 2, "attributes", t.attributes, describe_attributes(t.attributes))
    d.add(4, 4, "flags", t.flags, describe_mem_flags(t.flags))
    if not t.handle:
        owner = "none yet (the relayer assigns it)"
    elif t.handle == abi.FFA_HANDLE_INVALID:
        owner = "invalid handle"
    elif t.handle & abi.FFA_HANDLE_HYP_FLAG:
        owner = "allocated by the hypervisor (bit 63)"
    else:
        owner = "allocated by the SPMC"
    d.add(8, 8, "handle", t.handle, owner)
    d.add(16, 8, "tag", t.tag)
    if minor == 0:
        d.add(24, 4, "reserved", 0)
        d.add(28, 4, "emad_count", len(t.receivers))
        eoff, esz = 32, 16
    else:
        eoff, esz = t.emad_offset or 0, t.emad_size or 0
        d.add(24, 4, "emad_size", esz, f"{esz}-byte EMADs" if esz else "")
        d.add(28, 4, "emad_count", len(t.receivers))
        d.add(32, 4, "emad_offset", eoff)
        d.add(36, 12, "reserved", "0" * 24)
        if not t.receivers and not esz and not eoff:
            d.fields[-1] = Field(36, 12, "reserved", "0" * 24, "hypervisor retrieve request")
    off = eoff
    for i, m in enumerate(t.receivers):
        p = f"emad[{i}]."
        d.add(off, 2, p + "receiver", m.receiver, describe_endpoint(m.receiver))
        d.add(off + 2, 1, p + "permissions", m.permissions, describe_permissions(m.permissions))
        d.add(off + 3, 1, p + "flags", m.flags, describe_emad_flags(m.flags))
        d.add(
            off + 4,
            4,
            p + "composite_offset",
            m.composite_offset,
            "memory named by the handle" if not m.composite_offset else "",
        )
        if esz == 32:
            d.add(off + 8, 16, p + "impdef", bytes(m.impdef).hex(), "implementation defined")
            d.add(off + 24, 8, p + "reserved", 0)
        else:
            d.add(off + 8, 8, p + "reserved", 0)
        off += esz
    if t.composite is not None:
        _composite(d, buf, t.receivers[0].composite_offset, t.composite, "composite.")
    return d


def dump_rxtx(buf: _Buffer) -> Dump:
    """An endpoint RX/TX descriptor, in the 16-byte or the seed's 12-byte header form."""
    r = RxTxDescriptor.decode(buf)
    form = "16-byte header" if r.rx_offset >= 16 and r.tx_offset >= 16 else "12-byte header (seed)"
    d = Dump("rxtx", f"FF-A endpoint RX/TX descriptor, {form}", len(buf))
    d.add(0, 2, "endpoint_id", r.endpoint_id, describe_endpoint(r.endpoint_id))
    d.add(2, 2, "reserved", 0)
    for name, off, val in (("rx_offset", 4, r.rx_offset), ("tx_offset", 8, r.tx_offset)):
        d.add(off, 4, name, val, "" if val % 8 == 0 else "not 8-byte aligned (Hafnium refuses)")
    if r.rx_offset >= 16 and r.tx_offset >= 16:
        pad = struct.unpack_from("<I", buf, 12)[0]
        d.add(12, 4, "reserved", pad, _zero(pad))
    _composite(d, buf, r.rx_offset, r.rx, "rx.")
    _composite(d, buf, r.tx_offset, r.tx, "tx.")
    return d


def dump_partinfo(buf: _Buffer, size: int) -> Dump:
    """Consecutive partition information descriptors of ``size`` bytes (8 or 24)."""
    if not buf or len(buf) % size:
        raise invalid(
            f"{len(buf)} bytes is not a whole number of {size}-byte descriptors",
            len(buf) - len(buf) % size,
            "partition_info",
        )
    kind = "partinfo" if size == 24 else "partinfo-v1.0"
    layout = "v1.1+" if size == 24 else "v1.0"
    d = Dump(kind, f"FF-A partition information descriptors, {layout} layout", len(buf))
    for i in range(len(buf) // size):
        off = i * size
        p = f"[{i}]."
        if size == 24:
            pid, ctx, props, uuid = PARTINFO_V1_1.unpack_from(buf, off)
        else:
            pid, ctx, props = PARTINFO_V1_0.unpack_from(buf, off)
        d.add(off, 2, p + "id", pid, describe_endpoint(pid))
        d.add(off + 2, 2, p + "exec_ctx", ctx, "execution contexts")
        d.add(off + 4, 4, p + "properties", props, describe_partition_properties(props))
        if size == 24:
            d.add(off + 8, 16, p + "uuid", abi.uuid_str(uuid))
    return d


def dump_relinquish(buf: _Buffer) -> Dump:
    r = Relinquish.decode(buf)
    d = Dump("relinquish", "FF-A memory relinquish descriptor", len(buf))
    d.add(0, 8, "handle", r.handle)
    d.add(8, 4, "flags", r.flags, describe_relinquish_flags(r.flags))
    d.add(12, 4, "endpoint_count", len(r.endpoints))
    for i, ep in enumerate(r.endpoints):
        d.add(16 + 2 * i, 2, f"endpoint[{i}]", ep, describe_endpoint(ep))
    return d


def dump_msg(buf: _Buffer, version: int) -> Dump:
    m = IndirectMessage.decode(buf, version, length=len(buf))
    v12 = version & 0xFFFF >= 2
    d = Dump(
        "msg-v1.2" if v12 else "msg",
        f"FF-A indirect message header, v1.{2 if v12 else 1} layout",
        len(buf),
    )
    d.add(0, 4, "flags", m.flags, "should be zero" if m.flags else "")
    d.add(4, 4, "reserved", struct.unpack_from("<I", buf, 4)[0])
    d.add(8, 4, "offset", m.offset, "payload offset from the buffer base")
    d.add(12, 2, "receiver", m.receiver, describe_endpoint(m.receiver))
    d.add(14, 2, "sender", m.sender, describe_endpoint(m.sender))
    d.add(16, 4, "size", m.size, "payload bytes")
    if v12:
        d.add(20, 4, "reserved", struct.unpack_from("<I", buf, 20)[0])
        d.add(24, 16, "uuid", abi.uuid_str(m.uuid), "protocol UUID")
    payload = bytes(buf[m.offset : m.offset + m.size])
    shown = payload[:32].hex() + ("..." if len(payload) > 32 else "")
    d.add(m.offset, m.size, "payload", shown)
    return d


TYPES: Final[dict[str, Callable[[_Buffer], Dump]]] = {
    "mem": lambda b: dump_mem(b, abi.FFA_VERSION_1_1),
    "mem-v1.0": lambda b: dump_mem(b, abi.FFA_VERSION_1_0),
    "mem-v1.2": lambda b: dump_mem(b, abi.FFA_VERSION_1_2),
    "rxtx": dump_rxtx,
    "partinfo": lambda b: dump_partinfo(b, 24),
    "partinfo-v1.0": lambda b: dump_partinfo(b, 8),
    "relinquish": dump_relinquish,
    "msg": lambda b: dump_msg(b, abi.FFA_VERSION_1_1),
    "msg-v1.2": lambda b: dump_msg(b, abi.FFA_VERSION_1_2),
}
"""Descriptor types by the name ``ffasim decode --type`` takes."""


def dump(buf: _Buffer, type_name: str) -> Dump:
    """Decode ``buf`` as ``type_name`` (a key of :data:`TYPES`) and dump it."""
    try:
        fn = TYPES[type_name]
    except KeyError:
        raise DescriptorError(
            abi.FFA_RET_NOT_SUPPORTED, f"unknown descriptor type {type_name!r}", None, "type"
        ) from None
    return fn(buf)


def _plausible(type_name: str, d: Dump) -> bool:
    """Extra tests for layouts so loose that random data often decodes."""
    values = {f.name: f.value for f in d.fields}
    if type_name == "mem-v1.0":
        return bool(values.get("emad_count"))
    if type_name == "msg-v1.2":
        return values.get("offset") == 40
    if type_name == "msg":
        return values.get("offset") == 20
    if type_name == "relinquish":
        return d.length == 16 + 2 * int(values.get("endpoint_count", 0))
    return True


# Strict layouts first: a v1.1+ transaction, then the RX/TX descriptor (whose bytes would
# also pass as an EMAD-less v1.0 transaction), then the looser ones.
GUESS_ORDER: Final = (
    "mem-v1.2",
    "rxtx",
    "mem-v1.0",
    "msg-v1.2",
    "msg",
    "relinquish",
    "partinfo",
    "partinfo-v1.0",
)


def guess_type(buf: _Buffer) -> str | None:
    """The first type in :data:`GUESS_ORDER` that decodes ``buf`` plausibly, else ``None``.

    A v1.1+ transaction without 32-byte EMADs is reported as ``mem`` (v1.1 and v1.2 both
    accept it).
    """
    for name in GUESS_ORDER:
        try:
            d = dump(buf, name)
        except DescriptorError:
            continue
        if not _plausible(name, d):
            continue
        if name == "mem-v1.2" and not any(
            f.name == "emad_size" and f.value == 32 for f in d.fields
        ):
            return "mem"
        return name
    return None
