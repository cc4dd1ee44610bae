"""Every rule of ``spmc/invariants.py``, one by one: a violation planted in a real SPMC state is
reported with the exact line, and a near miss at the rule's boundary is not reported.

The states are built through the ABI (a VM's forwarded RX/TX pair, a share retrieved by a
partition, a donation); each test then changes one field, as a bug in the SPMC would, and
compares the whole list of problems, so that a rule which fires too widely fails too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ffasim import abi
from ffasim.machine import Frame, grant, revoke
from ffasim.spmc import MailboxState, SecurePartition, Spmc
from ffasim.spmc.memory import MAX_MEM_SHARES, NOT_RETRIEVED, PARTIAL, RETRIEVED, ShareState
from ffasim.spmc.vm import BLOCKED, RUNNING, WAITING

from .helpers import NX, RO, RW, Hyp, handle_of, make, retrieve_req, txn

SHARE, LEND, DONATE = abi.FFA_MEM_SHARE_64, abi.FFA_MEM_LEND_64, abi.FFA_MEM_DONATE_64


class Borrower(SecurePartition):
    """A partition that retrieves and relinquishes on the test's request."""

    def __init__(self, id: int = 0x8002) -> None:
        super().__init__(id, f"bbbbbbbb-0000-0000-0000-{id:012x}", properties=0x10B)

    def retrieve(self, sender: int, handle: int, perms: int) -> abi.Regs:
        req = retrieve_req(sender, handle, [(self.id, perms)])
        self.write(self.tx, req)
        r = self.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
        assert r[0] == abi.FFA_MEM_RETRIEVE_RESP, abi.describe(r)
        assert self.smc(abi.FFA_RX_RELEASE)[0] == abi.FFA_SUCCESS_32
        return r


@dataclass
class World:
    spmc: Spmc
    hyp: Hyp
    sp: Borrower
    rx: Frame  # VM 1's forwarded RX buffer
    tx: Frame  # and TX buffer
    pages: list[Frame]  # two pages of VM 1, shared with 0x8002 under ``handle``
    handle: int

    @property
    def share(self) -> ShareState:
        return self.spmc._shares[self.handle]

    def problems(self) -> list[str]:
        return self.spmc.invariant_problems()


def world(kind: int = SHARE, perms: int = RW, retrieve: bool = True) -> World:
    """VM 1 with its RX/TX pair forwarded and two pages given to 0x8002 (``kind``), which
    retrieved them (``retrieve``): a consistent state every rule looks at."""
    sp = Borrower()
    spmc, hyp = make([SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001"), sp])
    rx, tx, r = hyp.forward_rxtx(1)
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)
    pages = hyp.vm_pages(1, 2)
    attrs = 0x2F if kind == SHARE else 0
    desc = txn(1, [(0x8002, 0 if kind == DONATE else perms)], [(pages[0].pa, 2)], attrs=attrs)
    h = handle_of(hyp.send(kind, desc))
    if retrieve:
        sp.retrieve(1, h, perms if kind == SHARE else perms | NX)
    w = World(spmc, hyp, sp, rx, tx, pages, h)
    assert w.problems() == []
    return w


def mfn(f: Frame) -> str:
    return f"0x{f.mfn:x}"


# -- the SPMC's tables ------------------------------------------------------------------------


def test_more_vms_than_slots_is_reported() -> None:
    w = world()
    w.spmc.max_vms = 0
    assert w.problems() == ["1 VMs tracked, more than the 0 slots"]


def test_as_many_vms_as_slots_is_not_reported() -> None:
    w = world()
    w.spmc.max_vms = 1
    assert w.problems() == []


def test_vm_with_neither_buffers_nor_notifications_is_reported() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 1, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.vms == [1]
    assert spmc.invariant_problems() == []  # notifications alone keep a VM tracked
    spmc.endpoints[1].notif.enabled = False
    assert spmc.invariant_problems() == ["VM 0x1 is tracked with neither buffers nor notifications"]


def test_vm_with_buffers_and_no_notifications_is_not_reported() -> None:
    w = world()
    assert not w.spmc.endpoints[1].notif.enabled
    assert w.spmc.endpoints[1].mailbox.mapped
    assert w.problems() == []


@pytest.mark.parametrize("state", [RUNNING, BLOCKED])
def test_partition_context_busy_outside_any_call_is_reported(state: str) -> None:
    w = world()
    w.spmc.endpoints[0x8001].vcpus[0].state = state
    assert w.problems() == [f"0x8001 context 0 is {state} outside any call"]


def test_partition_context_running_inside_a_call_is_not_reported() -> None:
    seen: list[tuple[str, list[str]]] = []

    def handler(sp: SecurePartition, msg: object) -> tuple[int, ...]:
        seen.append((spmc.endpoints[0x8001].vcpus[0].state, spmc.invariant_problems()))
        return (0, 0, 0, 0, 0)

    spmc, hyp = make(
        [
            SecurePartition(
                0x8001, "bbbbbbbb-0000-0000-0000-000000000001", properties=0x3, handler=handler
            )
        ]
    )
    assert hyp.direct(1, 0x8001, 7)[0] == abi.FFA_MSG_SEND_DIRECT_RESP_32
    assert seen == [(RUNNING, [])]
    assert spmc.endpoints[0x8001].vcpus[0].state == WAITING
    assert spmc.invariant_problems() == []


# -- mailboxes ----------------------------------------------------------------------------------


def test_partition_rx_owned_by_the_other_world_is_reported() -> None:
    w = world()
    w.spmc.endpoints[0x8001].mailbox.state = MailboxState.OTHER_WORLD_OWNED
    assert w.problems() == ["partition 0x8001 RX is OTHER_WORLD_OWNED"]


def test_vm_rx_owned_by_the_other_world_is_not_reported() -> None:
    w = world()
    w.spmc.endpoints[1].mailbox.state = MailboxState.OTHER_WORLD_OWNED
    assert w.problems() == []


def test_rx_and_tx_of_different_sizes_are_reported() -> None:
    w = world()
    mbox = w.spmc.endpoints[0x8001].mailbox
    mbox.tx_frames = mbox.tx_frames[:-1]
    assert w.problems() == ["0x8001: RX and TX sizes differ"]


def test_rx_and_tx_both_unmapped_are_not_reported() -> None:
    w = world()
    mbox = w.spmc.endpoints[0x8001].mailbox
    mbox.rx_frames, mbox.tx_frames = [], []  # equal sizes: none
    assert w.problems() == []


def test_frame_that_is_the_buffer_of_two_endpoints_is_reported() -> None:
    w = world()
    a, b = w.spmc.endpoints[0x8001].mailbox, w.spmc.endpoints[0x8002].mailbox
    b.rx_frames = list(a.rx_frames)
    (f,) = a.rx_frames
    assert w.problems() == [f"frame {mfn(f)} is a buffer of 0x8001 and 0x8002"]


def test_frame_that_is_both_buffers_of_one_endpoint_is_reported() -> None:
    w = world()
    mbox = w.spmc.endpoints[0x8001].mailbox
    mbox.tx_frames = list(mbox.rx_frames)
    (f,) = mbox.rx_frames
    assert w.problems() == [f"frame {mfn(f)} is a buffer of 0x8001 and 0x8001"] * 2


def test_adjacent_buffer_frames_of_two_endpoints_are_not_reported() -> None:
    w = world()
    # VM 1's RX and TX are consecutive frames of one allocation: neighbours, not one frame.
    assert w.tx.mfn == w.rx.mfn + 1
    assert w.problems() == []


def test_buffer_frame_the_spmc_does_not_map_is_reported() -> None:
    w = world()
    assert w.rx.grants["spmc"] == 1  # the boundary: one mapping is enough
    revoke(w.rx, "spmc")
    assert w.problems() == [f"0x1 buffer frame {mfn(w.rx)} is not mapped by the SPMC"]


def test_buffer_frame_freed_while_mapped_is_reported() -> None:
    w = world()
    w.hyp.m.heap.free_page(w.rx)
    assert w.problems() == [f"0x1 buffer frame {mfn(w.rx)} was freed while the SPMC maps it"]


def test_buffer_frame_freed_after_its_unmap_is_not_reported() -> None:
    w = world()
    assert w.hyp.call(abi.FFA_RXTX_UNMAP, 1 << 16)[0] == abi.FFA_SUCCESS_32
    w.hyp.m.heap.free_page(w.rx)
    w.hyp.m.heap.free_page(w.tx)
    assert w.problems() == []


def test_vm_buffer_frame_left_in_the_ns_view_is_reported() -> None:
    w = world()
    del w.spmc.ns_excluded[w.tx.mfn]
    assert w.problems() == [f"0x1 buffer frame {mfn(w.tx)} is still in the NS view"]


def test_vm_buffer_frame_excluded_for_another_vm_is_reported() -> None:
    w = world()
    w.spmc.ns_excluded[w.tx.mfn] = 2
    assert w.problems() == [
        f"0x1 buffer frame {mfn(w.tx)} is still in the NS view",
        f"frame {mfn(w.tx)} is out of the NS view but no buffer of 0x2",
    ]


def test_partition_buffers_in_the_ns_view_are_not_reported() -> None:
    w = world()
    sp_frames = w.spmc.endpoints[0x8001].mailbox.rx_frames
    assert all(f.mfn not in w.spmc.ns_excluded for f in sp_frames)
    assert w.problems() == []


def test_frame_out_of_the_ns_view_without_a_buffer_is_reported() -> None:
    w = world()
    w.spmc.ns_excluded[w.pages[0].mfn] = 1
    assert w.problems() == [f"frame {mfn(w.pages[0])} is out of the NS view but no buffer of 0x1"]


# -- share states -------------------------------------------------------------------------------


def _move_share(w: World, handle: int) -> None:
    """Re-file the share under ``handle``, consistently (slot, handle field, page marks)."""
    share = w.spmc._shares.pop(w.handle)
    share.handle = handle
    w.spmc._shares[handle] = share
    for f in share.frames:
        w.spmc.page_share[f.mfn] = handle
    w.handle = handle


def test_share_slot_holding_another_handle_is_reported() -> None:
    w = world()
    w.share.handle = w.handle + 1
    assert w.problems() == [
        f"share table slot 0x{w.handle:x} holds handle 0x{w.handle + 1:x}",
    ]


@pytest.mark.parametrize("handle", [MAX_MEM_SHARES, MAX_MEM_SHARES + 1, abi.FFA_HANDLE_HYP_FLAG])
def test_handle_outside_the_share_table_is_reported(handle: int) -> None:
    w = world()
    _move_share(w, handle)
    assert w.problems() == [f"share table slot 0x{handle:x} holds handle 0x{handle:x}"]


def test_last_slot_of_the_share_table_is_not_reported() -> None:
    w = world()
    _move_share(w, MAX_MEM_SHARES - 1)
    assert w.problems() == []


def test_incomplete_share_with_pages_is_reported() -> None:
    w = world(retrieve=False)
    w.share.complete = False
    assert w.problems() == [f"incomplete share 0x{w.handle:x} has pages or borrowers"]


def test_incomplete_share_with_a_retrieving_borrower_is_reported() -> None:
    w = world(retrieve=False)
    w.share.complete = False
    w.share.frames = []
    for f in w.pages:
        del w.spmc.page_share[f.mfn]
    w.share.borrowers[0].state = PARTIAL
    assert w.problems() == [f"incomplete share 0x{w.handle:x} has pages or borrowers"]


def test_incomplete_share_without_pages_or_retrievals_is_not_reported() -> None:
    w = world(retrieve=False)
    w.share.complete = False
    w.share.frames = []
    for f in w.pages:
        del w.spmc.page_share[f.mfn]
    assert w.share.borrowers[0].state == NOT_RETRIEVED
    assert w.problems() == []


def test_complete_share_without_pages_is_reported() -> None:
    w = world(retrieve=False)
    w.share.frames = []
    for f in w.pages:
        del w.spmc.page_share[f.mfn]
    assert w.problems() == [f"complete share 0x{w.handle:x} has no pages"]


def test_share_page_not_marked_shared_is_reported() -> None:
    w = world()
    del w.spmc.page_share[w.pages[1].mfn]
    assert w.problems() == [
        f"page {mfn(w.pages[1])} of share 0x{w.handle:x} is not marked as shared"
    ]


def test_share_page_marked_by_another_handle_is_reported() -> None:
    w = world()
    other = handle_of(w.hyp.send(SHARE, txn(1, [(0x8002, RW)], [(w.hyp.vm_pages(1, 1)[0].pa, 1)])))
    w.spmc.page_share[w.pages[1].mfn] = other
    assert w.problems() == [
        f"page {mfn(w.pages[1])} of share 0x{w.handle:x} is not marked as shared",
        f"page {mfn(w.pages[1])} marked by share 0x{other:x} that does not hold it",
    ]


def test_share_page_also_donated_is_reported() -> None:
    w = world()
    w.spmc.donated[w.pages[0].mfn] = 0x8002
    assert w.problems() == [f"page {mfn(w.pages[0])} of share 0x{w.handle:x} was also donated"]


def test_retrieved_donation_still_in_the_table_is_reported() -> None:
    w = world(DONATE, retrieve=False)
    w.share.borrowers[0].state = RETRIEVED
    w.share.borrowers[0].granted = RW | NX
    # What a retrieval that forgot to free the share would leave: the pages mapped.
    ep = w.spmc.endpoints[0x8002]
    for f in w.pages:
        ep.mapped[f.mfn] = True
        grant(f, ep.party)
    assert w.problems() == [f"donation 0x{w.handle:x} retrieved but still in the table"]


def test_retrieved_donation_leaves_the_table() -> None:
    w = world(DONATE)
    assert w.handle not in w.spmc._shares
    assert all(w.spmc.donated[f.mfn] == 0x8002 for f in w.pages)
    assert w.problems() == []


def test_borrower_missing_a_retrieved_page_is_reported() -> None:
    w = world()
    ep = w.spmc.endpoints[0x8002]
    del ep.mapped[w.pages[1].mfn]
    revoke(w.pages[1], ep.party)
    assert w.problems() == [f"0x8002 retrieved 0x{w.handle:x} but lacks pages [{w.pages[1].mfn}]"]


def test_unretrieved_partition_borrower_is_not_held_to_mappings() -> None:
    w = world(retrieve=False)
    assert w.share.borrowers[0].state == NOT_RETRIEVED
    assert w.problems() == []


def test_vm_borrower_is_not_held_to_partition_mappings() -> None:
    # A VM borrower's mappings are the hypervisor's business: the same retrieved state is a
    # finding for a partition and none for a VM.
    w = world(retrieve=False)
    borrower = w.share.borrowers[0]
    borrower.state = RETRIEVED
    borrower.id = 2
    assert w.problems() == []
    borrower.id = 0x8001
    pages = [f.mfn for f in w.pages]
    assert w.problems() == [f"0x8001 retrieved 0x{w.handle:x} but lacks pages {pages}"]


def test_page_marked_by_a_freed_handle_is_reported() -> None:
    w = world()
    w.spmc.page_share[w.rx.mfn + 100] = w.handle + 1
    assert w.problems() == [
        f"page 0x{w.rx.mfn + 100:x} marked shared by freed handle 0x{w.handle + 1:x}"
    ]


def test_page_marked_by_a_share_that_does_not_hold_it_is_reported() -> None:
    w = world()
    w.spmc.page_share[w.tx.mfn] = w.handle
    assert w.problems() == [
        f"page {mfn(w.tx)} marked by share 0x{w.handle:x} that does not hold it"
    ]


# -- what partitions can reach ---------------------------------------------------------------


def test_partition_reaching_a_page_outside_any_share_is_reported() -> None:
    w = world()
    (extra,) = w.hyp.vm_pages(1, 1)
    ep = w.spmc.endpoints[0x8001]
    ep.mapped[extra.mfn] = False
    grant(extra, ep.party)
    assert w.problems() == [f"0x8001 can reach page {mfn(extra)} it holds no share of"]


def test_partition_reaching_a_page_shared_with_another_is_reported() -> None:
    w = world()
    ep = w.spmc.endpoints[0x8001]
    ep.mapped[w.pages[0].mfn] = False
    grant(w.pages[0], ep.party)
    assert w.problems() == [f"0x8001 can reach page {mfn(w.pages[0])} it holds no share of"]


def test_partition_writing_a_page_it_retrieved_read_only_is_reported() -> None:
    w = world(perms=RO)
    w.spmc.endpoints[0x8002].mapped[w.pages[0].mfn] = True
    assert w.problems() == [f"0x8002 can write page {mfn(w.pages[0])} it retrieved read-only"]


def test_partition_reading_a_page_it_retrieved_read_only_is_not_reported() -> None:
    w = world(perms=RO)
    assert w.spmc.endpoints[0x8002].mapped[w.pages[0].mfn] is False
    assert w.problems() == []


def test_partition_mapping_a_page_without_a_grant_is_reported() -> None:
    w = world()
    assert w.pages[0].grants["sp8002"] == 1  # the boundary: one grant is enough
    revoke(w.pages[0], "sp8002")
    assert w.problems() == [f"0x8002 maps page {mfn(w.pages[0])} without a grant"]


def test_donated_page_not_mapped_for_its_new_owner_is_reported() -> None:
    w = world(DONATE)
    ep = w.spmc.endpoints[0x8002]
    del ep.mapped[w.pages[1].mfn]
    revoke(w.pages[1], ep.party)
    assert w.problems() == [f"page {mfn(w.pages[1])} donated to 0x8002 is not mapped for it"]


def test_partition_holding_a_grant_on_a_page_it_was_not_given_is_reported() -> None:
    w = world()
    grant(w.tx, "sp8001")
    assert w.problems() == [f"0x8001 holds a grant on page {mfn(w.tx)} it was not given"]


def test_grant_to_a_party_that_is_no_partition_is_not_reported() -> None:
    w = world()
    grant(w.tx, "d1")
    assert w.problems() == []
