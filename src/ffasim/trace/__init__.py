"""Renderers of a checker execution trace: text, JSON, Mermaid and Chrome-trace (Perfetto).

A trace is a list of events, each with a ``step`` (the scheduler's step counter), the ``thread``
(context) it happened in, a ``kind`` (``"call"``, ``"ret"``, ``"lock"``, ``"unlock"``, ``"block"``,
``"wake"``, ``"switch"``, ``"fault"``, ``"log"``, ``"violation"``, ``"alloc"``, ``"free"``,
``"mem"``, ``"thread-start"``, ``"thread-end"``, ``"finding"``), a one-line ``detail`` and,
for calls and returns, ``data = (layer, regs)``. The checker's ``TraceEvent`` is one; anything
with these attributes renders. The renderers are pure functions from a trace to text, so they
work on a replayed execution or on a JSON trace loaded back (:func:`from_json`).

    from ffasim.trace import render
    print(render(result.trace, "mermaid"))

Front ends that write a rendering to a file pass it through :func:`for_output`, which fences
a Mermaid diagram for a Markdown file so that it renders as is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ._common import Event as Event
from ._common import event_text as event_text
from .chrome import render_chrome as render_chrome
from .jsonfmt import from_json as from_json
from .jsonfmt import render_json as render_json
from .mermaid import fence as fence
from .mermaid import render_mermaid as render_mermaid
from .text import render_text as render_text

FORMATS: dict[str, Callable[[Sequence[Event]], str]] = {
    "text": render_text,
    "json": render_json,
    "mermaid": render_mermaid,
    "chrome": render_chrome,
}
"""Every output format by name (the values of ``ffasim replay --format``)."""


def render(trace: Sequence[Event], fmt: str = "text") -> str:
    """``trace`` in format ``fmt`` (a key of :data:`FORMATS`); ValueError for another name."""
    try:
        fn = FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown trace format '{fmt}' (expected one of: {', '.join(FORMATS)})"
        ) from None
    return fn(trace)


MARKDOWN_SUFFIXES = (".md", ".markdown")
"""File names that :func:`for_output` treats as Markdown."""


def for_output(text: str, fmt: str, path: str | os.PathLike[str] | None) -> str:
    """``text``, a rendering in format ``fmt``, as it should be written to ``path``: a
    Mermaid diagram bound for a Markdown file (``*.md``) goes in a fenced ``mermaid`` block,
    which Markdown viewers render as a diagram; anything else (stdout: ``None``) is unchanged."""
    markdown = path is not None and os.fspath(path).lower().endswith(MARKDOWN_SUFFIXES)
    return fence(text) if fmt == "mermaid" and markdown else text
