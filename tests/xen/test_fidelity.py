"""Fidelity against Xen's source: each test names the Xen function whose behaviour the model
once got wrong, and fails on the model as it was before the fix."""

from __future__ import annotations

from typing import Any

import pytest

from ffasim import abi
from ffasim.machine import HypervisorPanic, Machine
from ffasim.machine.events import ATOMIC
from ffasim.system import VM, System
from ffasim.xen.ffa import FFA_FW_ABI_NEEDED
from ffasim.xen.ffa_notif import FfaNotif
from ffasim.xen.ffa_private import ARM_SMCCC_NOT_SUPPORTED, ffa_get_ret_code
from ffasim.xen.variants.seed_v1 import SEED_FW_ABI_NEEDED

from .helpers import FaultSink, code, mem_share, negotiate, ready, reclaim, share_descriptor


# -- ffa_private.h: ffa_get_ret_code --------------------------------------------------------------
def test_ffa_get_ret_code_error_without_code_is_not_supported() -> None:
    """Xen tests the whole x2 of an FFA_ERROR: 0 is no code at all, so NOT_SUPPORTED (the
    model used to read it as 0, success)."""
    assert ffa_get_ret_code(abi.regs(abi.FFA_ERROR, 0, 0)) == abi.FFA_RET_NOT_SUPPORTED
    assert ffa_get_ret_code(abi.error(abi.FFA_RET_DENIED)) == abi.FFA_RET_DENIED
    # Only the low 32 bits are the code: a non-zero x2 whose low half is 0 reads as OK.
    assert ffa_get_ret_code(abi.regs(abi.FFA_ERROR, 0, 1 << 32)) == abi.FFA_RET_OK


@pytest.mark.parametrize("variant", ["reference", "head", "seed-v1"])
def test_ffa_handle_mem_reclaim_keeps_the_share_when_the_spmc_errs_without_a_code(
    variant: str,
) -> None:
    """ffa_handle_mem_reclaim: an SPMC FFA_ERROR with x2 = 0 is a failure (NOT_SUPPORTED):
    the share stays listed and its pages referenced, and a later reclaim succeeds."""
    sink = FaultSink()
    system = System(variant=variant, machine=Machine(sink))
    vers = abi.FFA_VERSION_1_1 if variant == "seed-v1" else abi.FFA_VERSION_1_2
    vm = ready(system.create_vm(), vers)
    r = mem_share(vm, share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)]))
    assert code(r) == 0
    handle = abi.make_handle(r[2], r[3])
    sink.faults["smc:FFA_MEM_RECLAIM"] = [0]
    assert code(reclaim(vm, handle)) == abi.FFA_RET_NOT_SUPPORTED
    assert vm.domain.tee is not None and vm.domain.tee.shm_count.value == 1
    assert code(reclaim(vm, handle)) == 0
    assert vm.domain.tee.shm_count.value == 0


def test_ffa_spmc_share_tests_the_whole_x2_of_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """ffa_spmc_share returns x2 as the code when x2 is non-zero, truncated to 32 bits, and
    NOT_SUPPORTED only when the whole register is 0."""
    system = System()
    replies = iter([abi.regs(abi.FFA_ERROR, 0, 1 << 32), abi.regs(abi.FFA_ERROR, 0, 0)])
    monkeypatch.setattr(system.xen, "smc", lambda *args: next(replies))
    assert system.xen.ffa_spmc_share(64)[0] == abi.FFA_RET_OK
    assert system.xen.ffa_spmc_share(64)[0] == abi.FFA_RET_NOT_SUPPORTED


# -- ffa_shm.c (seed): ffa_handle_mem_share's own spin_trylock -------------------------------------
def test_seed_ffa_handle_mem_share_empty_fragment_without_tx_is_invalid() -> None:
    """The seed's ffa_handle_mem_share has no ffa_tx_acquire (patch 06): it trylocks tx_lock
    and reads with whatever ctx->tx and page_count hold. An empty fragment with nothing mapped
    fails read_mem_transaction's header check (INVALID_PARAMETERS); HEAD answers DENIED."""
    seed = System(variant="seed-v1")
    vm = seed.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert code(vm.smc(abi.FFA_MEM_SHARE_64, 0, 0, 0, 0)) == abi.FFA_RET_INVALID_PARAMETERS
    # A non-empty fragment is longer than the (absent) buffer: DENIED, the initial ret.
    assert code(vm.smc(abi.FFA_MEM_SHARE_64, 48, 48, 0, 0)) == abi.FFA_RET_DENIED
    assert not seed.machine.held


def test_reference_ffa_handle_mem_share_without_tx_is_denied_by_ffa_tx_acquire() -> None:
    system = System()
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_MEM_SHARE_64, 0, 0, 0, 0)) == abi.FFA_RET_DENIED


# -- ffa.c: ffa_negotiate_version / ffa_domain_teardown and the VM list ----------------------------
class _OrderSink(FaultSink):
    """Records writes of ``ffa_vm_count`` and acquisitions of ``ffa_ctx_list_rwlock``."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def point(self, kind: str, key: object, write: bool) -> None:
        if kind == ATOMIC and write and getattr(key, "name", "") == "ffa_vm_count":
            self.order.append("count")

    def acquired(self, lock: Any) -> None:
        if getattr(lock, "name", "") == "ffa_ctx_list_rwlock":
            self.order.append("lock")


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("reference", ["lock", "count"]), ("head", ["lock", "count"]), ("seed-v1", ["count", "lock"])],
)
def test_ffa_negotiate_version_counts_the_vm_where_xen_does(
    variant: str, expected: list[str]
) -> None:
    """The seed's ffa_negotiate_version and ffa_domain_teardown change ffa_vm_count before
    taking ffa_ctx_list_rwlock; HEAD does it under the write lock, with the partinfo tag."""
    sink = _OrderSink()
    system = System(variant=variant, vm_to_vm=True, machine=Machine(sink))
    vm = system.create_vm()
    sink.order.clear()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert sink.order[:2] == expected
    sink.order.clear()
    system.destroy_vm(vm)
    assert sink.order[:2] == expected
    assert system.xen.get_ffa_vm_count() == 0


def test_seed_publishing_a_vm_does_not_move_the_partinfo_tag() -> None:
    """The partinfo tag (500ee5fe0f) did not exist at the seed."""
    seed = System(variant="seed-v1", vm_to_vm=True)
    before = seed.xen.ffa_partinfo_tag.value
    negotiate(seed.create_vm(), abi.FFA_VERSION_1_1)
    assert seed.xen.ffa_partinfo_tag.value == before


# -- ffa.c: ffa_probe_fw and ffa_fw_abi_needed[] ---------------------------------------------------
class _FeaturesSink(FaultSink):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        if layer == "smc" and args[0] == abi.FFA_FEATURES:
            self.asked.append(args[1])


def test_seed_ffa_probe_fw_asks_the_seeds_abi_list_in_order() -> None:
    """The seed's ffa_fw_abi_needed[]: MEM_SHARE_32 right before MEM_SHARE_64, no RX_ACQUIRE."""
    sink = _FeaturesSink()
    System(variant="seed-v1", machine=Machine(sink))
    seed_list = [
        abi.FFA_VERSION,
        abi.FFA_FEATURES,
        abi.FFA_NOTIFICATION_BITMAP_CREATE,
        abi.FFA_NOTIFICATION_BITMAP_DESTROY,
        abi.FFA_PARTITION_INFO_GET,
        abi.FFA_NOTIFICATION_INFO_GET_64,
        abi.FFA_NOTIFICATION_GET,
        abi.FFA_RX_RELEASE,
        abi.FFA_RXTX_MAP_64,
        abi.FFA_RXTX_UNMAP,
        abi.FFA_MEM_SHARE_32,
        abi.FFA_MEM_SHARE_64,
        abi.FFA_MEM_RECLAIM,
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND2,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
        abi.FFA_RUN,
    ]
    assert list(SEED_FW_ABI_NEEDED) == seed_list
    assert sink.asked[: len(seed_list)] == seed_list


def test_head_ffa_probe_fw_asks_heads_abi_list_and_applies_the_hafnium_workaround() -> None:
    sink = _FeaturesSink()
    sink.faults["smc:FFA_FEATURES"] = [None] * 7 + [abi.FFA_RET_NOT_SUPPORTED]  # RX_ACQUIRE
    system = System(variant="head", machine=Machine(sink))
    assert FFA_FW_ABI_NEEDED[7] == abi.FFA_RX_ACQUIRE
    assert sink.asked[: len(FFA_FW_ABI_NEEDED)] == list(FFA_FW_ABI_NEEDED)
    assert system.xen.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE)  # SEND2 implies it


def test_seed_ffa_probe_fw_has_no_hafnium_workaround() -> None:
    sink = FaultSink({"smc:FFA_FEATURES": [None] * 7 + [abi.FFA_RET_NOT_SUPPORTED]})
    seed = System(variant="seed-v1", machine=Machine(sink))
    assert seed.xen.ffa_fw_supports_fid(abi.FFA_MSG_SEND2)
    assert not seed.xen.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE)


# -- ffa_notif.c: get_id_from_resp -----------------------------------------------------------------
def test_get_id_from_resp_past_x7_is_xens_assert() -> None:
    """An ID index beyond x3..x7 hits get_id_from_resp's ASSERT(0) (a debug-build panic)."""
    resp = abi.regs(abi.FFA_SUCCESS_64, 0, 0, 0x0004_0003_0002_0001, 0, 0, 0, 0x0014_0013_0012_0011)
    assert FfaNotif.get_id_from_resp(resp, 0) == 1
    assert FfaNotif.get_id_from_resp(resp, 19) == 0x14
    with pytest.raises(HypervisorPanic, match="Assertion '0' failed"):
        FfaNotif.get_id_from_resp(resp, 20)
    resp32 = abi.regs(abi.FFA_SUCCESS_32, 0, 0, 0x0002_0001)
    assert FfaNotif.get_id_from_resp(resp32, 1) == 2
    with pytest.raises(HypervisorPanic):
        FfaNotif.get_id_from_resp(resp32, 10)


# -- ffa_rxtx.c (seed): the ASSERT comes before the lock ----------------------------------------
def test_seed_ffa_rxtx_spmc_tx_acquire_asserts_before_it_locks() -> None:
    """ffa_rxtx_spmc_tx_acquire (seed v1): ASSERT(!spin_is_locked()) is its first statement,
    so a second user panics instead of waiting; upstream's body (lock, NULL check) follows."""
    seed = System(variant="seed-v1")
    xen = seed.xen
    assert xen.ffa_rxtx_spmc_tx_acquire() is not None
    with pytest.raises(HypervisorPanic, match="spin_is_locked"):
        xen.ffa_rxtx_spmc_tx_acquire()
    xen.ffa_rxtx_spmc_tx_release()
    assert not seed.machine.held


# -- ffa_private.h: ffa_set_regs; vsmc.c: the unknown-function answer ---------------------------
_UPPER = tuple(0x1000 + n for n in range(8, 18))  # what the guest leaves in x8..x17


def _id_get_upper(vm: VM) -> tuple[int, ...]:
    r = vm.smc(abi.FFA_ID_GET, 0, 0, 0, 0, 0, 0, 0, *_UPPER)
    assert code(r) == 0
    return r[8:]


@pytest.mark.parametrize(
    ("variant", "vers", "upper"),
    [
        ("reference", abi.FFA_VERSION_1_2, (0,) * 10),
        ("head", abi.FFA_VERSION_1_2, (0,) * 10),
        ("reference", abi.FFA_VERSION_1_1, _UPPER),
        ("reference", abi.FFA_VERSION_1_0, _UPPER),
        ("seed-v1", abi.FFA_VERSION_1_1, _UPPER),
    ],
)
def test_ffa_set_regs_zeroes_x8_x17_only_for_v1_2_guests(
    variant: str, vers: int, upper: tuple[int, ...]
) -> None:
    """ffa_set_regs writes x0..x7; from patch 12 it also zeroes x8..x17, but only for a 64-bit
    guest that negotiated v1.2. Any other guest finds its own x8..x17 unchanged."""
    system = System(variant=variant)
    vm = system.create_vm()
    negotiate(vm, vers)
    assert _id_get_upper(vm) == upper


def test_ffa_version_before_negotiation_leaves_x8_x17() -> None:
    """ffa_negotiate_version answers FFA_VERSION through ffa_set_regs while guest_vers is still
    0, so even a guest asking for v1.2 keeps its x8..x17 in that answer."""
    vm = System().create_vm()
    r = vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2, 0, 0, 0, 0, 0, 0, *_UPPER)
    assert r == (abi.FFA_VERSION_1_2, 0, 0, 0, 0, 0, 0, 0, *_UPPER)


def test_vsmc_unknown_function_writes_x0_only() -> None:
    """vsmccc_handle_call answers an unhandled call by writing ARM_SMCCC_ERR_UNKNOWN_FUNCTION
    to x0 alone; the caller's other registers stay as they were."""
    vm = System().create_vm()
    args = tuple(range(1, 18))
    r = vm.smc(0x84000000 | 0x50, *args)  # a standard-service call below FF-A's range
    assert r == (ARM_SMCCC_NOT_SUPPORTED, *args)


# -- ffa_partinfo.c (seed): init_subscribers ----------------------------------------------------
@pytest.mark.parametrize("fails", [[1], [None, 1]], ids=["created", "destroyed"])
def test_seed_init_subscribers_allocation_failure_means_no_firmware(
    fails: list[int | None],
) -> None:
    """init_subscribers (seed) fails when either subscriber array cannot be allocated: probe
    then destroys Xen's RX/TX pair and runs without firmware."""
    site = "alloc:xzalloc_array@init_subscribers"
    sink = FaultSink({site: list(fails)})
    seed = System(variant="seed-v1", machine=Machine(sink))
    assert sink.hits == [site]
    assert seed.xen.ffa_fw_version == 0
    assert not seed.xen.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET)
    assert seed.xen.subscr_vm_created == [] and seed.xen.subscr_vm_destroyed == []
    assert seed.xen.ffa_spmc_rx.value is None and seed.xen.ffa_spmc_tx.value is None


def test_seed_init_subscribers_lists_the_subscribed_partitions() -> None:
    """The default partitions: 0x8001 subscribes to both messages, 0x8002 and 0x8003 to none."""
    seed = System(variant="seed-v1")
    assert seed.xen.subscr_vm_created == [0x8001]
    assert seed.xen.subscr_vm_destroyed == [0x8001]
    assert seed.xen.sp_list == []  # the SP cache came with cca899b380


# -- ffa_shm.c (seed): ffa_handle_mem_share reads the EMAD field by field ---------------------
def _seed_share_with_emad_at(emad_offs: int, receiver: int) -> abi.Regs:
    """A seed share whose one EMAD (declared 0 bytes long) sits at ``emad_offs`` of the TX
    page, pointing at the composite region the descriptor has at 64."""
    import struct

    seed = System(variant="seed-v1")
    guest = ready(seed.create_vm(), abi.FFA_VERSION_1_1)
    desc = bytearray(share_descriptor(guest.id, 0x8002, [(guest.ipa(4), 1)]))
    struct.pack_into("<II", desc, 24, 0, 1)  # EMAD size 0 (unchecked at the seed), count 1
    struct.pack_into("<I", desc, 32, emad_offs)
    page = bytearray(4096 + 8)
    page[: len(desc)] = desc
    struct.pack_into("<HBBI", page, emad_offs, receiver, abi.FFA_MEM_ACC_RW, 0, 64)
    guest.write(guest.ipa(0), bytes(page[:4096]))
    return guest.smc(abi.FFA_MEM_SHARE_64, 4096, 4096, 0, 0)


def test_seed_ffa_handle_mem_share_reads_only_the_emad_fields_it_checks() -> None:
    """The seed reads endpoint_id, perm and region_offs (8 bytes), never a whole 16-byte EMAD:
    an EMAD 8 bytes before the end of the page stays inside Xen's mapping, and the share
    goes through."""
    assert code(_seed_share_with_emad_at(4088, 0x8002)) == 0


def test_seed_ffa_handle_mem_share_non_secure_receiver_is_refused_before_perm_is_read() -> None:
    """With the EMAD 2 bytes before the page end, only endpoint_id is in the page: a VM
    receiver is NOT_SUPPORTED before perm (past the page) is read."""
    assert code(_seed_share_with_emad_at(4094, 0x0002)) == abi.FFA_RET_NOT_SUPPORTED


def test_seed_ffa_handle_mem_share_secure_receiver_reads_perm_past_the_mapping() -> None:
    with pytest.raises(HypervisorPanic, match=r"^data abort: Xen reads 0x1000\+1 of TX, past"):
        _seed_share_with_emad_at(4094, 0x8002)
