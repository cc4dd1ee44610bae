"""pytest plugin: test FF-A code against the model, and check scenarios from inside a test.

Installed with ffasim and loaded by pytest through the ``pytest11`` entry point ``ffasim``
(``-p no:ffasim`` turns it off). It adds:

- ``--ffasim-variant NAME``: the mediator variant of the fixtures and of the checks (default
  ``reference``; a check of a scenario that names its own variant keeps it unless the option
  is given), so that one suite runs against every variant;
- ``--ffasim-replay FILE``: ``ffasim_check`` replays that schedule instead of exploring, and
  fails the test with the trace (how a finding of a scenario object is replayed);
- fixture ``ffasim_system``: a fresh ``ffasim.System``. At teardown every VM still alive is
  destroyed, Xen's timers and tasklets run until nothing is pending, and the test fails with
  every line of ``system.audit()``: a test that leaks a share or a lock fails;
- fixture ``ffasim_vm``: a two-vCPU, 64-page VM of that system which negotiated FF-A v1.2 and
  mapped its RX (RAM page 0) and TX (page 1) buffers, as a guest driver does at probe;
- fixture ``ffasim_check``: ``ffasim_check(target, ...)`` checks a scenario (a ``Scenario``
  object, a built-in name or a scenario file) like ``ffasim check`` and fails the test with
  each finding and the command that replays it, or, with ``expect="assertion"``, unless it
  finds that kind of finding (loom's ``model``, shuttle's ``check``).

The plugin imports the model only when a fixture is used: loading it costs nothing to test
suites that do not use it. Details and examples: ``docs/testing.md``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .api import Report
    from .scenario import Scenario
    from .system import VM, System

DEFAULT_VARIANT = "reference"
MAX_DRAIN_ROUNDS = 32
"""Rounds of Xen's timers (one virtual second each) and tasklets run at teardown, as a
scenario's teardown does: a partition answering RETRY forever would otherwise never let go."""

SHIM_DIR = "ffasim-scenarios"
"""Where the files that stand for scenario objects go, under pytest's base temporary directory
(set by the first ``ffasim_check`` call: :func:`_check_scenario` keeps the signature of
``ffasim.check_scenario``)."""
_shim_root: list[Path] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ffasim", "ffasim: FF-A model and checker")
    group.addoption(
        "--ffasim-variant",
        metavar="NAME",
        default=None,
        help="mediator variant of ffasim_system, ffasim_vm and ffasim_check "
        f"(default: {DEFAULT_VARIANT}).",
    )
    group.addoption(
        "--ffasim-replay",
        metavar="FILE",
        default=None,
        help="ffasim_check replays this schedule file and fails with its trace.",
    )


def pytest_configure(config: pytest.Config) -> None:
    _shim_root.clear()  # a session's own temporary directory (pytester runs sessions in one)
    variant = config.getoption("ffasim_variant")
    if variant is not None:
        from .xen import variants

        known = list(variants.names())
        if variant not in known:
            raise pytest.UsageError(
                f"--ffasim-variant: unknown variant '{variant}' (known: {', '.join(known)})"
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    _shim_root.clear()


# -- ffasim_system and ffasim_vm --------------------------------------------------------------


def drain_and_audit(system: System) -> list[str]:
    """Destroy every VM still alive, run Xen's timers and tasklets until nothing is pending,
    and return ``system.audit()``: what the system left behind."""
    for vm in list(system.vms):
        system.destroy_vm(vm)
    for _ in range(MAX_DRAIN_ROUNDS):
        if not system.run_timers(advance=1.0):
            break
    for _ in range(MAX_DRAIN_ROUNDS):
        if not system.run_tasklets():
            break
    return system.audit()


@pytest.fixture
def ffasim_system(request: pytest.FixtureRequest) -> Iterator[System]:
    """A fresh ``ffasim.System`` of the ``--ffasim-variant`` variant, with the default
    partitions; the test fails at teardown if the system leaves anything behind."""
    from . import System

    system = System(variant=request.config.getoption("ffasim_variant") or DEFAULT_VARIANT)
    yield system
    problems = drain_and_audit(system)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        pytest.fail(f"ffasim_system left things behind at teardown:\n{lines}", pytrace=False)


@pytest.fixture
def ffasim_vm(ffasim_system: System) -> VM:
    """A VM of ``ffasim_system`` (2 vCPUs, 64 pages) that negotiated FF-A v1.2 and mapped
    RX at RAM page 0 and TX at page 1 (``vm.ipa(0)``, ``vm.ipa(1)``)."""
    from .guest import FfaDriver

    vm = ffasim_system.create_vm(vcpus=2, pages=64)
    driver = FfaDriver(vm)
    driver.negotiate()
    driver.map_buffers(rx_page=0, tx_page=1)
    return vm


# -- ffasim_check ---------------------------------------------------------------------------------


_registered: dict[str, Scenario] = {}
"""Scenario objects under check, by the path of the file that stands for them."""


def scenario_for(path: str) -> Scenario:
    """The scenario object that the generated scenario file ``path`` stands for."""
    from .scenario import ScenarioError

    scenario = _registered.get(str(Path(path).resolve()))
    if scenario is None:
        raise ScenarioError(
            "this file stands for a Python scenario object of a pytest session; replay it "
            "with the test that checked it: pytest TEST --ffasim-replay SCHEDULE"
        )
    return scenario


def _scenario_file(scenario: Scenario) -> Path:
    """A ``.py`` scenario file that loads ``scenario`` in this process: the checker loads
    scenarios by name or path. It is named after the scenario, in a directory of its own."""
    directory = _shim_root[0]
    directory.mkdir(parents=True, exist_ok=True)
    n = sum(1 for _ in directory.iterdir()) + 1
    path = (directory / str(n) / f"{scenario.name}.py").resolve()
    path.parent.mkdir()
    path.write_text(
        f'"""Stands for the scenario object {scenario.name!r} checked by ffasim\'s pytest '
        'plugin."""\n\n'
        "from ffasim.pytest_plugin import scenario_for\n\n"
        "SCENARIO = scenario_for(__file__)\n"
    )
    _registered[str(path)] = scenario
    return path


def _check_scenario(
    target: Scenario | str | os.PathLike[str],
    *,
    variant: str = DEFAULT_VARIANT,
    strategy: str | None = None,
    budget: int | None = None,
    time_limit: float | None = None,
    faults: Sequence[str] = (),
    preemption_bound: int | None = None,
    out: str | os.PathLike[str] | None = None,
) -> Report:
    """``ffasim.check_scenario``, with plain DFS unless told (a test wants "exhaustive"), and
    a scenario object checked through a file under pytest's temporary directory, so that
    ``--ffasim-replay`` finds it again in a later session."""
    from .api import check_scenario
    from .scenario import Scenario

    spec = str(_scenario_file(target)) if isinstance(target, Scenario) else target
    return check_scenario(
        spec,
        variant=variant,
        strategy=strategy or "dfs",
        budget=budget,
        time_limit=time_limit,
        faults=faults,
        preemption_bound=preemption_bound,
        out=out,
    )


def _name_of(target: Scenario | str | os.PathLike[str]) -> str:
    return os.fspath(target) if isinstance(target, str | os.PathLike) else target.name


class FfasimCheck:
    """The ``ffasim_check`` fixture: call it to check a scenario inside a test."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __call__(
        self,
        target: Scenario | str | os.PathLike[str],
        *,
        variant: str | None = None,
        expect: str | Collection[str] | None = None,
        strategy: str | None = None,
        budget: int | None = None,
        time_limit: float | None = None,
        faults: Sequence[str] = (),
        preemption_bound: int | None = None,
        out: str | os.PathLike[str] | None = None,
    ) -> Report:
        """Check ``target`` (a ``ffasim.scenario.Scenario``, a built-in scenario name or a
        ``.toml``/``.py`` path) as ``ffasim check`` does, with the same options and defaults;
        return the report.

        ``variant``: default ``--ffasim-variant``, else the scenario's own, else
        ``reference``. ``expect``: ``None`` fails the test on any finding; a kind
        (``"assertion"``) or several fail it unless the check finds one of them (and on a
        finding of another kind). Failures show each finding, its schedule file (under
        ``out``, default the test's ``tmp_path``) and the command that replays it.
        """
        config = self._request.config
        resolved = variant or config.getoption("ffasim_variant") or _own_variant(target)
        if not _shim_root:
            factory = self._request.getfixturevalue("tmp_path_factory")
            _shim_root.append(factory.getbasetemp() / SHIM_DIR)
        replay = config.getoption("ffasim_replay")
        if replay is not None and _replays(replay, target):
            return _replay(replay, target)
        if out is None:
            out = self._request.getfixturevalue("tmp_path") / "ffasim-findings"
        report = _check_scenario(
            target,
            variant=resolved,
            strategy=strategy,
            budget=budget,
            time_limit=time_limit,
            faults=faults,
            preemption_bound=preemption_bound,
            out=out,
        )
        kinds = {expect} if isinstance(expect, str) else set(expect or ())
        head = f"ffasim check of {_name_of(target)} on {resolved}"
        if not kinds and report.findings:
            pytest.fail(self._describe(head, report, target), pytrace=False)
        if kinds and not any(f.kind in kinds for f in report.findings):
            head += f": expected a finding of kind {' or '.join(sorted(kinds))}"
            pytest.fail(self._describe(head, report, target), pytrace=False)
        return report

    def _describe(self, head: str, report: Report, target: Any) -> str:
        """The failure message: what was found in how many executions, each finding with its
        schedule and replay command, the notes."""
        n = len(report.findings)
        runs = f"{report.executions} execution{'s' if report.executions != 1 else ''}"
        if n:
            found = f"{n} finding{'s' if n != 1 else ''}"
        else:
            found = f"nothing found ({'exhaustive' if report.exhausted else 'not exhaustive'})"
        lines = [f"{head}: {found} in {runs}"]
        for f in report.findings:
            lines += ["", f"{f.kind}: {f.message}"]
            if f.schedule is not None:
                lines.append(f"  schedule:  {f.schedule}")
                lines.append(f"  replay:    {self._replay_command(f.schedule, target)}")
        lines += [f"note: {note}" for note in report.notes]
        return "\n".join(lines)

    def _replay_command(self, schedule: Path, target: Any) -> str:
        if isinstance(target, str | os.PathLike):
            return f"ffasim replay {shlex.quote(str(schedule))}"
        # A scenario object exists only in the test: the test itself replays it.
        node = shlex.quote(self._request.node.nodeid)
        return f"pytest {node} --ffasim-replay {shlex.quote(str(schedule))}"


def _own_variant(target: Scenario | str | os.PathLike[str]) -> str:
    """The variant ``target`` names for itself, else ``reference``."""
    from .scenario import Scenario, load

    scenario = target if isinstance(target, Scenario) else load(os.fspath(target))
    return scenario.variant or DEFAULT_VARIANT


def _schedule_scenario(path: str) -> str:
    """What the schedule file ``path`` names as its scenario."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise pytest.UsageError(f"--ffasim-replay: cannot read {path}: {e}") from None
    scenario = raw.get("scenario") if isinstance(raw, dict) else None
    if not isinstance(scenario, str):
        raise pytest.UsageError(f"--ffasim-replay: {path} is not an ffasim schedule file")
    return scenario


def _replays(path: str, target: Any) -> bool:
    """Whether the schedule file ``path`` is one of ``target``: a scenario object's (through
    the file that stood for it, named after the scenario), a built-in's or a file's."""
    recorded = _schedule_scenario(path)
    if not isinstance(target, str | os.PathLike):
        return Path(recorded).parent.parent.name == SHIM_DIR and Path(recorded).stem == target.name
    spec = os.fspath(target)
    if Path(spec).is_file():
        return Path(recorded) == Path(spec).resolve()
    return recorded == spec


def _replay(path: str, target: Any) -> Report:
    """Replay the schedule file ``path`` of ``target`` and fail the test with the trace if its
    finding reproduces; an empty report if it does not."""
    from .api import Report
    from .scenario import replay_file
    from .trace import render_text

    run = path
    if not isinstance(target, str | os.PathLike):  # point the schedule at this session's file
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        raw["scenario"] = str(_scenario_file(target))
        run = str(_shim_root[0] / f"replay-{len(_registered)}.json")
        Path(run).write_text(json.dumps(raw))
    result, trace = replay_file(run)
    if not result.findings:
        return Report(executions=1)
    start = next((i for i, ev in enumerate(trace) if ev.kind == "thread-start"), 0)
    shown = [ev for i, ev in enumerate(trace) if i >= start or ev.kind == "finding"]
    found = "\n".join(f"{f.kind}: {f.message}" for f in result.findings)
    pytest.fail(
        f"ffasim replay of {path}: {len(trace)} events, from the first thread on:\n"
        f"{render_text(shown)}{found}",
        pytrace=False,
    )


@pytest.fixture
def ffasim_check(request: pytest.FixtureRequest) -> FfasimCheck:
    """``ffasim_check(target, *, variant=None, expect=None, strategy=None, budget=None,
    time_limit=None, faults=(), preemption_bound=None, out=None)``: check a scenario inside
    the test, failing it on a finding (or, with ``expect``, without one)."""
    return FfasimCheck(request)
