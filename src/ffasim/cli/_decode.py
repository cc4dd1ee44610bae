"""``ffasim decode``: read a descriptor as hex or binary and print it field by field.

Input, in order of precedence: ``--sample [NAME]`` (a descriptor bundled in ``ffasim/data``),
``--file F`` (hex text or raw binary; ``-`` is stdin), the HEX arguments, else stdin. Hex may
contain whitespace, ``0x`` prefixes, ``:``/``_``/``,`` separators and ``#`` comments.
Bad input is one line on stderr (``error: offset 28 (emad_count): ...``) and exit status 2.
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


class InputError(Exception):
    """Input that is not a descriptor at all: bad hex, unreadable file, unknown sample."""


def parse_hex(text: str) -> bytes:
    """Bytes from hex text; ``#`` starts a comment; raises InputError naming the bad spot."""
    digits = "".join(_HEX_JUNK.sub("", line.split("#", 1)[0]) for line in text.splitlines())
    bad = re.search(r"[^0-9a-fA-F]", digits)
    if bad:
        raise InputError(f"not hex: {bad.group(0)!r} at hex digit {bad.start()}")
    if len(digits) % 2:
        raise InputError(f"odd number of hex digits ({len(digits)})")
    return bytes.fromhex(digits)


def _looks_like_hex(data: bytes) -> bool:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
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
