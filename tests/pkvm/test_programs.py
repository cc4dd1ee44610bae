"""The default pKVM program and the open issues the checker finds on head."""

from __future__ import annotations

import re

import pytest

from ffasim.check import DFSStrategy, Finding, default_monitors, explore, parse_faults
from ffasim.check.monitors.pkvm import pkvm_monitors
from ffasim.machine import Machine
from ffasim.pkvm.programs import PROGRAMS, program


def findings(name: str, variant: str = "head") -> list[Finding]:
    report = explore(
        program(name, variant),
        DFSStrategy(),
        monitors_factory=lambda: default_monitors() + pkvm_monitors(),
        budget=200,
        stop_on_first=False,
    )
    assert report.exhausted
    return [f for f, _ in report.findings]


@pytest.mark.parametrize("variant", ["head", "linux-6.10"])
def test_default_program_is_clean(variant: str) -> None:
    assert findings("default", variant) == []


def test_default_program_runs_sequentially() -> None:
    m = Machine()
    threads, finish = program("default")(m)
    for t in threads:
        t.body()
    assert finish is not None and finish() == []


def test_unknown_program() -> None:
    with pytest.raises(ValueError, match=r"\Aunknown pKVM program 'd13' \(known: default, "):
        program("d13")


def test_head_reclaim_meets_partition_info_the_host_has_not_released() -> None:
    """Reference notes §5.2 (1): EL2's reclaim needs the hypervisor's RX while the host still
    holds the partition information EL2 copied for it; the SPMC answers BUSY."""
    (f,) = findings("rx-shared")
    assert f.kind == "ownership"
    assert f.message == (
        "EL2 on host1 (FFA_MEM_RECLAIM) asks EL3 to fill the hypervisor's RX while host0 "
        "(FFA_PARTITION_INFO_GET) still holds partition information there: the SPMC must "
        "answer BUSY"
    )


def test_head_passthrough_rx_release_races_with_el2() -> None:
    """Reference notes §5.2 (2): the host's FFA_RX_RELEASE takes no EL2 lock."""
    messages = sorted(f.message for f in findings("rx-release-race"))
    assert any(
        re.fullmatch(
            r"EL2 on host1 in FFA_MEM_RECLAIM reads the hypervisor's RX buffer while the SPMC "
            r"holds it EMPTY, not FULL \(frame 0x[0-9a-f]+ \(pkvm, hyp_buffers.rx\)\)",
            m,
        )
        for m in messages
    ), messages
    assert (
        "host0's passed-through FFA_RX_RELEASE releases the hypervisor's RX while EL2 on host1 "
        "(FFA_MEM_RECLAIM) has not finished with it"
    ) in messages


def test_program_table() -> None:
    assert [s.name for s in PROGRAMS.values() if not s.defect] == [
        "default",
        "rx-shared",
        "rxtx-unmap-ignored",
        "rx-release-race",
    ]


def test_head_rxtx_unmap_forgets_buffers_el3_still_maps() -> None:
    """Reference notes §5.3: with EL3 refusing FFA_RXTX_UNMAP, EL2 still reports success."""
    report = explore(
        program("rxtx-unmap-ignored"),
        DFSStrategy(),
        monitors_factory=lambda: default_monitors() + pkvm_monitors(),
        faults=parse_faults(["smc:FFA_RXTX_UNMAP:DENIED"]),
        stop_on_first=False,
    )
    assert report.exhausted
    summaries = sorted(f.summary() for f, _ in report.findings)
    assert summaries == [
        "leak: the hypervisor's RX/TX stay mapped at EL3 while EL2 has unmapped the host's",
        "spec: FFA_RXTX_MAP_64 after FFA_RXTX_UNMAP answered FFA_ERROR(DENIED)",
    ]
    assert findings("rxtx-unmap-ignored") == []  # without the fault all is well
