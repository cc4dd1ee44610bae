"""``ffasim decode``: read a descriptor as hex or binary and print it field by field.

Input, in order of precedence: ``--sample [NAME]`` (a descriptor bundled in ``ffasim/data``),
``--file F`` (hex text or raw binary; ``-`` is stdin), the HEX arguments, else stdin. Hex may
contain whitespace, ``0x`` prefixes, ``:``/``_``/``,`` separators and ``#`` comments, or be the
output of ``xxd`` or ``hexdump -C`` (offsets and the ASCII column are skipped, ``*`` lines
repeated). Bad input is one line on stderr (``error: offset 28 (emad_count): ...``) and exit
status 2. Without ``--type``, bytes that no type decodes but that a memory transaction or RX/TX
descriptor would, had they not been cut short, are reported with the rule the cut breaks.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from typing import Annotated

import typer

from ..desc import DescriptorError
from ..desc._dump import TYPES, Dump, dump, guess_type
from . import app

DEFAULT_SAMPLE = "mem_share_v1_1"
_TYPE_LINE = re.compile(r"#\s*type:\s*(\S+)")
_HEX_JUNK = re.compile(r"0[xX]|[\s:_,]")
# "00000010: 0580 2f00 ...  ../." (xxd: groups one space apart, the ASCII column two spaces
# after) and "00000010  05 80 2f 00 ...  |../.|" (hexdump -C: the ASCII column between bars).
# On a line of its own: "*" (repeats of the line above: hexdump, xxd -a) or a bare offset
# (hexdump -C's last line: the length).
_XXD_LINE = re.compile(
    r"([0-9a-fA-F]{4,16}): ((?:(?:[0-9a-fA-F]{2})+ )*(?:[0-9a-fA-F]{2})+)(?:  .*)?"
)
_HEXDUMP_LINE = re.compile(r"([0-9a-fA-F]{4,16})((?:  ?[0-9a-fA-F]{2})+) +\|.*\|")
_OFFSET_LINE = re.compile(r"([0-9a-fA-F]{4,16})")

STRICT_TYPES = ("mem-v1.2", "rxtx", "mem-v1.0")
"""Layouts with enough structure that bytes passing their header are that type: when one of
them runs past the end of the input, the input was cut short (the looser layouts, partition
information, relinquish and messages, decode from almost any bytes)."""
_CUT_SHORT = ("overrun", "does not fit", "shorter than")
"""Words of the decoders' errors that mean the descriptor needs bytes beyond the input."""


class InputError(Exception):
    """Input that is not a descriptor at all: bad hex, unreadable file, unknown sample."""


def _is_dump_line(line: str) -> bool:
    return bool(_XXD_LINE.fullmatch(line) or _HEXDUMP_LINE.fullmatch(line))


def parse_dump(text: str) -> bytes | None:
    """The bytes of an ``xxd`` or ``hexdump -C`` listing, or ``None`` when ``text`` is not
    one; raises InputError for a listing whose offsets do not follow on."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines or not _is_dump_line(lines[0]):
        return None
    out = bytearray()
    last = b""
    repeat = False
    for n, line in enumerate(lines, start=1):
        if line == "*":
            repeat = True
            continue
        m = _XXD_LINE.fullmatch(line) or _HEXDUMP_LINE.fullmatch(line)
        head = m if m is not None else _OFFSET_LINE.fullmatch(line)
        if head is None:
            raise InputError(f"line {n} of the dump is not an xxd or hexdump -C line: {line!r}")
        offset = int(head.group(1), 16)
        while repeat and last and len(out) < offset:
            out += last
        repeat = False
        if len(out) != offset:
            raise InputError(
                f"line {n} of the dump is at offset {offset:#x}, after {len(out):#x} bytes"
            )
        if m is not None:
            last = bytes.fromhex(m.group(2).replace(" ", ""))
            out += last
    return bytes(out)


def parse_hex(text: str) -> bytes:
    """Bytes from hex text or an ``xxd``/``hexdump -C`` listing; ``#`` starts a comment;
    raises InputError naming the bad spot."""
    listing = parse_dump(text)
    if listing is not None:
        return listing
    digits = "".join(_HEX_JUNK.sub("", line.split("#", 1)[0]) for line in text.splitlines())
    bad = re.search(r"[^0-9a-fA-F]", digits)
    if bad:
        raise InputError(f"not hex: {bad.group(0)!r} at hex digit {bad.start()}")
    if len(digits) % 2:
        raise InputError(f"odd number of hex digits ({len(digits)})")
    return bytes.fromhex(digits)


def _looks_like_hex(data: bytes) -> bool:
    """Whether ``data`` is hex text or a dump listing (a broken listing too, so that its error
    is reported rather than its text decoded as binary)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
    if _is_dump_line(next((ln.rstrip() for ln in text.splitlines() if ln.strip()), "")):
        return True
    try:
        parse_hex(text)
    except InputError:
        return False
    return True


def _samples() -> dict[str, str]:
    root = resources.files("ffasim") / "data"
    return {
        p.name.removesuffix(".hex"): p.read_text()
        for p in root.iterdir()
        if p.name.endswith(".hex")
    }


def _load_sample(name: str) -> tuple[bytes, str | None, str]:
    samples = _samples()
    if name not in samples:
        raise InputError(f"no sample {name!r}; samples: {', '.join(sorted(samples))}")
    text = samples[name]
    m = _TYPE_LINE.search(text)
    title = text.splitlines()[0].lstrip("# ").strip()
    return parse_hex(text), (m.group(1) if m else None), title


def _read_input(
    hex_args: list[str], file: str | None, sample: bool
) -> tuple[bytes, str | None, str | None]:
    """(bytes, type named by a sample, sample title)."""
    if sample:
        if file is not None:
            raise InputError("give either --sample or --file, not both")
        if len(hex_args) > 1:
            raise InputError("--sample takes one sample name")
        return _load_sample(hex_args[0] if hex_args else DEFAULT_SAMPLE)
    if file is not None:
        if hex_args:
            raise InputError("give either --file or hex arguments, not both")
        try:
            if file == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(file, "rb") as f:
                    raw = f.read()
        except OSError as e:
            raise InputError(f"cannot read {file}: {e.strerror or e}") from None
        text_type = None
        if _looks_like_hex(raw):
            text = raw.decode("ascii")
            m = _TYPE_LINE.search(text)
            text_type = m.group(1) if m else None
            return parse_hex(text), text_type, None
        return raw, None, None
    if hex_args:
        return parse_hex(" ".join(hex_args)), None, None
    if sys.stdin.isatty():
        raise InputError("no input: give hex, --file F, --sample, or pipe hex into stdin")
    raw = sys.stdin.buffer.read()
    return (parse_hex(raw.decode("ascii", "replace")) if _looks_like_hex(raw) else raw), None, None


def cut_short(data: bytes) -> tuple[str, DescriptorError] | None:
    """``(type, error)`` when ``data`` is a strict layout cut short: its header decodes (the
    error is past offset 0) and the rule it breaks is running past the end. The type that got
    furthest wins; ``None`` when no strict layout reads so."""
    best: tuple[str, DescriptorError] | None = None
    for name in STRICT_TYPES:
        try:
            dump(data, name)
        except DescriptorError as e:
            deeper = best is None or (e.offset or 0) > (best[1].offset or 0)
            if e.offset and any(w in e.message for w in _CUT_SHORT) and deeper:
                best = (name, e)
        else:
            return None
    if best is not None and best[0] == "mem-v1.2" and data[24:28] != b"\x20\0\0\0":
        return "mem", best[1]  # 16-byte EMADs: v1.1 and v1.2 both write them (guess_type)
    return best


def _fail(message: str, as_json: bool, extra: dict[str, object] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps({"error": message, **(extra or {})}))
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def decode(
    hex_input: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="HEX",
            help="Descriptor bytes in hex (or, with --sample, a sample name).",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help="Read hex text or raw binary from F ('-' = stdin).",
            metavar="F",
        ),
    ] = None,
    type_name: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            help=f"Descriptor type: {', '.join(TYPES)}. Default: guess.",
            show_default=False,
            metavar="T",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for machines.", metavar="")
    ] = False,
    sample: Annotated[
        bool,
        typer.Option(
            "--sample",
            help=f"Decode a bundled sample: HEX names it (default {DEFAULT_SAMPLE}, the "
            "golden vector of a v1.1 MEM_SHARE).",
            metavar="",
        ),
    ] = False,
    list_samples: Annotated[
        bool, typer.Option("--list-samples", help="List the bundled samples and exit.", metavar="")
    ] = False,
) -> None:
    """Decode an FF-A descriptor and print it field by field: offset, size, value, meaning.

    A broken rule is one line naming its offset and the FF-A error an SPMC returns (exit 2).
    """
    if list_samples:
        rows = [(n, t.splitlines()[0].lstrip("# ").strip()) for n, t in sorted(_samples().items())]
        if as_json:
            typer.echo(json.dumps({"samples": [{"name": n, "title": t} for n, t in rows]}))
            return
        for name, heading in rows:
            typer.echo(f"{name:24} {heading}")
        return
    try:
        data, sample_type, title = _read_input(list(hex_input or []), file, sample)
    except InputError as e:
        _fail(str(e), as_json)
        return
    if not data:
        _fail("no input: the descriptor is empty", as_json)
    if type_name is not None and type_name not in TYPES:
        _fail(f"unknown --type {type_name!r}; choose one of: {', '.join(TYPES)}", as_json)
    chosen = type_name or sample_type
    guessed = False
    if chosen is None:
        chosen = guess_type(data)
        guessed = True
        cut = cut_short(data) if chosen not in STRICT_TYPES else None
        if cut is not None:
            cut_type, err = cut
            _fail(
                f"{len(data)} bytes look like {cut_type} cut short: {err}; "
                "name another type with --type",
                as_json,
                {"type": cut_type, "offset": err.offset, "field": err.field, "code": err.code},
            )
        if chosen is None:
            _fail(
                f"{len(data)} byte{'s' if len(data) != 1 else ''} decode"
                f"{'s' if len(data) == 1 else ''} as no known descriptor; name one with --type",
                as_json,
            )
            return
    try:
        d: Dump = dump(data, chosen)
    except DescriptorError as e:
        _fail(
            f"{chosen}: {e}",
            as_json,
            {"type": chosen, "offset": e.offset, "field": e.field, "code": e.code},
        )
        return
    if as_json:
        out = d.to_json()
        out["guessed"] = guessed
        if title:
            out["sample"] = title
        typer.echo(json.dumps(out))
        return
    if title:
        typer.echo(f"# {title}")
    if guessed:
        typer.echo(f"# type guessed as {chosen} (use --type to choose another)")
    typer.echo(d.render())
