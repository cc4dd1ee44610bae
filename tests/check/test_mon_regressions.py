"""The monitors on the real mediator: regressions planted in the reference variant (a lock
that no longer excludes, a descriptor read without ACCESS_ONCE) are found, with both sides
named. Each plants its bug with monkeypatch, so the model itself is left untouched."""

from __future__ import annotations

import pytest

from ffasim.machine import Spinlock
from ffasim.scenario._check import check_scenario
from ffasim.xen import ffa_private, ffa_rxtx


def test_race_monitor_finds_a_tx_lock_that_no_longer_excludes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_lock, real_unlock = ffa_rxtx.spin_lock, ffa_rxtx.spin_unlock

    def lock(lk: Spinlock) -> None:
        if lk.name != "ffa_spmc_tx_lock":
            return real_lock(lk)
        lk.machine.sink.point("lock", lk, True)
        lk.holder = lk.machine.current  # "taken" without waiting and without ordering
        return None

    def unlock(lk: Spinlock) -> None:
        if lk.name != "ffa_spmc_tx_lock":
            return real_unlock(lk)
        lk.machine.sink.point("lock", lk, True)
        lk.holder = None
        return None

    monkeypatch.setattr(ffa_rxtx, "spin_lock", lock)
    monkeypatch.setattr(ffa_rxtx, "spin_unlock", unlock)
    r = check_scenario("rxtx-map-race", out_dir=None)
    assert [i.finding.kind for i in r.issues] == ["data-race"]
    f = r.issues[0].finding
    assert (
        "(xen, ffa_spmc_tx): xen write by d1v0 in FFA_RXTX_MAP_64 races with xen write by "
        "d0v0 in FFA_RXTX_MAP_64" in f.message
    )
    assert f.threads == ("d0v0", "d1v0")


def test_double_fetch_monitor_finds_descriptor_reads_without_access_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_load = ffa_private.MappedBuf.load

    def load(self: ffa_private.MappedBuf, off: int, n: int) -> bytes:
        real_load(self, off, n)  # a field read the compiler is free to repeat
        return real_load(self, off, n)

    monkeypatch.setattr(ffa_private.MappedBuf, "load", load)
    r = check_scenario("share-vs-partinfo", out_dir=None, budget=50)
    assert [i.finding.kind for i in r.issues] == ["double-fetch"]
    f = r.issues[0].finding
    assert f.calls == ("d0v0 FFA_MEM_SHARE_64",)
    assert (
        "of guest-writable frame" in f.message and "twice in d0v0's FFA_MEM_SHARE_64" in f.message
    )
