"""Golden vectors for the descriptor tests, written by hand from the tables of ffa-abi.md §3.

Each vector is hex typed field by field (little-endian), not produced by the encoder under
test, so that a layout mistake in the encoder and the decoder cannot cancel out.
"""

from __future__ import annotations


def h(text: str) -> bytes:
    """Bytes from hex with spaces, newlines and ``|`` field separators."""
    return bytes.fromhex(text.replace("|", " ").replace("\n", " "))


# ffa-abi.md §3.10 verbatim: the arm-ffa crate's MEM_SHARE_FROM_SP1, v1.1 layout, 96 bytes.
MEM_SHARE_V1_1_GOLDEN = h(
    """05802f00 00000000 efcdab90 78563412 efbe0000 adde0000 10000000 01000000
    30000000 00000000 00000000 00000000 03800200 40000000 00000000 00000000
    01000000 01000000 00000000 00000000 00f01040 00000000 01000000 00000000"""
)

# v1.0 transaction (§3.4 v1.0 table): VM 2 shares 3 pages in two ranges with SP 0x8002.
MEM_SHARE_V1_0 = h(
    """0200 | 2f | 00 | 00000000 | 0000000000000000 | 1100000000000000 | 00000000 | 01000000
    0280 | 02 | 00 | 30000000 | 0000000000000000
    03000000 | 02000000 | 0000000000000000
    0000004000000000 | 02000000 | 00000000
    0000014000000000 | 01000000 | 00000000"""
)

# v1.2 transaction with two 32-byte EMADs (§3.5 v1.2 table): VM 3 shares one page with
# SP 0x8001 (RW, NX, impdef 0xaa..) and SP 0x8002 (RO); composite at 48 + 2 * 32 = 112.
MEM_SHARE_V1_2_TWO_EMADS = h(
    """0300 | 2f00 | 00000000 | 0000000000000000 | 0000000000000000
    20000000 | 02000000 | 30000000 | 000000000000000000000000
    0180 | 06 | 00 | 70000000 | aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | 0000000000000000
    0280 | 01 | 00 | 70000000 | 00000000000000000000000000000000 | 0000000000000000
    01000000 | 01000000 | 0000000000000000
    0000024000000000 | 01000000 | 00000000"""
)

# Partition info v1.0 (§3.1, 8 bytes): SP 0x8001, 4 contexts, properties 0x7.
PARTINFO_V1_0 = h("0180 | 0400 | 07000000")

# Partition info v1.1 (§3.1, 24 bytes): SP 0x8002, 1 context, properties 0x103 (direct
# request receive and send, AArch64), the OP-TEE UUID 486178e0-e7f8-11e3-bc5e-0002a5d5c51b.
PARTINFO_V1_1 = h("0280 | 0100 | 03010000 | 486178e0e7f811e3bc5e0002a5d5c51b")
OPTEE_UUID = "486178e0-e7f8-11e3-bc5e-0002a5d5c51b"

# Endpoint RX/TX descriptor, canonical (§3.3): VM 2, RX 0x40001000 and TX 0x40002000, 1 page.
RXTX_16_48 = h(
    """0200 | 0000 | 10000000 | 30000000 | 00000000
    01000000 | 01000000 | 0000000000000000
    0010004000000000 | 01000000 | 00000000
    01000000 | 01000000 | 0000000000000000
    0020004000000000 | 01000000 | 00000000"""
)

# The same descriptor as the seed writes it: 12-byte header, composites at 12 and 44.
RXTX_12_44 = h(
    """0200 | 0000 | 0c000000 | 2c000000
    01000000 | 01000000 | 0000000000000000
    0010004000000000 | 01000000 | 00000000
    01000000 | 01000000 | 0000000000000000
    0020004000000000 | 01000000 | 00000000"""
)

# Relinquish (§3.8): handle 0x8000000000000007, flags 1 (zero after), one endpoint 0x8002.
RELINQUISH = h("0700000000000080 | 01000000 | 01000000 | 0280")

# Indirect message header v1.1 (§3.9, 20 bytes) + 4-byte payload: VM 2 -> VM 3.
MSG_V1_1 = h("00000000 | 00000000 | 14000000 | 0300 | 0200 | 04000000 | 70696e67")

# Indirect message header v1.2 (40 bytes) + 2-byte payload: VM 2 -> SP 0x8001, OP-TEE UUID.
MSG_V1_2 = h(
    """00000000 | 00000000 | 28000000 | 0180 | 0200 | 02000000 | 00000000
    486178e0e7f811e3bc5e0002a5d5c51b | 6869"""
)

# The hypervisor retrieve request (§3.7): 48 bytes, handle 0x1234 at 8, all else zero.
HYP_RETRIEVE_1234 = h("0000 0000 00000000 3412000000000000" + "00" * 32)
