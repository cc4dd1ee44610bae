"""--faults specs: what each selects, and one-line errors for bad ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi
from ffasim.check.faults import FaultSpecError, parse_faults
from ffasim.machine import FAULT_CODES


def test_faults_smc_selects_every_call_and_every_code() -> None:
    plan = parse_faults(["smc"])
    assert plan is not None
    assert plan("smc:FFA_PARTITION_INFO_GET") == FAULT_CODES
    assert plan("alloc:ffa_spmc_rx") is None
    assert plan("helper:ffa_rxtx_spmc_rx_acquire") is None


def test_faults_smc_one_call_with_codes_in_conduit_order() -> None:
    plan = parse_faults(["smc:PARTITION_INFO_GET:DENIED,FFA_RET_BUSY"])
    assert plan is not None
    assert plan("smc:FFA_PARTITION_INFO_GET") == (abi.FFA_RET_BUSY, abi.FFA_RET_DENIED)
    assert plan("smc:FFA_RX_RELEASE") is None


def test_faults_smc_name_without_convention_covers_both() -> None:
    plan = parse_faults(["smc:ffa_rxtx_map"])
    assert plan is not None
    assert plan("smc:FFA_RXTX_MAP_64") == FAULT_CODES
    assert plan("smc:FFA_RXTX_MAP_32") == FAULT_CODES
    assert plan("smc:FFA_RXTX_UNMAP") is None


def test_faults_alloc_and_helper_sites_force_failure() -> None:
    plan = parse_faults(["alloc:ffa_spmc_*", "helper:ffa_rxtx_spmc_rx_acquire"])
    assert plan is not None
    assert plan("alloc:ffa_spmc_rx") == (1,)
    assert plan("alloc:shm") is None
    assert plan("helper:ffa_rxtx_spmc_rx_acquire") == (1,)
    assert plan("helper:ffa_rxtx_spmc_tx_acquire") is None


def test_faults_all_and_several_specs_in_one_word() -> None:
    plan = parse_faults(["all"])
    assert plan is not None
    assert plan("smc:FFA_VERSION") == FAULT_CODES
    assert plan("alloc:x") == (1,) and plan("helper:y") == (1,)
    two = parse_faults("smc:*:DENIED alloc")
    assert two is not None and two.specs == ("smc:*:DENIED", "alloc")
    assert parse_faults(None) is None and parse_faults([]) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "disk",
            r"^fault spec 'disk': unknown fault family 'disk' \(expected one of: all, smc, "
            r"alloc, helper\)$",
        ),
        ("smc:FFA_NOPE", r"^fault spec 'smc:FFA_NOPE': unknown FF-A function 'FFA_NOPE'$"),
        (
            "smc:*:NO_DATA",
            r"^fault spec 'smc:\*:NO_DATA': the SPMC cannot be made to answer "
            r"NO_DATA \(injectable: NOT_SUPPORTED, ",
        ),
        ("smc:*:LATER", r"^fault spec 'smc:\*:LATER': unknown error code 'LATER' "),
        ("smc:*:", r"^fault spec 'smc:\*:': empty error code$"),
        ("alloc:a:b", r"^fault spec 'alloc:a:b': too many ':' fields \(expected alloc\[:NAME\]\)$"),
        ("helper:", r"^fault spec 'helper:': empty site name \(use '\*' for every site\)$"),
        ("smc:MEM_*Z", r"^fault spec 'smc:MEM_\*Z': no FF-A function matches 'MEM_\*Z'$"),
        ("  ", r"^empty fault spec \(try 'smc', 'alloc', 'helper' or 'all'\)$"),
    ],
)
def test_faults_bad_spec_is_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        parse_faults([spec])


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_faults_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        plan = parse_faults([text])
    except FaultSpecError as e:
        assert "\n" not in str(e)
        return
    if plan is not None:
        for site in ("smc:FFA_VERSION", "alloc:x", "helper:y", "other"):
            got = plan(site)
            assert got is None or set(got) <= set(FAULT_CODES) | {1}
