"""What ``--json`` prints, for each command, as one declarative model: msgspec structs from
which the published JSON Schemas are generated (``ffasim schema run|check|replay|decode``,
committed under ``schemas/``), and against which the tests decode real output, so that the
output, the schema and the docs cannot drift apart.

Every document carries ``schema_version``; a change that removes or retypes a field raises it.
``ffasim run`` builds its output from these structs. ``check``, ``replay`` and ``decode`` build
theirs elsewhere (the check report, the trace renderer, the descriptor dump): their models
here follow that output, and the check's is the one to extend when the report grows (notes,
the strategy's parts): add the field to :class:`CheckReport` or :class:`CheckFinding`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

SCHEMA_VERSION = 1
"""The version of every ``--json`` format (each document's ``schema_version``)."""


class _Doc(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Error(_Doc):
    """A usage or input error (exit status 2): the one line also printed on stderr."""

    error: str
    schema_version: int | UnsetType = UNSET
    type: str | UnsetType = UNSET
    """decode: the descriptor type the bytes were read as."""
    offset: int | UnsetType | None = UNSET
    """decode: where the rule broken is."""
    field: str | UnsetType | None = UNSET
    code: int | UnsetType | None = UNSET
    """decode: the FF-A error a real SPMC returns for it."""


# -- ffasim run --json -------------------------------------------------------------------------


class RunCall(_Doc):
    """One FF-A call of the run, in order; the SPMC calls a guest call caused follow it, one
    level deeper."""

    depth: int
    phase: str
    """``boot``, ``setup``, the thread's name (``d0v1``) or ``finish``."""
    context: str
    caller: str
    """Who made the call: ``d0v0``, ``xen``, ``sp8002``."""
    layer: Literal["hvc", "smc", "sp"]
    function: str
    call: str
    """The call as text: ``FFA_VERSION(1.2)``."""
    args: list[int]
    result: list[int] | None
    answer: str
    """The answer as text: ``FFA_ERROR(DENIED)``."""


class RunStep(_Doc):
    """What one step of the scenario got, and whether its expectations accept it."""

    thread: str
    phase: Literal["setup", "thread", "final"]
    index: int
    op: str
    label: str
    outcome: str
    """``success``, an FF-A error name, ``skipped``, or a description of another answer."""
    expected: list[str]
    function: str | None
    regs: list[int] | None
    ok: bool
    problem: str | None
    note: str


class RunSummary(_Doc):
    calls: int
    guest_calls: int
    steps: int
    expected_errors: int
    unexpected: int
    skipped: int


class RunReport(_Doc):
    """``ffasim run --json``: the run's calls, steps, verdict."""

    schema_version: int
    scenario: str
    variant: str
    hypervisor: Literal["xen", "pkvm"]
    ok: bool
    calls: list[RunCall]
    steps: list[RunStep]
    summary: RunSummary
    problems: list[str]
    """Every rejected answer and every leak (``leak: ...``), one line each."""
    crash: str | None


# -- ffasim check --json -----------------------------------------------------------------------


class CheckFinding(_Doc):
    """One finding, minimised, with the schedule file that replays it."""

    kind: str
    message: str
    threads: list[str]
    calls: list[str]
    step: int
    locks_held: list[list[str]]
    """``[lock, holder]`` pairs at the finding."""
    in_flight: list[str]
    schedule: str | None
    replay: str
    """The command that replays it."""
    preemptions: int
    steps: int
    faults: list[list[Any]]
    """``[step, site, code]`` of each injected fault."""
    also: list[str]
    """Other findings of the same execution."""
    found_by: str
    """The strategy, or the portfolio's part (``dfs (bound 1)``, ``pct``, ``random``), whose
    execution found it."""


class CheckReport(_Doc):
    """``ffasim check --json``: what was explored and what was found."""

    schema_version: int
    scenario: str
    variant: str
    hypervisor: Literal["xen", "pkvm"]
    strategy: str
    seed: int
    faults: list[str]
    max_faults: int
    budget: int | None
    executions: int
    exhausted: bool
    """The strategy explored everything it would (within its preemption bound, if any)."""
    exhaustive: bool
    """Every schedule and every injectable fault was explored."""
    covered_bound: int | None
    """Every schedule with at most this many preemptions was explored."""
    stopped_by: Literal["exhausted", "finding", "budget", "time-limit", "interrupted"]
    elapsed: float
    steps: int
    findings: list[CheckFinding]
    notes: list[str]
    """Accepted consequences of injected faults: not findings (``--strict`` makes them so)."""
    unmatched_faults: list[str]


class Named(_Doc):
    name: str
    description: str
    hypervisor: Literal["xen", "pkvm"]
    """What it runs under: Xen's mediator or pKVM's FF-A proxy."""


class CheckList(_Doc):
    """``ffasim check --list --json``: the built-in scenarios and the variants."""

    scenarios: list[Named]
    variants: list[Named]
    schema_version: int | UnsetType = UNSET


# -- ffasim replay FILE --format json ----------------------------------------------------------


class TraceEvent(_Doc):
    """One event of the execution; calls and returns add ``layer``, ``regs`` and ``text``."""

    step: int
    thread: str
    kind: str
    detail: str
    data: list[Any]
    layer: str | UnsetType = UNSET
    regs: list[int] | UnsetType = UNSET
    text: str | UnsetType = UNSET


class Trace(_Doc):
    """``ffasim replay FILE --format json`` (and ``ffasim run --trace F``): the trace."""

    format: Literal["ffasim-trace"]
    version: int
    events: list[TraceEvent]
    schema_version: int | UnsetType = UNSET


# -- ffasim decode --json ----------------------------------------------------------------------


class DecodedField(_Doc):
    offset: int
    size: int
    name: str
    value: int | str
    meaning: str


class Decoded(_Doc):
    """``ffasim decode --json``: a descriptor field by field."""

    type: str
    title: str
    length: int
    fields: list[DecodedField]
    guessed: bool
    sample: str | UnsetType = UNSET
    schema_version: int | UnsetType = UNSET


class Sample(_Doc):
    name: str
    title: str


class SampleList(_Doc):
    """``ffasim decode --list-samples --json``."""

    samples: list[Sample]
    schema_version: int | UnsetType = UNSET


FORMATS: dict[str, tuple[str, tuple[type[Struct], ...]]] = {
    "run": ("ffasim run --json", (RunReport, Error)),
    "check": ("ffasim check --json", (CheckReport, CheckList, Error)),
    "replay": ("ffasim replay FILE --format json", (Trace,)),
    "decode": ("ffasim decode --json", (Decoded, SampleList, Error)),
}
"""Each ``--json`` output: what prints it, and the documents it may be (one per line)."""


def output_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of output ``name`` (a key of :data:`FORMATS`)."""
    title, types = FORMATS[name]
    refs, defs = msgspec.json.schema_components(types)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **({"anyOf": list(refs)} if len(refs) > 1 else {"$ref": refs[0]["$ref"]}),
        "$defs": defs,
    }


def decode(name: str, text: str) -> Struct:
    """``text`` read as output ``name``: the first of its documents it is (ValidationError
    naming the last reason otherwise)."""
    error: msgspec.ValidationError | None = None
    for t in FORMATS[name][1]:
        try:
            return msgspec.json.decode(text, type=t)
        except msgspec.ValidationError as e:
            error = e
    assert error is not None
    raise error
