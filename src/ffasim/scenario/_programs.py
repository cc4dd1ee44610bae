"""pKVM's checker programs (``ffasim.pkvm.programs``) as built-in scenarios: ``pkvm-d10-unaligned``
and the rest, so that ``ffasim run``, ``check`` and ``replay`` take them by name as they take
a scenario file.

A program is Python that builds a pKVM system with the SPMC options its defect needs and
drives the host through descriptors written byte by byte, which a scenario file cannot say.
Each program but D12's runs without the register-taint monitor: on Linux 6.11-6.18 every
program that negotiates a version shows D12 first, and a finding ends the execution before
the defect under test (tests/pkvm/test_defects.py runs them the same way).
"""

from __future__ import annotations

from typing import Any

from .._suggest import unknown
from ..machine import Machine, Thread
from ..pkvm.programs import PROGRAMS, ProgramSpec
from ._errors import ScenarioError
from ._model import CallRecord

PREFIX = "pkvm-"
"""Built-in names of programs: ``pkvm-`` and the program's name (its ``default`` is left out:
the ``pkvm-default`` scenario file covers that flow, and can be copied and edited)."""


class ProgramInstance:
    """One built program: its threads, its system, and the oracle's lines at the end."""

    def __init__(self, spec: ProgramSpec, variant: str, machine: Machine) -> None:
        self.machine = machine
        threads, finish = spec.build(variant)(machine)
        self.threads: list[Thread] = threads
        # None when pKVM failed to initialise: the program's finish step says so.
        self.system: Any = getattr(machine, "system", None)
        self.results: list[CallRecord] = []  # a program's steps are not scenario steps
        self._finish = finish
        self._verdict: list[str] | None = None

    def finish(self) -> list[str]:
        """The program's complaints (``leak: ...`` lines are leaks), computed once."""
        if self._verdict is None:
            self._verdict = list(self._finish()) if self._finish is not None else []
        return list(self._verdict)


class ProgramScenario:
    """A pKVM program in a scenario's place: named, described, run under pKVM only."""

    hypervisor = "pkvm"
    variant: str | None = None

    def __init__(self, spec: ProgramSpec) -> None:
        self.spec = spec
        self.name = PREFIX + spec.name
        what = f"{spec.defect}: " if spec.defect else ""
        self.description = f"pKVM program: {what}{spec.summary}"
        self.source = f"ffasim.pkvm.programs:{spec.name}"
        self.skip_monitors: frozenset[str] = frozenset(
            () if spec.defect == "D12" else ("pkvm-register-taint",)
        )

    def __repr__(self) -> str:
        return f"<pKVM program {self.spec.name}>"

    def under(self, hypervisor: str | None) -> ProgramScenario:
        if hypervisor not in (None, "pkvm"):
            raise ScenarioError(
                f"{self.name} is a pKVM program: it cannot run under {hypervisor}",
                file=self.source,
            )
        return self

    def instantiate(
        self, variant: str | None = None, *, machine: Machine | None = None
    ) -> ProgramInstance:
        from ..pkvm import variants

        name = variant or "head"
        if name not in variants.names():
            raise ScenarioError(unknown("pkvm variant", name, variants.names()), file=self.source)
        return ProgramInstance(self.spec, name, machine if machine is not None else Machine())


def program_scenarios() -> dict[str, ProgramScenario]:
    """Built-in name -> program scenario, in ``ffasim.pkvm.programs`` order."""
    return {
        PREFIX + name: ProgramScenario(spec) for name, spec in PROGRAMS.items() if name != "default"
    }
