"""RX/TX buffers and their ownership (hafnium-spmc.md §2)."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import EventSink, Machine
from ffasim.spmc import MailboxState, Spmc, default_partitions

from .helpers import Hyp, code, make, rxtx_desc, txn

EMPTY, FULL, OWO = MailboxState.EMPTY, MailboxState.FULL, MailboxState.OTHER_WORLD_OWNED


class Violations(EventSink):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def violation(self, kind: str, message: str) -> None:
        self.seen.append((kind, message))


def test_hypervisor_map_own_buffers_grants_and_leaves_ns_view() -> None:
    spmc, hyp = make()
    mbox = spmc.mailboxes[0]
    assert [f.pa for f in mbox.rx_frames] == [hyp.rx]
    assert [f.pa for f in mbox.tx_frames] == [hyp.tx]
    assert mbox.state is EMPTY and mbox.owner == "spmc"
    assert hyp.rx_frame.grants["spmc"] == 1
    assert hyp.rx_frame.mfn in spmc.ns_excluded and hyp.tx_frame.mfn in spmc.ns_excluded
    assert spmc.invariant_problems() == []


def test_rxtx_map_already_mapped_is_denied() -> None:
    _, hyp = make()
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, hyp.tx, hyp.rx, 1)) == abi.FFA_RET_DENIED


@pytest.mark.parametrize("pages", [0, 2, 1 << 32])
def test_rxtx_map_page_count_not_one_is_invalid(pages: int) -> None:
    _, hyp = make(map_buffers=False)
    r = hyp.call(abi.FFA_RXTX_MAP_64, hyp.tx, hyp.rx, pages)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_rxtx_map_unaligned_is_invalid() -> None:
    _, hyp = make(map_buffers=False)
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, hyp.tx + 8, hyp.rx, 1)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, hyp.tx, hyp.rx + 0x800, 1)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )


def test_rxtx_map_same_page_is_invalid() -> None:
    _, hyp = make(map_buffers=False)
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, hyp.tx, hyp.tx, 1)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )


def test_rxtx_map_outside_ns_memory_is_denied() -> None:
    spmc, hyp = make(map_buffers=False)
    secure = spmc.partitions[0x8001].pages[0]
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, secure, hyp.rx, 1)) == abi.FFA_RET_DENIED
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, 0x1000, hyp.rx, 1)) == abi.FFA_RET_DENIED
    assert spmc.invariant_problems() == []


def test_forwarded_map_reads_descriptor_from_hypervisor_tx() -> None:
    spmc, hyp = make()
    rx, tx, r = hyp.forward_rxtx(1)
    assert r[0] == abi.FFA_SUCCESS_32
    assert spmc.vms == [1]
    mbox = spmc.mailboxes[1]
    assert mbox.rx == rx.pa and mbox.tx == tx.pa and mbox.state is EMPTY
    assert rx.grants["spmc"] == 1 and spmc.ns_excluded[rx.mfn] == 1
    assert spmc.invariant_problems() == []


def test_forwarded_map_uses_descriptor_offsets_like_xen_seed() -> None:
    spmc, hyp = make()
    rx, tx = hyp.vm_pages(2, 2)
    hyp.write_tx(rxtx_desc(2, rx.pa, tx.pa, rx_off=12))
    assert hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[2].rx == rx.pa and spmc.mailboxes[2].tx == tx.pa


def test_forwarded_map_without_hypervisor_tx_is_invalid() -> None:
    _, hyp = make(map_buffers=False)
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)) == abi.FFA_RET_INVALID_PARAMETERS


def test_forwarded_map_twice_is_denied_and_sp_id_is_denied() -> None:
    spmc, hyp = make()
    hyp.forward_rxtx(1)
    assert code(hyp.forward_rxtx(1)[2]) == abi.FFA_RET_DENIED
    assert code(hyp.forward_rxtx(0x8001)[2]) == abi.FFA_RET_DENIED
    assert spmc.vms == [1]


def test_forwarded_map_table_full_is_denied() -> None:
    m = Machine()
    spmc = Spmc(m, default_partitions(), max_vms=2)
    hyp = Hyp(spmc)
    assert hyp.forward_rxtx(1)[2][0] == abi.FFA_SUCCESS_32
    assert hyp.forward_rxtx(2)[2][0] == abi.FFA_SUCCESS_32
    assert code(hyp.forward_rxtx(3)[2]) == abi.FFA_RET_DENIED
    assert spmc.vms == [1, 2]


def test_forwarded_map_of_pages_already_buffers_is_denied_and_slot_freed() -> None:
    spmc, hyp = make()
    hyp.write_tx(rxtx_desc(3, hyp.rx, hyp.tx + 0x10000))
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)) == abi.FFA_RET_DENIED
    assert spmc.vms == []


def test_forwarded_map_bad_page_count_is_invalid() -> None:
    spmc, hyp = make()
    rx, tx = hyp.vm_pages(1, 2)
    hyp.write_tx(rxtx_desc(1, rx.pa, tx.pa, pages=2))
    assert code(hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)) == abi.FFA_RET_INVALID_PARAMETERS
    assert spmc.vms == []


def test_unmap_restores_ns_view_and_frees_slot() -> None:
    spmc, hyp = make()
    rx, _tx, _ = hyp.forward_rxtx(1)
    assert hyp.call(abi.FFA_RXTX_UNMAP, 1 << 16)[0] == abi.FFA_SUCCESS_32
    assert spmc.vms == [] and rx.grants["spmc"] == 0 and rx.mfn not in spmc.ns_excluded
    assert hyp.call(abi.FFA_RXTX_UNMAP, 0)[0] == abi.FFA_SUCCESS_32
    assert not spmc.mailboxes[0].mapped
    assert spmc.invariant_problems() == []


def test_unmap_errors() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    assert code(hyp.call(abi.FFA_RXTX_UNMAP, 0x8001 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(sp.smc(abi.FFA_RXTX_UNMAP, 1 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(hyp.call(abi.FFA_RXTX_UNMAP, 7 << 16)) == abi.FFA_RET_INVALID_PARAMETERS
    # A VM known through its notification bitmap only: no buffers.
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 4, 1)
    assert code(hyp.call(abi.FFA_RXTX_UNMAP, 4 << 16)) == abi.FFA_RET_INVALID_PARAMETERS


def test_partition_unmaps_and_remaps_own_buffers() -> None:
    spmc, _ = make()
    sp = spmc.partitions[0x8001]
    assert sp.smc(abi.FFA_RXTX_UNMAP)[0] == abi.FFA_SUCCESS_32
    assert code(sp.smc(abi.FFA_RXTX_UNMAP)) == abi.FFA_RET_INVALID_PARAMETERS
    # Pages it does not own are refused with INVALID_PARAMETERS (not DENIED as for NS).
    other = spmc.partitions[0x8002].pages[0]
    assert code(sp.smc(abi.FFA_RXTX_MAP_64, other, sp.rx, 1)) == abi.FFA_RET_INVALID_PARAMETERS
    assert sp.smc(abi.FFA_RXTX_MAP_64, sp.tx, sp.rx, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.invariant_problems() == []


def test_rx_release_with_nothing_to_release_is_denied_and_reported() -> None:
    sink = Violations()
    m = Machine(sink)
    spmc = Spmc(m)
    hyp = Hyp(spmc)
    assert code(hyp.call(abi.FFA_RX_RELEASE, 0)) == abi.FFA_RET_DENIED
    assert sink.seen and sink.seen[0][0] == "ownership"
    assert "its own RX buffer" in sink.seen[0][1]


def test_rx_release_after_partition_info_get_succeeds() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_PARTITION_INFO_GET)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[0].state is FULL
    assert hyp.call(abi.FFA_RX_RELEASE, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[0].state is EMPTY
    assert code(hyp.call(abi.FFA_RX_RELEASE, 0)) == abi.FFA_RET_DENIED


def test_rx_release_for_unknown_vm_is_invalid_and_partition_naming_id_is_invalid() -> None:
    spmc, hyp = make()
    assert code(hyp.call(abi.FFA_RX_RELEASE, 9)) == abi.FFA_RET_INVALID_PARAMETERS
    sp = spmc.partitions[0x8001]
    assert code(sp.smc(abi.FFA_RX_RELEASE, 1)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(sp.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED


def test_rx_acquire_release_cycle_for_vm() -> None:
    sink = Violations()
    spmc = Spmc(Machine(sink))
    hyp = Hyp(spmc)
    hyp.forward_rxtx(1)
    assert code(hyp.call(abi.FFA_RX_RELEASE, 1)) == abi.FFA_RET_DENIED  # SPMC owns it
    assert hyp.call(abi.FFA_RX_ACQUIRE, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[1].state is OWO and spmc.mailboxes[1].owner == "hypervisor"
    assert code(hyp.call(abi.FFA_RX_ACQUIRE, 1)) == abi.FFA_RET_DENIED
    assert hyp.call(abi.FFA_RX_RELEASE, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[1].state is EMPTY
    kinds = [k for k, _ in sink.seen]
    assert kinds == ["ownership", "ownership"]


def test_rx_acquire_errors() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8001]
    assert code(sp.smc(abi.FFA_RX_ACQUIRE, 1)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(hyp.call(abi.FFA_RX_ACQUIRE, 0x8001)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(hyp.call(abi.FFA_RX_ACQUIRE, 3)) == abi.FFA_RET_INVALID_PARAMETERS
    hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, 3, 1)
    assert code(hyp.call(abi.FFA_RX_ACQUIRE, 3)) == abi.FFA_RET_INVALID_PARAMETERS


def test_rxtx_pages_cannot_be_shared() -> None:
    _, hyp = make()
    rx, _tx, _ = hyp.forward_rxtx(1)
    r = hyp.send(abi.FFA_MEM_SHARE_64, txn(1, [(0x8002, 2)], [(rx.pa, 1)]))
    assert code(r) == abi.FFA_RET_DENIED


def test_msg_wait_releases_partition_rx_unless_retained() -> None:
    spmc, _ = make()
    sp = spmc.partitions[0x8001]
    sp.smc(abi.FFA_PARTITION_INFO_GET)
    assert spmc.mailboxes[0x8001].state is FULL
    assert sp.smc(abi.FFA_MSG_WAIT, 0, 1)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[0x8001].state is FULL
    assert sp.smc(abi.FFA_MSG_WAIT)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[0x8001].state is EMPTY
    assert code(sp.smc(abi.FFA_MSG_WAIT, 1)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(sp.smc(abi.FFA_MSG_WAIT, 0, 0, 0, 0, 0, 0, 0, 1)) == (
        abi.FFA_RET_INVALID_PARAMETERS
    )


def test_rx_acquire_of_id_0_takes_the_hypervisor_own_mailbox() -> None:
    spmc, hyp = make()
    assert hyp.call(abi.FFA_RX_ACQUIRE, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.mailboxes[0].state is OWO
    assert code(hyp.call(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_BUSY
    assert hyp.call(abi.FFA_RX_RELEASE, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.invariant_problems() == []
