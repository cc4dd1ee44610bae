"""Consequences of injected faults that Xen accepts by design: notes, not findings."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.scenario import check_scenario
from ffasim.scenario._accepted import RULES, accepted

DENIED, NOT_SUPPORTED = abi.FFA_RET_DENIED, abi.FFA_RET_NOT_SUPPORTED


def _check(scenario: str, fault: str, *, variant: str = "reference", strict: bool = False):  # type: ignore[no-untyped-def]
    return check_scenario(
        scenario,
        variant=variant,
        strategy="dfs",
        preemption_bound=0,
        faults=[fault],
        out_dir=None,
        minimise_findings=False,
        stop_on_first=False,
        strict=strict,
    )


@pytest.mark.parametrize(
    ("scenario", "fault", "left"),
    [
        ("partinfo-2vcpu", "smc:FFA_NOTIFICATION_BITMAP_DESTROY", "SPMC still tracks destroyed VM"),
        ("partinfo-2vcpu", "smc:FFA_RXTX_UNMAP", "still referenced"),
        ("destroy-with-pending-notification", "smc:FFA_NOTIFICATION_GET", "still tracks"),
        ("destroy-during-call", "smc:FFA_MEM_RECLAIM:NOT_SUPPORTED", "is a zombie"),
    ],
)
def test_an_accepted_consequence_is_a_note_and_strict_makes_it_a_finding(
    scenario: str, fault: str, left: str
) -> None:
    r = _check(scenario, fault)
    assert r.issues == []
    assert r.notes and any(left in n for n in r.notes), r.notes
    assert all(n.startswith("leak: ") and "(after smc:" in n for n in r.notes)
    strict = _check(scenario, fault, strict=True)
    assert strict.notes == []
    assert any(left in i.finding.message for i in strict.issues)
    assert {i.finding.kind for i in strict.issues} == {"leak"}


def test_one_note_per_rule_whatever_the_injected_code() -> None:
    r = _check("partinfo-2vcpu", "smc:FFA_NOTIFICATION_BITMAP_DESTROY")
    assert len(r.notes) == 1


def test_a_temporary_reclaim_failure_is_retried_and_leaves_nothing() -> None:
    r = _check("destroy-during-call", "smc:FFA_MEM_RECLAIM:DENIED")
    assert r.issues == [] and r.notes == []


def test_a_leak_that_no_rule_explains_stays_a_finding() -> None:
    # head offers FFA_MEM_SHARE on a firmware that reports no FFA_MEM_RECLAIM: the share can
    # never be reclaimed and its domain stays a zombie. No rule excuses that (reference fixes
    # it); the check must report it.
    r = _check("destroy-during-call", "smc:FFA_FEATURES:NOT_SUPPORTED", variant="head")
    messages = [f.message for i in r.issues for f in (i.finding, *i.also)]
    assert any("is a zombie" in m for m in messages), messages
    clean = _check("destroy-during-call", "smc:FFA_FEATURES:NOT_SUPPORTED")
    assert clean.issues == []


@pytest.mark.parametrize(
    ("site", "code", "line", "rule"),
    [
        (
            "smc:FFA_NOTIFICATION_BITMAP_DESTROY",
            DENIED,
            "SPMC still tracks destroyed VM 0x2 (b)",
            0,
        ),
        ("smc:FFA_RXTX_UNMAP", DENIED, "page 0x80042 of destroyed d1 still referenced (1)", 1),
        ("smc:FFA_RXTX_UNMAP", DENIED, "SPMC still tracks destroyed VM 0x1 (mailbox)", 1),
        ("smc:FFA_MEM_RECLAIM", NOT_SUPPORTED, "domain d0 is a zombie (2 references left)", 2),
        ("smc:FFA_MEM_RECLAIM", NOT_SUPPORTED, "SPMC share 0x1 of destroyed VM 0x1 remains", 2),
        ("smc:FFA_MEM_RECLAIM", NOT_SUPPORTED, "vm 0x1 still on the teardown list", 2),
        ("smc:FFA_NOTIFICATION_GET", NOT_SUPPORTED, "SPMC still tracks destroyed VM 0x1 (b)", 3),
    ],
)
def test_each_rule_explains_its_lines_after_its_fault(
    site: str, code: int, line: str, rule: int
) -> None:
    why = accepted([(10, site, code)], line)
    assert why is not None and RULES[rule].where in why


@pytest.mark.parametrize(
    ("site", "code", "line"),
    [
        # the right line after another fault
        ("smc:FFA_PARTITION_INFO_GET", DENIED, "SPMC still tracks destroyed VM 0x2 (b)"),
        # the right fault, a line it does not explain
        ("smc:FFA_NOTIFICATION_BITMAP_DESTROY", DENIED, "domain d0 is a zombie (1 reference)"),
        ("smc:FFA_RXTX_UNMAP", DENIED, "lock d0.ffa.rx_lock still held by d0v0"),
        ("smc:FFA_NOTIFICATION_GET", DENIED, "page 0x80042 of destroyed d1 still referenced"),
        # DENIED is a temporary reclaim failure: Xen retries, nothing may be left
        ("smc:FFA_MEM_RECLAIM", DENIED, "domain d0 is a zombie (2 references left)"),
        # an allocation failure is no firmware failure
        ("alloc:xzalloc@ffa_domain_init", 1, "page 0x80042 of destroyed d1 still referenced"),
    ],
)
def test_nothing_else_is_explained(site: str, code: int, line: str) -> None:
    assert accepted([(10, site, code)], line) is None
