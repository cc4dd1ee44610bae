"""The call families of ``ffasim hunt``'s programs: each draws the steps of one guest call
(well-formed, in the wrong state, malformed, spoofed) or of one system action, for the program
``generate.py`` is building. Every step accepts any outcome: only the monitors judge.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import abi, desc
from ..scenario import Step, step

GUEST_FAMILIES: tuple[str, ...] = (
    "version",  # FFA_VERSION, well-formed and not
    "features",  # FFA_FEATURES, FFA_ID_GET, FFA_SPM_ID_GET
    "rxtx",  # FFA_RXTX_MAP/UNMAP: again, before negotiating, beyond RAM, misaligned, sizes
    "rx",  # FFA_RX_RELEASE / FFA_RX_ACQUIRE in any state
    "partinfo",  # FFA_PARTITION_INFO_GET(_REGS), by UUID, count only, malformed
    "direct",  # FFA_MSG_SEND_DIRECT_REQ 32/64 and REQ2, to anyone, spoofed senders
    "send2",  # FFA_MSG_SEND2 well-formed and malformed headers
    "share",  # FFA_MEM_SHARE of own pages, RX/TX pages, the memory service's fill/sum
    "malformed",  # FFA_MEM_SHARE/LEND of mutated descriptors
    "frag",  # a descriptor in two fragments, FFA_MEM_FRAG_TX
    "reclaim",  # FFA_MEM_RECLAIM of own, other VMs' and bogus handles
    "notif",  # FFA_NOTIFICATION_BIND/UNBIND/SET/GET/INFO_GET
    "state",  # a call made twice, or in the state another call left: RX owned, unmapped...
    "tx_rewrite",  # the guest rewrites its TX while another vCPU's call reads it
    "raw",  # any function ID with random registers
)
"""The call families a vCPU's steps are drawn from."""

SYSTEM_FAMILIES: tuple[str, ...] = ("destroy", "sp_notify", "sp_send2", "tasklets", "timers")
"""The families of the non-vCPU threads: the toolstack destroying a VM at any point,
partitions signalling and messaging VMs, Xen's tasklets and timers running."""

VERSIONS: tuple[int, ...] = (abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2)

_PAGE = abi.FFA_PAGE_SIZE
_ANY = "any"
_MEMSVC = 0x8002
_SHARE_BASE = 8
"""RAM pages below this are for the RX/TX buffers; shares use pages from here up."""


@dataclass(frozen=True)
class Layout:
    """One VM as the generator planned it: where its buffers are and what it negotiates."""

    vcpus: int
    pages: int
    version: int
    rx: int
    tx: int
    buf_pages: int
    mapped: bool


# -- steps -------------------------------------------------------------------------------------


def _u32(buf: bytes | bytearray, at: int) -> int:
    return int.from_bytes(buf[at : at + 4], "little")


def _s(op: str, **keys: Any) -> Step:
    return step(op, expect=_ANY, **keys)


def _call(fid: int | str, *args: int | str, name: str | None = None) -> Step:
    keys: dict[str, Any] = {"call": fid, "args": list(args)}
    if name is not None:
        keys["name"] = name
    return step("call", expect=_ANY, **keys)


_INTERESTING32 = (0, 1, 2, 0x10, 0x20, 0x30, 0x40, 0xFFF, 0x1000, 0x1001, 0x7FFFFFFF, 0xFFFFFFFF)


class _Maker:
    """Draws the steps of one program: knows its VMs, partitions and handle names."""

    def __init__(
        self,
        rng: random.Random,
        layouts: Sequence[Layout],
        sp_ids: Sequence[int],
        families: frozenset[str],
    ) -> None:
        self.rng = rng
        self.layouts = list(layouts)
        self.sp_ids = list(sp_ids)
        self.families = families
        self.names: list[str] = []
        self._next_name = 0

    # -- helpers -----------------------------------------------------------------------------

    def new_name(self) -> str:
        self._next_name += 1
        name = f"h{self._next_name}"
        self.names.append(name)
        return name

    def endpoint(self, vm: int) -> int:
        """Someone to talk to: a partition mostly, else a VM, self, or nobody."""
        r = self.rng.random()
        if r < 0.6:
            return self.rng.choice(self.sp_ids)
        if r < 0.8:
            return self.rng.randrange(len(self.layouts)) + 1
        if r < 0.9:
            return vm + 1
        return self.rng.choice((0, 0x7FFF, 0x8000, 0x80FF, 0xFFFF))

    def word(self) -> int:
        r = self.rng.random()
        if r < 0.5:
            return self.rng.choice(_INTERESTING32)
        if r < 0.8:
            return self.rng.getrandbits(16)
        return self.rng.getrandbits(64)

    def share_pages(self, vm: int) -> list[int]:
        lay = self.layouts[vm]
        r = self.rng.random()
        if r < 0.15:  # the caller's own RX/TX pages
            return sorted({lay.rx, lay.tx})
        n = self.rng.choice((1, 1, 2, 3))
        first = self.rng.randrange(_SHARE_BASE, lay.pages - n + 1)
        return list(range(first, first + n))

    def version_of(self, vm: int) -> int:
        return self.layouts[vm].version

    # -- the families ------------------------------------------------------------------------

    def guest_step(self, vm: int) -> list[Step]:
        fam = self.rng.choice(sorted(self.families & set(GUEST_FAMILIES)))
        return getattr(self, f"_{fam}")(vm)

    def _version(self, vm: int) -> list[Step]:
        r = self.rng.random()
        if r < 0.6:
            v = self.rng.choice(VERSIONS)
            return [_s("negotiate", version=f"1.{v & 0xFFFF}")]
        bad = self.rng.choice((0x20000, 0x10003, 0x1FFFF, 0x80010002, 0x10000))
        return [_call("FFA_VERSION", bad)]

    def _features(self, vm: int) -> list[Step]:
        r = self.rng.random()
        if r < 0.4:
            fid = self.rng.choice(
                (
                    "FFA_RXTX_MAP_64",
                    "FFA_MEM_SHARE_64",
                    "FFA_MSG_SEND2",
                    "FFA_NOTIFICATION_SET",
                    "FFA_PARTITION_INFO_GET_REGS",
                    "FFA_MSG_SEND_DIRECT_REQ2",
                    "FFA_RX_ACQUIRE",
                )
            )
            return [_s("features", fid=fid, props=self.rng.choice((0, 0, 1, 2)))]
        if r < 0.6:
            return [_call("FFA_FEATURES", self.rng.choice((1, 2, 3, 0x84000099, self.word())))]
        if r < 0.8:
            return [_s("id_get")]
        return [_call("FFA_SPM_ID_GET")]

    def _rxtx(self, vm: int) -> list[Step]:
        lay = self.layouts[vm]
        r = self.rng.random()
        if r < 0.3:
            return [_s("unmap")]
        if r < 0.5:  # map (again): the planned pages, or others
            return [
                _s(
                    "map",
                    rx_page=self.rng.choice((lay.rx, lay.rx + 4, lay.tx)),
                    tx_page=self.rng.choice((lay.tx, lay.tx + 4, lay.rx)),
                    pages=self.rng.choice((lay.buf_pages, 1, 2)),
                    bits=self.rng.choice((32, 64)),
                )
            ]
        if r < 0.65:
            return [_s("unmap"), _s("map", rx_page=lay.rx, tx_page=lay.tx, pages=lay.buf_pages)]
        # malformed: one thing wrong at a time (beyond RAM, misaligned, the same page twice,
        # a page count of 0 or huge), or a bogus ID in UNMAP
        if self.rng.random() < 0.2:
            return [_call("FFA_RXTX_UNMAP", self.rng.choice((vm + 1, (vm + 1) << 16, 0x8001)))]
        rx: int | str = f"ipa:{lay.rx}"
        tx: int | str = f"ipa:{lay.tx}"
        count = lay.buf_pages
        wrong = self.rng.choice(("rx", "tx", "count"))
        if wrong == "rx":
            rx = self.rng.choice((f"ipa:{lay.pages}", f"ipa:{lay.pages + 100}", 0, 0x10, tx))
        elif wrong == "tx":
            tx = self.rng.choice((f"ipa:{lay.pages}", 0xFFFFF000, 0x10, rx))
        else:
            count = self.rng.choice((0, 2, 0x40, 0x100, 0x10000 | 1))
        fid = self.rng.choice(("FFA_RXTX_MAP_64", "FFA_RXTX_MAP_32"))
        if self.rng.random() < 0.3:  # and unmap what it may have mapped
            return [_call(fid, rx, tx, count), _s("unmap")]
        if self.rng.random() < 0.6:  # unmapped first, so that the lookups run
            return [_s("unmap"), _call(fid, rx, tx, count)]
        return [_call(fid, rx, tx, count)]

    def _rx(self, vm: int) -> list[Step]:
        r = self.rng.random()
        if r < 0.6:
            return [_s("rx_release")]
        if r < 0.8:
            return [_call("FFA_RX_ACQUIRE", vm + 1)]
        return [_call("FFA_RX_RELEASE", self.rng.choice((vm + 1, 0x8001, 0xFFFF)))]

    def _partinfo(self, vm: int) -> list[Step]:
        r = self.rng.random()
        if r < 0.45:
            return [_s("partition_info", count_only=self.rng.random() < 0.3)]
        if r < 0.65:
            return [_s("partition_info_regs")]
        if r < 0.8:  # a raw call leaves RX owned by the guest until it releases it
            flags = self.rng.choice((0, 1, 2, 0xFFFFFFFF))
            words = [self.rng.getrandbits(32) if self.rng.random() < 0.3 else 0 for _ in range(4)]
            steps = [_call("FFA_PARTITION_INFO_GET", *words, flags)]
            if self.rng.random() < 0.5:  # then a call in the state that left (RX owned or not)
                then = self.rng.choice(("unmap", "rx_release", "twice", "again"))
                if then == "again":
                    steps.append(_call("FFA_PARTITION_INFO_GET", 0, 0, 0, 0, 0))
                elif then == "twice":
                    steps += [_s("rx_release"), _s("rx_release")]
                else:
                    steps.append(_s(then))
            return steps
        start = self.rng.choice((0, 1, 2, 0xFFFF))
        tag = self.rng.choice((0, 0, 1))
        return [_call("FFA_PARTITION_INFO_GET_REGS", 0, 0, (tag << 16) | start)]

    def _direct(self, vm: int) -> list[Step]:
        dst = self.endpoint(vm)
        r = self.rng.random()
        payload = [self.word() for _ in range(self.rng.randint(0, 5))]
        if r < 0.4:
            return [_s("direct_req", dst=dst, payload=payload, bits=self.rng.choice((32, 64)))]
        if r < 0.6:
            return [_s("direct_req2", dst=dst, payload=payload)]
        if r < 0.8 and _MEMSVC in self.sp_ids and self.names:  # to the memory service
            name = self.rng.choice(self.names)
            op = self.rng.choice((1, 2, 3))
            return [
                _call(
                    "FFA_MSG_SEND_DIRECT_REQ_32",
                    f"to:{_MEMSVC}",
                    0,
                    op,
                    f"handle_lo:{name}",
                    f"handle_hi:{name}",
                    0x5A,
                )
            ]
        # a spoofed sender in w1, or a framework message flag in w2
        # (a sender of 0 is the hypervisor's ID: a VM forging Xen's framework messages)
        spoof = self.rng.choice((None, 0, self.rng.randrange(len(self.layouts)) + 1, 0x8001))
        target = f"to:{dst}" if spoof is None else (spoof << 16) | dst
        flags = self.rng.choice((0, 0, 1 << 31, (1 << 31) | 4, (1 << 31) | 6))
        fid = self.rng.choice(
            ("FFA_MSG_SEND_DIRECT_REQ_32", "FFA_MSG_SEND_DIRECT_REQ_64", "FFA_MSG_SEND_DIRECT_REQ2")
        )
        return [_call(fid, target, flags, *payload)]

    def _send2(self, vm: int) -> list[Step]:
        lay = self.layouts[vm]
        dst = self.endpoint(vm)
        if self.rng.random() < 0.5:
            return [_s("send2", dst=dst, data="m" * self.rng.choice((1, 8, 64)))]
        # a well-formed header with one thing wrong: where the payload is, how long, who
        # sends, to whom, the flags, w1
        v12 = self.version_of(vm) >= abi.FFA_VERSION_1_2
        head = desc.INDIRECT_MSG_V1_2.size if v12 else desc.INDIRECT_MSG_V1_1.size
        offset, size, sender, flags, w1 = head, 16, vm + 1, 0, 0
        wrong = self.rng.choice(("offset", "size", "straddle", "sender", "flags", "w1"))
        if wrong == "offset":
            offset = self.rng.choice((0, 8, head - 4, _PAGE - 4, _PAGE, 0x10000))
        elif wrong == "size":
            size = self.rng.choice((0, _PAGE - head, _PAGE - head + 1, _PAGE, 0xFFFFFFFF))
        elif wrong == "straddle":  # a payload that starts inside the TX and runs past it
            tail = self.rng.choice((4, 8, 16, 64))
            offset, size = _PAGE - tail, tail * self.rng.choice((2, 3))
            dst = self.rng.randrange(len(self.layouts)) + 1  # a VM: Xen copies the payload
        elif wrong == "sender":
            sender = self.rng.choice((0x8001, (vm + 1) % len(self.layouts) + 1, 0))
        elif wrong == "flags":
            flags = self.rng.choice((1, 2, 0xFFFFFFFF))
        else:
            w1 = self.rng.choice((vm + 1, 0x8001 << 16, (vm + 1) << 16))
        hdr = desc.IndirectMessage(
            flags=flags, offset=offset, sender=sender, receiver=dst, size=size
        ).encode(abi.FFA_VERSION_1_2 if v12 else abi.FFA_VERSION_1_1)
        return [
            _s("write_bytes", page=lay.tx, data=hdr.hex()),
            _call("FFA_MSG_SEND2", w1, self.rng.choice((0, 0, 2))),
        ]

    def _share(self, vm: int) -> list[Step]:
        pages = self.share_pages(vm)
        name = self.new_name()
        steps = [
            _s(
                "share",
                receiver=self.rng.choice((_MEMSVC, _MEMSVC, *self.sp_ids[:3], self.endpoint(vm))),
                pages=pages,
                perms=self.rng.choice(("RW", "RO")),
                fill=self.rng.randrange(256),
                name=name,
            )
        ]
        r = self.rng.random()
        if r < 0.4 and _MEMSVC in self.sp_ids:
            steps.append(
                _s(
                    "mem_op",
                    handle=name,
                    request=self.rng.choice(("fill", "sum")),
                    arg=self.rng.randrange(256),
                )
            )
        if r < 0.7:
            steps.append(_s("reclaim", handle=name))
        return steps

    def descriptor(
        self, vm: int, *, pages: Sequence[int] | None = None, big: int | None = None
    ) -> bytes:
        """A well-formed transaction descriptor of ``vm``'s version over ``pages`` (one in ten
        in another endpoint's name); with ``big``, one range of ``big`` pages from the first
        share page instead (at and past Xen's 256-page limit, past the VM's RAM)."""
        lay = self.layouts[vm]
        pages = list(pages) if pages is not None else self.share_pages(vm)
        if big is not None:
            pages = [_SHARE_BASE + k for k in range(big)]
        base = 0x40000000
        ranges: list[desc.Constituent] = []
        for page in pages:
            ipa = base + page * _PAGE
            prev = ranges[-1] if ranges else None
            if prev is not None and prev.address + prev.page_count * _PAGE == ipa:
                ranges[-1] = desc.Constituent(prev.address, prev.page_count + 1)
            else:
                ranges.append(desc.Constituent(ipa, 1))
        total = len(pages)
        if big is None and self.rng.random() < 0.1:  # overlapping ranges: a page twice
            ranges.append(ranges[0])
            total += ranges[0].page_count
        receivers = [
            desc.MemAccess(self.rng.choice((_MEMSVC, *self.sp_ids[:2])), abi.FFA_MEM_ACC_RW)
        ]
        if self.rng.random() < 0.15:
            receivers.append(desc.MemAccess(self.endpoint(vm), abi.FFA_MEM_ACC_RO))
        sender = vm + 1
        if big is None and self.rng.random() < 0.1:  # on behalf of someone else
            sender = self.rng.choice((0, (vm + 1) % len(self.layouts) + 1, 0x8001))
        tx = desc.MemTransaction(
            sender=sender,
            attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
            flags=0,
            handle=0,
            tag=0,
            receivers=tuple(receivers),
            composite=desc.Composite(total, tuple(ranges)),
        )
        return tx.encode(lay.version)

    def mutate_bytes(self, buf: bytes, vm: int) -> bytes:
        """``buf`` with one to three fields overwritten: lengths, offsets, counts, IDs,
        addresses (other VMs' and beyond RAM), flags."""
        out = bytearray(buf)
        for _ in range(self.rng.randint(1, 3)):
            r = self.rng.random()
            if r < 0.1 and len(out) > 16:
                del out[self.rng.randrange(16, len(out)) :]
                continue
            if r < 0.15:
                out += bytes(self.rng.choice((4, 16, 64)))
                continue
            width = self.rng.choice((2, 4, 4, 8))
            hi = max(1, len(out) - width)
            at = self.rng.randrange(0, min(hi, 0x80)) & ~(width - 1)
            if r < 0.3:
                value = self.rng.choice(
                    (vm + 1, (vm + 1) % len(self.layouts) + 1, 0x8001, 0, 0xFFFF)
                )
            elif r < 0.5 and width == 8:
                value = 0x40000000 + self.rng.choice((0, 1, 2, 64, 4096, 0x100000)) * _PAGE
            else:
                value = self.rng.choice((*_INTERESTING32, len(buf), len(buf) - 4, 0x100, 0x101))
            out[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        return bytes(out)

    def overreach(self, vm: int) -> bytes:
        """A descriptor whose structure points past its fragment or past the TX page: the
        composite moved to (or past) the end of the page, or a range count far above the
        ranges present. Only a mediator that bounds every offset and count by the fragment
        and by its TX mapping reads nothing past them."""
        buf = bytearray(self.descriptor(vm))
        lay = self.layouts[vm]
        emad = 0x20 if lay.version == abi.FFA_VERSION_1_0 else _u32(buf, 0x20)
        comp = _u32(buf, emad + 4)
        r = self.rng.random()
        if r < 0.4:  # the composite (and its ranges) moved to the end of the page, or past it
            at = _PAGE - self.rng.choice((0, 8, 16, 24))
            body = bytes(buf[comp:])
            buf[emad + 4 : emad + 8] = at.to_bytes(4, "little")
            buf = buf[:comp] + bytes(at - comp) + body
        elif r < 0.7:  # a composite offset past the fragment
            at = self.rng.choice((len(buf), len(buf) + 0x100, _PAGE - 8, _PAGE, 0x10000))
            buf[emad + 4 : emad + 8] = at.to_bytes(4, "little")
        else:  # more ranges than the fragment holds
            count = _u32(buf, comp + 4) + self.rng.choice((0x100, 0x1000))
            buf[comp + 4 : comp + 8] = count.to_bytes(4, "little")
        return bytes(buf)

    def _malformed(self, vm: int) -> list[Step]:
        lay = self.layouts[vm]
        r = self.rng.random()
        if r < 0.2:  # Xen's page limit: 256 pages per share
            buf = self.descriptor(vm, big=self.rng.choice((256, 257, 1024)))
        elif r < 0.6:
            buf = self.overreach(vm)
        else:
            buf = self.mutate_bytes(self.descriptor(vm), vm)
        length = len(buf)
        total = self.rng.choice(
            (length, length, length + 1, 0, _PAGE * lay.buf_pages + 8, max(0, length - 8))
        )
        frag = self.rng.choice((total, total, length))
        if 0.2 <= r < 0.6:  # lengths that agree: only the structure reaches too far
            total = frag = length
        fid = self.rng.choice(
            ("FFA_MEM_SHARE_64", "FFA_MEM_SHARE_32", "FFA_MEM_LEND_64", "FFA_MEM_DONATE_64")
        )
        addr, count = (0, 0) if self.rng.random() < 0.85 else (f"ipa:{lay.tx}", 1)
        name = self.new_name()
        steps = [
            _s("write_bytes", page=lay.tx, data=buf[: _PAGE * lay.buf_pages].hex()),
            _call(fid, total, frag, addr, count, name=name),
        ]
        if self.rng.random() < 0.5:
            steps.append(_s("reclaim", handle=name))
        return steps

    def _frag(self, vm: int) -> list[Step]:
        lay = self.layouts[vm]
        pages = (
            self.share_pages(vm)
            if self.rng.random() < 0.5
            else [p for p in range(_SHARE_BASE, min(lay.pages, _SHARE_BASE + 12), 2)]
        )
        buf = self.descriptor(vm, pages=pages)
        cut = self.rng.choice((16, 32, 48, len(buf) // 2, len(buf) - 16))
        cut = max(1, min(cut, len(buf) - 1))
        first, rest = buf[:cut], buf[cut:]
        if self.rng.random() < 0.3:
            rest = self.mutate_bytes(rest, vm) if len(rest) > 8 else rest
        name = self.new_name()
        rest_len = self.rng.choice((len(rest), len(rest), len(rest) + 16, 0))
        frag_fid = "FFA_MEM_FRAG_TX"
        return [
            _s("write_bytes", page=lay.tx, data=first.hex()),
            _call("FFA_MEM_SHARE_64", len(buf), len(first), 0, 0, name=name),
            _s("write_bytes", page=lay.tx, data=rest.hex()),
            _call(
                frag_fid,
                f"handle_lo:{name}",
                f"handle_hi:{name}",
                rest_len,
                self.rng.choice((0, 0, (vm + 1) << 16)),
                name=name,
            ),
            _s("reclaim", handle=name),
        ]

    def _reclaim(self, vm: int) -> list[Step]:
        if self.names and self.rng.random() < 0.7:
            return [_s("reclaim", handle=self.rng.choice(self.names))]
        lo = self.rng.choice((0, 1, 0xFFFFFFFF, self.rng.getrandbits(32)))
        return [
            _call("FFA_MEM_RECLAIM", lo, self.rng.choice((0, 1 << 31)), self.rng.choice((0, 1)))
        ]

    def _notif(self, vm: int) -> list[Step]:
        r = self.rng.random()
        bitmap = self.rng.choice((1, 2, 1 << 32, 0xFFFFFFFFFFFFFFFF, 0))
        if r < 0.25:
            return [
                _s(
                    "notification_bind",
                    sender=self.endpoint(vm),
                    bitmap=bitmap,
                    flags=self.rng.choice((0, 0, 1)),
                )
            ]
        if r < 0.35:
            return [_s("notification_unbind", sender=self.endpoint(vm), bitmap=bitmap)]
        if r < 0.55:
            return [
                _s(
                    "notification_set",
                    receiver=self.endpoint(vm),
                    bitmap=bitmap,
                    flags=self.rng.choice((0, 0, 2, 1 << 1 | 0x10000)),
                )
            ]
        if r < 0.75:
            return [_s("notification_get", flags=self.rng.choice((0xF, 1, 2, 4, 8, 0)))]
        if r < 0.9:
            return [_s("notification_info_get", bits=self.rng.choice((32, 64)))]
        # a spoofed source in NOTIFICATION_SET
        src = self.rng.choice((0x8001, (vm + 1) % len(self.layouts) + 1))
        return [_call("FFA_NOTIFICATION_SET", (src << 16) | self.endpoint(vm), 0, 1, 0)]

    def _state(self, vm: int) -> list[Step]:
        """Two or three calls of one state machine back to back, the later ones in the state
        the earlier ones left (or should have left): the RX owned after a raw
        PARTITION_INFO_GET (a failed one with a UUID no partition has leaves it free), the pair
        unmapped, a share reclaimed, a version not negotiated yet."""
        lay = self.layouts[vm]
        info = _call("FFA_PARTITION_INFO_GET", 0, 0, 0, 0, 0)
        bad_uuid = _call("FFA_PARTITION_INFO_GET", *(self.rng.getrandbits(32) for _ in range(4)), 0)
        remap = _s("map", rx_page=lay.rx, tx_page=lay.tx, pages=lay.buf_pages)
        name = self.new_name()
        share = _s("share", receiver=_MEMSVC, pages=self.share_pages(vm), name=name)
        sequences: list[list[Step]] = [
            [info, _s("unmap")],
            [info, info],
            [info, _s("rx_release"), _s("rx_release")],
            [bad_uuid, info],
            [_s("rx_release")],
            [_s("unmap"), _s("unmap")],
            [_s("unmap"), _s("rx_release")],
            [_s("unmap"), info],
            [_s("unmap"), share],
            [remap, remap],
            [_s("unmap"), remap, info],
            [share, _s("reclaim", handle=name), _s("reclaim", handle=name)],
            [_s("negotiate", version="1.1"), _s("negotiate", version="1.2")],
        ]
        return self.rng.choice(sequences)

    def _tx_rewrite(self, vm: int) -> list[Step]:
        lay = self.layouts[vm]
        at = self.rng.choice((0, 0, 4, 8, 12, 16, 24, 28, 32, 36, 48, 64))
        data = bytes(self.rng.getrandbits(8) for _ in range(self.rng.choice((2, 4, 8, 16))))
        return [_s("write_bytes", page=lay.tx, offset=at, data=data.hex())]

    def _raw(self, vm: int) -> list[Step]:
        fid = self.rng.choice(
            (
                "FFA_MSG_WAIT",
                "FFA_RUN",
                "FFA_MEM_RETRIEVE_REQ_64",
                "FFA_MEM_RELINQUISH",
                "FFA_NOTIFICATION_BITMAP_CREATE",
                "FFA_NOTIFICATION_BITMAP_DESTROY",
                "FFA_MSG_SEND_DIRECT_RESP_32",
                "FFA_MEM_FRAG_RX",
                "FFA_MEM_PERM_GET_64",
                "FFA_CONSOLE_LOG_64",
                "FFA_MSG_YIELD",
                0x84000099,
                0xC40000FF,
            )
        )
        return [_call(fid, *(self.word() for _ in range(self.rng.randint(0, 4))))]

    # -- system threads ---------------------------------------------------------------------

    def system_step(self, fams: Sequence[str]) -> list[Step]:
        fam = self.rng.choice(list(fams))
        vm = self.rng.randrange(len(self.layouts))
        if fam == "destroy":
            return [_s("destroy", vm=vm)]
        if fam == "sp_notify":
            return [
                _s(
                    "sp_notify",
                    sp=self.rng.choice(self.sp_ids),
                    vm=vm,
                    bitmap=self.rng.choice((1, 2, 1 << 40)),
                    flags=self.rng.choice((0, 0, 2)),
                )
            ]
        if fam == "sp_send2":
            return [
                _s(
                    "sp_send2",
                    sp=self.rng.choice(self.sp_ids),
                    vm=vm,
                    data="s" * self.rng.choice((1, 32)),
                )
            ]
        if fam == "tasklets":
            return [_s("run_tasklets")]
        return [_s("run_timers", advance=1.0)]


# -- programs --------------------------------------------------------------------------------
