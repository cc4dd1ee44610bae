"""The ``ffasim`` command: ``run``, ``check``, ``replay``, ``decode``, ``schema``.

Each sub-command lives in its own module, which registers itself on :data:`app`. Exit status:
0 success (nothing found), 1 a finding or a failed expectation, 2 bad usage or bad input.

Start-up is kept cheap: a command module imports the model, the checker or ``rich`` inside
the command that needs them, never at the top, so that ``ffasim --help`` loads none of them
(``benchmarks/bench_startup.py`` measures it; ``tests/cli/test_startup.py`` checks which
modules a help screen imports). Help is click's plain formatting: typer's rich panels would
import and run ``rich`` for every ``--help``, which costs more than the rest of the start.
"""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from .. import __version__

app = typer.Typer(
    name="ffasim",
    help="Arm FF-A under Xen's mediator: run scenarios, check interleavings and faults, decode.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # -h beside --help, in every command; help as wide as the terminal (click caps it at 80).
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 1000},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ffasim {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print ffasim's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Arm FF-A under Xen's mediator: run scenarios, check interleavings and faults, decode.

    Shell completion: 'ffasim --install-completion' (bash, zsh, fish, PowerShell), then open
    a new shell.
    """


from . import _check, _decode, _hunt, _run, _schema  # noqa: E402,F401  (each registers its commands)


def _reflow(doc: str) -> str:
    """A docstring as help text: its paragraphs each on one line, so that the help formatter,
    which keeps single line breaks, wraps them to the terminal instead of at the source's
    column 100."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


# Help lists the commands in the order one uses them (and README.md describes them), not in
# the order their modules happen to be imported.
_ORDER = ("run", "check", "hunt", "replay", "decode", "schema")


def _position(info: typer.models.CommandInfo) -> int:
    name = info.name or getattr(info.callback, "__name__", "")
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


app.registered_commands.sort(key=_position)
for _info in app.registered_commands:
    if _info.help is None and _info.callback is not None and _info.callback.__doc__:
        _info.help = _reflow(_info.callback.__doc__)


def main() -> None:
    app()
