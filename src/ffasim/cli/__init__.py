"""The ``ffasim`` command: ``run``, ``check``, ``replay``, ``decode``.

Each sub-command lives in its own module, which registers itself on :data:`app`. Exit status:
0 success (nothing found), 1 a finding or a failed expectation, 2 bad usage or bad input.
"""

from __future__ import annotations

import inspect

import typer

app = typer.Typer(
    name="ffasim",
    help="Arm FF-A under Xen's mediator: run scenarios, check interleavings and faults, decode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Arm FF-A under Xen's mediator: run scenarios, check interleavings and faults, decode."""


from . import _check, _decode, _run  # noqa: E402,F401  (each registers its commands)


def _reflow(doc: str) -> str:
    """A docstring as help text: its paragraphs each on one line, so that the help formatter,
    which keeps single line breaks, wraps them to the terminal instead of at the source's
    column 100."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


# Help lists the commands in the order one uses them (and README.md describes them), not in
# the order their modules happen to be imported.
_ORDER = ("run", "check", "replay", "decode")


def _position(info: typer.models.CommandInfo) -> int:
    name = info.name or getattr(info.callback, "__name__", "")
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


app.registered_commands.sort(key=_position)
for _info in app.registered_commands:
    if _info.help is None and _info.callback is not None and _info.callback.__doc__:
        _info.help = _reflow(_info.callback.__doc__)


def main() -> None:
    app()
