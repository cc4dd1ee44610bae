"""What ffa.c takes from ``include/linux/arm_ffa.h`` and ``asm/kvm_pkvm.h``: function IDs as
Linux spells them, struct layouts (offsets of the fields ffa.c reads), the version macros.

Linux names each function ID once, in the width it uses (``FFA_RXTX_MAP`` is the 32-bit one,
``FFA_FN64_RXTX_MAP`` the 64-bit one; ``FFA_MSG_SEND_DIRECT_REQ2`` exists only as SMC64). The
proxy's deny list names these macros, so a width Linux does not define is not in the list and
passes through: that is why the names here keep Linux's spelling rather than ``abi``'s.

What changed between releases (struct sizes, where the EMAD array starts) lives on the proxy
class (:class:`ffasim.pkvm.ffa.Ffa` and its variants), not here.
"""

from __future__ import annotations

import struct
from typing import Final

from .. import abi

# ---------------------------------------------------------------------------------------------
# Function IDs (include/linux/arm_ffa.h)

FFA_ERROR: Final = abi.FFA_ERROR
FFA_SUCCESS: Final = abi.FFA_SUCCESS_32
FFA_FN64_SUCCESS: Final = abi.FFA_SUCCESS_64
FFA_VERSION: Final = abi.FFA_VERSION
FFA_FEATURES: Final = abi.FFA_FEATURES
FFA_RX_RELEASE: Final = abi.FFA_RX_RELEASE
FFA_RXTX_MAP: Final = abi.FFA_RXTX_MAP_32
FFA_FN64_RXTX_MAP: Final = abi.FFA_RXTX_MAP_64
FFA_RXTX_UNMAP: Final = abi.FFA_RXTX_UNMAP
FFA_PARTITION_INFO_GET: Final = abi.FFA_PARTITION_INFO_GET
FFA_ID_GET: Final = abi.FFA_ID_GET
FFA_MSG_POLL: Final = abi.FFA_MSG_POLL
FFA_MSG_WAIT: Final = abi.FFA_MSG_WAIT
FFA_MSG_SEND: Final = abi.FFA_MSG_SEND
FFA_MSG_SEND_DIRECT_REQ: Final = abi.FFA_MSG_SEND_DIRECT_REQ_32
FFA_FN64_MSG_SEND_DIRECT_REQ: Final = abi.FFA_MSG_SEND_DIRECT_REQ_64
FFA_MSG_SEND_DIRECT_RESP: Final = abi.FFA_MSG_SEND_DIRECT_RESP_32
FFA_MEM_DONATE: Final = abi.FFA_MEM_DONATE_32
FFA_FN64_MEM_DONATE: Final = abi.FFA_MEM_DONATE_64
FFA_MEM_LEND: Final = abi.FFA_MEM_LEND_32
FFA_FN64_MEM_LEND: Final = abi.FFA_MEM_LEND_64
FFA_MEM_SHARE: Final = abi.FFA_MEM_SHARE_32
FFA_FN64_MEM_SHARE: Final = abi.FFA_MEM_SHARE_64
FFA_MEM_RETRIEVE_REQ: Final = abi.FFA_MEM_RETRIEVE_REQ_32
FFA_FN64_MEM_RETRIEVE_REQ: Final = abi.FFA_MEM_RETRIEVE_REQ_64
FFA_MEM_RETRIEVE_RESP: Final = abi.FFA_MEM_RETRIEVE_RESP
FFA_MEM_RELINQUISH: Final = abi.FFA_MEM_RELINQUISH
FFA_MEM_RECLAIM: Final = abi.FFA_MEM_RECLAIM
FFA_MEM_OP_PAUSE: Final = abi.FFA_MEM_OP_PAUSE
FFA_MEM_OP_RESUME: Final = abi.FFA_MEM_OP_RESUME
FFA_MEM_FRAG_RX: Final = abi.FFA_MEM_FRAG_RX
FFA_MEM_FRAG_TX: Final = abi.FFA_MEM_FRAG_TX
FFA_NOTIFICATION_BITMAP_CREATE: Final = abi.FFA_NOTIFICATION_BITMAP_CREATE
FFA_NOTIFICATION_BITMAP_DESTROY: Final = abi.FFA_NOTIFICATION_BITMAP_DESTROY
FFA_NOTIFICATION_BIND: Final = abi.FFA_NOTIFICATION_BIND
FFA_NOTIFICATION_UNBIND: Final = abi.FFA_NOTIFICATION_UNBIND
FFA_NOTIFICATION_SET: Final = abi.FFA_NOTIFICATION_SET
FFA_NOTIFICATION_GET: Final = abi.FFA_NOTIFICATION_GET
FFA_NOTIFICATION_INFO_GET: Final = abi.FFA_NOTIFICATION_INFO_GET_32  # the SMC64 form is not denied
FFA_CONSOLE_LOG: Final = abi.FFA_CONSOLE_LOG_32  # likewise
FFA_PARTITION_INFO_GET_REGS: Final = abi.FFA_PARTITION_INFO_GET_REGS
FFA_MSG_SEND_DIRECT_REQ2: Final = abi.FFA_MSG_SEND_DIRECT_REQ2
FFA_MSG_SEND_DIRECT_RESP2: Final = abi.FFA_MSG_SEND_DIRECT_RESP2

# FFA_FEATURES(FFA_FN64_RXTX_MAP) w2: the minimum buffer size and alignment.
FFA_FEAT_RXTX_MIN_SZ_4K: Final = 0
FFA_FEAT_RXTX_MIN_SZ_64K: Final = 1
FFA_FEAT_RXTX_MIN_SZ_16K: Final = 2
FFA_FEAT_RXTX_MIN_SZ_MASK: Final = 0x3  # GENMASK(1, 0), from 3f5952917498 (6.18)

FFA_VERSION_1_0: Final = abi.FFA_VERSION_1_0
FFA_VERSION_1_1: Final = abi.FFA_VERSION_1_1
FFA_VERSION_1_2: Final = abi.FFA_VERSION_1_2

FFA_1_0_PARTITON_INFO_SZ: Final = 8  # sic: the kernel's spelling
"""Bytes of one v1.0 partition-information entry (no UUID); v1.0 does not answer the size."""

FFA_PAGE_SIZE: Final = 4096
"""FF-A's 4 KiB page, kept apart from the kernel's PAGE_SIZE (equal here: 4 KiB granule)."""

FFA_MIN_FUNC_NUM: Final = 0x60


def FFA_MAJOR_VERSION(x: int) -> int:  # the kernel's macro name
    """Bits [30:16] of a version word, as a u16."""
    return (x >> 16) & 0x7FFF


def FFA_MINOR_VERSION(x: int) -> int:  # the kernel's macro name
    """Bits [15:0] of a version word."""
    return x & 0xFFFF


def PACK_HANDLE(lo: int, hi: int) -> int:  # the kernel's macro name
    return ((hi & abi.MASK32) << 32) | (lo & abi.MASK32)


# ---------------------------------------------------------------------------------------------
# SMCCC function ID fields (include/linux/arm-smccc.h)

ARM_SMCCC_FAST_CALL_BIT: Final = 1 << 31
ARM_SMCCC_OWNER_SHIFT: Final = 24
ARM_SMCCC_OWNER_MASK: Final = 0x3F
ARM_SMCCC_OWNER_STANDARD: Final = 4
ARM_SMCCC_FUNC_MASK: Final = 0xFFFF
ARM_SMCCC_CALL_HINTS: Final = 1 << 16  # the SVE "no live state" hint (SMCCC 1.3)


def ARM_SMCCC_IS_FAST_CALL(fid: int) -> bool:  # the kernel's macro name
    return bool(fid & ARM_SMCCC_FAST_CALL_BIT)


def ARM_SMCCC_OWNER_NUM(fid: int) -> int:  # the kernel's macro name
    return (fid >> ARM_SMCCC_OWNER_SHIFT) & ARM_SMCCC_OWNER_MASK


def ARM_SMCCC_FUNC_NUM(fid: int) -> int:  # the kernel's macro name
    return fid & ARM_SMCCC_FUNC_MASK


# ---------------------------------------------------------------------------------------------
# Structs ffa.c reads field by field (little-endian; offsets from the start of the struct).

# struct ffa_mem_region: sender_id u16 @0, attributes @2, flags u32 @4, handle u64 @8,
# tag u64 @16, ep_mem_size u32 @24 (reserved in 6.5), ep_count u32 @28, then from 6.7
# (76cf932c95b9) ep_mem_offset u32 @32 and reserved[3] @36: 32 bytes in 6.5, 48 from 6.7.
MEM_REGION_SENDER_ID: Final = 0
MEM_REGION_HANDLE: Final = 8
MEM_REGION_EP_COUNT: Final = 28
MEM_REGION_EP_MEM_OFFSET: Final = 32
SIZEOF_FFA_MEM_REGION_V1_0: Final = 32  # offsetof(struct ffa_mem_region, ep_mem_offset)
SIZEOF_FFA_MEM_REGION: Final = 48

# struct ffa_mem_region_attributes (the EMAD): receiver u16 @0, attrs u8 @2, flag u8 @3,
# composite_off u32 @4, [impdef_val[16] from 11fb1a82aefa, 6.18], reserved u64.
EMAD_COMPOSITE_OFF: Final = 4
SIZEOF_EMAD_V1_0: Final = 16
SIZEOF_EMAD_V1_2: Final = 32

# struct ffa_composite_mem_region: total_pg_cnt u32 @0, addr_range_cnt u32 @4, reserved u64,
# constituents[] @16.
COMPOSITE_ADDR_RANGE_CNT: Final = 4
SIZEOF_FFA_COMPOSITE_MEM_REGION: Final = 16

# struct ffa_mem_region_addr_range: address u64 @0, pg_cnt u32 @8, reserved u32 @12.
ADDR_RANGE_ADDRESS: Final = 0
ADDR_RANGE_PG_CNT: Final = 8
SIZEOF_FFA_MEM_REGION_ADDR_RANGE: Final = 16

HYP_RETRIEVE_HEADER: Final = struct.Struct("<HHIQQ")  # sender_id, attributes, flags, handle, tag


def CONSTITUENTS_OFFSET(x: int) -> int:  # the kernel's macro name
    """``offsetof(struct ffa_composite_mem_region, constituents[x])`` (size_t arithmetic)."""
    return SIZEOF_FFA_COMPOSITE_MEM_REGION + x * SIZEOF_FFA_MEM_REGION_ADDR_RANGE


def FFA_EMAD_HAS_IMPDEF_FIELD(version: int) -> bool:  # the kernel's macro name
    return version >= FFA_VERSION_1_2


def FFA_MEM_REGION_HAS_EP_MEM_OFFSET(version: int) -> bool:  # the kernel's macro name
    return version > FFA_VERSION_1_0


def FFA_MEM_REGION_SZ(version: int) -> int:  # the kernel's macro name (6.18 header)
    """The transaction header's size in ``version``'s layout: 32 for v1.0, 48 after."""
    if FFA_MEM_REGION_HAS_EP_MEM_OFFSET(version):
        return SIZEOF_FFA_MEM_REGION
    return SIZEOF_FFA_MEM_REGION_V1_0


def ffa_emad_size_get(version: int) -> int:
    """An EMAD's size in ``version``'s layout: 16 bytes, 32 from v1.2 (the IMPDEF value)."""
    return SIZEOF_EMAD_V1_2 if FFA_EMAD_HAS_IMPDEF_FIELD(version) else SIZEOF_EMAD_V1_0


# ---------------------------------------------------------------------------------------------
# asm/kvm_pkvm.h

KVM_FFA_MBOX_NR_PAGES: Final = 1
"""Pages in each of the hypervisor's and the host's RX/TX buffers."""

SG_MAX_SEGMENTS: Final = 2048


def hyp_ffa_proxy_pages() -> int:
    """Pages pKVM carves out for the proxy at boot: its TX and RX, then ``ffa_desc_buf``, big
    enough for a header, one EMAD, a composite and SG_MAX_SEGMENTS ranges (9 pages with 4 KiB
    pages; later kernels size it for KVM_FFA_MAX_NR_CONSTITUENTS, which the model does not
    follow: no scenario comes near either limit)."""
    desc_max = (
        SIZEOF_FFA_MEM_REGION
        + SIZEOF_EMAD_V1_2
        + SIZEOF_FFA_COMPOSITE_MEM_REGION
        + SG_MAX_SEGMENTS * SIZEOF_FFA_MEM_REGION_ADDR_RANGE
    )
    return 2 * KVM_FFA_MBOX_NR_PAGES + -(-desc_max // 4096)
