"""Did-you-mean hints for names a user typed: ``unknown variant 'seed-v2' (did you mean
'seed-v1'?)``.

Every layer names things a user may misspell (FF-A function names, variants, strategies,
scenario keys and operations), so this sits below them all and imports nothing of ffasim.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def closest(word: Any, choices: Iterable[Any]) -> str | None:
    """The choice closest to ``word`` (case-insensitively), or None when none is close: a
    typo or a near miss, not any name at all."""
    if not isinstance(word, str) or not word:
        return None
    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(str(c).lower(), str(c))
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return by_lower[word.lower()]  # only the case differs
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def did_you_mean(word: Any, choices: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` to append to a message about ``word``, or ``""``."""
    best = closest(word, choices)
    return f" (did you mean {best!r}?)" if best is not None and best != word else ""


def unknown(what: str, word: Any, choices: Iterable[Any], *, listed: str = "known") -> str:
    """``unknown variant 'seed-v2' (known: reference, seed-v1) (did you mean 'seed-v1'?)``: the
    one-line message for a name that is not among ``choices``."""
    names = [str(c) for c in choices]
    shown = f"'{word}'" if isinstance(word, str) else repr(word)
    return f"unknown {what} {shown} ({listed}: {', '.join(names)}){did_you_mean(word, names)}"
