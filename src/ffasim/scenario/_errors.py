"""The one error a scenario loader raises."""

from __future__ import annotations


class ScenarioError(Exception):
    """A scenario that cannot be loaded or built. ``str()`` is one line for the user:
    ``file:line: where: the rule broken`` (``file`` and ``line`` when known)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: tuple[str | int, ...] | None = None,
        rule: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.problem = message
        self.path = path
        """Where in the scenario the problem is, when a description was validated."""
        self.rule = rule if rule is not None else message
        """The rule broken, without where (``must be 1..8, got 9``)."""
        if file is not None and line is not None:
            text = f"{file}:{line}: {message}"
        elif file is not None:
            text = f"{file}: {message}"
        else:
            text = message
        super().__init__(text)
