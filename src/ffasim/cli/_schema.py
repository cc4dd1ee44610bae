"""``ffasim schema NAME``: the JSON Schema of scenario files, or of a command's ``--json``.

The schemas are generated from the declarative models that also validate (scenario files:
:mod:`ffasim.scenario._format`) or describe (outputs: :mod:`ffasim.cli._outputs`) the data, and
the same text is committed under ``schemas/`` (a test keeps the two equal), where an editor
can find it: a ``#:schema`` line at the top of a scenario file, or a ``taplo.toml``, points
Taplo / Even Better TOML at ``schemas/scenario.schema.json`` (docs/scenarios.md).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from . import app

SCHEMAS: tuple[str, ...] = ("scenario", "run", "check", "replay", "decode")


def schema_document(name: str) -> dict[str, Any]:
    """The JSON Schema named ``name`` (one of :data:`SCHEMAS`)."""
    if name == "scenario":
        from ..scenario._format import scenario_schema

        return scenario_schema()
    from ._outputs import output_schema

    return output_schema(name)


def schema_text(name: str) -> str:
    """:func:`schema_document` as the text ``ffasim schema`` prints and ``schemas/`` holds."""
    return json.dumps(schema_document(name), indent=2, ensure_ascii=False) + "\n"


def _complete(incomplete: str) -> list[str]:
    return [n for n in SCHEMAS if n.startswith(incomplete)]


@app.command()
def schema(
    name: Annotated[
        str,
        typer.Argument(
            help=f"Which: {', '.join(SCHEMAS)}.",
            metavar="NAME",
            autocompletion=_complete,
        ),
    ],
) -> None:
    """Print the JSON Schema of scenario files, or of a command's --json output.

    'scenario' is the schema editors use to check and complete scenario files (Taplo, Even
    Better TOML: see docs/scenarios.md); 'run', 'check', 'replay' and 'decode' describe what
    those commands print as JSON, each document carrying a schema_version.
    """
    if name not in SCHEMAS:
        from .._suggest import unknown

        typer.echo(f"error: {unknown('schema', name, SCHEMAS, listed='expected one of')}", err=True)
        raise typer.Exit(2)
    typer.echo(schema_text(name), nl=False)
