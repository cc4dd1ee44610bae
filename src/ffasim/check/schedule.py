"""Decisions, schedules and schedule files: what makes an execution reproducible.

An execution is fully determined by the program and the list of choices made at its decision
points (shuttle's ``Schedule``, loom's ``Path``): which thread runs when more than one may, and
which fault (if any) is injected at an eligible fault site. Only points with more than one option
are decisions; everything else is deterministic. A :class:`Schedule` adds what the user needs to
run it again (the ffasim version, the scenario and variant, the strategy and seed that found it,
the fault configuration) and is saved as JSON to a new file, never overwriting one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEDULE_FORMAT = 1
"""Version of the schedule file format; bumped on incompatible changes."""

THREAD = "thread"
FAULT = "fault"


@dataclass(frozen=True, slots=True)
class Decision:
    """One choice of an execution.

    For a ``"thread"`` decision, ``alternatives`` are the runnable threads (in thread order) and
    ``chosen`` the one that ran; ``current`` is the thread that reached the scheduling point, or
    ``""`` when it could not continue (blocked, ended, not started), so choosing another thread
    while ``current`` is runnable is a preemption. For a ``"fault"`` decision, ``site`` is the
    fault site, ``alternatives`` are the options (``0`` = no fault, then the injectable codes)
    and ``chosen`` the index of the option taken.
    """

    kind: str
    chosen: str | int
    alternatives: tuple[str | int, ...]
    site: str = ""
    current: str = ""

    @property
    def preemption(self) -> bool:
        return (
            self.kind == THREAD
            and self.current != ""
            and self.chosen != self.current
            and self.current in self.alternatives
        )

    def describe(self) -> str:
        if self.kind == THREAD:
            what = "preempt" if self.preemption else "run"
            return f"{what} {self.chosen} (of {', '.join(map(str, self.alternatives))})"
        code = self.alternatives[int(self.chosen)]
        return f"fault {self.site}: " + ("none" if self.chosen == 0 else f"inject {code}")

    def to_json(self) -> list[Any]:
        return [self.kind, self.chosen, list(self.alternatives), self.site, self.current]

    @classmethod
    def from_json(cls, raw: object) -> Decision:
        if not isinstance(raw, list) or len(raw) != 5:
            raise ScheduleError(
                f"bad decision {raw!r}: expected [kind, chosen, alternatives, site, current]"
            )
        kind, chosen, alts, site, current = raw
        if kind not in (THREAD, FAULT) or not isinstance(alts, list):
            raise ScheduleError(f"bad decision {raw!r}")
        if not isinstance(site, str) or not isinstance(current, str):
            raise ScheduleError(f"bad decision {raw!r}")
        if kind == THREAD and chosen not in alts:
            raise ScheduleError(f"bad decision {raw!r}: {chosen!r} is not one of the alternatives")
        if kind == FAULT and not (isinstance(chosen, int) and 0 <= chosen < len(alts)):
            raise ScheduleError(f"bad decision {raw!r}: option {chosen!r} out of range")
        return cls(kind, chosen, tuple(alts), site, current)


class ScheduleError(ValueError):
    """A schedule file that cannot be read; ``str()`` is one line."""


class ReplayDivergence(Exception):
    """A replayed execution left its schedule: the program or the model changed since the
    schedule was recorded, or the schedule was edited.

    ``step`` is the scheduling step where it happened, ``index`` the decision's index in the
    schedule, ``expected`` what the schedule says and ``possible`` what the execution offered.
    """

    def __init__(self, step: int, index: int, expected: str, possible: str) -> None:
        super().__init__(
            f"replay diverged at step {step} (decision {index}): "
            f"schedule expects {expected}, execution offers {possible}"
        )
        self.step = step
        self.index = index
        self.expected = expected
        self.possible = possible


@dataclass
class Schedule:
    """A replayable record of one execution and how it was found."""

    decisions: list[Decision]
    scenario: str = ""
    variant: str = ""
    hypervisor: str = ""
    """The hypervisor the check put in front of the SPMC; empty: the scenario's own."""
    strategy: str = ""
    seed: int | None = None
    faults: list[str] = field(default_factory=list)
    max_faults: int = 1
    finding: str = ""
    version: str = ""

    def __post_init__(self) -> None:
        if not self.version:
            self.version = _ffasim_version()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SCHEDULE_FORMAT,
            "ffasim": self.version,
            "scenario": self.scenario,
            "variant": self.variant,
            **({"hypervisor": self.hypervisor} if self.hypervisor else {}),
            "strategy": self.strategy,
            "seed": self.seed,
            "faults": list(self.faults),
            "max_faults": self.max_faults,
            "finding": self.finding,
            "decisions": [d.to_json() for d in self.decisions],
        }

    @classmethod
    def from_json(cls, raw: object) -> Schedule:
        if not isinstance(raw, dict):
            raise ScheduleError("not a schedule: the top level is not a JSON object")
        if raw.get("format") != SCHEDULE_FORMAT:
            raise ScheduleError(
                f"unsupported schedule format {raw.get('format')!r} (expected {SCHEDULE_FORMAT})"
            )
        decisions = raw.get("decisions")
        if not isinstance(decisions, list):
            raise ScheduleError("not a schedule: 'decisions' is missing or not a list")
        faults = raw.get("faults", [])
        seed = raw.get("seed")
        max_faults = raw.get("max_faults", 1)
        if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
            raise ScheduleError("bad schedule: 'faults' must be a list of strings")
        if seed is not None and not isinstance(seed, int):
            raise ScheduleError("bad schedule: 'seed' must be an integer or null")
        if not isinstance(max_faults, int) or max_faults < 0:
            raise ScheduleError("bad schedule: 'max_faults' must be a non-negative integer")
        strs = {}
        for k in ("scenario", "variant", "hypervisor", "strategy", "finding", "ffasim"):
            v = raw.get(k, "")
            if not isinstance(v, str):
                raise ScheduleError(f"bad schedule: {k!r} must be a string")
            strs[k] = v
        return cls(
            decisions=[Decision.from_json(d) for d in decisions],
            scenario=strs["scenario"],
            variant=strs["variant"],
            hypervisor=strs["hypervisor"],
            strategy=strs["strategy"],
            seed=seed,
            faults=list(faults),
            max_faults=max_faults,
            finding=strs["finding"],
            version=strs["ffasim"] or "unknown",
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to ``path``, which must not exist (parallel runs never overwrite each other's
        schedules); returns the path. Raises ``FileExistsError`` if it does."""
        p = Path(path)
        text = json.dumps(self.to_json(), indent=1) + "\n"
        with open(p, "x", encoding="utf-8") as f:
            f.write(text)
        return p

    def save_new(self, directory: str | os.PathLike[str], stem: str) -> Path:
        """Save under ``directory`` as ``<stem>.json``, or ``<stem>-2.json``... if taken."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:
            p = d / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
            try:
                return self.save(p)
            except FileExistsError:
                n += 1

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schedule:
        """Read a schedule file; ``ScheduleError`` (one line) when it is not one."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ScheduleError(f"cannot read {path}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise ScheduleError(
                f"{path}: not a schedule file (byte {e.start} is not UTF-8 text)"
            ) from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            # json's messages may end in "at" ("Unterminated string starting at").
            where = f"line {e.lineno}, column {e.colno}"
            what = f"{e.msg} {where}" if e.msg.endswith(" at") else f"{e.msg} at {where}"
            raise ScheduleError(f"{path}: not JSON: {what}") from None
        return cls.from_json(raw)


def _ffasim_version() -> str:
    try:
        from importlib.metadata import version

        return version("ffasim")
    except Exception:
        return "unknown"
