"""The variant registry and what each release does differently, call by call."""

from __future__ import annotations

import inspect
import re
import sys

import pytest

from ffasim import abi
from ffasim.machine import Machine, SmcConduit
from ffasim.pkvm import DEFECTS, Pkvm, defects, describe, get, names
from ffasim.pkvm.ffa import el2_stack_words
from ffasim.pkvm.programs import share_descriptor

from .helpers import ALL_ONES, booted, err, ready, send

RELEASES = ["linux-6.5", "linux-6.10", "linux-6.11", "linux-6.18", "linux-7.2"]


def test_names_and_unknown_variant() -> None:
    assert names() == ["head", *RELEASES]
    with pytest.raises(ValueError) as e:
        get("linux-6.6")
    assert str(e.value) == (
        "unknown pKVM variant 'linux-6.6' (known: head, linux-6.5, linux-6.10, linux-6.11, "
        "linux-6.18, linux-7.2)"
    )


def test_head_is_linux_7_2() -> None:
    assert get("head") is Pkvm
    assert get("linux-7.2").__mro__[1] is Pkvm
    assert defects("head") == defects("linux-7.2") == []


def test_each_defect_is_listed_on_the_variants_between_its_first_and_last() -> None:
    assert [d.id for d in defects("linux-6.5")] == [
        "D1",
        "D2",
        "D3",
        "D5",
        "D6",
        "D9",
        "D10",
        "D11",
    ]
    assert [d.id for d in defects("linux-6.10")] == ["D3", "D5", "D6", "D9", "D10", "D11"]
    assert [d.id for d in defects("linux-6.11")] == [
        "D4", "D5", "D6", "D8", "D9", "D10", "D11", "D12"
    ]  # fmt: skip
    assert [d.id for d in defects("linux-6.18")] == ["D8", "D9", "D10", "D11", "D12"]
    assert [d.id for d in DEFECTS] == [f"D{n}" for n in range(1, 13)]


def test_describe_names_the_defects() -> None:
    assert describe("linux-6.5").startswith("Linux 6.5: the proxy as first released")
    assert "D1 reclaim never releases the hypervisor's RX" in describe("linux-6.5")
    assert describe("head").endswith("None of D1-D12.")
    with pytest.raises(KeyError):
        describe("linux-6.6")


@pytest.mark.parametrize("name", RELEASES)
def test_variants_override_only_functions_the_base_has(name: str) -> None:
    """A variant redefines C functions under their names; it adds none of its own."""
    cls = get(name)
    for attr, value in vars(cls).items():
        if inspect.isfunction(value):
            assert hasattr(Pkvm, attr), f"{name} adds {attr}"


@pytest.mark.parametrize("name", RELEASES)
def test_variant_docstrings_name_upstream_commits(name: str) -> None:
    doc = sys.modules[get(name).__module__].__doc__ or ""
    assert re.search(r"\b[0-9a-f]{12}\b", doc), name


def test_before_6_18_only_x0_to_x3_are_written() -> None:
    _, host = ready("linux-6.11")
    r = host.smc(abi.FFA_FEATURES, abi.FFA_MEM_SHARE_64, 0, 0, 4, 5, 6, 7, 8)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 0, 0)
    assert r[4:9] == (4, 5, 6, 7, 8)  # the host's own registers, untouched


def test_version_leaks_stack_words_before_7_2() -> None:
    _, host = booted("linux-6.18")
    r = host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    assert r == (abi.FFA_VERSION_1_2, *el2_stack_words(0)[1:])
    _, host = booted("linux-6.11")
    r = host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)
    assert r[1:4] == el2_stack_words(0)[1:4] and r[4:] == (0,) * 14


def test_6_11_returns_the_negotiated_version_to_a_downgrade() -> None:
    _, host = booted("linux-6.11")
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_1
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)[0] == abi.FFA_VERSION_1_1
    _, host = booted("linux-6.18")
    host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)[0] == ALL_ONES


def test_6_11_does_not_deny_notifications_and_6_18_does() -> None:
    for name, passes in (("linux-6.11", True), ("linux-6.18", False)):
        _, host = ready(name)
        r = host.smc(abi.FFA_NOTIFICATION_BITMAP_CREATE, 5, 1)
        assert (r != err(abi.FFA_RET_NOT_SUPPORTED)) is passes, name


def test_6_10_leaves_version_and_partition_info_to_el3_and_ignores_0x80_on() -> None:
    system, host = booted("linux-6.10")
    assert host.smc(abi.FFA_ID_GET)[0] == abi.FFA_SUCCESS_32  # no gate
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)[0] == abi.FFA_VERSION_1_2  # EL3's
    assert not system.pkvm.is_ffa_call(abi.FFA_NOTIFICATION_SET)
    assert system.pkvm.is_ffa_call(abi.FFA_NOTIFICATION_BIND)


def test_6_5_denies_the_32_bit_direct_request() -> None:
    _, host = ready("linux-6.5")
    assert host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001) == err(abi.FFA_RET_NOT_SUPPORTED)
    assert host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, 0x8001)[0] == abi.FFA_MSG_SEND_DIRECT_RESP_64


@pytest.mark.parametrize(
    ("name", "minimum"), [("linux-6.5", 48), ("linux-6.11", 64), ("linux-6.18", 80)]
)
def test_the_shortest_first_fragment_follows_the_struct_sizes(name: str, minimum: int) -> None:
    system, host = ready(name)
    version = system.pkvm.hyp_ffa_version.value
    data = share_descriptor(version, [(host.ipa(2), 1)])
    assert send(host, data, fraglen=minimum - 16)[:3] == err(abi.FFA_RET_INVALID_PARAMETERS)[:3]


@pytest.mark.parametrize("name", RELEASES)
def test_a_64_bit_not_supported_from_el3_turns_ffa_off_on_every_release(name: str) -> None:
    """Firmware whose NOT_SUPPORTED fills all of x0 (as TF-A's SMC_UNK does) was always fine:
    D11 needs the 32-bit answer (582234b0d841's reviewers asked what produced it)."""
    m = Machine()
    el3 = SmcConduit(m, lambda caller, regs: abi.regs(ALL_ONES), "pkvm")
    pkvm = get(name)(m, el3, el3)
    assert pkvm.hyp_ffa_init(0x8000_0000) == 0
    assert pkvm.hyp_buffers.tx.value is None


@pytest.mark.parametrize(("name", "ret"), [("linux-6.18", -95), ("linux-7.2", 0)])
def test_a_32_bit_not_supported_fails_init_until_7_0(name: str, ret: int) -> None:
    m = Machine()
    el3 = SmcConduit(m, lambda caller, regs: abi.regs(0xFFFFFFFF), "pkvm")
    assert get(name)(m, el3, el3).hyp_ffa_init(0x8000_0000) == ret
