"""The SPMC's firmware options for the pKVM history: no FF-A at all, v1.2 properties to every
caller, unaligned constituents. All off, the SPMC is Hafnium v2.14 (the rest of tests/spmc)."""

from __future__ import annotations

from ffasim import abi
from ffasim.machine import Machine
from ffasim.spmc import Spmc, default_partitions

from .helpers import Hyp, code, handle_of, txn


def test_firmware_without_ffa_answers_not_supported_in_w0_only() -> None:
    spmc = Spmc(Machine(), default_partitions(), ffa=False)
    for fid in (abi.FFA_VERSION, abi.FFA_ID_GET, abi.FFA_FEATURES, abi.FFA_MEM_SHARE_64):
        assert spmc.entry(0, abi.regs(fid, abi.FFA_VERSION_1_2)) == abi.regs(0xFFFFFFFF)


def test_rxtx_map_features_report_the_page_count_to_a_v1_1_caller_only_with_the_option() -> None:
    for option, w2 in ((False, 0), (True, 1 << 16)):
        spmc = Spmc(Machine(), default_partitions(), v1_2_properties=option)
        hyp = Hyp(spmc, map_buffers=False, version=abi.FFA_VERSION_1_1)
        assert hyp.call(abi.FFA_FEATURES, abi.FFA_RXTX_MAP_64) == abi.success(w2)


def test_unaligned_constituents_are_refused_unless_the_option_is_on() -> None:
    spmc = Spmc(Machine(), default_partitions())
    hyp = Hyp(spmc)
    page = hyp.vm_pages(1, 2)[0]
    desc = txn(1, [(0x8002, 0x2)], [(page.pa + 0x800, 1)])
    assert code(hyp.send(abi.FFA_MEM_SHARE_64, desc)) == abi.FFA_RET_INVALID_PARAMETERS

    spmc = Spmc(Machine(), default_partitions(), unaligned=True)
    hyp = Hyp(spmc)
    pages = hyp.vm_pages(1, 2)
    desc = txn(1, [(0x8002, 0x2)], [(pages[0].pa + 0x800, 1)])
    handle = handle_of(hyp.send(abi.FFA_MEM_SHARE_64, desc))
    share = spmc.shares[handle]
    assert [f.mfn for f in share.frames] == [pages[0].mfn, pages[1].mfn]  # both pages touched
    assert share.total_page_count == 1
