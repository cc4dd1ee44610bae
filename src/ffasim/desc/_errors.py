"""The one exception a descriptor decoder raises: :class:`DescriptorError`."""

from __future__ import annotations

from .. import abi

__all__ = ["DescriptorError"]


class DescriptorError(ValueError):
    """A descriptor broke a rule of FF-A: carries the error a real SPMC or mediator returns.

    ``code`` is the FF-A error (``abi.FFA_RET_INVALID_PARAMETERS`` for almost every layout rule),
    so a model component can hand it back to its caller unchanged. ``offset`` is the byte offset
    of the offending field from the start of the descriptor, ``field`` its name; either may be
    ``None`` when the rule is about the buffer as a whole.
    """

    code: int
    message: str
    offset: int | None
    field: str | None

    def __init__(
        self, code: int, message: str, offset: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(code, message, offset, field)
        self.code = code
        self.message = message
        self.offset = offset
        self.field = field

    def __str__(self) -> str:
        where = []
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        if self.field is not None:
            where.append(f"({self.field})" if where else self.field)
        head = " ".join(where)
        tail = f" [{abi.error_name(self.code)}]"
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"


def invalid(message: str, offset: int | None = None, field: str | None = None) -> DescriptorError:
    """An INVALID_PARAMETERS error, the answer to nearly every malformed descriptor."""
    return DescriptorError(abi.FFA_RET_INVALID_PARAMETERS, message, offset, field)


def check_version(version: int) -> int:
    """The minor version a layout choice depends on; NOT_SUPPORTED for anything but FF-A 1.x."""
    if not isinstance(version, int) or version >> 16 != 1:
        raise DescriptorError(
            abi.FFA_RET_NOT_SUPPORTED,
            f"version 0x{version:x} is not FF-A 1.x" if isinstance(version, int) else "bad version",
            None,
            "version",
        )
    return version & 0xFFFF
