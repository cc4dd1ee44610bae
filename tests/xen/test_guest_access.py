"""Guest memory as the C touches it: per handler, the accesses Xen's C makes to a guest's RX and
TX pages (one per field read, ``ACCESS_ONCE``, ``memcpy``, store or ``memset``, in the C's
order, with the locks held around them), compared with the model's memory events.

Each expected list is written from the C of the version named (upstream HEAD c447b7308b for
``head``, 9e9504ef32 for ``seed-v1``), the C expression in the comment. ``("r", "TX", off, n)``
is Xen reading ``n`` bytes at ``off`` of the guest's TX page, ``("w", "RX", ...)`` writing its
RX page; ``("lock", name)``/``("unlock", name)`` are Xen's locks taken and dropped meanwhile,
``("smc", name)`` its calls to the SPMC.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from ffasim import abi
from ffasim.machine import EventSink, Frame, Machine
from ffasim.system import VM, System
from ffasim.xen.ffa_private import Cursor, MappedBuf

from .helpers import RX_PAGE, TX_PAGE, code, negotiate, ready, share_descriptor

Access = tuple[Any, ...]


class AccessSink(EventSink):
    """Records Xen's accesses to the pages named in ``pages`` and the locks taken meanwhile."""

    def __init__(self) -> None:
        self.pages: dict[int, str] = {}
        self.events: list[Access] = []
        self.recording = False

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        name = self.pages.get(frame.mfn)
        if self.recording and party == "xen" and name is not None:
            self.events.append(("w" if write else "r", name, offset, size))

    @staticmethod
    def xen_lock(lock: Any) -> bool:
        """Xen's own locks (not the SPMC's, nor the domain-pause marker of a hypercall exit)."""
        return not lock.name.startswith("spmc.") and not lock.name.endswith(".pause")

    def acquired(self, lock: Any) -> None:
        if self.recording and self.xen_lock(lock):
            self.events.append(("lock", lock.name))

    def released(self, lock: Any) -> None:
        if self.recording and self.xen_lock(lock):
            self.events.append(("unlock", lock.name))

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        if self.recording and layer == "smc":
            self.events.append(("smc", abi.name(args[0])))


def watch(sink: AccessSink, vm: VM, prefix: str = "") -> None:
    sink.pages[vm.domain.ram[TX_PAGE].mfn] = prefix + "TX"
    sink.pages[vm.domain.ram[RX_PAGE].mfn] = prefix + "RX"


def record(sink: AccessSink, vm: VM, *args: int) -> tuple[abi.Regs, list[Access]]:
    sink.events = []
    sink.recording = True
    r = vm.smc(*args)
    sink.recording = False
    return r, sink.events


def accesses_only(events: list[Access]) -> list[Access]:
    return [e for e in events if e[0] in ("r", "w")]


@pytest.fixture
def sink() -> AccessSink:
    return AccessSink()


# -- FFA_MEM_SHARE ----------------------------------------------------------------------------

# read_mem_transaction(), v1.1 header: one load per field, in the C's order.
HEADER_1_1 = [
    ("r", "TX", 0, 2),  # descr->sender_id
    ("r", "TX", 2, 2),  # descr->mem_reg_attr
    ("r", "TX", 4, 4),  # descr->flags
    ("r", "TX", 8, 8),  # descr->handle
    ("r", "TX", 16, 8),  # descr->tag
    ("r", "TX", 28, 4),  # descr->mem_access_count
    ("r", "TX", 24, 4),  # descr->mem_access_size
    ("r", "TX", 32, 4),  # descr->mem_access_offs
]
EMAD_AT_48 = [
    ("r", "TX", 48, 2),  # ACCESS_ONCE(mem_access->access_perm.endpoint_id)
    ("r", "TX", 50, 1),  # ACCESS_ONCE(mem_access->access_perm.perm)
    ("r", "TX", 52, 4),  # ACCESS_ONCE(mem_access->region_offs)
]
REGION_AT_64_ONE_RANGE = [
    ("r", "TX", 68, 4),  # ACCESS_ONCE(region_descr->address_range_count)
    ("r", "TX", 64, 4),  # ACCESS_ONCE(region_descr->total_page_count)
    ("r", "TX", 88, 4),  # get_shm_pages: ACCESS_ONCE(range[0].page_count)
    ("r", "TX", 80, 8),  # get_shm_pages: ACCESS_ONCE(range[0].address)
]


def test_head_mem_share_reads_each_field_once_in_order_under_tx_lock(sink: AccessSink) -> None:
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    watch(sink, vm)
    desc = share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)])
    vm.write(vm.ipa(TX_PAGE), desc)
    r, events = record(sink, vm, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
    assert code(r) == 0
    lock, unlock = ("lock", "d0.ffa.tx_lock"), ("unlock", "d0.ffa.tx_lock")
    inner = events[events.index(lock) + 1 : events.index(unlock)]
    assert accesses_only(inner) == HEADER_1_1 + EMAD_AT_48 + REGION_AT_64_ONE_RANGE
    assert accesses_only(events) == accesses_only(inner)  # nothing outside the TX lock


def test_head_mem_share_reads_the_impdef_of_a_1_2_emad_in_one_memcpy(sink: AccessSink) -> None:
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    watch(sink, vm)
    desc = share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)], emad_size=32)
    vm.write(vm.ipa(TX_PAGE), desc)
    r, events = record(sink, vm, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
    assert code(r) == 0
    region = [("r", "TX", off + 16, n) for _, _, off, n in REGION_AT_64_ONE_RANGE]
    assert accesses_only(events) == [
        *HEADER_1_1,
        *EMAD_AT_48,
        ("r", "TX", 56, 16),  # memcpy(impdef, mem_access->impdef, sizeof(impdef))
        *region,
    ]


def test_head_mem_share_v1_0_header_reads(sink: AccessSink) -> None:
    from .helpers import share_descriptor_v1_0

    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_0)
    watch(sink, vm)
    desc = share_descriptor_v1_0(vm.id, 0x8002, [(vm.ipa(4), 1)])
    vm.write(vm.ipa(TX_PAGE), desc)
    r, events = record(sink, vm, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
    assert code(r) == 0
    assert accesses_only(events) == [
        ("r", "TX", 0, 2),  # descr->sender_id
        ("r", "TX", 2, 1),  # descr->mem_reg_attr (u8 in the 1.0 layout)
        ("r", "TX", 4, 4),  # descr->flags
        ("r", "TX", 8, 8),  # descr->handle
        ("r", "TX", 16, 8),  # descr->tag
        ("r", "TX", 28, 4),  # descr->mem_access_count
        ("r", "TX", 32, 2),  # the EMAD at offsetof(mem_access_array)
        ("r", "TX", 34, 1),
        ("r", "TX", 36, 4),
        ("r", "TX", 52, 4),  # the region at 48
        ("r", "TX", 48, 4),
        ("r", "TX", 72, 4),
        ("r", "TX", 64, 8),
    ]


def test_mem_share_overlapping_offsets_are_read_again_as_the_c_does(sink: AccessSink) -> None:
    """A composite placed over the header: Xen loads those bytes again (a second field of the
    same memory), as the C does; the model no longer hides the re-read."""
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    watch(sink, vm)
    desc = bytearray(share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)]))
    struct.pack_into("<I", desc, 52, 0)  # region_offs = 0: the composite is the header
    vm.write(vm.ipa(TX_PAGE), bytes(desc))
    _, events = record(sink, vm, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
    reads = accesses_only(events)
    assert reads[: len(HEADER_1_1) + 3] == HEADER_1_1 + EMAD_AT_48
    assert reads[len(HEADER_1_1) + 3 : len(HEADER_1_1) + 5] == [
        ("r", "TX", 4, 4),  # address_range_count: the header's flags, read again
        ("r", "TX", 0, 4),  # total_page_count: sender_id and mem_reg_attr, read again
    ]


def test_seed_mem_share_reads_each_emad_field_before_its_check(sink: AccessSink) -> None:
    system = System(variant="seed-v1", machine=Machine(sink))
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    watch(sink, vm)
    desc = share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)])
    vm.write(vm.ipa(TX_PAGE), desc)
    r, events = record(sink, vm, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
    assert code(r) == 0
    assert accesses_only(events) == HEADER_1_1 + EMAD_AT_48 + REGION_AT_64_ONE_RANGE
    # A non-secure receiver: the seed stops after the endpoint read (HEAD reads all three).
    vm.write(vm.ipa(TX_PAGE), share_descriptor(vm.id, 0x0002, [(vm.ipa(4), 1)]))
    _, events = record(sink, vm, abi.FFA_MEM_SHARE_64, len(desc), len(desc))
    assert accesses_only(events) == [*HEADER_1_1, ("r", "TX", 48, 2)]


def test_mem_share_past_the_tx_buffer_reads_nothing(sink: AccessSink) -> None:
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    watch(sink, vm)
    r, events = record(sink, vm, abi.FFA_MEM_SHARE_64, 4097, 4097)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 0, 0)  # upstream: ret still 0, handle 0
    assert accesses_only(events) == []


# -- FFA_PARTITION_INFO_GET -------------------------------------------------------------------


def _partinfo_writes(n_sps: int, vms: list[int]) -> list[Access]:
    """ffa_copy_info() per entry: a memcpy of min(dst, src) bytes, a memset of the rest."""
    out: list[Access] = [("w", "RX", 24 * i, 24) for i in range(n_sps)]
    for i in vms:
        out += [("w", "RX", 24 * i, 8), ("w", "RX", 24 * i + 8, 16)]
    return out


def test_head_partinfo_writes_each_entry_as_ffa_copy_info_goes(sink: AccessSink) -> None:
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    watch(sink, vm)
    r, events = record(sink, vm, abi.FFA_PARTITION_INFO_GET)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 4, 24)
    # The three cached SPs (24-byte entries), then the v1.2 caller's own 1.0 entry, padded;
    # written after ffa_rx_acquire() dropped rx_lock, with no lock held.
    assert events == [
        ("lock", "d0.ffa.rx_lock"),
        ("smc", "FFA_RX_ACQUIRE"),  # RX_ACQUIRE is probed (with the Hafnium workaround)
        ("unlock", "d0.ffa.rx_lock"),
        *_partinfo_writes(3, [3]),
    ]


def test_seed_partinfo_writes_the_entries_under_the_spmc_rx_lock(sink: AccessSink) -> None:
    system = System(variant="seed-v1", machine=Machine(sink))
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    watch(sink, vm)
    r, events = record(sink, vm, abi.FFA_PARTITION_INFO_GET)
    assert r[:4] == (abi.FFA_SUCCESS_32, 0, 3, 24)
    assert events == [
        ("lock", "d0.ffa.rx_lock"),
        ("unlock", "d0.ffa.rx_lock"),
        ("lock", "ffa_spmc_rx_lock"),
        ("smc", "FFA_PARTITION_INFO_GET"),
        *_partinfo_writes(3, []),  # memcpy from Xen's RX, entry by entry
        ("smc", "FFA_RX_RELEASE"),  # ffa_rxtx_spmc_rx_release()
        ("unlock", "ffa_spmc_rx_lock"),
    ]


def test_partinfo_out_of_space_leaves_the_entries_written_so_far(sink: AccessSink) -> None:
    """ffa_copy_info fails on the entry that does not fit, after the earlier ones were written
    (a buffer end two entries in; one page always fits 64 SPs, so the end is moved here)."""
    system = System(variant="head", machine=Machine(sink))
    vm = ready(system.create_vm())
    watch(sink, vm)
    rx = MappedBuf(system.machine, vm.domain.ram[RX_PAGE].pa, 4096, "RX")
    sink.recording = True
    ret, count = system.xen.ffa_get_sp_partinfo(abi.NIL_UUID, Cursor(rx), 2 * 24, 24)
    sink.recording = False
    assert (ret, count) == (abi.FFA_RET_NO_MEMORY, 0)
    assert sink.events == [("w", "RX", 0, 24), ("w", "RX", 24, 24)]


# -- FFA_MSG_SEND2 ----------------------------------------------------------------------------


def _send2_pair(sink: AccessSink, variant: str, vers: int) -> tuple[VM, VM]:
    system = System(variant=variant, vm_to_vm=True, machine=Machine(sink))
    a = ready(system.create_vm(), vers)
    b = ready(system.create_vm(), vers)
    watch(sink, a, "a.")
    watch(sink, b, "b.")
    return a, b


def _send2(a: VM, b: VM, hdr_size: int, payload: bytes) -> None:
    hdr = struct.pack("<IIIII", 0, 0, hdr_size, a.id << 16 | b.id, len(payload))
    a.write(a.ipa(TX_PAGE), hdr.ljust(hdr_size, b"\0") + payload)


def test_head_send2_copies_the_header_once(sink: AccessSink) -> None:
    a, b = _send2_pair(sink, "head", abi.FFA_VERSION_1_2)
    _send2(a, b, 40, b"hello")
    r, events = record(sink, a, abi.FFA_MSG_SEND2)
    assert code(r) == 0
    assert accesses_only(events) == [
        ("r", "a.TX", 0, 40),  # memcpy(&src_msg, tx_buf, sizeof(src_msg)); barrier()
        ("w", "b.RX", 0, 4),  # dst_msg->flags
        ("w", "b.RX", 4, 4),  # dst_msg->reserved
        ("w", "b.RX", 8, 4),  # dst_msg->msg_offset
        ("w", "b.RX", 12, 4),  # dst_msg->send_recv_id = src_msg->send_recv_id
        ("w", "b.RX", 16, 4),  # dst_msg->msg_size = src_msg->msg_size
        ("w", "b.RX", 20, 4),  # dst_msg->reserved2
        ("w", "b.RX", 24, 8),  # dst_msg->uuid[0]
        ("w", "b.RX", 32, 8),  # dst_msg->uuid[1]
        ("r", "a.TX", 40, 5),  # memcpy(rx_buf + 40, src_buf + msg_offset, msg_size): read
        ("w", "b.RX", 40, 5),  # ... and write
    ]


def test_head_send2_from_a_v1_1_sender_reads_payload_bytes_twice(sink: AccessSink) -> None:
    """Upstream reads a 40-byte header even from a v1.1 sender, whose payload starts at 20:
    bytes 20..39 are read as the (ignored) UUID, then again as payload."""
    a, b = _send2_pair(sink, "head", abi.FFA_VERSION_1_1)
    _send2(a, b, 20, b"hello")
    r, events = record(sink, a, abi.FFA_MSG_SEND2)
    assert code(r) == 0
    reads = [e for e in accesses_only(events) if e[0] == "r"]
    assert reads == [("r", "a.TX", 0, 40), ("r", "a.TX", 20, 5)]


@pytest.mark.parametrize(
    "variant,vers,hdr",
    [("xen-4.22", abi.FFA_VERSION_1_2, 40), ("seed-v1", abi.FFA_VERSION_1_1, 20)],
)
def test_send2_before_the_barrier_reloads_the_header_after_validation(
    sink: AccessSink, variant: str, vers: int, hdr: int
) -> None:
    """Before c447b7308b the compiler may load the header's fields from the TX again where
    ffa_msg_send2_vm uses them; the model takes that compilation."""
    a, b = _send2_pair(sink, variant, vers)
    _send2(a, b, hdr, b"hello")
    r, events = record(sink, a, abi.FFA_MSG_SEND2)
    assert code(r) == 0
    reads = [e for e in accesses_only(events) if e[0] == "r"]
    assert reads == [
        ("r", "a.TX", 0, hdr),  # memcpy(&src_msg, ...), no barrier()
        ("r", "a.TX", 16, 4),  # src_msg->msg_size (the space check), reloaded
        ("r", "a.TX", 12, 4),  # src_msg->send_recv_id (the receiver's header), reloaded
        ("r", "a.TX", 16, 4),  # src_msg->msg_size (the receiver's header), reloaded
        ("r", "a.TX", 16, 4),  # src_msg->msg_size (the memcpy), reloaded
        ("r", "a.TX", 8, 4),  # src_msg->msg_offset (the memcpy), reloaded
        ("r", "a.TX", hdr, 5),  # the payload
    ]


# -- handlers that never touch guest memory ---------------------------------------------------


@pytest.mark.parametrize("variant", ["head", "seed-v1"])
def test_calls_without_guest_buffers_touch_no_guest_memory(sink: AccessSink, variant: str) -> None:
    system = System(variant=variant, machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    watch(sink, vm)
    calls = [
        (abi.FFA_ID_GET,),
        (abi.FFA_FEATURES, abi.FFA_MEM_SHARE_64),
        (abi.FFA_RXTX_MAP_64, vm.ipa(TX_PAGE), vm.ipa(RX_PAGE), 1),
        (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(vm.id, 0x8001), 0, 1),
        (abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1),
        (abi.FFA_NOTIFICATION_BIND, abi.pack_target(0x8001, vm.id), 0, 1),
        (abi.FFA_MEM_RECLAIM, 1, 0, 0),
        (abi.FFA_RX_RELEASE,),
        (abi.FFA_RXTX_UNMAP,),
    ]
    for args in calls:
        _, events = record(sink, vm, *args)
        assert accesses_only(events) == [], abi.name(args[0])
