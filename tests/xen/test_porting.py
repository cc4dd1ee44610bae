"""docs/porting.md stays true: its worked example (a97fe0a4c7 ported on top of seed-v1) runs,
keeps the name check's rule for variants, and removes seed defect 3 as the page says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ffasim.machine import Machine
from ffasim.scenario._check import check_scenario
from ffasim.system import System
from ffasim.xen import variants

from .helpers import FaultSink
from .xen_functions import XEN_FUNCTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "porting.md"
NAME = "seed-v1+a97fe0a4c7"


@pytest.fixture
def ported(monkeypatch: pytest.MonkeyPatch) -> type:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    cls: type = namespace["SeedV1A97Ffa"]
    monkeypatch.setitem(variants._VARIANTS, NAME, cls)
    return cls


def test_the_port_redefines_only_the_functions_the_commit_changes(ported: type) -> None:
    own = {n for n, o in vars(ported).items() if callable(o) and not n.startswith("__")}
    assert own == {"ffa_rxtx_spmc_rx_release", "ffa_get_sp_partinfo", "ffa_partinfo_init"}
    head = {n for names in XEN_FUNCTIONS["head"][2].values() for n in names}
    assert own <= head


def test_the_port_no_longer_releases_an_rx_the_spmc_did_not_fill(ported: type) -> None:
    for variant, violations in (("seed-v1", 1), (NAME, 0)):
        sink = FaultSink({"smc:FFA_PARTITION_INFO_GET": [-6]})
        System(variant=variant, machine=Machine(sink))
        assert [k for k, _ in sink.violations] == ["ownership"] * violations


def test_the_checker_commands_of_the_page(ported: type) -> None:
    kinds = {}
    for variant in ("seed-v1", NAME):
        report = check_scenario(
            "partinfo-2vcpu",
            variant=variant,
            faults=["smc:PARTITION_INFO_GET"],
            strategy="dfs",
            preemption_bound=0,
            out_dir=None,
        )
        kinds[variant] = [i.finding.kind for i in report.issues]
    # Defect 3 is gone; the execution goes on to defect 4, which the commit leaves.
    assert kinds == {"seed-v1": ["ownership"], NAME: ["isolation"]}
