"""wire: an SMC Xen makes to the SPMC, or a descriptor it hands over in its TX buffer, that
breaks FF-A's layout rules (``reference/ffa-abi.md`` sections 2 and 3).

The SPMC model, like Hafnium, accepts some malformed input (it reads what it needs and ignores
the rest, or tolerates a field the spec says must be zero); a mediator that relies on that is
one firmware update away from failure, and one that writes garbage where the spec says zero
may leak a guest's data to the secure world. So every SMC that Xen makes is checked, before the
SPMC sees it:

- **registers**: each function's input registers (:data:`REGS`: which bits of which w/x
  register may be set); every other register up to x17, and every reserved bit, must be zero.
  SMC32 functions are judged on the low 32 bits of each register (SMCCC: the callee ignores
  the upper halves);
- **values**: RXTX_MAP's addresses 4 KiB aligned and a non-zero page count; MEM_SHARE's
  fragment no longer than the total nor than Xen's TX buffer;
- **descriptors in Xen's TX buffer**: the endpoint RX/TX descriptor of a forwarded RXTX_MAP
  (offsets 8-byte aligned and inside the buffer, reserved fields zero, composites consistent:
  one total page count, constituents 4 KiB aligned and non-empty), the memory transaction
  descriptor of a single-fragment MEM_SHARE/LEND/DONATE (the strict decoder of ``ffasim.desc``:
  reserved fields, EMAD size and offset alignment, composite offsets, page sums).

- **relays**: NOTIFICATION_BIND/UNBIND/SET forwarded for a guest carry its endpoints (w1)
  and bitmap halves (w3, w4) unchanged;
- **on whose behalf**: a direct request, MSG_SEND2 or share that Xen forwards during a VM's
  hypercall names that VM as its sender, and a forwarded share has a secure receiver.

It sees only what Xen sends; the SPMC's answers and what partitions send are the SPMC's
business. A multi-fragment share is checked for its register fields only, and a forwarded
MSG_SEND2 for its registers: the SPMC reads that message from the VM's own TX buffer, guest
data that Xen does not write.
"""

from __future__ import annotations

import re
from typing import Any

from ... import abi
from ...desc import Composite, DescriptorError, MemTransaction, RxTxDescriptor
from ...machine.events import MEM
from ._base import CallTracking
from .ownership import HYP_ENDPOINT, find_spmc

M32 = abi.MASK32
M64 = abi.MASK64
_SHARE_FIDS = (
    abi.FFA_MEM_SHARE_32,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_MEM_LEND_32,
    abi.FFA_MEM_LEND_64,
    abi.FFA_MEM_DONATE_32,
    abi.FFA_MEM_DONATE_64,
)
_SENDER_IN_W1 = frozenset(
    {
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
        abi.FFA_MSG_SEND2,
    }
)
_RELAYED = frozenset(
    {abi.FFA_NOTIFICATION_BIND, abi.FFA_NOTIFICATION_UNBIND, abi.FFA_NOTIFICATION_SET}
)
_VCPU = re.compile(r"d(\d+)v\d+\Z")
_PARTINFO_UUID = {1: M32, 2: M32, 3: M32, 4: M32}
_NOTIF_BITMAP = {3: M32, 4: M32}

REGS: dict[int, dict[int, int]] = {
    abi.FFA_VERSION: {1: 0x7FFFFFFF},
    abi.FFA_FEATURES: {1: M32},  # w2 only for MEM_RETRIEVE_REQ (see _features)
    abi.FFA_ID_GET: {},
    abi.FFA_SPM_ID_GET: {},
    abi.FFA_RX_ACQUIRE: {1: 0xFFFF},
    abi.FFA_RX_RELEASE: {1: 0xFFFF},
    abi.FFA_RXTX_MAP_32: {1: M32, 2: M32, 3: M32},
    abi.FFA_RXTX_MAP_64: {1: M64, 2: M64, 3: M32},
    abi.FFA_RXTX_UNMAP: {1: 0xFFFF0000},
    abi.FFA_PARTITION_INFO_GET: {**_PARTINFO_UUID, 5: 0x1},
    abi.FFA_PARTITION_INFO_GET_REGS: {1: M64, 2: M64, 3: M32},
    abi.FFA_MSG_SEND_DIRECT_REQ_32: {1: M32, 3: M32, 4: M32, 5: M32, 6: M32, 7: M32},
    abi.FFA_MSG_SEND_DIRECT_REQ_64: {1: M32, 3: M64, 4: M64, 5: M64, 6: M64, 7: M64},
    abi.FFA_MSG_SEND_DIRECT_REQ2: {1: M32, **{i: M64 for i in range(2, 18)}},
    abi.FFA_RUN: {1: M32},
    abi.FFA_MSG_SEND2: {1: 0xFFFF0000},  # flags: VMs (and Xen for them) pass 0
    **{fid: {1: M32, 2: M32, 3: M64, 4: M32} for fid in _SHARE_FIDS},
    abi.FFA_MEM_RETRIEVE_REQ_32: {1: M32, 2: M32, 3: M32, 4: M32},
    abi.FFA_MEM_RETRIEVE_REQ_64: {1: M32, 2: M32, 3: M64, 4: M32},
    abi.FFA_MEM_FRAG_TX: {1: M32, 2: M32, 3: M32, 4: 0xFFFF0000},
    abi.FFA_MEM_FRAG_RX: {1: M32, 2: M32, 3: M32, 4: 0xFFFF0000},
    abi.FFA_MEM_RELINQUISH: {},
    abi.FFA_MEM_RECLAIM: {1: M32, 2: M32, 3: 0x3},
    abi.FFA_NOTIFICATION_BITMAP_CREATE: {1: 0xFFFF, 2: M32},
    abi.FFA_NOTIFICATION_BITMAP_DESTROY: {1: 0xFFFF},
    abi.FFA_NOTIFICATION_BIND: {1: M32, 2: 0x1, **_NOTIF_BITMAP},
    abi.FFA_NOTIFICATION_UNBIND: {1: M32, **_NOTIF_BITMAP},
    abi.FFA_NOTIFICATION_SET: {1: M32, 2: 0xFFFF0003, **_NOTIF_BITMAP},
    abi.FFA_NOTIFICATION_GET: {1: M32, 2: 0xF},
    abi.FFA_NOTIFICATION_INFO_GET_32: {},
    abi.FFA_NOTIFICATION_INFO_GET_64: {},
}
"""Per function ID (as Xen sends it), the bits each input register may carry."""


def register_problems(r: tuple[int, ...]) -> list[str]:
    """What is wrong with the registers of SMC ``r`` (``[]``: nothing, or an unknown ID)."""
    fid = r[0] & M32
    rule = REGS.get(fid)
    if rule is None:
        return []
    if fid == abi.FFA_FEATURES and r[1] & M32 in (
        abi.FFA_MEM_RETRIEVE_REQ_32,
        abi.FFA_MEM_RETRIEVE_REQ_64,
    ):
        rule = {1: M32, 2: 0x2}  # input properties: bit 1, NS-bit support
    direct = fid in (abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.FFA_MSG_SEND_DIRECT_REQ_64)
    if direct and r[2] & abi.FFA_MSG_FLAG_FRAMEWORK:
        rule = {**rule, 2: abi.FFA_MSG_FLAG_FRAMEWORK | abi.FFA_MSG_TYPE_MASK}
    wide = abi.is_64bit_fid(fid) or fid == abi.FFA_MSG_SEND_DIRECT_REQ2
    out = []
    for i in range(1, abi.NUM_REGS):
        value = r[i] if wide or i >= 8 else r[i] & M32
        extra = value & ~rule.get(i, 0)
        if extra:
            reg = f"x{i}" if wide or i >= 8 else f"w{i}"
            out.append(f"{reg}=0x{value:x} sets bits 0x{extra:x} that must be zero")
    return out


def _rxtx_problems(buf: bytes) -> list[str]:
    """The endpoint RX/TX descriptor rules beyond the decoder's (which Hafnium's leniency
    shares): pad, alignment, composites, one page count."""
    try:
        d = RxTxDescriptor.decode(buf, align=8)
    except DescriptorError as e:
        return [f"endpoint RX/TX descriptor: {e}"]
    out = []
    if min(d.rx_offset, d.tx_offset) >= 16 and int.from_bytes(buf[12:16], "little"):
        out.append("endpoint RX/TX descriptor: reserved bytes 12..15 are not zero")
    for name, off in (("RX", d.rx_offset), ("TX", d.tx_offset)):
        try:
            comp = Composite.decode(buf, off, strict=True)
        except DescriptorError as e:
            out.append(f"endpoint RX/TX descriptor: {name} composite: {e}")
            continue
        if not comp.constituents:
            out.append(f"endpoint RX/TX descriptor: {name} composite has no range")
        for c in comp.constituents:
            if c.address % abi.FFA_PAGE_SIZE or not c.page_count:
                out.append(
                    f"endpoint RX/TX descriptor: {name} range 0x{c.address:x}+{c.page_count} "
                    f"pages is not a 4 KiB-aligned, non-empty range"
                )
        if comp.total_page_count == 0:
            out.append(f"endpoint RX/TX descriptor: {name} composite has 0 pages")
    if not out and d.rx.total_page_count != d.tx.total_page_count:
        out.append(
            f"endpoint RX/TX descriptor: RX has {d.rx.total_page_count} pages, TX "
            f"{d.tx.total_page_count}"
        )
    return out


class WireMonitor(CallTracking):
    """Reports SMCs of Xen that break a register or descriptor rule, once per function and
    rule."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: set[tuple[int, str]] = set()
        self.guest_args: dict[str, tuple[int, ...]] = {}
        """The registers of the guest hypercall each context is in."""

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer == "hvc" and args:
            self.guest_args[self.context(caller)] = args
            return
        if layer != "smc" or caller != "xen" or not args:
            return
        problems = register_problems(args)
        problems += self._value_problems(args)
        problems += self._sender_problems(args)
        problems += self._relay_problems(args)
        fid = args[0] & M32
        for p in problems:
            key = (fid, _masked_key(p))
            if key in self.reported:
                continue
            self.reported.add(key)
            ctx = self.execution.machine.current
            self.report(
                "wire",
                f"xen's {abi.name(fid)} to the SPMC: {p} ({self.where(ctx)})",
                threads=(ctx,),
                calls=self.calls_of(ctx),
            )

    # -- on whose behalf --------------------------------------------------------------------
    def _sender_problems(self, r: tuple[int, ...]) -> list[str]:
        """A message or share Xen forwards during a VM's hypercall names that VM as its sender
        (Xen checks the guest's claim, or writes its own ID): anything else lets one VM act as
        another endpoint, or as the hypervisor (ID 0), towards the secure world."""
        m = _VCPU.match(self.execution.machine.current)
        if m is None:
            return []
        vm_id = int(m.group(1)) + 1
        fid = r[0] & M32
        if fid in _SENDER_IN_W1:
            sender = r[1] >> 16 & 0xFFFF
            if sender != vm_id:
                return [f"sender 0x{sender:x} in w1, during VM 0x{vm_id:x}'s call"]
        elif fid in _SHARE_FIDS and not (r[3] or r[4]) and (r[1] & M32) == (r[2] & M32):
            buf = self._tx()
            if buf is None or (r[2] & M32) > len(buf):
                return []
            try:
                tx = MemTransaction.decode(buf, self._version(), length=r[2] & M32)
            except DescriptorError:
                return []  # reported by the layout rules
            out = []
            if tx.sender != vm_id:
                out.append(f"descriptor sender 0x{tx.sender:x}, during VM 0x{vm_id:x}'s call")
            if tx.receivers and not any(a.receiver & 0x8000 for a in tx.receivers):
                ids = ", ".join(f"0x{a.receiver:x}" for a in tx.receivers)
                out.append(f"a share with no secure receiver ({ids}): none of the SPMC's business")
            return out
        return []

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "hvc":
            self.guest_args.pop(self.context(caller), None)
        super().ret(layer, caller, result)

    def _relay_problems(self, r: tuple[int, ...]) -> list[str]:
        """Notification calls Xen relays for a guest carry the guest's endpoints and bitmaps
        unchanged: Xen checks them, it has nothing to add."""
        fid = r[0] & M32
        if fid not in _RELAYED:
            return []
        guest = self.guest_args.get(self.execution.machine.current)
        if guest is None or guest[0] & M32 != fid:
            return []
        out = []
        for reg in (1, 3, 4):
            mine, theirs = r[reg] & M32, guest[reg] & M32
            if mine != theirs:
                out.append(f"w{reg}=0x{mine:x} where the guest's call had 0x{theirs:x}")
        return out

    # -- values and descriptors --------------------------------------------------------------
    def _value_problems(self, r: tuple[int, ...]) -> list[str]:
        fid = r[0] & M32
        if fid in (abi.FFA_RXTX_MAP_32, abi.FFA_RXTX_MAP_64):
            if r[1] == r[2] == r[3] == 0:
                buf = self._tx()
                return [] if buf is None else _rxtx_problems(buf)
            out = []
            for name, addr in (("TX", r[1]), ("RX", r[2])):
                if addr % abi.FFA_PAGE_SIZE:
                    out.append(f"{name} address 0x{addr:x} is not 4 KiB aligned")
            if not r[3] & M32:
                out.append("page count 0")
            return out
        if fid in _SHARE_FIDS:
            return self._share_problems(r)
        return []

    def _share_problems(self, r: tuple[int, ...]) -> list[str]:
        total, frag = r[1] & M32, r[2] & M32
        out = []
        if frag > total:
            out.append(f"fragment length {frag} exceeds the total length {total}")
        if r[3] or r[4]:
            return out  # a buffer of its own: not Xen's TX
        buf = self._tx()
        if buf is None:
            return out
        if frag > len(buf):
            out.append(f"fragment length {frag} exceeds the {len(buf)}-byte TX buffer")
        elif frag == total and not out:
            try:
                MemTransaction.decode(buf, self._version(), length=frag)
            except DescriptorError as e:
                out.append(f"memory transaction descriptor: {e}")
        return out

    # -- Xen's buffers, as the SPMC knows them ---------------------------------------------------
    def _hyp_mailbox(self) -> Any:
        spmc = find_spmc(self.execution.machine)
        mailboxes = getattr(spmc, "mailboxes", None)
        return None if not mailboxes else mailboxes.get(HYP_ENDPOINT)

    def _tx(self) -> bytes | None:
        """The bytes of the TX buffer Xen registered with the SPMC (no events: a monitor's
        read), or ``None`` when there is none."""
        mb = self._hyp_mailbox()
        frames = getattr(mb, "tx_frames", None)
        if not frames:
            return None
        for f in frames:
            self.declare(MEM, f.mfn, False)
        return b"".join(bytes(f.data) if f.data is not None else bytes(4096) for f in frames)

    def _version(self) -> int:
        spmc = find_spmc(self.execution.machine)
        eps = getattr(spmc, "endpoints", None)
        hyp = eps.get(HYP_ENDPOINT) if eps else None
        return int(getattr(hyp, "version", abi.FFA_VERSION_1_2))


def _masked_key(problem: str) -> str:
    """A problem's text without its numbers: one report per rule, not per value."""
    out = []
    for word in problem.split():
        out.append("#" if any(c.isdigit() for c in word) else word)
    return " ".join(out)


__all__ = ["REGS", "WireMonitor", "register_problems"]
