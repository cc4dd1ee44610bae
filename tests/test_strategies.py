"""ffasim.strategies: what each strategy draws is accepted by the model (near-valid bytes are
decoded or refused with DescriptorError only), and failures shrink to the simplest example."""

from __future__ import annotations

import contextlib
import importlib
import re
import sys

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import ffasim
from ffasim import abi, strategies
from ffasim.desc import (
    Composite,
    Constituent,
    DescriptorError,
    MemAccess,
    MemTransaction,
    PartitionInfo,
    Relinquish,
    RxTxDescriptor,
    dump,
    encode_partinfo_array,
    guess_type,
)
from ffasim.desc._dump import TYPES
from ffasim.guest import FfaDriver
from ffasim.pytest_plugin import FfasimCheck

VERSIONS = (abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2)
ANSWERS = frozenset(
    {
        abi.FFA_SUCCESS_32,
        abi.FFA_SUCCESS_64,
        abi.FFA_ERROR,
        abi.FFA_MSG_SEND_DIRECT_RESP_32,
        abi.FFA_MSG_SEND_DIRECT_RESP_64,
        abi.FFA_MSG_SEND_DIRECT_RESP2,
    }
)
"""What x0 of an FF-A answer to a guest may be (besides FFA_VERSION's version number)."""


def negotiated_vm(version: int = abi.FFA_VERSION_1_2) -> tuple[ffasim.System, ffasim.system.VM]:
    """A fresh system and a two-vCPU VM that negotiated ``version`` and mapped RX (page 0) and
    TX (page 1), as the ``ffasim_vm`` fixture makes it (hypothesis needs one per example)."""
    system = ffasim.System()
    vm = system.create_vm(vcpus=2)
    drv = FfaDriver(vm)
    drv.negotiate(version)
    drv.map_buffers()
    return system, vm


def teardown_audit(system: ffasim.System) -> list[str]:
    for vm in system.vms:
        if not vm.destroyed:
            system.destroy_vm(vm)
    for _ in range(32):
        if not system.run_timers():
            break
    system.run_tasklets()
    return system.audit()


def share(vm: ffasim.system.VM, data: bytes) -> abi.Regs:
    vm.write(vm.ipa(1), data[: abi.FFA_PAGE_SIZE])
    return vm.smc(abi.FFA_MEM_SHARE_64, len(data), len(data))


def assert_ffa_answer(r: abi.Regs) -> None:
    assert r[0] in ANSWERS, abi.describe(r)
    if r[0] == abi.FFA_ERROR:
        assert abi.to_s32(r[2]) in abi.ERROR_CODES, abi.describe(r)


def test_without_hypothesis_the_import_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "ffasim.strategies")
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    message = (
        "ffasim.strategies needs hypothesis; install it with: pip install 'ffasim[hypothesis]'"
    )
    with pytest.raises(ImportError, match=f"^{re.escape(message)}$"):
        importlib.import_module("ffasim.strategies")


# -- mem_share_descriptors ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=abi.version_str)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_mem_share_descriptors_decode_to_their_fields(version: int, data: st.DataObject) -> None:
    d = data.draw(strategies.mem_share_descriptors(version, max_receivers=3))
    assert d.version == version
    assert MemTransaction.decode(d.data, version) == d.fields
    assert dump(d.data, d.type_name).length == len(d.data)
    assert d.fields.flags == 0 and d.fields.attributes == abi.FFA_NORMAL_MEM_REG_ATTR
    assert d.fields.composite is not None
    assert 1 <= d.fields.composite.total_page_count <= 8


@pytest.mark.parametrize("version", VERSIONS, ids=abi.version_str)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_mem_share_descriptors_are_shared_and_reclaimed_through_xen(
    version: int, data: st.DataObject
) -> None:
    d = data.draw(strategies.mem_share_descriptors(version, sender=1))
    system, vm = negotiated_vm(version)
    r = share(vm, d.data)
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)
    assert vm.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)[0] == abi.FFA_SUCCESS_32
    assert teardown_audit(system) == []


def test_mem_share_descriptors_needs_an_address() -> None:
    with pytest.raises(ValueError, match=r"^mem_share_descriptors\(\) needs at least one page"):
        strategies.mem_share_descriptors(addresses=())


def test_mem_share_descriptors_shrink_to_the_plainest_descriptor() -> None:
    d = find(strategies.mem_share_descriptors(), lambda d: d.fields.composite.total_page_count >= 3)
    base = strategies.DEFAULT_PAGES[0]
    assert d.fields == MemTransaction(
        sender=1,
        attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
        flags=0,
        handle=0,
        tag=0,
        receivers=(MemAccess(0x8001, abi.FFA_MEM_ACC_RW, composite_offset=80),),
        composite=Composite(3, (Constituent(base, 3),)),
        emad_size=32,
        emad_offset=48,
    )


# -- mutated --------------------------------------------------------------------------------------


def decodes(m: strategies.Mutant) -> bool:
    assert m.version is not None
    try:
        MemTransaction.decode(m.data, m.version)
    except DescriptorError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(strategies.mutated(strategies.mem_share_descriptors(sender=1)))
def test_mutated_descriptors_are_decoded_or_refused_by_decoder_and_xen(
    m: strategies.Mutant,
) -> None:
    assert isinstance(m.base, strategies.Descriptor) and m.data != m.base.data
    decodes(m)  # anything but DescriptorError fails the test
    system, vm = negotiated_vm()
    assert_ffa_answer(share(vm, m.data))
    assert teardown_audit(system) == []


OTHER_DESCRIPTORS = [
    encode_partinfo_array(
        [PartitionInfo(sp, 1, 0x3CD, uuid) for sp, uuid in strategies.DEFAULT_PARTITIONS]
    ),
    RxTxDescriptor.for_pages(1, 0x4000_0000, 0x4000_1000).encode(),
    Relinquish(0x1234, 0, (0x8002,)).encode(),
]
"""Descriptors of other types, as bytes: ``mutated`` finds their fields by guessing the type."""


@settings(max_examples=100, deadline=None)
@given(strategies.mutated(st.sampled_from(OTHER_DESCRIPTORS)))
def test_mutated_bytes_of_any_descriptor_decode_or_raise_descriptor_error(
    m: strategies.Mutant,
) -> None:
    assert m.version is None and isinstance(m.base, bytes) and m.data != m.base
    for type_name in TYPES:
        with contextlib.suppress(DescriptorError):  # anything else fails the test
            dump(m.data, type_name)
    guess_type(m.data)


def test_mutated_shrinks_to_the_smallest_change_of_the_plainest_descriptor() -> None:
    descriptors = strategies.mem_share_descriptors(sender=1)
    # Derandomized: how far hypothesis's shrinker gets between kinds of change (a field or a
    # cut) depends on its random walk; the plainest descriptor and a simple kind do not.
    quiet = settings(database=None, derandomize=True)
    m = find(strategies.mutated(descriptors), lambda m: not decodes(m), settings=quiet)
    assert re.fullmatch(r"\w+ at \d+: 0x\w+ -> 0x\w+|truncated to \d+ of \d+ bytes", m.change)
    assert isinstance(m.base, strategies.Descriptor)
    assert m.base.fields.composite == Composite(1, (Constituent(strategies.DEFAULT_PAGES[0], 1),))


# -- partition_info_uuids ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(strategies.partition_info_uuids())
def test_partition_info_uuids_are_answered_as_hafnium_does(uuid: str) -> None:
    _, vm = negotiated_vm()
    known = [u for _, u in strategies.DEFAULT_PARTITIONS]
    r = vm.smc(abi.FFA_PARTITION_INFO_GET, *abi.uuid_to_regs32(uuid))
    if uuid == "00000000-0000-0000-0000-000000000000":
        assert (r[0], r[2], r[3]) == (abi.FFA_SUCCESS_32, 4, 24)  # 3 SPs and the VM itself
    elif uuid in known:
        assert (r[0], r[2]) == (abi.FFA_SUCCESS_32, 1)
        assert vm.read(vm.ipa(0), 2) == (0x8001 + known.index(uuid)).to_bytes(2, "little")
    else:
        assert (r[0], abi.to_s32(r[2])) == (abi.FFA_ERROR, abi.FFA_RET_INVALID_PARAMETERS)
        return
    assert vm.smc(abi.FFA_RX_RELEASE)[0] == abi.FFA_SUCCESS_32


# -- guest_calls ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(strategies.guest_calls(), min_size=1, max_size=6))
def test_guest_calls_get_ffa_answers_and_leave_nothing_behind(calls: list[tuple[int, ...]]) -> None:
    system, vm = negotiated_vm()
    for regs in calls:
        r = vm.smc(*regs)
        if regs[0] == abi.FFA_VERSION and r[0] != abi.FFA_ERROR:
            assert r[0] in (abi.FFA_VERSION_1_2, abi.to_u32(abi.FFA_RET_NOT_SUPPORTED))
        else:
            assert_ffa_answer(r)
    assert teardown_audit(system) == []


def test_guest_calls_reach_the_last_mediated_function_and_shrink_its_arguments() -> None:
    last = strategies.MEDIATED_FUNCTIONS[-1]
    assert find(strategies.guest_calls(), lambda r: r[0] == last) == (last,)
    regs = find(
        strategies.guest_calls(), lambda r: r[0] == abi.FFA_MSG_SEND_DIRECT_REQ_32 and r[3] != 0
    )
    assert regs == (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(1, 0x8001), 0, 1, 0, 0, 0, 0)


def test_guest_calls_refuses_a_function_it_has_no_model_for() -> None:
    message = r"^guest_calls\(\) has no argument model for FFA_MEM_LEND_32$"
    with pytest.raises(ValueError, match=message):
        strategies.guest_calls([abi.FFA_VERSION, abi.FFA_MEM_LEND_32])


# -- scenarios ------------------------------------------------------------------------------------


def run_sequentially(scenario: ffasim.scenario.Scenario) -> list[str]:
    """``ffasim run``: the threads one after another, then the verdict."""
    inst = scenario.instantiate("reference")
    for thread in inst.threads:
        inst.system.machine.current = thread.name
        thread.body()
    return inst.finish()


@settings(max_examples=40, deadline=None)
@given(strategies.scenarios())
def test_scenarios_run_clean_on_reference(scenario: ffasim.scenario.Scenario) -> None:
    assert run_sequentially(scenario) == []


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(strategies.scenarios(max_threads=2, max_steps=2))
def test_scenarios_are_clean_under_the_checker_on_reference(
    ffasim_check: FfasimCheck, scenario: ffasim.scenario.Scenario
) -> None:
    ffasim_check(scenario, variant="reference", budget=60)  # fails the test on any finding


def test_scenarios_shrink_to_one_vm_and_the_simplest_steps() -> None:
    sc = find(strategies.scenarios(), lambda sc: len(sc.threads) >= 2)
    assert list(sc.vms) == [ffasim.scenario.VmSpec(vcpus=2)]
    assert [(t.name, [s.op for s in t.steps]) for t in sc.threads] == [
        ("d0v0", ["id_get"]),
        ("d0v1", ["id_get"]),
    ]
