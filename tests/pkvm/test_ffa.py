"""ffa.c at head (Linux 7.2): each handler's checks in order, with the exact registers the host
gets back."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi, desc
from ffasim.machine import Machine, RecordingSink, SmcConduit
from ffasim.pkvm import Pkvm
from ffasim.pkvm.host import Host
from ffasim.pkvm.programs import RX, TX, d8_descriptor, share_descriptor
from ffasim.spmc import Spmc

from .helpers import ALL_ONES, booted, err, ok, one_page, ready, send, state

INVALID = abi.FFA_RET_INVALID_PARAMETERS


# -- the trap, the gate, passthrough ----------------------------------------------------------


def test_calls_before_ffa_version_are_invalid() -> None:
    _, host = booted()
    assert host.smc(abi.FFA_ID_GET) == err(INVALID)
    assert host.smc(abi.FFA_RXTX_MAP_64, host.ipa(TX), host.ipa(RX), 1) == err(INVALID)


def test_version_negotiation() -> None:
    system, host = booted()
    assert host.smc(abi.FFA_VERSION, 0x20000)[0] == ALL_ONES  # major 2: x0 only
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_3)[0] == abi.FFA_VERSION_1_2
    assert system.pkvm.has_version_negotiated.value == 1
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)[0] == abi.FFA_VERSION_1_2
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == ALL_ONES  # no downgrade now


def test_a_downgrade_before_negotiation_asks_el3_first() -> None:
    system, host = booted()
    sink = RecordingSink()
    system.machine.sink = sink
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)[0] == abi.FFA_VERSION_1_1
    smcs = [e[3][0] for e in sink.events if e[0] == "call" and e[1] == "smc"]
    assert smcs == [abi.FFA_VERSION, abi.FFA_ID_GET, abi.FFA_FEATURES]
    assert system.pkvm.hyp_ffa_version.value == abi.FFA_VERSION_1_1
    assert system.spmc.endpoints[0].version == abi.FFA_VERSION_1_1


def test_version_clears_every_other_register() -> None:
    _, host = booted()
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2, *range(1, 17)) == abi.regs(
        abi.FFA_VERSION_1_2
    )


def test_denied_functions_and_the_smc64_forms_linux_does_not_name() -> None:
    _, host = ready()
    for fid in (
        abi.FFA_RXTX_MAP_32,
        abi.FFA_MEM_DONATE_64,
        abi.FFA_MEM_RETRIEVE_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_RESP_32,
        abi.FFA_NOTIFICATION_INFO_GET_32,
        abi.FFA_CONSOLE_LOG_32,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
    ):
        assert host.smc(fid) == err(abi.FFA_RET_NOT_SUPPORTED), abi.name(fid)
    # arm_ffa.h defines these in one width only: the other passes through to the SPMC.
    sink = RecordingSink()
    host.system.machine.sink = sink
    host.smc(abi.FFA_NOTIFICATION_INFO_GET_64)
    host.smc(abi.FFA_CONSOLE_LOG_64, 2, 0x6968)
    forwarded = [e[3][0] for e in sink.events if e[:3] == ("call", "smc", "host")]
    assert forwarded == [abi.FFA_NOTIFICATION_INFO_GET_64, abi.FFA_CONSOLE_LOG_64]


def test_non_ffa_and_unfiltered_calls_pass_through_with_all_registers() -> None:
    _, host = ready()
    assert host.smc(abi.FFA_ID_GET) == ok()  # EL3 answers ID 0
    r = host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, 0x8001, 0, 1, 2, 3, 4, 5)
    assert r[0] == abi.FFA_MSG_SEND_DIRECT_RESP_64 and r[3:8] == (1, 2, 3, 4, 5)
    assert host.smc(0xC2000000)[0] == abi.FFA_ERROR  # not FF-A: EL3 (the SPMC) refuses it


def test_features() -> None:
    _, host = ready()
    assert host.smc(abi.FFA_FEATURES, abi.FFA_MEM_LEND_32) == ok(0)
    assert host.smc(abi.FFA_FEATURES, abi.FFA_MEM_RETRIEVE_REQ_64) == err(abi.FFA_RET_NOT_SUPPORTED)
    # Anything else is EL3's answer: RXTX_MAP_64 with v1.2's page count in w2[31:16].
    assert host.smc(abi.FFA_FEATURES, abi.FFA_RXTX_MAP_64)[:3] == (abi.FFA_SUCCESS_32, 0, 1 << 16)


# -- RXTX_MAP / RXTX_UNMAP --------------------------------------------------------------------


def test_rxtx_map_checks_and_state() -> None:
    system, host = booted()
    host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    m = abi.FFA_RXTX_MAP_64
    assert host.smc(m, host.ipa(TX), host.ipa(RX), 2) == err(INVALID)
    assert host.smc(m, host.ipa(TX) + 8, host.ipa(RX), 1) == err(INVALID)
    assert host.smc(m, host.ipa(TX), host.ipa(TX), 1) == err(INVALID)  # 2nd share_hyp fails
    assert not system.spmc.mailboxes[0].mapped  # the hypervisor's pair was unmapped again
    assert host.smc(m, host.ipa(TX), host.ipa(RX), 1) == ok()
    assert (state(system, host, TX), state(system, host, RX)) == ("SHARED_OWNED",) * 2
    assert system.spmc.mailboxes[0].mapped
    assert host.smc(m, host.ipa(3), host.ipa(4), 1) == err(abi.FFA_RET_DENIED)


def test_rxtx_map_of_memory_the_host_does_not_own() -> None:
    system, host = booted()
    host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    guest = system.create_guest()
    assert host.smc(abi.FFA_RXTX_MAP_64, guest.pa(0), host.ipa(RX), 1) == err(INVALID)


def test_rxtx_unmap() -> None:
    system, host = ready()
    assert host.smc(abi.FFA_RXTX_UNMAP, 1 << 16) == err(INVALID)
    assert host.smc(abi.FFA_RXTX_UNMAP, 0) == ok()
    assert (state(system, host, TX), state(system, host, RX)) == ("OWNED",) * 2
    assert not system.spmc.mailboxes[0].mapped
    assert host.smc(abi.FFA_RXTX_UNMAP, 0) == err(INVALID)


# -- MEM_SHARE / MEM_LEND ---------------------------------------------------------------------


def test_share_and_reclaim() -> None:
    system, host = ready()
    r = send(host, one_page(system, host))
    assert r[0] == abi.FFA_SUCCESS_32
    assert state(system, host, 2) == "SHARED_OWNED"
    assert host.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0) == ok()
    assert state(system, host, 2) == "OWNED"
    assert system.audit() == []


def test_share_32_is_reissued_as_64_and_lend_only_changes_the_function() -> None:
    system, host = ready()
    sink = RecordingSink()
    system.machine.sink = sink
    send(host, one_page(system, host), abi.FFA_MEM_SHARE_32)
    lend = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(3), 1)], attributes=0)
    assert send(host, lend, abi.FFA_MEM_LEND_32)[0] == abi.FFA_SUCCESS_32
    fids = [e[3][0] for e in sink.events if e[0] == "call" and e[1] == "smc"]
    assert fids == [abi.FFA_MEM_SHARE_64, abi.FFA_MEM_LEND_64]
    assert state(system, host, 3) == "SHARED_OWNED"  # a lent page stays the host's, mapped
    assert sorted(s.kind for s in system.spmc.shares.values()) == ["lend", "share"]


@pytest.mark.parametrize(
    ("regs", "code"),
    [
        ((96, 96, 1, 0), INVALID),  # x3: no dynamic buffers
        ((96, 96, 0, 1), INVALID),  # w4: likewise
        ((80, 96, 0, 0), INVALID),  # fragment longer than the total
        ((8192, 8192, 0, 0), INVALID),  # more than the TX page
        ((64, 64, 0, 0), INVALID),  # shorter than a v1.2 header and EMAD (80)
        ((0x10000, 96, 0, 0), abi.FFA_RET_NO_MEMORY),  # more than ffa_desc_buf
    ],
)
def test_share_register_checks(regs: tuple[int, int, int, int], code: int) -> None:
    system, host = ready()
    host.write(host.ipa(TX), one_page(system, host))
    assert host.smc(abi.FFA_MEM_SHARE_64, *regs) == err(code)


def _patched(data: bytes, fmt: str, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("fmt", "offset", "value"),
    [
        ("<I", 52, 0),  # composite offset 0
        ("<I", 28, 2),  # two EMADs
        ("<H", 0, 1),  # sender is not the host
        ("<I", 32, 0x1000),  # ep_mem_offset outside the fragment (a6b49d27c179)
        ("<I", 52, 0xFFFFFFF8),  # composite offset + 16 overflows (103e17aac09c)
        ("<I", 52, 0x48),  # constituents not a whole number of ranges
    ],
)
def test_share_descriptor_checks(fmt: str, offset: int, value: int) -> None:
    system, host = ready()
    assert send(host, _patched(one_page(system, host), fmt, offset, value)) == err(INVALID)
    assert state(system, host, 2) == "OWNED"


def test_share_without_buffers() -> None:
    system, host = booted()
    host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    data = one_page(system, host)
    assert host.smc(abi.FFA_MEM_SHARE_64, len(data), len(data)) == err(INVALID)


def test_share_of_a_page_twice_in_one_descriptor_is_denied_and_rolled_back() -> None:
    system, host = ready()
    data = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1), (host.ipa(2), 1)])
    assert send(host, data) == err(abi.FFA_RET_DENIED)
    assert state(system, host, 2) == "OWNED"


def test_share_of_a_guest_page_is_denied() -> None:
    system, host = ready()
    guest = system.create_guest()
    data = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1), (guest.pa(0), 1)])
    assert send(host, data) == err(abi.FFA_RET_DENIED)
    assert state(system, host, 2) == "OWNED"


def test_share_that_el3_refuses_is_unshared_and_el3s_answer_returned() -> None:
    system, host = ready()
    data = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2), 1)], receiver=0x8003 + 0x100)
    r = send(host, data)
    assert r[0] == abi.FFA_ERROR and abi.error_code(r) == INVALID
    assert r[2] == abi.to_u32(INVALID)  # EL3's register, 32 bits, not EL2's 64
    assert state(system, host, 2) == "OWNED"


def test_the_decoy_emad_is_refused_at_head() -> None:
    system, host = ready()
    guest = system.create_guest()
    assert send(host, d8_descriptor(abi.FFA_VERSION_1_2, host.ipa(2), guest.pa(0))) == err(
        abi.FFA_RET_DENIED
    )


def test_unaligned_constituent_is_denied_at_head() -> None:
    system, host = ready(spmc_unaligned=True)
    data = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(2) + 0x800, 1)])
    assert send(host, data) == err(abi.FFA_RET_DENIED)
    assert system.spmc.shares == {}


# -- fragments --------------------------------------------------------------------------------


def _two_fragments(host: Host, pages: list[int]) -> tuple[bytes, int]:
    data = share_descriptor(abi.FFA_VERSION_1_2, [(host.ipa(p), 1) for p in pages])
    return data, len(data) - 16 * (len(pages) - 1)


def test_fragmented_share() -> None:
    system, host = ready()
    data, first = _two_fragments(host, [2, 4])
    r = send(host, data, fraglen=first)
    assert r[:4] == (abi.FFA_MEM_FRAG_RX, r[1], r[2], first)
    assert (state(system, host, 2), state(system, host, 4)) == ("SHARED_OWNED", "OWNED")
    host.write(host.ipa(TX), data[first:])
    r2 = host.smc(abi.FFA_MEM_FRAG_TX, r[1], r[2], 16, 0)
    assert r2[0] == abi.FFA_SUCCESS_32
    assert state(system, host, 4) == "SHARED_OWNED"
    assert host.smc(abi.FFA_MEM_RECLAIM, r2[2], r2[3], 0) == ok()
    assert (state(system, host, 2), state(system, host, 4)) == ("OWNED", "OWNED")


def test_a_failed_fragment_cannot_be_aborted_at_hafnium_and_leaves_pages_stuck() -> None:
    system, host = ready()
    guest = system.create_guest()
    data, first = _two_fragments(host, [2, 4])
    r = send(host, data, fraglen=first)
    host.write(host.ipa(TX), struct.pack("<QII", guest.pa(0), 1, 0))
    sink = RecordingSink()
    system.machine.sink = sink
    assert host.smc(abi.FFA_MEM_FRAG_TX, r[1], r[2], 16, 0) == err(abi.FFA_RET_DENIED)
    # EL2 aborts with FFA_MEM_RECLAIM, which Hafnium refuses for an incomplete send: WARN.
    assert ("log", "log", "host0", "WARNING at EL2: res->a0 != FFA_SUCCESS") in sink.events
    assert state(system, host, 2) == "SHARED_OWNED"  # "stuck in that state forever"
    assert system.audit() == [
        "SPMC share 0x0 is incomplete (fragments still missing)",
        f"host page 0x{host.frames[2].mfn:x} is shared with FF-A (SHARED_OWNED) but no SPMC "
        f"share covers it",
    ]


@pytest.mark.parametrize(("fraglen", "code"), [(4112, INVALID), (24, INVALID)])
def test_frag_tx_length_checks(fraglen: int, code: int) -> None:
    _, host = ready()
    assert host.smc(abi.FFA_MEM_FRAG_TX, 0, 0, fraglen, 0) == err(code)


# -- reclaim ----------------------------------------------------------------------------------


def test_reclaim_of_an_unknown_handle_returns_el3s_answer() -> None:
    system, host = ready()
    r = host.smc(abi.FFA_MEM_RECLAIM, 7, 0, 0)
    assert r[0] == abi.FFA_ERROR and r[2] == abi.to_u32(INVALID)
    assert system.spmc.mailboxes[0].state.name == "EMPTY"


def test_reclaim_while_a_partition_holds_the_memory() -> None:
    system, host = ready()
    r = send(host, one_page(system, host))
    sp = system.spmc.partitions[0x8002]
    retrieve = system.spmc.entry  # the partition retrieves through its own mailbox
    req = desc.retrieve_request(abi.make_handle(r[2], r[3]), 0, [0x8002], abi.FFA_VERSION_1_2)
    system.machine.mem.write(sp.tx, req, sp.party)
    assert retrieve(0x8002, abi.regs(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req)))[0] == (
        abi.FFA_MEM_RETRIEVE_RESP
    )
    r2 = host.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)
    assert r2[0] == abi.FFA_ERROR and r2[2] == abi.to_u32(abi.FFA_RET_DENIED)
    assert state(system, host, 2) == "SHARED_OWNED"  # still lent: pages stay shared


# -- PARTITION_INFO_GET -----------------------------------------------------------------------


def test_partition_info_is_copied_and_the_hyp_rx_left_to_the_host() -> None:
    system, host = ready()
    r = host.smc(abi.FFA_PARTITION_INFO_GET)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 3, 24)
    assert int.from_bytes(host.read(host.ipa(RX), 2), "little") == 0x8001
    assert system.spmc.mailboxes[0].state.name == "FULL"  # EL2 did not release it
    assert host.smc(abi.FFA_RX_RELEASE) == ok()  # the host's passthrough does, at EL3
    assert host.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)[:3] == (abi.FFA_SUCCESS_32, 0, 3)


def test_partition_info_without_host_buffers_is_busy() -> None:
    _, host = booted()
    host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    assert host.smc(abi.FFA_PARTITION_INFO_GET) == err(abi.FFA_RET_BUSY)


# -- init ---------------------------------------------------------------------------------------


def test_without_ffa_firmware_the_proxy_stays_empty() -> None:
    system, host = booted(spmc_ffa=False)
    assert system.pkvm.hyp_buffers.tx.value is None
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2) == abi.regs(ALL_ONES)
    assert host.smc(abi.FFA_ID_GET) == err(INVALID)


def test_smccc_below_1_2_leaves_ffa_off() -> None:
    m = Machine()
    spmc = Spmc(m)
    pkvm = Pkvm(m, SmcConduit(m, spmc.entry, "pkvm"), SmcConduit(m, spmc.entry, "host"))
    pkvm.smccc_version = 0x10001
    assert pkvm.hyp_ffa_init(0x8000_0000) == 0
    assert pkvm.hyp_ffa_version.value == 0
    assert not spmc.endpoints[0].negotiated  # not even FFA_VERSION was asked
