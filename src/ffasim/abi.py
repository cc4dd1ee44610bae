"""The FF-A wire: function IDs, error codes, version words, register packing.

Names follow the FF-A specification (DEN0077A v1.0 to v1.2) as the public API fixes them:
``FFA_VERSION``, ``FFA_RXTX_MAP_64``, ``FFA_RET_DENIED``. A 32-bit-only function has no
suffix; a function with both conventions has ``_32`` and ``_64`` forms (``FFA_MEM_SHARE_32``)
and, where the public API uses the bare name for the 32-bit form, that alias too.

Function IDs follow SMCCC: bit 31 fast call, bit 30 the 64-bit convention, bits [29:24] = 4
(standard secure service), bits [15:0] the FF-A function number (0x60 and up).

Registers are plain ints. A result is an 18-tuple ``x0..x17`` (:data:`Regs`); an error is
``x0 == FFA_ERROR`` with the signed 32-bit code in the low half of ``x2``.
"""

from __future__ import annotations

import uuid as _uuid
from typing import Final, NewType

# ---------------------------------------------------------------------------------------------
# Function IDs (FF-A v1.2 table of function IDs; SMC32 = 0x84000000 | fn, SMC64 = 0xC4000000 | fn)

SMC32_BASE: Final = 0x84000000
SMC64_BASE: Final = 0xC4000000
SMC64_BIT: Final = 1 << 30
FFA_FNUM_MIN: Final = 0x60
FFA_FNUM_MAX: Final = 0x90  # FFA_ABORT, v1.3; the highest number this module names

FFA_ERROR: Final = 0x84000060
FFA_SUCCESS_32: Final = 0x84000061
FFA_SUCCESS_64: Final = 0xC4000061
FFA_SUCCESS: Final = FFA_SUCCESS_32
FFA_INTERRUPT: Final = 0x84000062
FFA_VERSION: Final = 0x84000063
FFA_FEATURES: Final = 0x84000064
FFA_RX_RELEASE: Final = 0x84000065
FFA_RXTX_MAP_32: Final = 0x84000066
FFA_RXTX_MAP_64: Final = 0xC4000066
FFA_RXTX_MAP: Final = FFA_RXTX_MAP_32
FFA_RXTX_UNMAP: Final = 0x84000067
FFA_PARTITION_INFO_GET: Final = 0x84000068
FFA_ID_GET: Final = 0x84000069
FFA_MSG_POLL: Final = 0x8400006A
FFA_MSG_WAIT: Final = 0x8400006B
FFA_YIELD: Final = 0x8400006C
FFA_RUN: Final = 0x8400006D
FFA_MSG_SEND: Final = 0x8400006E
FFA_MSG_SEND_DIRECT_REQ_32: Final = 0x8400006F
FFA_MSG_SEND_DIRECT_REQ_64: Final = 0xC400006F
FFA_MSG_SEND_DIRECT_REQ: Final = FFA_MSG_SEND_DIRECT_REQ_32
FFA_MSG_SEND_DIRECT_RESP_32: Final = 0x84000070
FFA_MSG_SEND_DIRECT_RESP_64: Final = 0xC4000070
FFA_MSG_SEND_DIRECT_RESP: Final = FFA_MSG_SEND_DIRECT_RESP_32
FFA_MEM_DONATE_32: Final = 0x84000071
FFA_MEM_DONATE_64: Final = 0xC4000071
FFA_MEM_DONATE: Final = FFA_MEM_DONATE_32
FFA_MEM_LEND_32: Final = 0x84000072
FFA_MEM_LEND_64: Final = 0xC4000072
FFA_MEM_LEND: Final = FFA_MEM_LEND_32
FFA_MEM_SHARE_32: Final = 0x84000073
FFA_MEM_SHARE_64: Final = 0xC4000073
FFA_MEM_SHARE: Final = FFA_MEM_SHARE_32
FFA_MEM_RETRIEVE_REQ_32: Final = 0x84000074
FFA_MEM_RETRIEVE_REQ_64: Final = 0xC4000074
FFA_MEM_RETRIEVE_REQ: Final = FFA_MEM_RETRIEVE_REQ_32
FFA_MEM_RETRIEVE_RESP: Final = 0x84000075
FFA_MEM_RELINQUISH: Final = 0x84000076
FFA_MEM_RECLAIM: Final = 0x84000077
FFA_MEM_OP_PAUSE: Final = 0x84000078
FFA_MEM_OP_RESUME: Final = 0x84000079
FFA_MEM_FRAG_RX: Final = 0x8400007A
FFA_MEM_FRAG_TX: Final = 0x8400007B
FFA_NORMAL_WORLD_RESUME: Final = 0x8400007C
# v1.1
FFA_NOTIFICATION_BITMAP_CREATE: Final = 0x8400007D
FFA_NOTIFICATION_BITMAP_DESTROY: Final = 0x8400007E
FFA_NOTIFICATION_BIND: Final = 0x8400007F
FFA_NOTIFICATION_UNBIND: Final = 0x84000080
FFA_NOTIFICATION_SET: Final = 0x84000081
FFA_NOTIFICATION_GET: Final = 0x84000082
FFA_NOTIFICATION_INFO_GET_32: Final = 0x84000083
FFA_NOTIFICATION_INFO_GET_64: Final = 0xC4000083
FFA_NOTIFICATION_INFO_GET: Final = FFA_NOTIFICATION_INFO_GET_32
FFA_RX_ACQUIRE: Final = 0x84000084
FFA_SPM_ID_GET: Final = 0x84000085
FFA_MSG_SEND2: Final = 0x84000086
FFA_SECONDARY_EP_REGISTER_32: Final = 0x84000087
FFA_SECONDARY_EP_REGISTER_64: Final = 0xC4000087
FFA_MEM_PERM_GET_32: Final = 0x84000088
FFA_MEM_PERM_GET_64: Final = 0xC4000088
FFA_MEM_PERM_SET_32: Final = 0x84000089
FFA_MEM_PERM_SET_64: Final = 0xC4000089
# v1.2
FFA_CONSOLE_LOG_32: Final = 0x8400008A
FFA_CONSOLE_LOG_64: Final = 0xC400008A
FFA_PARTITION_INFO_GET_REGS: Final = 0xC400008B  # SMC64 only
FFA_EL3_INTR_HANDLE: Final = 0x8400008C
FFA_MSG_SEND_DIRECT_REQ2: Final = 0xC400008D  # SMC64 only
FFA_MSG_SEND_DIRECT_RESP2: Final = 0xC400008E  # SMC64 only


def _build_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for key, value in globals().items():
        if not key.startswith("FFA_") or not isinstance(value, int):
            continue
        if key.startswith(("FFA_RET_", "FFA_VERSION_", "FFA_FNUM", "FFA_FEAT_")):
            continue
        if value < SMC32_BASE:
            continue
        # Prefer the spelled-out form (FFA_MEM_SHARE_32) over the bare alias.
        old = names.get(value)
        if old is None or (len(key) > len(old) and key.startswith(old)):
            names[value] = key
    return names


_NAMES: Final[dict[int, str]] = _build_names()
FUNCTION_IDS: Final[frozenset[int]] = frozenset(_NAMES)


def name(fid: int) -> str:
    """The spec name of function ID ``fid`` (``'FFA_MEM_SHARE_64'``), or its hex for others."""
    fid &= 0xFFFFFFFF
    found = _NAMES.get(fid)
    return found if found is not None else f"0x{fid:08x}"


def fid_by_name(text: str) -> int:
    """The function ID named ``text`` (``'FFA_VERSION'`` or ``'VERSION'``); KeyError if none."""
    key = text.strip().upper()
    if not key.startswith("FFA_"):
        key = "FFA_" + key
    value = globals().get(key)
    if not isinstance(value, int) or value < SMC32_BASE:
        raise KeyError(text)
    return value


def is_64bit_fid(fid: int) -> bool:
    """True for an SMC64-convention function ID."""
    return bool(fid & SMC64_BIT)


def is_ffa_fid(fid: int) -> bool:
    """True when ``fid`` is in the FF-A range of the standard secure service, either convention."""
    fid &= 0xFFFFFFFF
    return (fid & ~SMC64_BIT & 0xFFFF0000) == SMC32_BASE and (
        FFA_FNUM_MIN <= (fid & 0xFFFF) <= FFA_FNUM_MAX
    )


# ---------------------------------------------------------------------------------------------
# Error codes (signed 32-bit, in w2 of FFA_ERROR; FFA_VERSION answers NOT_SUPPORTED in w0)

FFA_RET_OK: Final = 0
FFA_RET_NOT_SUPPORTED: Final = -1
FFA_RET_INVALID_PARAMETERS: Final = -2
FFA_RET_NO_MEMORY: Final = -3
FFA_RET_BUSY: Final = -4
FFA_RET_INTERRUPTED: Final = -5
FFA_RET_DENIED: Final = -6
FFA_RET_RETRY: Final = -7
FFA_RET_ABORTED: Final = -8
FFA_RET_NO_DATA: Final = -9
FFA_RET_NOT_READY: Final = -10

ERROR_CODES: Final[dict[int, str]] = {
    FFA_RET_NOT_SUPPORTED: "NOT_SUPPORTED",
    FFA_RET_INVALID_PARAMETERS: "INVALID_PARAMETERS",
    FFA_RET_NO_MEMORY: "NO_MEMORY",
    FFA_RET_BUSY: "BUSY",
    FFA_RET_INTERRUPTED: "INTERRUPTED",
    FFA_RET_DENIED: "DENIED",
    FFA_RET_RETRY: "RETRY",
    FFA_RET_ABORTED: "ABORTED",
    FFA_RET_NO_DATA: "NO_DATA",
    FFA_RET_NOT_READY: "NOT_READY",
}


def error_name(code: int) -> str:
    """``'DENIED'`` for -6 (or 0xFFFFFFFA); ``'OK'`` for 0; the number for anything else."""
    code = to_s32(code)
    if code == 0:
        return "OK"
    return ERROR_CODES.get(code, str(code))


def to_s32(value: int) -> int:
    """The low 32 bits of ``value`` read as a signed integer."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def to_u32(value: int) -> int:
    """``value`` as the unsigned 32-bit word the wire carries (-6 becomes 0xFFFFFFFA)."""
    return value & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Versions: bit 31 MBZ, bits [30:16] major, bits [15:0] minor

FFA_VERSION_MAJOR_SHIFT: Final = 16
FFA_VERSION_MAJOR_MASK: Final = 0x7FFF
FFA_VERSION_MINOR_MASK: Final = 0xFFFF
FFA_VERSION_1_0: Final = 0x10000
FFA_VERSION_1_1: Final = 0x10001
FFA_VERSION_1_2: Final = 0x10002
FFA_VERSION_1_3: Final = 0x10003


def make_version(major: int, minor: int) -> int:
    return ((major & FFA_VERSION_MAJOR_MASK) << FFA_VERSION_MAJOR_SHIFT) | (
        minor & FFA_VERSION_MINOR_MASK
    )


def version_major(vers: int) -> int:
    return (vers >> FFA_VERSION_MAJOR_SHIFT) & FFA_VERSION_MAJOR_MASK


def version_minor(vers: int) -> int:
    return vers & FFA_VERSION_MINOR_MASK


def version_str(vers: int) -> str:
    return f"{version_major(vers)}.{version_minor(vers)}"


def versions_compatible(caller: int, callee: int) -> bool:
    """Caller X.Y works with callee A.B iff X == A and Y <= B (FF-A v1.2 §13.2)."""
    return version_major(caller) == version_major(callee) and version_minor(
        caller
    ) <= version_minor(callee)


# ---------------------------------------------------------------------------------------------
# Feature IDs for FFA_FEATURES (w1 bit 31 clear)

FFA_FEAT_NOTIF_PEND_INTR: Final = 0x1
FFA_FEAT_SCHEDULE_RECV_INTR: Final = 0x2
FFA_FEAT_MANAGED_EXIT_INTR: Final = 0x3

# ---------------------------------------------------------------------------------------------
# Endpoint IDs

EndpointId = NewType("EndpointId", int)
HYPERVISOR_ID: Final = 0
SPMD_ID: Final = 0xFFFF
FFA_ID_SECURE_BIT: Final = 0x8000
FFA_HANDLE_INVALID: Final = 0xFFFF_FFFF_FFFF_FFFF
FFA_HANDLE_HYP_FLAG: Final = 1 << 63


def is_secure_id(ep: int) -> bool:
    """Bit 15 set: a secure partition (or the SPMC)."""
    return bool(ep & FFA_ID_SECURE_BIT)


def pack_target(sender: int, receiver: int) -> int:
    """Target info / endpoint pair: bits [31:16] sender, [15:0] receiver."""
    return ((sender & 0xFFFF) << 16) | (receiver & 0xFFFF)


def ffa_sender(w1: int) -> int:
    """The sender ID of a target-info word (bits [31:16])."""
    return (w1 >> 16) & 0xFFFF


def ffa_receiver(w1: int) -> int:
    """The receiver ID of a target-info word (bits [15:0])."""
    return w1 & 0xFFFF


def handle_lo(handle: int) -> int:
    return handle & 0xFFFFFFFF


def handle_hi(handle: int) -> int:
    return (handle >> 32) & 0xFFFFFFFF


def make_handle(lo: int, hi: int) -> int:
    return ((hi & 0xFFFFFFFF) << 32) | (lo & 0xFFFFFFFF)


# ---------------------------------------------------------------------------------------------
# Registers

NUM_REGS: Final = 18
Regs = tuple[int, ...]
"""x0..x17 as 18 unsigned 64-bit ints."""

MASK64: Final = (1 << 64) - 1
MASK32: Final = 0xFFFFFFFF


def regs(*values: int) -> Regs:
    """An 18-register tuple from ``x0, x1, ...``: missing registers 0, values masked to 64 bits."""
    n = len(values)
    if n > NUM_REGS:
        raise ValueError(f"at most {NUM_REGS} registers, got {n}")
    return tuple([v & MASK64 for v in values]) + _ZERO_REGS[n:]


_ZERO_REGS: Final = (0,) * NUM_REGS


def success(w2: int = 0, w3: int = 0, *rest: int, fid: int = FFA_SUCCESS_32, w1: int = 0) -> Regs:
    """An FFA_SUCCESS result: x1 = ``w1`` (target info), x2.. = ``w2, w3, *rest``."""
    return regs(fid, w1, w2, w3, *rest)


def error(code: int, w1: int = 0) -> Regs:
    """An FFA_ERROR result with ``code`` (negative) zero-extended from 32 bits in x2."""
    return regs(FFA_ERROR, w1, code & MASK32)


def is_error(r: Regs) -> bool:
    return (r[0] & MASK32) == FFA_ERROR


def is_success(r: Regs) -> bool:
    return r[0] in (FFA_SUCCESS_32, FFA_SUCCESS_64)


def error_code(r: Regs) -> int:
    """The signed error code of an FFA_ERROR result, or 0 for any other result."""
    return to_s32(r[2]) if is_error(r) else 0


def describe(r: Regs) -> str:
    """A short human reading of a result: ``'FFA_SUCCESS_32(w2=0x1)'``, ``'FFA_ERROR(DENIED)'``."""
    if is_error(r):
        return f"FFA_ERROR({error_name(r[2])})"
    x0 = r[0] & MASK32 if not r[0] >> 32 else r[0]
    head = name(x0) if x0 >= SMC32_BASE and x0 <= 0xFFFFFFFF else f"0x{r[0]:x}"
    if head.startswith("0x") and to_s32(r[0]) < 0 and r[0] >> 32 == 0:
        head = error_name(r[0])  # FFA_VERSION's NOT_SUPPORTED in w0
    args = [f"w{i}=0x{v:x}" for i, v in enumerate(r[1:8], start=1) if v]
    return f"{head}({', '.join(args)})" if args else head


# ---------------------------------------------------------------------------------------------
# UUIDs in registers: the 16 bytes in RFC 4122 order, split into little-endian words


def _uuid_bytes(u: str | bytes | _uuid.UUID) -> bytes:
    if isinstance(u, _uuid.UUID):
        return u.bytes
    if isinstance(u, (bytes, bytearray)):
        if len(u) != 16:
            raise ValueError(f"a UUID is 16 bytes, got {len(u)}")
        return bytes(u)
    return _uuid.UUID(u).bytes


def uuid_to_regs32(u: str | bytes | _uuid.UUID) -> tuple[int, int, int, int]:
    """w1..w4 of FFA_PARTITION_INFO_GET: bytes [0..3], [4..7], [8..11], [12..15], each LE."""
    b = _uuid_bytes(u)
    return tuple(int.from_bytes(b[i : i + 4], "little") for i in range(0, 16, 4))  # type: ignore[return-value]


def uuid_from_regs32(w1: int, w2: int, w3: int, w4: int) -> bytes:
    """The 16 UUID bytes that ``uuid_to_regs32`` packed."""
    return b"".join((w & MASK32).to_bytes(4, "little") for w in (w1, w2, w3, w4))


def uuid_to_regs64(u: str | bytes | _uuid.UUID) -> tuple[int, int]:
    """x_lo/x_hi of the SMC64 forms (DIRECT_REQ2, _GET_REGS): bytes [0..7], [8..15], LE."""
    b = _uuid_bytes(u)
    return int.from_bytes(b[:8], "little"), int.from_bytes(b[8:], "little")


def uuid_from_regs64(lo: int, hi: int) -> bytes:
    return (lo & MASK64).to_bytes(8, "little") + (hi & MASK64).to_bytes(8, "little")


def uuid_bytes(u: str | bytes | _uuid.UUID) -> bytes:
    """The 16 raw bytes of a UUID given as text, bytes or ``uuid.UUID``."""
    return _uuid_bytes(u)


def uuid_str(b: bytes) -> str:
    return str(_uuid.UUID(bytes=bytes(b)))


NIL_UUID: Final = bytes(16)

# ---------------------------------------------------------------------------------------------
# Partition properties (FF-A v1.2 Table 6.2)

FFA_PART_PROP_DIRECT_REQ_RECV: Final = 1 << 0
FFA_PART_PROP_DIRECT_REQ_SEND: Final = 1 << 1
FFA_PART_PROP_INDIRECT_MSGS: Final = 1 << 2
FFA_PART_PROP_RECV_NOTIF: Final = 1 << 3
FFA_PART_PROP_IS_TYPE_MASK: Final = 3 << 4
FFA_PART_PROP_NOTIF_CREATED: Final = 1 << 6
FFA_PART_PROP_NOTIF_DESTROYED: Final = 1 << 7
FFA_PART_PROP_AARCH64_STATE: Final = 1 << 8
FFA_PART_PROP_DIRECT_REQ2_RECV: Final = 1 << 9
FFA_PART_PROP_DIRECT_REQ2_SEND: Final = 1 << 10

FFA_PARTITION_INFO_GET_COUNT_FLAG: Final = 1 << 0

# ---------------------------------------------------------------------------------------------
# Direct-message framework messages (w2 of DIRECT_REQ/RESP)

FFA_MSG_FLAG_FRAMEWORK: Final = 1 << 31
FFA_MSG_TYPE_MASK: Final = 0xFF
FFA_MSG_SEND_VM_CREATED: Final = 4
FFA_MSG_RESP_VM_CREATED: Final = 5
FFA_MSG_SEND_VM_DESTROYED: Final = 6
FFA_MSG_RESP_VM_DESTROYED: Final = 7

# Memory region attributes, permissions and flags (FF-A v1.2 §10.10 / §10.11)
FFA_NORMAL_MEM_REG_ATTR: Final = 0x2F
FFA_MEM_ATTR_NS: Final = 1 << 6
FFA_MEM_ACC_RO: Final = 0x1
FFA_MEM_ACC_RW: Final = 0x2
FFA_PAGE_SIZE: Final = 4096

# Notifications
FFA_NOTIF_FLAG_BITMAP_SP: Final = 1 << 0
FFA_NOTIF_FLAG_BITMAP_VM: Final = 1 << 1
FFA_NOTIF_FLAG_BITMAP_SPM: Final = 1 << 2
FFA_NOTIF_FLAG_BITMAP_HYP: Final = 1 << 3
FFA_NOTIF_INFO_GET_MORE_FLAG: Final = 1 << 0
FFA_NOTIF_INFO_GET_ID_COUNT_SHIFT: Final = 7
FFA_NOTIF_INFO_GET_ID_COUNT_MASK: Final = 0x1F
FFA_NOTIF_INFO_GET_ID_LIST_SHIFT: Final = 12
FFA_NOTIF_RX_BUFFER_FULL: Final = 1 << 0
