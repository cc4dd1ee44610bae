"""wire: what Xen sends the SPMC, registers and descriptors, against FF-A's layout rules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import WireMonitor
from ffasim.check.monitors.wire import register_problems
from ffasim.desc import Composite, Constituent, MemAccess, MemTransaction, RxTxDescriptor

# -- registers ------------------------------------------------------------------------------------


def test_wire_registers_as_xen_sends_them_are_clean() -> None:
    assert register_problems(abi.regs(abi.FFA_RXTX_UNMAP, 2 << 16)) == []
    assert register_problems(abi.regs(abi.FFA_RX_RELEASE, 2)) == []
    assert register_problems(abi.regs(abi.FFA_MEM_RECLAIM, 1, 0, 0x3)) == []
    assert register_problems(abi.regs(abi.FFA_PARTITION_INFO_GET, 1, 2, 3, 4, 1)) == []


@pytest.mark.parametrize(
    ("regs", "reg"),
    [
        (abi.regs(abi.FFA_RXTX_UNMAP, (2 << 16) | 1), "w1"),  # bits[15:0] MBZ
        (abi.regs(abi.FFA_RX_RELEASE, 1 << 16), "w1"),  # bits[31:16] MBZ
        (abi.regs(abi.FFA_MEM_RECLAIM, 1, 0, 0x4), "w3"),  # flags bits[31:2] MBZ
        (abi.regs(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 2), "w5"),  # flags bits[31:1]
        (abi.regs(abi.FFA_ID_GET, 0, 0, 0, 0, 0, 0, 1), "w7"),
        (abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, 1), "w2"),  # w2 MBZ, not framework
        (abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_64, 0x8001, 0, 0, 0, 0, 0, 0, 1), "x8"),
        (abi.regs(abi.FFA_MSG_SEND2, (1 << 16) | 0x8001), "w1"),
    ],
)
def test_wire_register_bits_that_must_be_zero_are_reported(regs: tuple[int, ...], reg: str) -> None:
    problems = register_problems(regs)
    assert len(problems) == 1 and problems[0].startswith(f"{reg}=")


def test_wire_smc32_upper_halves_are_not_judged() -> None:
    assert register_problems(abi.regs(abi.FFA_RX_RELEASE, 2 | (1 << 40))) == []
    assert register_problems(abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, 0, 1 << 40)) == []


def test_wire_framework_request_may_set_w2_type_and_bit31_only() -> None:
    fw = abi.FFA_MSG_FLAG_FRAMEWORK | abi.FFA_MSG_SEND_VM_CREATED
    assert register_problems(abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, fw, 0, 0, 1)) == []
    bad = register_problems(abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, fw | 0x100))
    assert bad == ["w2=0x80000104 sets bits 0x100 that must be zero"]


def test_wire_features_w2_only_for_retrieve_req() -> None:
    assert register_problems(abi.regs(abi.FFA_FEATURES, abi.FFA_MEM_RETRIEVE_REQ_64, 2)) == []
    assert register_problems(abi.regs(abi.FFA_FEATURES, abi.FFA_MEM_RETRIEVE_REQ_64, 1)) != []
    assert register_problems(abi.regs(abi.FFA_FEATURES, abi.FFA_RXTX_MAP_64, 2)) != []


def test_wire_unknown_function_is_not_judged() -> None:
    assert register_problems(abi.regs(0x84000099, 1, 2, 3)) == []


# -- descriptors in Xen's TX buffer --------------------------------------------------------------


def _harness(tx: bytes) -> Harness:
    """A monitor whose SPMC knows Xen's TX buffer, holding ``tx``."""
    h = Harness(WireMonitor())
    frame = h.machine.heap.alloc_page("xen", tag="spmc tx")
    assert frame is not None
    frame.data = bytearray(tx.ljust(4096, b"\0"))
    mailbox = SimpleNamespace(tx_frames=[frame], rx_frames=[])
    hyp = SimpleNamespace(version=abi.FFA_VERSION_1_2)
    h.machine.spmc = SimpleNamespace(mailboxes={0: mailbox}, endpoints={0: hyp})  # type: ignore[attr-defined]
    return h


def _smc(h: Harness, *regs: int) -> list[str]:
    with h.thread("d0v0"):
        h.call("smc", "xen", abi.regs(*regs))
        h.ret("smc", "xen", abi.success())
    return [f.message for f in h.findings]


def _map(desc: bytes) -> list[str]:
    return _smc(_harness(desc), abi.FFA_RXTX_MAP_64, 0, 0, 0)


def test_wire_rxtx_descriptor_as_the_spec_packs_it_is_clean() -> None:
    assert _map(RxTxDescriptor.for_pages(2, 0x80000000, 0x80001000).encode()) == []


def test_wire_rxtx_descriptor_offsets_not_8_aligned_are_reported() -> None:
    legacy = RxTxDescriptor.for_pages(2, 0x80000000, 0x80001000, legacy=True).encode()
    (msg,) = _map(legacy)
    assert "rx_offset 12 is not 8-byte aligned" in msg


def test_wire_rxtx_descriptor_reserved_pad_is_reported() -> None:
    desc = bytearray(RxTxDescriptor.for_pages(2, 0x80000000, 0x80001000).encode())
    desc[12] = 1
    (msg,) = _map(bytes(desc))
    assert "reserved bytes 12..15" in msg


def test_wire_rxtx_descriptor_unaligned_range_is_reported() -> None:
    d = RxTxDescriptor.for_pages(2, 0x80000800, 0x80001000)
    msgs = _map(d.encode())
    assert len(msgs) == 1 and "RX composite" in msgs[0]


def test_wire_rxtx_descriptor_rx_and_tx_of_different_sizes_are_reported() -> None:
    rx = Composite(1, (Constituent(0x80000000, 1),))
    tx = Composite(2, (Constituent(0x80002000, 2),))
    (msg,) = _map(RxTxDescriptor(2, rx, tx).encode())
    assert "RX has 1 pages, TX 2" in msg


def test_wire_rxtx_map_with_addresses() -> None:
    h = _harness(b"")
    assert _smc(h, abi.FFA_RXTX_MAP_64, 0x80000000, 0x80001000, 1) == []
    h = _harness(b"")
    assert _smc(h, abi.FFA_RXTX_MAP_64, 0x80000800, 0x80001000, 1) != []


def _share(minor: int = abi.FFA_VERSION_1_2) -> bytes:
    t = MemTransaction(
        1,
        abi.FFA_NORMAL_MEM_REG_ATTR,
        0,
        0,
        0,
        [MemAccess(0x8002, abi.FFA_MEM_ACC_RW)],
        Composite(1, (Constituent(0x80040000, 1),)),
    )
    return t.encode(minor)


def test_wire_share_descriptor_clean_and_its_boundaries() -> None:
    desc = _share()
    n = len(desc)
    assert _smc(_harness(desc), abi.FFA_MEM_SHARE_64, n, n) == []
    # A fragment one byte longer than the total, or than the TX buffer, is reported.
    assert _smc(_harness(desc), abi.FFA_MEM_SHARE_64, n, n + 1) != []
    (msg,) = _smc(_harness(desc), abi.FFA_MEM_SHARE_64, 4097, 4097)
    assert "exceeds the 4096-byte TX buffer" in msg
    assert _smc(_harness(desc), abi.FFA_MEM_SHARE_64, 4096, 4096) == []  # the whole buffer


def test_wire_share_descriptor_with_a_reserved_field_set_is_reported() -> None:
    desc = bytearray(_share())
    desc[40] = 1  # header reserved bytes 36..47
    n = len(desc)
    (msg,) = _smc(_harness(bytes(desc)), abi.FFA_MEM_SHARE_64, n, n)
    assert msg.startswith("xen's FFA_MEM_SHARE_64 to the SPMC: memory transaction descriptor")


def test_wire_only_xens_smcs_are_judged() -> None:
    h = _harness(b"")
    with h.thread("d0v0"):
        h.call("smc", "sp8001", abi.regs(abi.FFA_RX_RELEASE, 1 << 16))
    assert h.findings == []


# -- on whose behalf ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fid", "receiver"),
    [
        (abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001),
        (abi.FFA_MSG_SEND_DIRECT_REQ2, 0x8001),
        (abi.FFA_MSG_SEND2, 0),  # the receiver is in the message header
    ],
)
def test_wire_forwarded_message_names_the_calling_vm(fid: int, receiver: int) -> None:
    assert _smc(_harness(b""), fid, (1 << 16) | receiver) == []  # d0 is FF-A ID 1
    (msg,) = _smc(_harness(b""), fid, (2 << 16) | receiver)
    assert "sender 0x2 in w1, during VM 0x1's call" in msg
    (msg,) = _smc(_harness(b""), fid, receiver)  # the hypervisor's ID
    assert "sender 0x0 in w1" in msg


def test_wire_sender_is_judged_only_during_a_vms_call() -> None:
    h = _harness(b"")
    with h.thread("toolstack"):  # Xen's own framework message: sender 0 is right
        h.call("smc", "xen", abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001))
    assert h.findings == []


def test_wire_forwarded_share_names_the_calling_vm_and_a_secure_receiver() -> None:
    def share(sender: int, receiver: int) -> bytes:
        t = MemTransaction(
            sender,
            abi.FFA_NORMAL_MEM_REG_ATTR,
            0,
            0,
            0,
            [MemAccess(receiver, abi.FFA_MEM_ACC_RW)],
            Composite(1, (Constituent(0x80040000, 1),)),
        )
        return t.encode(abi.FFA_VERSION_1_2)

    n = len(share(1, 0x8002))
    (msg,) = _smc(_harness(share(2, 0x8002)), abi.FFA_MEM_SHARE_64, n, n)
    assert "descriptor sender 0x2, during VM 0x1's call" in msg
    (msg,) = _smc(_harness(share(1, 3)), abi.FFA_MEM_SHARE_64, n, n)
    assert "a share with no secure receiver (0x3)" in msg


def test_wire_notification_calls_are_relayed_unchanged() -> None:
    guest = abi.regs(abi.FFA_NOTIFICATION_BIND, (0x8001 << 16) | 1, 0, 0x1, 0x2)

    def relay(*regs: int) -> list[str]:
        h = _harness(b"")
        with h.thread("d0v0"):
            h.call("hvc", "d0v0", guest)
            h.call("smc", "xen", abi.regs(*regs))
            h.ret("smc", "xen", abi.success())
            h.ret("hvc", "d0v0", abi.success())
        return [f.message for f in h.findings]

    assert relay(*guest) == []
    (msg,) = relay(abi.FFA_NOTIFICATION_BIND, (0x8001 << 16) | 1, 0, 0x2, 0x1)
    assert "w3=0x2 where the guest's call had 0x1" in msg
