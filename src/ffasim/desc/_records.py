"""What the descriptor records share: tuple-based equality, and arrays that build records on read.

The records (``Constituent``, ``MemAccess``, ``PartitionInfo``...) are ``NamedTuple`` subclasses
that compare like the frozen dataclasses they replaced: equal only to a record of the same
class, never to a plain tuple, and hashed as the tuple of their fields. A decoder builds them
with ``tuple.__new__`` on fields it has already validated, which skips the Python ``__new__``.

Why not one record per array entry at decode time: in CPython 3.11 creating a record costs
about 100 ns, more than the ``unpack_from`` that reads its fields (60-80 ns), so an array
decoder that built them could not stay within twice a bare ``struct`` loop (``docs/desc.md``,
Benchmarks). :class:`RecordArray` keeps the tuples that ``struct.iter_unpack`` gives and builds
a record for each item read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any, TypeVar, overload

__all__ = ["RecordArray", "record_eq", "record_ne", "records"]

# tuple.__new__(Record, fields) builds a record without running its Python __new__.
_tn = tuple.__new__
_tuple_eq = tuple.__eq__

R = TypeVar("R", bound=tuple[Any, ...])


def records(record: type[R], fields: tuple[tuple[Any, ...], ...]) -> tuple[R, ...]:
    """A tuple of ``record`` built from each of ``fields`` (validated or normalised already)."""
    if len(fields) == 1:  # the common case, without map's set-up (a third of the cost)
        return (_tn(record, fields[0]),)
    return tuple(map(_tn, repeat(record), fields))


def record_eq(self: tuple[Any, ...], other: object) -> Any:
    """``__eq__`` of a record: equal fields and the same class; never equal to a plain tuple."""
    if type(other) is type(self):
        return _tuple_eq(self, other)
    return False if isinstance(other, tuple) else NotImplemented


def record_ne(self: tuple[Any, ...], other: object) -> Any:
    if type(other) is type(self):
        return not _tuple_eq(self, other)
    return True if isinstance(other, tuple) else NotImplemented


class RecordArray(Sequence[R]):
    """A read-only sequence of records of one class, kept as the plain tuples of their fields.

    Reading an item builds its record (so two reads give equal, not identical, records);
    ``fields`` is the tuple of field tuples, for readers that want no records at all. It
    behaves as the tuple of records it stands for: it compares equal to that tuple (and to a
    ``RecordArray`` of the same class and fields) and hashes like it.
    """

    __slots__ = ("fields", "record")

    def __init__(self, record: type[R], fields: tuple[tuple[Any, ...], ...]) -> None:
        self.record = record
        self.fields = fields

    def __len__(self) -> int:
        return len(self.fields)

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[R, ...]: ...

    def __getitem__(self, index: int | slice) -> R | tuple[R, ...]:
        if isinstance(index, slice):
            return records(self.record, self.fields[index])
        return _tn(self.record, self.fields[index])

    def __iter__(self) -> Iterator[R]:
        return map(_tn, repeat(self.record), self.fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordArray):
            return self.record is other.record and self.fields == other.fields
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        # A record hashes as the tuple of its fields, so this is hash(tuple(self)).
        return hash(self.fields)

    def __repr__(self) -> str:
        return f"RecordArray({tuple(self)!r})"
