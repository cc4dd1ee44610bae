"""The indirect message header of FFA_MSG_SEND2 (§3.9): 20 bytes in v1.1, 40 in v1.2.

The header sits at the start of the sender's TX buffer (and, once delivered, of the receiver's
RX buffer); the payload is at ``offset`` from the buffer base, ``size`` bytes long.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import abi
from ._errors import DescriptorError, check_version, invalid
from ._layouts import INDIRECT_MSG_V1_1, INDIRECT_MSG_V1_2

__all__ = ["IndirectMessage", "indirect_msg_header_size"]

_NIL16 = bytes(16)


def indirect_msg_header_size(version: int) -> int:
    """20 for a v1.1 writer, 40 from v1.2 (v1.0 has no indirect messaging: NOT_SUPPORTED)."""
    minor = check_version(version)
    if minor == 0:
        raise DescriptorError(
            abi.FFA_RET_NOT_SUPPORTED, "FF-A v1.0 has no indirect messages", None, "version"
        )
    return INDIRECT_MSG_V1_1.size if minor == 1 else INDIRECT_MSG_V1_2.size


@dataclass(frozen=True, slots=True)
class IndirectMessage:
    """An indirect message header: flags, payload offset, sender, receiver, payload size, UUID."""

    flags: int
    offset: int
    sender: int
    receiver: int
    size: int
    uuid: bytes = _NIL16

    def __post_init__(self) -> None:
        # Accept the UUID as text or uuid.UUID too; keep the 16 raw bytes.
        if type(self.uuid) is not bytes or len(self.uuid) != 16:
            object.__setattr__(self, "uuid", abi.uuid_bytes(self.uuid))

    def encode(self, version: int) -> bytes:
        """The header alone (20 or 40 bytes); the UUID is written from v1.2 only."""
        if indirect_msg_header_size(version) == INDIRECT_MSG_V1_1.size:
            return INDIRECT_MSG_V1_1.pack(
                self.flags, 0, self.offset, self.receiver, self.sender, self.size
            )
        return INDIRECT_MSG_V1_2.pack(
            self.flags, 0, self.offset, self.receiver, self.sender, self.size, 0, bytes(self.uuid)
        )

    @property
    def send_recv_id(self) -> int:
        """The word at offset 12: sender << 16 | receiver."""
        return abi.pack_target(self.sender, self.receiver)

    @classmethod
    def decode(
        cls, buf: bytes | bytearray | memoryview, version: int, *, length: int | None = None
    ) -> IndirectMessage:
        """Read the header at the start of ``buf`` (``buf`` may hold the header alone).

        INVALID_PARAMETERS when the buffer is shorter than the header, or the payload offset is
        inside the header (as Xen checks: a v1.2 writer needs 40, a v1.1 writer 20). Given
        ``length``, the size of the whole buffer the header heads (an RX/TX buffer), the
        payload must also be non-empty and lie within it, as Xen requires before it copies a
        message. The flags and reserved words are "should be zero" and are reported as read.
        A v1.1 header has no UUID: ``uuid`` is the nil UUID.
        """
        hsize = indirect_msg_header_size(version)
        n = len(buf)
        if n < hsize:
            raise invalid(f"{n} bytes is shorter than the {hsize}-byte header", 0, "header")
        if hsize == INDIRECT_MSG_V1_1.size:
            flags, _res, offset, receiver, sender, size = INDIRECT_MSG_V1_1.unpack_from(buf, 0)
            uuid = _NIL16
        else:
            flags, _res, offset, receiver, sender, size, _res2, uuid = (
                INDIRECT_MSG_V1_2.unpack_from(buf, 0)
            )
        if offset < hsize:
            raise invalid(f"payload offset {offset} is inside the {hsize}-byte header", 8, "offset")
        if length is not None:
            if size == 0:
                raise invalid("payload size is 0", 16, "size")
            if offset > length or size > length - offset:
                raise invalid(
                    f"payload of {size} bytes at {offset} overruns the {length}-byte buffer",
                    16,
                    "size",
                )
        return cls(flags, offset, sender, receiver, size, uuid)
