"""Variant head: Xen upstream exactly, with the bugs the reference variant fixes."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import Machine
from ffasim.system import VM, System

from .helpers import FaultSink, code, mem_share, ready, share_descriptor


@pytest.fixture
def head() -> System:
    return System(variant="head")


@pytest.fixture
def guest(head: System) -> VM:
    return ready(head.create_vm())


def test_head_speaks_v1_2_like_the_reference(guest: VM) -> None:
    assert guest.smc(abi.FFA_VERSION, 0x10002) == abi.regs(abi.FFA_VERSION_1_2)
    assert guest.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(4, 24)


def test_head_share_longer_than_tx_succeeds_with_handle_zero(guest: VM, head: System) -> None:
    r = guest.smc(abi.FFA_MEM_SHARE_64, 8192, 8192, 0, 0)
    assert r == abi.success(0, 0)
    assert head.spmc.shares == {}  # nothing was shared


def test_head_frag_rx_reply_surfaces_as_a_positive_error(guest: VM, head: System) -> None:
    entry = head.conduit.entry
    head.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_MEM_FRAG_RX, 5, 0, 64) if r[0] == abi.FFA_MEM_SHARE_64 else entry(c, r)
    )
    r = mem_share(guest, share_descriptor(guest.id, 0x8002, [(guest.ipa(4), 1)]))
    assert r == abi.regs(abi.FFA_ERROR, 0, 64)


def test_head_version_bit_31_is_stored(head: System) -> None:
    vm = head.create_vm()
    assert vm.smc(abi.FFA_VERSION, 0x80010001) == abi.regs(abi.FFA_VERSION_1_2)
    vm.smc(abi.FFA_ID_GET)
    assert vm.domain.tee is not None and vm.domain.tee.guest_vers.value == 0x80010001


def test_head_null_spmc_buffer_keeps_the_lock() -> None:
    sink = FaultSink()
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    sink.faults["helper:ffa_rxtx_spmc_tx_acquire"] = [1]
    r = mem_share(vm, share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)]))
    assert code(r) == abi.FFA_RET_NOT_SUPPORTED
    assert [lk.name for lk in system.machine.held_by("d0v0")] == ["ffa_spmc_tx_lock"]


def test_head_get_regs_cannot_page_past_five_vms() -> None:
    system = System(variant="head", vm_to_vm=True)
    vms = [ready(system.create_vm()) for _ in range(9)]
    lo, hi = 0, 0
    r = vms[0].smc(abi.FFA_PARTITION_INFO_GET_REGS, lo, hi, 0)
    assert r[0] == abi.FFA_SUCCESS_64
    tag = (r[2] >> 32) & 0xFFFF
    # The window after the three SPs held VM entries but counted none.
    assert (r[2] >> 16) & 0xFFFF == 2
    r = vms[0].smc(abi.FFA_PARTITION_INFO_GET_REGS, lo, hi, 3 | tag << 16)
    assert r == abi.error(abi.FFA_RET_INVALID_PARAMETERS)
