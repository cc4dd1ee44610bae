"""mem_protect.c: the host's page states, the host<->hyp and host<->FF-A transitions, and EL2's
own reach."""

from __future__ import annotations

import re

import pytest

from ffasim.machine import AccessFault, HypervisorPanic
from ffasim.pkvm.host import Host
from ffasim.pkvm.mem_protect import EBUSY, EINVAL, EPERM, PKVM_PARTY

from .helpers import booted, state


def pfn(host: Host, n: int) -> int:
    return host.frames[0].mfn + n


def test_share_ffa_moves_owned_to_shared_owned_and_back() -> None:
    system, host = booted()
    pk = system.pkvm
    assert pk._pkvm_host_share_ffa(pfn(host, 3), 2) == 0
    assert (state(system, host, 3), state(system, host, 4)) == ("SHARED_OWNED", "SHARED_OWNED")
    assert pk._pkvm_host_share_ffa(pfn(host, 4), 1) == -EPERM  # already shared
    assert pk._pkvm_host_unshare_ffa(pfn(host, 3), 2) == 0
    assert state(system, host, 3) == "OWNED"
    assert pk._pkvm_host_unshare_ffa(pfn(host, 3), 1) == -EPERM  # not shared


def test_share_ffa_range_checks_of_the_newest_text() -> None:
    system, host = booted()
    pk = system.pkvm
    assert pk._pkvm_host_share_ffa(pfn(host, 2), 1 << 60) == -EINVAL  # byte size overflows
    assert pk._pkvm_host_share_ffa((1 << 28) - 1, 2) == -EINVAL  # past the PA range
    assert pk._pkvm_host_share_ffa(pfn(host, 2), 0) == 0  # a zero-page range is a no-op


def test_share_ffa_before_the_range_checks_wraps_a_huge_count_to_nothing() -> None:
    system, host = booted("linux-6.11")
    # PAGE_SIZE * (1 << 52) wraps to a 0-byte range: "shared", although nothing was checked.
    assert system.pkvm._pkvm_host_share_ffa(pfn(host, 2), 1 << 52) == 0
    assert state(system, host, 2) == "OWNED"


def test_share_ffa_of_what_is_not_memory_or_straddles_it() -> None:
    system, host = booted()
    pk = system.pkvm
    assert pk._pkvm_host_share_ffa(0x100, 1) == -EPERM  # secure/unknown: not memory
    last = pfn(host, host.pages - 1)
    assert pk._pkvm_host_share_ffa(last, 2) == -EINVAL  # runs off the end of memory
    first = system.pkvm.hyp_memory[0][0]
    assert pk._pkvm_host_share_ffa(first, 0) == -EINVAL  # end - 1 is before the region


def test_share_hyp_and_pin_block_unshare_until_unpinned() -> None:
    system, host = booted()
    pk = system.pkvm
    pa = host.ipa(5)
    assert pk._pkvm_host_share_hyp(pfn(host, 5)) == 0
    assert state(system, host, 5) == "SHARED_OWNED"
    assert host.frames[5].grants[PKVM_PARTY] == 1  # EL2 maps it now
    assert pk.hyp_pin_shared_mem(pa, pa + 1) == 0
    assert pk._pkvm_host_unshare_hyp(pfn(host, 5)) == -EBUSY
    assert pk._pkvm_host_share_ffa(pfn(host, 5), 1) == -EPERM  # not host OWNED
    pk.hyp_unpin_shared_mem(pa, pa + 1)
    assert pk._pkvm_host_unshare_hyp(pfn(host, 5)) == 0
    assert state(system, host, 5) == "OWNED"
    assert host.frames[5].grants[PKVM_PARTY] == 0


def test_pin_needs_a_page_shared_with_the_hypervisor() -> None:
    system, host = booted()
    pa = host.ipa(6)
    assert system.pkvm.hyp_pin_shared_mem(pa, pa + 1) == -EPERM


def test_unpin_of_an_unpinned_page_panics() -> None:
    system, host = booted()
    pa = host.ipa(6)
    with pytest.raises(HypervisorPanic, match=r"\Ahyp_page_ref_dec on page 0x[0-9a-f]+ at 0\Z"):
        system.pkvm.hyp_unpin_shared_mem(pa, pa + 1)


def test_donated_guest_pages_are_not_the_hosts() -> None:
    system, host = booted()
    guest = system.create_guest(pages=2)
    assert guest.frames[0].mfn == host.frames[-1].mfn + 1  # the host's neighbour
    page = system.pkvm.hyp_vmemmap[guest.frames[0].mfn]
    assert (page.host_state.name, page.frame.owner) == ("NOPAGE", "g0")
    assert system.pkvm._pkvm_host_share_ffa(guest.frames[0].mfn, 1) == -EPERM
    with pytest.raises(
        AccessFault, match=r"\Ahost: access to 0x[0-9a-f]+\+4 faults: page owned by g0\Z"
    ):
        host.read(guest.pa(1), 4)


def test_the_host_cannot_touch_the_proxys_pages() -> None:
    system, host = booted()
    tx = system.pkvm.hyp_buffers.tx.value
    assert tx is not None
    with pytest.raises(AccessFault, match=r"page owned by pkvm\Z"):
        host.write(tx, b"x")


def test_el2_faults_on_what_it_does_not_map() -> None:
    system, host = booted()
    with pytest.raises(HypervisorPanic) as e:
        system.pkvm.hyp_read(host.ipa(3), 8)  # a host page EL2 never borrowed
    assert re.fullmatch(
        r"hyp data abort: EL2 reads PA 0x[0-9a-f]+, which it does not map", str(e.value)
    )
    tx = system.pkvm.hyp_buffers.tx.value
    assert tx is not None
    system.pkvm.hyp_write(tx, b"ok")  # its own page
    assert system.pkvm.hyp_read(tx, 2) == b"ok"


def test_memory_regions_merge_as_allocation_grows() -> None:
    system, host = booted()
    system.create_guest(pages=1)
    assert len(system.pkvm.hyp_memory) == 1
    start, end = system.pkvm.hyp_memory[0]
    assert end - start == 11 + host.pages + 1  # proxy pages, host RAM, guest RAM
