"""Stage2Monitor's near misses: what test_mon_pkvm.py reports, done right, stays clean."""

from __future__ import annotations

from test_mon_pkvm import booted
from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors.pkvm import Stage2Monitor
from ffasim.pkvm.programs import share, share_descriptor


def test_stage2_partition_touching_a_page_the_host_shared_is_clean() -> None:
    h = Harness(Stage2Monitor())
    system, host = booted(h)
    f = host.frames[2]
    with h.thread("host0"):
        r = share(host, share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1)]))
        assert r[0] == abi.FFA_SUCCESS_32
        system.machine.mem.write(f.pa, b"x", "sp8002")
    h.finish()  # the live share covers the SHARED_OWNED page: not stuck
    assert h.findings == []


def test_stage2_reclaimed_page_is_not_stuck() -> None:
    h = Harness(Stage2Monitor())
    _, host = booted(h)
    with h.thread("host0"):
        r = share(host, share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1)]))
        assert host.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)[0] == abi.FFA_SUCCESS_32
    h.finish()
    assert h.findings == []
