"""The kinds of value a scenario file holds: each a msgspec type (what the file may say, with
its ranges and names, which the validator enforces and the JSON Schema publishes), how the
validated value becomes what the runtime uses (``"1.2"`` -> ``0x10002``), and how a runtime
value is written back (:func:`ffasim.scenario.to_toml`).

Messages come from the types too: an annotation's ``Meta(extra={"what": ...})`` names what a
value must be (``must be a 16-bit endpoint ID, got 'sp1'``), ``extra={"explain": fn}`` words a
rule that a phrase cannot (``version = 1.2`` unquoted is a float). :func:`explain` turns a
rejected value and its type into that one line.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec.inspect as mi
from msgspec import Meta

from .. import abi
from .._suggest import closest, did_you_mean

SUCCESS = "success"
ANY = "any"
ERROR_NAMES: tuple[str, ...] = tuple(abi.ERROR_CODES.values())
OUTCOMES: tuple[str, ...] = (SUCCESS, ANY, *ERROR_NAMES)


class Invalid(Exception):
    """A value breaks a rule the types cannot state; the message is the rule."""


def show(v: Any) -> str:
    """A value as the user wrote it: ``'sp1'``, ``true``, ``98305 (0x18001)``, ``an array``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, int):
        return str(v) if -10 < v < 10 else f"{v} (0x{v:x})" if v >= 0 else str(v)
    if isinstance(v, (list, tuple)):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, float):
        return f"{v!r} (a float)"
    return type(v).__name__


def _same(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class Kind:
    """One kind of value: its file form (a msgspec annotation), and the conversions between
    the file form and the runtime form."""

    type: Any
    convert: Callable[[Any], Any] = _same
    """Validated file value -> runtime value (may raise :class:`Invalid`)."""
    encode: Callable[[Any], Any] = _same
    """Runtime value -> file value (what :func:`~ffasim.scenario.to_toml` writes)."""


def _int(lo: int, hi: int, what: str) -> Any:
    return Annotated[int, Meta(ge=lo, le=hi, extra={"what": what})]


def _u64(what: str) -> Any:
    """A 64-bit unsigned integer: msgspec bounds stop at int64, so the schema states the
    maximum and :func:`_fit64` enforces it after validation."""
    return Annotated[
        int, Meta(ge=0, extra={"what": what}, extra_json_schema={"maximum": abi.MASK64})
    ]


def _fit64(what: str) -> Callable[[Any], Any]:
    """A conversion that refuses integers above 2**64 - 1 anywhere in the value."""

    def check(v: Any) -> Any:
        for x in v if isinstance(v, list) else (v,):
            if isinstance(x, int) and not isinstance(x, bool) and x > abi.MASK64:
                raise Invalid(f"must be {what}, got {show(x)}")
        return tuple(v) if isinstance(v, list) else v

    return check


def _hex_encode(v: Any) -> Any:
    return Hex(v) if isinstance(v, int) and v >= 0x100 else v


class Hex(int):
    """An integer that :func:`~ffasim.scenario.to_toml` writes in hex (IDs, bitmaps)."""


# -- explanations of rules a phrase cannot carry -----------------------------------------------


def _explain_version(v: Any) -> str:
    if isinstance(v, float):
        return f'must be a version string such as "1.2" (quoted), got the float {v!r}'
    if isinstance(v, str):
        return f'must be a version such as "1.2", got {show(v)}'
    return f'must be a version such as "1.2" or a 32-bit version word, got {show(v)}'


def _explain_fid(v: Any) -> str:
    if isinstance(v, str):
        # Compared without the FFA_ every name shares, which would make any word look close.
        bare = {n.removeprefix("FFA_"): n for n in FUNCTION_NAMES}
        best = closest(v.upper().removeprefix("FFA_"), bare)
        hint = f" (did you mean {bare[best]!r}?)" if best is not None else ""
        return f'must name an FF-A function such as "FFA_ID_GET", got {show(v)}{hint}'
    return f"must be an FF-A function name or a 32-bit function ID, got {show(v)}"


def _explain_words(n: int) -> Callable[[Any], str]:
    def explain(v: Any) -> str:
        if isinstance(v, list):
            return f"must be an array of at most {n} integers, got {len(v)}"
        return f"must be an array of at most {n} integers, got {show(v)}"

    return explain


def _explain_pages(v: Any) -> str:
    if v == []:
        return "must be a page count or a non-empty array of page numbers, got []"
    return f"must be a page count (1..256) or an array of page numbers, got {show(v)}"


def _explain_outcome(v: Any) -> str:
    return (
        f'unknown outcome {v!r}; expected "success", "any" or an FF-A error name '
        f"({', '.join(ERROR_NAMES)}){did_you_mean(v, OUTCOMES)}"
    )


def _explain_expect(v: Any) -> str:
    if isinstance(v, str):
        return _explain_outcome(v)
    return 'must be an outcome or an array of outcomes, e.g. ["success", "BUSY"]'


def _explain_symbol(v: Any) -> str:
    return (
        'register values are integers or "id", "ipa:N", "to:ID", "handle_lo:NAME", '
        f'"handle_hi:NAME"; got {show(v)}'
    )


def _explain_args(v: Any) -> str:
    if isinstance(v, list):
        return f"must give at most 17 registers (x1..x17), got {len(v)}"
    return f"must be an array of register values, got {show(v)}"


# -- conversions -------------------------------------------------------------------------------


def _version_in(v: Any) -> int:
    if isinstance(v, str):
        major, minor = (int(x) for x in v.strip().split("."))
        if major > 0x7FFF or minor > 0xFFFF:
            raise Invalid(f'must be a version such as "1.2", got {show(v)}')
        return abi.make_version(major, minor)
    return int(v)


def _version_out(v: int) -> Any:
    return abi.version_str(v) if not v >> 31 else Hex(v)


def _fid_in(v: Any) -> int:
    return abi.fid_by_name(v) if isinstance(v, str) else int(v)


def _fid_out(v: int) -> Any:
    return abi.name(v) if v in abi.FUNCTION_IDS else Hex(v)


def _uuid_in(v: Any) -> str:
    try:
        return str(_uuid.UUID(v))
    except ValueError:
        raise Invalid(
            f'must be a UUID such as "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb", got {show(v)}'
        ) from None


def _pages_in(v: Any) -> int | tuple[int, ...]:
    if isinstance(v, list):
        if len(set(v)) != len(v):
            raise Invalid("must not list a page twice")
        return tuple(v)
    return int(v)


def _perms_in(v: Any) -> int:
    return {"RO": abi.FFA_MEM_ACC_RO, "RW": abi.FFA_MEM_ACC_RW}[v] if isinstance(v, str) else v


def _perms_out(v: int) -> Any:
    return {abi.FFA_MEM_ACC_RO: "RO", abi.FFA_MEM_ACC_RW: "RW"}.get(v, v)


_MEM_OPS = {"fill": 1, "sum": 2}


def _status_in(v: str) -> int:
    return 0 if v == "OK" else next(c for c, n in abi.ERROR_CODES.items() if n == v)


def _status_out(v: int) -> Any:
    return "OK" if v == 0 else abi.ERROR_CODES.get(v, v)


def _tuple(v: Any) -> tuple[Any, ...]:
    return tuple(v)


def _list_out(v: Any) -> list[Any]:
    return [_hex_encode(x) for x in v]


def _advance_in(v: Any) -> float:
    return float(v)


# -- the kinds ---------------------------------------------------------------------------------

U64 = _u64("a 64-bit unsigned integer")
_WORD64 = _u64("64-bit unsigned integers")
FUNCTION_NAMES: tuple[str, ...] = tuple(
    k for k, v in vars(abi).items() if k.startswith("FFA_") and v in abi.FUNCTION_IDS
)
"""Every FF-A function name a file may use (``FFA_RXTX_MAP`` and ``FFA_RXTX_MAP_64`` alike)."""
_FUNCTION = Annotated[Literal[FUNCTION_NAMES], Meta(extra={"explain": _explain_fid})]
_ARG_SYMBOL = r"^(id|ipa:\d+|to:(0x[0-9a-fA-F]+|\d+)|handle_(lo|hi):[A-Za-z_][\w-]*)$"
OUTCOME = Annotated[Literal[OUTCOMES], Meta(extra={"explain": _explain_outcome})]
STATUS_NAMES: tuple[str, ...] = ("OK", *ERROR_NAMES)

KINDS: dict[str, Kind] = {
    "bool": Kind(Annotated[bool, Meta(extra={"what": "true or false"})]),
    "str": Kind(Annotated[str, Meta(extra={"what": "a string"})]),
    "byte": Kind(_int(0, 0xFF, "a byte (0..255)"), encode=Hex),
    "u16": Kind(_int(0, 0xFFFF, "a 16-bit unsigned integer"), encode=_hex_encode),
    "u32": Kind(_int(0, abi.MASK32, "a 32-bit unsigned integer"), encode=_hex_encode),
    "u64": Kind(U64, _fit64("a 64-bit unsigned integer"), _hex_encode),
    "count": Kind(_int(0, 0xFFFF, "a count (0..65535)")),
    "page": Kind(_int(0, 0xFFFFF, "a page number (integer >= 0)")),
    "npages": Kind(_int(1, 256, "a page count (1..256)")),
    "bits": Kind(Annotated[Literal[32, 64], Meta(extra={"what": "32 or 64"})]),
    "endpoint": Kind(_int(0, 0xFFFF, "a 16-bit endpoint ID"), encode=_hex_encode),
    "sp": Kind(_int(0x8001, 0xFFBF, "a secure partition ID (0x8001..0xffbf)"), encode=Hex),
    "vm": Kind(_int(0, 0xFFFE, "a VM index (its domid, from 0)")),
    "version": Kind(
        Annotated[
            Annotated[str, Meta(pattern=r"^\s*\d+\.\d+\s*$")]
            | Annotated[int, Meta(ge=0, le=abi.MASK32)],
            Meta(extra={"explain": _explain_version}),
        ],
        _version_in,
        _version_out,
    ),
    "fid": Kind(
        Annotated[
            _FUNCTION | Annotated[int, Meta(ge=0, le=abi.MASK32)],
            Meta(extra={"explain": _explain_fid}),
        ],
        _fid_in,
        _fid_out,
    ),
    "feature": Kind(
        Annotated[
            _FUNCTION | Annotated[int, Meta(ge=0, le=abi.MASK32)],
            Meta(extra={"what": "an FF-A function name, a function ID or a feature ID"}),
        ],
        _fid_in,
        _fid_out,
    ),
    "uuid": Kind(
        Annotated[
            str,
            Meta(
                extra={"what": 'a UUID such as "b4b5671e-4a90-4fe1-b81f-fb13dae1dacb"'},
                extra_json_schema={"format": "uuid"},
            ),
        ],
        _uuid_in,
    ),
    "payload5": Kind(
        Annotated[list[_WORD64], Meta(max_length=5, extra={"explain": _explain_words(5)})],
        _fit64("64-bit unsigned integers"),
        _list_out,
    ),
    "payload14": Kind(
        Annotated[list[_WORD64], Meta(max_length=14, extra={"explain": _explain_words(14)})],
        _fit64("64-bit unsigned integers"),
        _list_out,
    ),
    "pages": Kind(
        Annotated[
            Annotated[int, Meta(ge=1, le=256)]
            | Annotated[
                list[
                    Annotated[
                        int, Meta(ge=0, le=0xFFFFF, extra={"what": "page numbers (integers >= 0)"})
                    ]
                ],
                Meta(min_length=1, extra_json_schema={"uniqueItems": True}),
            ],
            Meta(extra={"explain": _explain_pages}),
        ],
        _pages_in,
        lambda v: list(v) if isinstance(v, tuple) else v,
    ),
    "perms": Kind(
        Annotated[
            Literal["RO", "RW"] | Annotated[int, Meta(ge=0, le=0xFF)],
            Meta(extra={"what": '"RO", "RW" or a permissions byte'}),
        ],
        _perms_in,
        _perms_out,
    ),
    "name": Kind(
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$",
                extra={"what": "a name (letters, digits, _ and -)"},
            ),
        ]
    ),
    "mem_op": Kind(
        Annotated[Literal["fill", "sum", 1, 2], Meta(extra={"what": '"fill", "sum", 1 or 2'})],
        lambda v: _MEM_OPS.get(v, v),
        lambda v: {1: "fill", 2: "sum"}.get(v, v),
    ),
    "status": Kind(
        Annotated[
            Literal[STATUS_NAMES],
            Meta(extra={"what": '"OK" or an FF-A error name such as "RETRY"'}),
        ],
        _status_in,
        _status_out,
    ),
    "args": Kind(
        Annotated[
            list[
                Annotated[str, Meta(pattern=_ARG_SYMBOL, extra={"explain": _explain_symbol})]
                | _WORD64
            ],
            Meta(max_length=17, extra={"explain": _explain_args}),
        ],
        _fit64("64-bit unsigned integers"),
        _list_out,
    ),
    "reg": Kind(
        Annotated[
            _FUNCTION | Annotated[int, Meta(ge=0, extra_json_schema={"maximum": abi.MASK64})],
            Meta(extra={"what": "a 64-bit value or a function name"}),
        ],
        lambda v: _fid_in(_fit64("a 64-bit value or a function name")(v)),
        _hex_encode,
    ),
    "ids": Kind(
        Annotated[
            list[Annotated[int, Meta(ge=0, le=0xFFFF, extra={"what": "16-bit endpoint IDs"})]],
            Meta(extra={"what": "an array of endpoint IDs"}),
        ],
        _tuple,
        _list_out,
    ),
    "self_or_id": Kind(
        Annotated[
            Literal["self"] | Annotated[int, Meta(ge=0, le=0xFFFF)],
            Meta(extra={"what": 'a 16-bit endpoint ID or "self"'}),
        ],
        encode=_hex_encode,
    ),
    "hex": Kind(
        Annotated[
            str,
            Meta(
                pattern=r"^([0-9a-fA-F]{2})*$",
                max_length=2 * 4 * 4096,
                extra={"what": "bytes as an even number of hex digits (at most 4 pages)"},
            ),
        ],
        bytes.fromhex,
        lambda v: bytes(v).hex(),
    ),
    "offset": Kind(_int(0, 4 * 4096 - 1, "a byte offset (0..16383)")),
    "advance": Kind(
        Annotated[float, Meta(ge=0, le=3600, extra={"what": "a number of seconds (0..3600)"})],
        _advance_in,
    ),
}
"""Every kind of step parameter, by the name :class:`~ffasim.scenario._ops.Param` gives."""

EXPECT = Annotated[
    OUTCOME | Annotated[list[OUTCOME], Meta(min_length=1)],
    Meta(
        extra={"explain": _explain_expect},
        description='the outcomes the step accepts: "success" (default), "any", or FF-A '
        "error names",
    ),
]


# -- messages ----------------------------------------------------------------------------------


def strip(t: Any) -> tuple[Any, dict[str, Any]]:
    """A type info without its metadata, and the metadata's ``extra``."""
    if isinstance(t, mi.Metadata):
        inner, extra = strip(t.type)
        return inner, {**extra, **(t.extra or {})}
    return t, {}


def explain(t: Any, value: Any) -> str:
    """The one-line rule that ``value`` breaks, for a value of type info ``t``."""
    base, extra = strip(t)
    if "explain" in extra:
        return str(extra["explain"](value))
    if "what" in extra:
        return f"must be {extra['what']}, got {show(value)}{did_you_mean(value, _names(base))}"
    if isinstance(base, mi.IntType) and base.ge is not None and base.le is not None:
        return f"must be {base.ge}..{base.le}, got {show(value)}"
    if isinstance(base, mi.LiteralType):
        names = [str(v) for v in base.values]
        return f"must be one of {', '.join(names)}, got {show(value)}{did_you_mean(value, names)}"
    if isinstance(base, mi.BoolType):
        return f"must be true or false, got {show(value)}"
    if isinstance(base, mi.StrType):
        return f"must be a string, got {show(value)}"
    if isinstance(base, mi.UnionType):
        for member in base.types:  # the member of the value's own type words it best
            inner, extra = strip(member)
            if extra and _accepts_type(inner, value):
                return explain(member, value)
    return f"is not valid: {show(value)}"


def _names(t: Any) -> list[str]:
    """The string values a type lists (its Literal members), for did-you-mean hints."""
    if isinstance(t, mi.LiteralType):
        return [v for v in t.values if isinstance(v, str)]
    if isinstance(t, mi.UnionType):
        return [n for m in t.types for n in _names(strip(m)[0])]
    return []


def _accepts_type(t: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return isinstance(t, mi.BoolType)
    if isinstance(value, int):
        return isinstance(t, mi.IntType)
    if isinstance(value, str):
        return isinstance(t, (mi.StrType, mi.LiteralType))
    if isinstance(value, list):
        return isinstance(t, mi.ListType)
    return False
