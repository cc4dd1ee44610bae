"""Human readings of descriptor fields: attributes, permissions, flags, properties, IDs.

Used by ``ffasim decode`` and by trace renderers; every function takes the raw field value and
returns a short phrase, naming reserved or MBZ bits rather than hiding them.
"""

from __future__ import annotations

from .. import abi

__all__ = [
    "describe_attributes",
    "describe_emad_flags",
    "describe_endpoint",
    "describe_mem_flags",
    "describe_partition_properties",
    "describe_permissions",
    "describe_relinquish_flags",
]

_SHAREABILITY = (
    "non-shareable",
    "reserved shareability (0b01)",
    "outer shareable",
    "inner shareable",
)
_NORMAL_CACHE = (
    "reserved cacheability (0b00)",
    "non-cacheable",
    "reserved cacheability (0b10)",
    "write-back",
)
_DEVICE = ("nGnRnE", "nGnRE", "nGRE", "GRE")


def describe_attributes(attr: int) -> str:
    """``0x2f`` -> ``'normal, write-back, inner shareable'`` (§3.7)."""
    mem_type = (attr >> 4) & 3
    parts: list[str] = []
    if mem_type == 0:
        parts.append("type not specified")
        if attr & 0xF:
            parts.append(f"bits [3:0] = 0x{attr & 0xF:x}")
    elif mem_type == 1:
        parts += ["device", _DEVICE[(attr >> 2) & 3]]
        if attr & 3:
            parts.append(_SHAREABILITY[attr & 3])
    elif mem_type == 2:
        parts += ["normal", _NORMAL_CACHE[(attr >> 2) & 3], _SHAREABILITY[attr & 3]]
    else:
        parts.append("reserved memory type (0b11)")
    if attr & abi.FFA_MEM_ATTR_NS:
        parts.append("NS")
    if attr & 0xFF80:
        parts.append(f"MBZ bits 0x{attr & 0xFF80:x} set")
    return ", ".join(parts)


_DATA = ("data access unspecified", "RO", "RW", "reserved data access (0b11)")
_INSTR = ("instruction access unspecified", "NX", "X", "reserved instruction access (0b11)")


def describe_permissions(perm: int) -> str:
    """``0x02`` -> ``'RW, instruction access unspecified'``; ``0x06`` -> ``'RW, NX'``."""
    text = f"{_DATA[perm & 3]}, {_INSTR[(perm >> 2) & 3]}"
    if perm & 0xF0:
        text += f", reserved bits 0x{perm & 0xF0:02x} set"
    return text


def describe_emad_flags(flags: int) -> str:
    """EMAD flags: bit 0 is the non-retrieval borrower flag of retrieve requests/responses."""
    if not flags:
        return "none"
    parts = []
    if flags & 1:
        parts.append("non-retrieval borrower")
    if flags & 0xFE:
        parts.append(f"MBZ bits 0x{flags & 0xFE:02x} set")
    return ", ".join(parts)


_TX_TYPE = ("type unspecified", "share", "lend", "donate")


def describe_mem_flags(flags: int) -> str:
    """Transaction flags (§3.7): the union of what SHARE/LEND/DONATE and RETRIEVE use."""
    if not flags:
        return "none"
    parts = []
    if flags & 1:
        parts.append("zero memory")
    if flags & 2:
        parts.append("time slicing")
    if flags & 4:
        parts.append("zero after relinquish")
    if flags & 0x18:
        parts.append(f"transaction type {_TX_TYPE[(flags >> 3) & 3]}")
    if flags & 0x1E0 or flags & 0x200:
        valid = "valid" if flags & 0x200 else "not valid"
        parts.append(f"alignment hint {(flags >> 5) & 0xF} ({valid})")
    if flags & 0x400:
        parts.append("bypass multiple-borrower check")
    if flags & 0xFFFFF800:
        parts.append(f"MBZ bits 0x{flags & 0xFFFFF800:x} set")
    return ", ".join(parts)


def describe_relinquish_flags(flags: int) -> str:
    if not flags:
        return "none"
    parts = []
    if flags & 1:
        parts.append("zero memory after relinquish")
    if flags & 2:
        parts.append("time slicing")
    if flags & ~3:
        parts.append(f"MBZ bits 0x{flags & ~3 & 0xFFFFFFFF:x} set")
    return ", ".join(parts)


_PROPS = (
    (abi.FFA_PART_PROP_DIRECT_REQ_RECV, "direct request receive"),
    (abi.FFA_PART_PROP_DIRECT_REQ_SEND, "direct request send"),
    (abi.FFA_PART_PROP_INDIRECT_MSGS, "indirect messages"),
    (abi.FFA_PART_PROP_RECV_NOTIF, "notifications"),
    (abi.FFA_PART_PROP_NOTIF_CREATED, "VM created messages"),
    (abi.FFA_PART_PROP_NOTIF_DESTROYED, "VM destroyed messages"),
    (abi.FFA_PART_PROP_AARCH64_STATE, "AArch64"),
    (abi.FFA_PART_PROP_DIRECT_REQ2_RECV, "direct request 2 receive"),
    (abi.FFA_PART_PROP_DIRECT_REQ2_SEND, "direct request 2 send"),
)
_ID_TYPE = ("PE endpoint", "independent peripheral", "dependent peripheral", "auxiliary ID")


def describe_partition_properties(props: int) -> str:
    """Partition properties (§3.1): capabilities, ID type, execution state."""
    parts = [text for bit, text in _PROPS if props & bit]
    id_type = (props >> 4) & 3
    if id_type:
        parts.append(_ID_TYPE[id_type])
    rest = props & ~0x7FF & 0xFFFFFFFF
    if rest:
        parts.append(f"bits 0x{rest:x} beyond v1.2")
    return ", ".join(parts) if parts else "none"


def describe_endpoint(ep: int) -> str:
    """``0x8001`` -> ``'SP 0x8001'``; ``2`` -> ``'VM 2 (domid 1)'``; ``0`` -> ``'hypervisor'``."""
    if ep == abi.HYPERVISOR_ID:
        return "hypervisor"
    if ep == abi.SPMD_ID:
        return "SPMD"
    if abi.is_secure_id(ep):
        return f"SP 0x{ep:04x}"
    return f"VM {ep} (domid {ep - 1})"
