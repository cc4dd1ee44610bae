"""Untrusted bytes: random buffers and mutations of valid descriptors into every decoder.

Whatever the input, a decoder returns a value or raises DescriptorError; anything else
(IndexError, struct.error, OverflowError, ValueError...) would be a crash of the modelled
SPMC or mediator.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi, desc
from ffasim.desc import _dump

from . import golden

V10, V11, V12 = abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2

DECODERS = {
    "mem-v1.0": lambda b: desc.MemTransaction.decode(b, V10),
    "mem-v1.1": lambda b: desc.MemTransaction.decode(b, V11),
    "mem-v1.2": lambda b: desc.MemTransaction.decode(b, V12),
    "mem-length": lambda b: desc.MemTransaction.decode(b, V12, length=len(b) // 2),
    "composite": lambda b: desc.Composite.decode(b, len(b) % 7),
    "rxtx": desc.RxTxDescriptor.decode,
    "rxtx-aligned": lambda b: desc.RxTxDescriptor.decode(b, align=8),
    "relinquish": desc.Relinquish.decode,
    "msg-v1.1": lambda b: desc.IndirectMessage.decode(b, V11),
    "msg-v1.2": lambda b: desc.IndirectMessage.decode(b, V12),
    "msg-in-buffer": lambda b: desc.IndirectMessage.decode(b, V12, length=len(b)),
    "partinfo": desc.PartitionInfo.decode,
    "partinfo-v1.0": lambda b: desc.PartitionInfo.decode(b, size=8),
    "partinfo-array": lambda b: desc.decode_partinfo_array(b, len(b) // 20),
    **{f"dump:{name}": (lambda b, n=name: _dump.dump(b, n)) for name in _dump.TYPES},
}

VALID = [
    golden.MEM_SHARE_V1_1_GOLDEN,
    golden.MEM_SHARE_V1_0,
    golden.MEM_SHARE_V1_2_TWO_EMADS,
    golden.RXTX_16_48,
    golden.RXTX_12_44,
    golden.PARTINFO_V1_1,
    golden.RELINQUISH,
    golden.MSG_V1_1,
    golden.MSG_V1_2,
    golden.HYP_RETRIEVE_1234,
]


def run_all(buf: bytes | bytearray | memoryview) -> None:
    for name, fn in DECODERS.items():
        try:
            fn(buf)
        except desc.DescriptorError as e:
            assert isinstance(e.code, int) and e.code < 0, name
            assert str(e)  # the message renders
    _dump.guess_type(buf)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes_raise_only_descriptor_errors(buf):
    run_all(buf)
    run_all(bytearray(buf))
    run_all(memoryview(buf))


@st.composite
def mutations(draw) -> bytes:
    buf = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["byte", "word", "truncate", "extend"]))
        if kind == "byte" and buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        elif kind == "word" and len(buf) >= 4:
            off = draw(st.integers(0, len(buf) - 4))
            value = draw(st.sampled_from([0, 1, 8, 12, 16, 32, 48, 0x7FFFFFFF, 0xFFFFFFFF]))
            buf[off : off + 4] = value.to_bytes(4, "little")
        elif kind == "truncate":
            del buf[draw(st.integers(0, len(buf))) :]
        else:
            buf += draw(st.binary(max_size=32))
    return bytes(buf)


@settings(max_examples=200, deadline=None)
@given(mutations())
def test_mutated_descriptors_raise_only_descriptor_errors(buf):
    run_all(buf)
