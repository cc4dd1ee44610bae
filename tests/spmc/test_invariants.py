"""invariant_problems() stays empty in consistent states and names each kind of corruption."""

from __future__ import annotations

from ffasim import abi
from ffasim.machine import grant
from ffasim.spmc import MailboxState

from .helpers import RW, handle_of, make, txn


def test_freeing_a_mapped_vm_buffer_is_reported() -> None:
    spmc, hyp = make()
    rx, _tx, _ = hyp.forward_rxtx(1)
    assert spmc.invariant_problems() == []
    hyp.m.heap.free_page(rx)  # what seed defect 4 does with Xen's own pair
    problems = spmc.invariant_problems()
    assert any("was freed while the SPMC maps it" in p for p in problems), problems


def test_stale_share_marks_and_partition_reach_are_reported() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8002]
    (page,) = hyp.vm_pages(1, 1)
    h = handle_of(hyp.send(abi.FFA_MEM_SHARE_64, txn(1, [(0x8002, RW)], [(page.pa, 1)])))
    spmc._shares.pop(h)  # a handle freed behind the page table's back
    problems = spmc.invariant_problems()
    assert any("marked shared by freed handle" in p for p in problems), problems
    spmc.page_share.clear()
    assert spmc.invariant_problems() == []
    # A partition given a page outside any share.
    spmc.endpoints[0x8002].mapped[page.mfn] = True
    grant(page, sp.party)
    problems = spmc.invariant_problems()
    assert any("holds no share of" in p for p in problems), problems


def test_mailbox_inconsistencies_are_reported() -> None:
    spmc, hyp = make()
    spmc.endpoints[0x8001].mailbox.state = MailboxState.OTHER_WORLD_OWNED
    spmc.ns_excluded[hyp.rx_frame.mfn + 100] = 0
    problems = spmc.invariant_problems()
    assert any("OTHER_WORLD_OWNED" in p for p in problems), problems
    assert any("out of the NS view" in p for p in problems), problems


def test_grant_without_mapping_is_reported() -> None:
    spmc, hyp = make()
    (page,) = hyp.vm_pages(1, 1)
    grant(page, "sp8001")
    problems = spmc.invariant_problems()
    assert problems == [f"0x8001 holds a grant on page 0x{page.mfn:x} it was not given"]
