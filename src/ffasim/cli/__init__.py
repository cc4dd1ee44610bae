"""The ``ffasim`` command: ``run``, ``check``, ``replay``, ``decode``.

Each sub-command lives in its own module, which registers itself on :data:`app`. Exit status:
0 success (nothing found), 1 a finding or a failed expectation, 2 bad usage or bad input.
"""

from __future__ import annotations

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


def main() -> None:
    app()
