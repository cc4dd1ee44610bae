"""Any registers and any buffer contents get an answer (an FF-A error or a result), never an
exception, and leave the SPMC consistent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi

from .helpers import make

FIDS = st.sampled_from(sorted(abi.FUNCTION_IDS))
REG = st.one_of(st.integers(0, 0xFFFF), st.integers(0, abi.MASK64))


@settings(max_examples=300, deadline=None)
@given(
    fid=FIDS,
    regs=st.lists(REG, max_size=17),
    tx=st.binary(max_size=512),
    caller=st.sampled_from([0, 0x8001, 0x8002, 0x8003]),
    lengths=st.booleans(),
)
def test_any_call_with_any_buffer_answers_registers(
    fid: int, regs: list[int], tx: bytes, caller: int, lengths: bool
) -> None:
    spmc, hyp = make()
    hyp.forward_rxtx(1)
    if caller:
        sp = spmc.partitions[caller]
        sp.write(sp.tx, tx)
    else:
        hyp.write_tx(tx)
    if lengths:  # make w1/w2 describe the buffer, to get past the length checks
        regs = [len(tx), len(tx), *regs[2:]]
    out = spmc.entry(caller, abi.regs(fid, *regs))
    assert len(out) == abi.NUM_REGS and all(0 <= v <= abi.MASK64 for v in out)
    assert spmc.invariant_problems() == []
    assert spmc.machine.held == []  # no SPMC lock left behind


@settings(max_examples=100, deadline=None)
@given(blob=st.binary(min_size=1, max_size=200), regs=st.lists(REG, max_size=7))
def test_forwarded_calls_with_garbage_vm_buffers(blob: bytes, regs: list[int]) -> None:
    spmc, hyp = make()
    _rx, tx, _ = hyp.forward_rxtx(1)
    hyp.m.mem.write(tx.pa, blob, "d0")
    hyp.write_tx(blob)
    for fid in (abi.FFA_MSG_SEND2, abi.FFA_RXTX_MAP_64):
        out = hyp.call(fid, 1 << 16, *regs[:1]) if fid == abi.FFA_MSG_SEND2 else hyp.call(fid)
        assert len(out) == abi.NUM_REGS
    assert spmc.invariant_problems() == []


def test_registers_out_of_range_or_short_are_normalised() -> None:
    spmc, _ = make()
    assert spmc.entry(0, (abi.FFA_ID_GET,))[0] == abi.FFA_SUCCESS_32
    r = spmc.entry(0, (abi.FFA_ID_GET | (1 << 40), -1, *([0] * 16)))
    assert r[0] == abi.FFA_SUCCESS_32
    r = spmc.entry(0, [abi.FFA_RX_RELEASE, 1 << 33, *([0] * 30)])
    # w1 is masked to 32 bits (VM 0: the hypervisor itself, which has nothing to release).
    assert abi.error_code(r) == abi.FFA_RET_DENIED
