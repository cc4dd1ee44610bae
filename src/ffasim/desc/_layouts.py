"""The fixed parts of every FF-A descriptor, as ``struct.Struct`` (little-endian, packed).

Each layout names its source table. Offsets are explicit in the comments; the size asserts pin
them, as Hafnium's ``static_assert``s pin its structs to the spec.
"""

from __future__ import annotations

import struct
from typing import Final

# Partition information descriptor, FF-A v1.0 (DEN0077A v1.0 Table 8.25):
# id u16 @0, execution context count u16 @2, properties u32 @4.
PARTINFO_V1_0: Final = struct.Struct("<HHI")
assert PARTINFO_V1_0.size == 8

# Partition information descriptor, FF-A v1.1/v1.2 (v1.1 Table 13.37): the v1.0 fields, UUID @8.
PARTINFO_V1_1: Final = struct.Struct("<HHI16s")
assert PARTINFO_V1_1.size == 24

# Endpoint RX/TX descriptor header, canonical (v1.1 Table 13.27 as Hafnium and patched Xen lay it
# out): endpoint ID u16 @0, reserved u16 @2, RX composite offset u32 @4, TX composite offset u32 @8,
# reserved u32 @12 (pads the header to 16 so that the composites are 8-byte aligned).
RXTX_HEADER: Final = struct.Struct("<HHIII")
assert RXTX_HEADER.size == 16

# The same header without the pad, as Xen's struct ffa_endpoint_rxtx_descriptor_1_1 (and so the
# seed) writes it: composites at 12 and 44, which Hafnium master rejects as misaligned.
RXTX_HEADER_V1_1_XEN: Final = struct.Struct("<HHII")
assert RXTX_HEADER_V1_1_XEN.size == 12

# Memory transaction descriptor, FF-A v1.0 (v1.0 Table 5.19): sender u16 @0, attributes u8 @2,
# reserved u8 @3, flags u32 @4, handle u64 @8, tag u64 @16, reserved u32 @24, EMAD count u32 @28;
# the EMAD array follows at 32.
TRANSACTION_V1_0: Final = struct.Struct("<HBBIQQII")
assert TRANSACTION_V1_0.size == 32

# Memory transaction descriptor, FF-A v1.1+ (v1.1 Table 10.20): sender u16 @0, attributes u16 @2,
# flags u32 @4, handle u64 @8, tag u64 @16, EMAD size u32 @24, EMAD count u32 @28, EMAD array
# offset u32 @32, reserved u32 @36 and u64 @40 (12 bytes MBZ).
TRANSACTION_V1_1: Final = struct.Struct("<HHIQQIIIIQ")
assert TRANSACTION_V1_1.size == 48

# Endpoint memory access descriptor, v1.0/v1.1 (v1.1 Table 10.16): receiver u16 @0, permissions
# u8 @2, flags u8 @3 (together the access-permissions descriptor), composite offset u32 @4,
# reserved u64 @8.
EMAD_V1_0: Final = struct.Struct("<HBBIQ")
assert EMAD_V1_0.size == 16

# Endpoint memory access descriptor, v1.2+ (v1.2 Table 10.16): as v1.0, then an
# implementation-defined 16-byte value @8 and reserved u64 @24.
EMAD_V1_2: Final = struct.Struct("<HBBI16sQ")
assert EMAD_V1_2.size == 32

# Composite memory region descriptor (v1.1 Table 10.13): total page count u32 @0, constituent
# count u32 @4, reserved u64 @8; constituents follow at 16.
COMPOSITE: Final = struct.Struct("<IIQ")
assert COMPOSITE.size == 16

# Constituent memory region descriptor (v1.1 Table 10.14): base address u64 @0, page count
# u32 @8, reserved u32 @12.
CONSTITUENT: Final = struct.Struct("<QII")
assert CONSTITUENT.size == 16

# Memory relinquish descriptor header (v1.1 Table 16.25): handle u64 @0, flags u32 @8, endpoint
# count u32 @12; u16 endpoint IDs follow at 16.
RELINQUISH_HEADER: Final = struct.Struct("<QII")
assert RELINQUISH_HEADER.size == 16

# Indirect message header, v1.1 (v1.1 Table 15.2): flags u32 @0, reserved u32 @4, payload offset
# u32 @8, receiver u16 @12 and sender u16 @14 (the word sender << 16 | receiver), size u32 @16.
INDIRECT_MSG_V1_1: Final = struct.Struct("<IIIHHI")
assert INDIRECT_MSG_V1_1.size == 20

# Indirect message header, v1.2: the v1.1 fields, reserved u32 @20, protocol UUID @24.
INDIRECT_MSG_V1_2: Final = struct.Struct("<IIIHHII16s")
assert INDIRECT_MSG_V1_2.size == 40
