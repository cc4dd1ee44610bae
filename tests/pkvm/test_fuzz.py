"""Whatever the host sends, EL2 answers: random calls and descriptors on every release never
raise out of the model (a Python exception here would be an EL2 crash), and every answer is one
FF-A can give."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ffasim import abi
from ffasim.pkvm import names
from ffasim.pkvm.programs import RX, TX, setup

from .helpers import booted

FIDS = [
    abi.FFA_VERSION,
    abi.FFA_FEATURES,
    abi.FFA_RXTX_MAP_64,
    abi.FFA_RXTX_UNMAP,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_MEM_LEND_32,
    abi.FFA_MEM_FRAG_TX,
    abi.FFA_MEM_RECLAIM,
    abi.FFA_PARTITION_INFO_GET,
    abi.FFA_RX_RELEASE,
    abi.FFA_ID_GET,
]
_small = st.one_of(st.integers(0, 0x1100), st.sampled_from([0xFFFFFFF8, 0xFFFFFFFF, 1 << 40]))
_call = st.tuples(st.sampled_from(FIDS), st.lists(_small, min_size=4, max_size=4))
_tx = st.binary(min_size=0, max_size=160)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(names()), st.booleans(), st.lists(st.tuples(_call, _tx), max_size=5))
def test_random_host_calls_never_crash_el2(
    variant: str, prepared: bool, calls: list[tuple[tuple[int, list[int]], bytes]]
) -> None:
    system, host = booted(variant)
    if prepared:
        setup(host)
    for (fid, args), tx in calls:
        if fid == abi.FFA_RXTX_MAP_64 and args[0] % 2:
            args = [host.ipa(TX), host.ipa(RX), *args[2:]]
        if tx and system.pkvm.host_page_state(host.frames[TX].mfn) is not None:
            host.write(host.ipa(TX), tx)
        r = host.smc(fid, *args)
        assert (
            r[0]
            in (
                abi.FFA_SUCCESS_32,
                abi.FFA_SUCCESS_64,
                abi.FFA_ERROR,
                abi.FFA_MEM_FRAG_RX,
                abi.MASK64,  # EL2's NOT_SUPPORTED for FFA_VERSION
                0xFFFFFFFF,  # EL3's
            )
            or abi.version_major(r[0]) == 1
        ), abi.describe(r)
