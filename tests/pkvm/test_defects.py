"""D1-D12 under the checker: each program of ``ffasim.pkvm.programs`` explored exhaustively
(DFS with DPOR) with the default monitors and the pKVM ones, on every release that has the
defect (a finding whose message is matched whole) and on the release that fixed it (none).

The register-taint monitor runs only for D12: on 6.11-6.18 every program that negotiates a
version also shows D12, which would stop the execution before the defect under test.
"""

from __future__ import annotations

import re

import pytest

from ffasim.check import DFSStrategy, Finding, default_monitors, explore
from ffasim.check.monitor import Monitor
from ffasim.check.monitors.pkvm import RegisterTaintMonitor, pkvm_monitors
from ffasim.pkvm import DEFECTS
from ffasim.pkvm.programs import PROGRAMS, program

FRAME = r"frame 0x[0-9a-f]+"


def monitors(taint: bool) -> list[Monitor]:
    ms = default_monitors() + pkvm_monitors()
    return ms if taint else [m for m in ms if not isinstance(m, RegisterTaintMonitor)]


def findings(name: str, variant: str, budget: int = 50) -> list[Finding]:
    taint = name.startswith("d12")
    report = explore(
        program(name, variant),
        DFSStrategy(),
        monitors_factory=lambda: monitors(taint),
        budget=budget,
        stop_on_first=False,
    )
    assert report.exhausted
    return [f for f, _ in report.findings]


# (program, variants that show it, kind, whole message)
FOUND = [
    (
        "d1-reclaim-rx",
        ["linux-6.5"],
        "ownership",
        "host0 returns from FFA_MEM_RECLAIM with the hypervisor's RX still FULL at the SPMC: EL2 "
        "never released what EL3 wrote there",
    ),
    (
        "d2-direct-req-32",
        ["linux-6.5"],
        "spec",
        r"FFA_MSG_SEND_DIRECT_REQ_32 answered FFA_ERROR\(NOT_SUPPORTED\)",
    ),
    (
        "d3-v1-1-driver",
        ["linux-6.5", "linux-6.10"],
        "spec",
        r"FFA_MEM_SHARE_64 of a v1.1 descriptor answered FFA_ERROR\(INVALID_PARAMETERS\)",
    ),
    (
        "d4-downgrade",
        ["linux-6.11"],
        "spec",
        r"FFA_VERSION\(1.0\) after negotiating 1.1 answered 0x10001, and the v1.0 descriptor "
        r"that follows gets FFA_ERROR\(INVALID_PARAMETERS\): EL2 parses it as 1.1",
    ),
    (
        "d5-v1-2-properties",
        ["linux-6.5", "linux-6.10"],
        "spec",
        "pKVM init failed: hyp_ffa_init returned -22 with an SPMC reporting v1.2 properties",
    ),
    (
        "d5-v1-2-properties",
        ["linux-6.11"],
        "spec",
        r"FFA_VERSION\(1.1\) answered NOT_SUPPORTED: negotiation failed",
    ),
    (
        "d6-notifications",
        ["linux-6.5", "linux-6.10", "linux-6.11"],
        "isolation",
        "host0's FFA_NOTIFICATION_BITMAP_CREATE reaches the SPMC unfiltered, naming VM 0x5: the "
        r"host acts as another endpoint \(it is FF-A ID 0\)",
    ),
    (
        "d8-emad-offset",
        ["linux-6.11", "linux-6.18"],
        "isolation",
        rf"SPMC share 0x0 holds {FRAME} \(g0, g0 RAM\), a guest page \(host state NOPAGE\) "
        r"\(host0 in FFA_MEM_SHARE_64\)",
    ),
    (
        "d9-reclaim-bounds",
        ["linux-6.5", "linux-6.10", "linux-6.11", "linux-6.18"],
        "assertion",
        r"WARN_ON\(ffa_host_unshare_ranges\(reg->constituents, reg->addr_range_cnt\)\) at EL2",
    ),
    (
        "d9-stale-entry",
        ["linux-6.10", "linux-6.11", "linux-6.18"],
        "isolation",
        rf"SPMC share 0x0 holds {FRAME} \(host, host RAM\), whose host state is OWNED, not "
        r"SHARED_OWNED: the host never shared it \(host0 in FFA_MEM_RECLAIM\)",
    ),
    (
        "d10-unaligned",
        ["linux-6.5", "linux-6.10", "linux-6.11", "linux-6.18"],
        "isolation",
        rf"SPMC share 0x0 holds {FRAME} \(g0, g0 RAM\), a guest page \(host state NOPAGE\) "
        r"\(host0 in FFA_MEM_SHARE_64\)",
    ),
    (
        "d11-no-ffa",
        ["linux-6.5", "linux-6.10", "linux-6.11", "linux-6.18"],
        "spec",
        r"pKVM init failed: hyp_ffa_init returned -95 on firmware without FF-A \(it must turn "
        r"FF-A off instead\)",
    ),
    (
        "d12-stack-leak",
        ["linux-6.11"],
        "isolation",
        r"host0 gets EL2 stack contents back from FFA_VERSION in x1, x2, x3 "
        r"\(0xffff0e1200000008\.\.\.\)",
    ),
    (
        "d12-stack-leak",
        ["linux-6.18"],
        "isolation",
        r"host0 gets EL2 stack contents back from FFA_VERSION in x1, x2, .*, x17 "
        r"\(0xffff0e1200000008\.\.\.\)",
    ),
]

# (program, the release with the fix, and any earlier one where the defect cannot arise)
CLEAN = [
    ("d1-reclaim-rx", ["linux-6.10"]),
    ("d2-direct-req-32", ["linux-6.10"]),
    ("d3-v1-1-driver", ["linux-6.11"]),
    ("d4-downgrade", ["linux-6.18", "linux-6.10"]),
    ("d5-v1-2-properties", ["linux-6.18"]),
    ("d6-notifications", ["linux-6.18"]),
    ("d8-emad-offset", ["linux-7.2", "linux-6.10"]),
    ("d9-reclaim-bounds", ["linux-7.2"]),
    ("d9-stale-entry", ["linux-7.2"]),
    ("d10-unaligned", ["linux-7.2"]),
    ("d11-no-ffa", ["linux-7.2"]),
    ("d12-stack-leak", ["linux-7.2", "linux-6.10"]),
]


@pytest.mark.parametrize(
    ("name", "variant", "kind", "message"),
    [(n, v, k, msg) for n, vs, k, msg in FOUND for v in vs],
    ids=lambda x: x if isinstance(x, str) and len(x) < 20 else "",
)
def test_defect_is_found(name: str, variant: str, kind: str, message: str) -> None:
    found = findings(name, variant)
    assert any(f.kind == kind and re.fullmatch(message, f.message) for f in found), [
        f.summary() for f in found
    ]


@pytest.mark.parametrize(
    ("name", "variant"), [(n, v) for n, vs in CLEAN for v in vs], ids=lambda x: str(x)
)
def test_fixed_release_has_no_finding(name: str, variant: str) -> None:
    assert findings(name, variant) == []


@pytest.mark.parametrize("variant", ["linux-6.5", "linux-6.11", "linux-6.18", "linux-7.2"])
def test_d7_is_not_reproducible_the_pre_fix_check_is_64_bit(variant: str) -> None:
    """103e17aac09c says an offset in [U32_MAX - 15, U32_MAX] wrapped ``offset + 16``; in C the
    sum is size_t (64-bit), so the old check already answered INVALID_PARAMETERS (the program's
    oracle demands an FFA_ERROR and gets one everywhere)."""
    assert findings("d7-composite-wrap", variant) == []


def test_every_defect_has_a_program_and_a_first_variant() -> None:
    programs = {spec.defect for spec in PROGRAMS.values()}
    assert {d.id for d in DEFECTS} <= programs
    found_first = {(n, vs[0]) for n, vs, _, _ in FOUND}
    for d in DEFECTS:
        if d.first:
            names = [spec.name for spec in PROGRAMS.values() if spec.defect == d.id]
            assert any((n, d.first) in found_first for n in names), d.id
