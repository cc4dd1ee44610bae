"""Checker programs for the pKVM proxy: the default flow, the historical defects D1-D12 and the
open issues of ``head``, each a function of the variant to run.

A program (``ffasim.check``'s ``Program``) builds a :class:`PkvmSystem` on the machine it is
given, sets ``machine.system`` (where the monitors look), and returns host-CPU threads and a
finish step whose lines are the oracle's complaints (``spec`` findings; ``leak: ...`` lines are
leaks). The monitors of ``ffasim.check.monitors.pkvm`` judge the rest. Scenario files cannot
name a hypervisor yet; these are what ``ffasim`` front ends will run for pKVM.

Every program writes the descriptors its host sends byte by byte (``ffasim.desc``), so a
malformed one is exactly the malformation named. Layouts follow the version the host
negotiated: v1.0 when the variant does not trap FFA_VERSION (the SPMC then locks the
endpoint at pKVM's 1.0).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import abi, desc
from ..machine import Machine, Thread
from .host import Host
from .system import PkvmInitError, PkvmSystem

Finish = Callable[[], list[str]]
Built = tuple[list[Thread], Finish | None]
Program = Callable[[Machine], Built]

MEMORY_SP = 0x8002
"""The default memory-service partition: op 1 retrieves a handle, fills it, relinquishes."""
ECHO_SP = 0x8001

# Host RAM layout of every program: RX at page 0, TX at page 1, pages to share from 2 on.
RX, TX = 0, 1


@dataclass(frozen=True)
class ProgramSpec:
    """A program by name: what it shows and how to build it for a variant."""

    name: str
    defect: str
    """``"D1"``.. or ``""`` for the default flow and head's open issues."""
    summary: str
    build: Callable[[str], Program]


# -- building blocks ----------------------------------------------------------------------------


def boot(
    machine: Machine, variant: str, cpus: int = 1, pages: int = 16, **options: Any
) -> tuple[PkvmSystem, Host]:
    """A pKVM system on ``machine`` with its host (``options``: the SPMC's), findable by the
    monitors."""
    system = PkvmSystem(variant=variant, machine=machine, **options)
    machine.system = system  # type: ignore[attr-defined]
    return system, system.create_host(cpus=cpus, pages=pages)


def negotiated_version(system: PkvmSystem) -> int:
    """The version the host's descriptors use: what EL2 negotiated, or 1.0 when the variant
    leaves negotiation to EL3 (pKVM's own 1.0 locks the endpoint there)."""
    version = system.pkvm.hyp_ffa_version.value
    return version if version else abi.FFA_VERSION_1_0


def setup(host: Host, version: int | None = None) -> abi.Regs:
    """FFA_VERSION then FFA_RXTX_MAP_64 (TX page 1, RX page 0), as the host driver probes;
    the VERSION answer. ``version`` defaults to the proxy's own (the driver of its era)."""
    if version is None:
        version = negotiated_version(host.system)
    r = host.smc(abi.FFA_VERSION, version)
    host.smc(abi.FFA_RXTX_MAP_64, host.ipa(TX), host.ipa(RX), 1)
    return r


def share_descriptor(
    version: int,
    constituents: list[tuple[int, int]],
    receiver: int = MEMORY_SP,
    attributes: int = abi.FFA_NORMAL_MEM_REG_ATTR,
) -> bytes:
    """A one-EMAD transaction descriptor from the host (sender 0) in ``version``'s layout
    (for a single-borrower LEND, ``attributes`` must be 0: the type is the lender's)."""
    pages = sum(n for _, n in constituents)
    tx = desc.MemTransaction(
        sender=0,
        attributes=attributes,
        flags=0,
        handle=0,
        tag=0,
        receivers=(desc.MemAccess(receiver, abi.FFA_MEM_ACC_RW),),
        composite=desc.Composite(pages, tuple(desc.Constituent(a, n) for a, n in constituents)),
    )
    return tx.encode(version)


def share(host: Host, data: bytes, fid: int = abi.FFA_MEM_SHARE_64, vcpu: int = 0) -> abi.Regs:
    """Write ``data`` into the host's TX and send it whole."""
    host.write(host.ipa(TX), data)
    return host.smc(fid, len(data), len(data), vcpu=vcpu)


def reclaim(host: Host, r: abi.Regs, vcpu: int = 0) -> abi.Regs:
    """FFA_MEM_RECLAIM of the handle a successful send answered in ``r``."""
    return host.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0, vcpu=vcpu)


def expect(lines: list[str], what: str, r: abi.Regs, *ok: int) -> bool:
    """Add an oracle line unless ``r``'s w0 is one of ``ok``."""
    if r[0] & abi.MASK32 in ok:
        return True
    lines.append(f"{what} answered {abi.describe(r)}")
    return False


def emad_offset(version: int) -> int:
    """Where the first EMAD of a descriptor built here starts: 32 in v1.0, 48 after."""
    return 32 if version < abi.FFA_VERSION_1_1 else 48


def one_thread(body: Callable[[list[str]], None]) -> tuple[list[Thread], Finish]:
    """A single host CPU running ``body``, whose complaints the finish step returns."""
    lines: list[str] = []
    return [Thread("host0", lambda: body(lines))], lambda: lines


# -- the default flow ---------------------------------------------------------------------------


def default_program(variant: str) -> Program:
    """The host negotiates, maps its buffers, lists partitions, sends a direct request, shares
    a page the memory partition fills, reads it back, reclaims and unmaps: clean on head."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)

        version = negotiated_version(system)

        def body(lines: list[str]) -> None:
            expect(
                lines,
                "FFA_VERSION",
                host.smc(abi.FFA_VERSION, version),
                version,
                abi.FFA_VERSION_1_2,
            )
            r = host.smc(abi.FFA_RXTX_MAP_64, host.ipa(TX), host.ipa(RX), 1)
            expect(lines, "FFA_RXTX_MAP_64", r, abi.FFA_SUCCESS_32)
            r = host.smc(abi.FFA_PARTITION_INFO_GET)
            if expect(lines, "FFA_PARTITION_INFO_GET", r, abi.FFA_SUCCESS_32):
                expect(lines, "FFA_RX_RELEASE", host.smc(abi.FFA_RX_RELEASE), abi.FFA_SUCCESS_32)
            r = host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, ECHO_SP, 0, 7)
            expect(lines, "FFA_MSG_SEND_DIRECT_REQ_64", r, abi.FFA_MSG_SEND_DIRECT_RESP_64)
            page = host.ipa(2)
            r = share(host, share_descriptor(version, [(page, 1)]))
            if not expect(lines, "FFA_MEM_SHARE_64", r, abi.FFA_SUCCESS_32):
                return
            op = host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, MEMORY_SP, 0, 1, r[2], r[3], 0x5A)
            expect(lines, "fill request", op, abi.FFA_MSG_SEND_DIRECT_RESP_64)
            if host.read(page, 4) != b"\x5a" * 4:
                lines.append("the shared page does not hold what the partition wrote")
            expect(lines, "FFA_MEM_RECLAIM", reclaim(host, r), abi.FFA_SUCCESS_32)
            expect(lines, "FFA_RXTX_UNMAP", host.smc(abi.FFA_RXTX_UNMAP, 0), abi.FFA_SUCCESS_32)

        threads, finish = one_thread(body)
        return threads, lambda: finish() + system.audit()

    return program


# -- D1 to D12 ------------------------------------------------------------------------------------


def d1_program(variant: str) -> Program:
    """D1: share and reclaim twice; the second reclaim needs the RX the first one left FULL."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)
        setup(host)
        data = share_descriptor(negotiated_version(system), [(host.ipa(2), 1)])

        def body(lines: list[str]) -> None:
            for n in (1, 2):
                r = share(host, data)
                if expect(lines, f"FFA_MEM_SHARE_64 #{n}", r, abi.FFA_SUCCESS_32):
                    expect(lines, f"FFA_MEM_RECLAIM #{n}", reclaim(host, r), abi.FFA_SUCCESS_32)

        return one_thread(body)

    return program


def d2_program(variant: str) -> Program:
    """D2: the same direct request to the echo partition in both widths."""

    def program(m: Machine) -> Built:
        _, host = boot(m, variant)
        setup(host)

        def body(lines: list[str]) -> None:
            r = host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, ECHO_SP, 0, 7)
            expect(lines, "FFA_MSG_SEND_DIRECT_REQ_32", r, abi.FFA_MSG_SEND_DIRECT_RESP_32)
            r = host.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, ECHO_SP, 0, 7)
            expect(lines, "FFA_MSG_SEND_DIRECT_REQ_64", r, abi.FFA_MSG_SEND_DIRECT_RESP_64)

        return one_thread(body)

    return program


def d3_program(variant: str) -> Program:
    """D3: a v1.1 host driver (Linux 6.7 on) negotiates 1.1 and shares in the v1.1 layout."""

    def program(m: Machine) -> Built:
        _, host = boot(m, variant)

        def body(lines: list[str]) -> None:
            r = setup(host, abi.FFA_VERSION_1_1)
            if r[0] not in (abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2):
                lines.append(f"a v1.1 driver's FFA_VERSION(1.1) answered 0x{r[0]:x}")
            data = share_descriptor(abi.FFA_VERSION_1_1, [(host.ipa(2), 1)])
            r = share(host, data)
            if expect(lines, "FFA_MEM_SHARE_64 of a v1.1 descriptor", r, abi.FFA_SUCCESS_32):
                reclaim(host, r)

        return one_thread(body)

    return program


def d4_program(variant: str) -> Program:
    """D4: a v1.1 driver negotiates, then a v1.0 driver (a module reloaded) asks for 1.0 and,
    unless told NOT_SUPPORTED, shares in the v1.0 layout: that must then work."""

    def program(m: Machine) -> Built:
        _, host = boot(m, variant)
        setup(host, abi.FFA_VERSION_1_1)

        def body(lines: list[str]) -> None:
            r = host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)
            if r[0] & abi.MASK32 == abi.MASK32:
                return  # refused: the v1.0 driver stops here
            data = share_descriptor(abi.FFA_VERSION_1_0, [(host.ipa(2), 1)])
            r2 = share(host, data)
            if r2[0] != abi.FFA_SUCCESS_32:
                lines.append(
                    f"FFA_VERSION(1.0) after negotiating 1.1 answered 0x{r[0]:x}, and the v1.0 "
                    f"descriptor that follows gets {abi.describe(r2)}: EL2 parses it as "
                    f"{abi.version_str(r[0])}"
                )

        return one_thread(body)

    return program


def d5_program(variant: str) -> Program:
    """D5: an SPMC that reports v1.2 properties (a page count in RXTX_MAP's w2[31:16])."""

    def program(m: Machine) -> Built:
        try:
            _, host = boot(m, variant, spmc_v1_2_properties=True)
        except PkvmInitError as e:
            lines = [f"{e} with an SPMC reporting v1.2 properties"]
            return [], lambda: lines

        def body(lines: list[str]) -> None:
            r = host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)
            if r[0] == abi.MASK64 or r[0] & abi.MASK32 == abi.MASK32:
                lines.append("FFA_VERSION(1.1) answered NOT_SUPPORTED: negotiation failed")
            r = host.smc(abi.FFA_ID_GET)
            expect(lines, "FFA_ID_GET after negotiation", r, abi.FFA_SUCCESS_32)

        return one_thread(body)

    return program


def d6_program(variant: str) -> Program:
    """D6: the host creates a notification bitmap for VM 5 and sets one of its notifications
    (function 0x81, outside the range 6.5-6.10 look at)."""

    def program(m: Machine) -> Built:
        _, host = boot(m, variant)
        setup(host)

        def body(lines: list[str]) -> None:
            host.smc(abi.FFA_NOTIFICATION_BITMAP_CREATE, 0x5, 1)
            host.smc(abi.FFA_NOTIFICATION_SET, (0x5 << 16) | ECHO_SP, 0, 1, 0)

        return one_thread(body)

    return program


def d7_program(variant: str) -> Program:
    """D7: a composite offset of 0xFFFFFFF8, which 103e17aac09c says wrapped the length check.
    The fragment is 88 bytes, so that ``fraglen - (offset + 16)`` is a multiple of 16 in u32."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)
        setup(host)
        version = negotiated_version(system)
        data = bytearray(share_descriptor(version, [(host.ipa(2), 1)]))
        struct.pack_into("<I", data, emad_offset(version) + 4, 0xFFFFFFF8)
        data = data[:88] + bytes(max(0, 88 - len(data)))

        def body(lines: list[str]) -> None:
            r = share(host, bytes(data))
            expect(lines, "FFA_MEM_SHARE_64 with composite offset 0xfffffff8", r, abi.FFA_ERROR)

        return one_thread(body)

    return program


def d8_descriptor(version: int, decoy: int, real: int) -> bytes:
    """A v1.1+ descriptor with two EMADs' worth of space: at 48 (where pKVM before 7.2 looks) a
    decoy EMAD whose composite offset points into the real composite's array, so that pKVM sees
    one constituent, ``decoy``; at ``ep_mem_offset`` the EMAD the SPMC uses, whose composite
    lists ``real`` then ``decoy``."""
    esize = 32 if version >= abi.FFA_VERSION_1_2 else 16
    real_emad = 48 + esize
    composite = real_emad + esize
    out = bytearray(composite + 16 + 32)
    struct.pack_into(
        "<HHIQQIII", out, 0, 0, abi.FFA_NORMAL_MEM_REG_ATTR, 0, 0, 0, esize, 1, real_emad
    )
    decoy_composite = composite + 16  # pKVM's constituents: from decoy_composite + 16 to the end
    struct.pack_into("<HBBI", out, 48, MEMORY_SP, abi.FFA_MEM_ACC_RW, 0, decoy_composite)
    struct.pack_into("<HBBI", out, real_emad, MEMORY_SP, abi.FFA_MEM_ACC_RW, 0, composite)
    struct.pack_into("<IIQ", out, composite, 2, 2, 0)
    struct.pack_into("<QII", out, composite + 16, real, 1, 0)
    struct.pack_into("<QII", out, composite + 32, decoy, 1, 0)
    return bytes(out)


def d8_program(variant: str) -> Program:
    """D8: pKVM reads the EMAD at 48 whatever ``ep_mem_offset`` says; the SPMC follows it. A
    decoy EMAD at 48 lets pKVM check (and share) one host page while the SPMC also takes a
    guest's page."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)
        guest = system.create_guest(pages=1)
        setup(host, abi.FFA_VERSION_1_1)
        version = negotiated_version(system)

        def body(lines: list[str]) -> None:
            if version >= abi.FFA_VERSION_1_1:  # before 6.11 the endpoint stays at v1.0 (D3)
                share(host, d8_descriptor(version, host.ipa(2), guest.pa(0)))

        return one_thread(body)

    return program


class BogusRetrieveSpmc:
    """An SPMC that, for the armed handle, answers the hypervisor's retrieve request with an
    ``addr_range_cnt`` one higher than the constituents it sent (a faulty or malicious
    firmware: the proxy trusts what EL3 returns)."""

    def __init__(self, system: PkvmSystem) -> None:
        self.system = system
        self.entry = system.spmc.entry
        self.armed: int | None = None
        system.conduit.entry = self

    def __call__(self, caller_id: int, regs: abi.Regs) -> abi.Regs:
        out = self.entry(caller_id, regs)
        if regs[0] in (abi.FFA_MEM_RETRIEVE_REQ_32, abi.FFA_MEM_RETRIEVE_REQ_64) and (
            out[0] == abi.FFA_MEM_RETRIEVE_RESP and self.armed is not None
        ):
            mb = self.system.spmc.mailboxes[0]
            mem = self.system.machine.mem
            head = mem.read(mb.rx, 64, "spmc")
            if struct.unpack_from("<Q", head, 8)[0] == self.armed:
                version = negotiated_version(self.system)
                at = emad_offset(version) + 4
                composite = struct.unpack_from("<I", head, at)[0]
                count = struct.unpack("<I", mem.read(mb.rx + composite + 4, 4, "spmc"))[0]
                mem.write(mb.rx + composite + 4, struct.pack("<I", count + 1), "spmc")
        return out


def d9_program(variant: str) -> Program:
    """D9: reclaim unshares ``addr_range_cnt`` constituents of what EL3 returned. The SPMC
    answers the reclaim of a one-page share with a count of 2: the second entry lies past the
    descriptor, in never-written (zero) bytes of ``ffa_desc_buf``; unsharing it fails, EL2
    WARNs and shares the first page again, which stays stuck SHARED_OWNED."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)
        setup(host)
        bogus = BogusRetrieveSpmc(system)
        data = share_descriptor(negotiated_version(system), [(host.ipa(2), 1)])

        def body(lines: list[str]) -> None:
            r = share(host, data)
            if expect(lines, "FFA_MEM_SHARE_64", r, abi.FFA_SUCCESS_32):
                bogus.armed = abi.make_handle(r[2], r[3])
                reclaim(host, r)

        return one_thread(body)

    return program


def d9_stale_program(variant: str) -> Program:
    """D9, worse: the entry past the descriptor is a stale one. A first reclaim leaves two
    constituents (pages 2 and 4) in ``ffa_desc_buf``; page 4 is shared again, page 3 too; the
    reclaim of page 3 is answered with a count of 2, so page 4 is unshared (host OWNED again)
    although its share is live. (Not on 6.5, where D1 makes the second reclaim fail first.)"""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)
        setup(host)
        bogus = BogusRetrieveSpmc(system)
        version = negotiated_version(system)
        p2, p3, p4 = host.ipa(2), host.ipa(3), host.ipa(4)

        def body(lines: list[str]) -> None:
            r = share(host, share_descriptor(version, [(p2, 1), (p4, 1)]))
            if not expect(lines, "FFA_MEM_SHARE_64 of pages 2 and 4", r, abi.FFA_SUCCESS_32):
                return
            expect(lines, "FFA_MEM_RECLAIM of pages 2 and 4", reclaim(host, r), abi.FFA_SUCCESS_32)
            r4 = share(host, share_descriptor(version, [(p4, 1)]))
            r3 = share(host, share_descriptor(version, [(p3, 1)]))
            if r3[0] == abi.FFA_SUCCESS_32 and r4[0] == abi.FFA_SUCCESS_32:
                bogus.armed = abi.make_handle(r3[2], r3[3])
                reclaim(host, r3)

        return one_thread(body)

    return program


def d10_program(variant: str) -> Program:
    """D10: with an SPMC that accepts unaligned constituents, the host shares one page at
    ``P + 0x800``, P its last page: pKVM shares P, the SPMC maps P and P+1, a guest's page."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant, spmc_unaligned=True)
        system.create_guest(pages=1)
        setup(host)
        data = share_descriptor(negotiated_version(system), [(host.ipa(host.pages - 1) + 0x800, 1)])

        def body(lines: list[str]) -> None:
            share(host, data)

        return one_thread(body)

    return program


def d11_program(variant: str) -> Program:
    """D11: firmware without FF-A: pKVM must come up with FF-A off, not fail to initialise."""

    def program(m: Machine) -> Built:
        try:
            _, host = boot(m, variant, spmc_ffa=False)
        except PkvmInitError as e:
            lines = [f"{e} on firmware without FF-A (it must turn FF-A off instead)"]
            return [], lambda: lines

        def body(lines: list[str]) -> None:
            r = host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
            if r[0] & abi.MASK32 != abi.MASK32:
                lines.append(f"FFA_VERSION without FF-A firmware answered 0x{r[0]:x}")

        return one_thread(body)

    return program


def d12_program(variant: str) -> Program:
    """D12: FFA_VERSION writes x0 only; the register-taint monitor looks at the rest."""

    def program(m: Machine) -> Built:
        _, host = boot(m, variant)

        def body(lines: list[str]) -> None:
            host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
            host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)

        return one_thread(body)

    return program


# -- head's open issues ---------------------------------------------------------------------------


def rx_shared_program(variant: str) -> Program:
    """The hypervisor's RX is one mailbox for EL2 and the host (reference notes §5.2): host0
    asks for partition information and releases it; host1 reclaims a share made at boot."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant, cpus=2)
        setup(host)
        made = share(host, share_descriptor(negotiated_version(system), [(host.ipa(2), 1)]))
        lines: list[str] = []

        def partinfo() -> None:
            r = host.smc(abi.FFA_PARTITION_INFO_GET, vcpu=0)
            if r[0] == abi.FFA_SUCCESS_32:
                host.smc(abi.FFA_RX_RELEASE, vcpu=0)

        def reclaimer() -> None:
            expect(
                lines, "host1's FFA_MEM_RECLAIM", reclaim(host, made, vcpu=1), abi.FFA_SUCCESS_32
            )

        return [Thread("host0", partinfo), Thread("host1", reclaimer)], lambda: lines

    return program


def rx_release_race_program(variant: str) -> Program:
    """The host's passed-through FFA_RX_RELEASE takes no EL2 lock (reference notes §5.2):
    host0 releases "its" RX (without having received anything) while host1's reclaim holds
    the hypervisor's RX with the retrieve response in it."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant, cpus=2)
        setup(host)
        made = share(host, share_descriptor(negotiated_version(system), [(host.ipa(2), 1)]))

        def releaser() -> None:
            host.smc(abi.FFA_RX_RELEASE, vcpu=0)

        def reclaimer() -> None:
            reclaim(host, made, vcpu=1)

        return [Thread("host0", releaser), Thread("host1", reclaimer)], None

    return program


def rxtx_unmap_program(variant: str) -> Program:
    """FFA_RXTX_UNMAP ignores EL3's answer (reference notes §5.3): run with a fault on
    ``smc:FFA_RXTX_UNMAP``, EL2 forgets the buffers EL3 still maps, and the host can never
    map again. The finish step reports that disagreement as a leak (it survives the fault)."""

    def program(m: Machine) -> Built:
        system, host = boot(m, variant)
        setup(host)

        def body(lines: list[str]) -> None:
            if host.smc(abi.FFA_RXTX_UNMAP, 0)[0] != abi.FFA_SUCCESS_32:
                return
            r = host.smc(abi.FFA_RXTX_MAP_64, host.ipa(TX), host.ipa(RX), 1)
            expect(lines, "FFA_RXTX_MAP_64 after FFA_RXTX_UNMAP", r, abi.FFA_SUCCESS_32)

        threads, finish = one_thread(body)

        def audit() -> list[str]:
            lines = finish()
            mapped_el3 = system.spmc.mailboxes[0].mapped
            if mapped_el3 and system.pkvm.host_buffers.tx.value is None:
                lines.append(
                    "leak: the hypervisor's RX/TX stay mapped at EL3 while EL2 has unmapped "
                    "the host's"
                )
            return lines

        return threads, audit

    return program


PROGRAMS: dict[str, ProgramSpec] = {
    spec.name: spec
    for spec in (
        ProgramSpec(
            "default",
            "",
            "negotiate, map, discover, message, share, reclaim, unmap",
            default_program,
        ),
        ProgramSpec("d1-reclaim-rx", "D1", "two reclaims in a row", d1_program),
        ProgramSpec("d2-direct-req-32", "D2", "DIRECT_REQ in both widths", d2_program),
        ProgramSpec("d3-v1-1-driver", "D3", "a v1.1 host driver shares", d3_program),
        ProgramSpec("d4-downgrade", "D4", "FFA_VERSION(1.0) after 1.1", d4_program),
        ProgramSpec("d5-v1-2-properties", "D5", "SPMC reporting v1.2 properties", d5_program),
        ProgramSpec("d6-notifications", "D6", "notifications for VM 5 from the host", d6_program),
        ProgramSpec("d7-composite-wrap", "D7", "composite offset 0xfffffff8", d7_program),
        ProgramSpec("d8-emad-offset", "D8", "a decoy EMAD at 48", d8_program),
        ProgramSpec("d9-reclaim-bounds", "D9", "an inflated addr_range_cnt", d9_program),
        ProgramSpec(
            "d9-stale-entry", "D9", "a stale constituent past the descriptor", d9_stale_program
        ),
        ProgramSpec("d10-unaligned", "D10", "a constituent at P + 0x800", d10_program),
        ProgramSpec("d11-no-ffa", "D11", "firmware without FF-A", d11_program),
        ProgramSpec("d12-stack-leak", "D12", "registers after FFA_VERSION", d12_program),
        ProgramSpec(
            "rx-shared", "", "partition info on one CPU, reclaim on another", rx_shared_program
        ),
        ProgramSpec(
            "rxtx-unmap-ignored",
            "",
            "FFA_RXTX_UNMAP refused by EL3 (run with a fault on it)",
            rxtx_unmap_program,
        ),
        ProgramSpec(
            "rx-release-race",
            "",
            "a passed-through RX_RELEASE during a reclaim",
            rx_release_race_program,
        ),
    )
}
"""Every program by name."""


def program(name: str, variant: str = "head") -> Program:
    """The program ``name`` (a key of :data:`PROGRAMS`) for ``variant``; ValueError if
    unknown."""
    try:
        spec = PROGRAMS[name]
    except KeyError:
        raise ValueError(f"unknown pKVM program {name!r} (known: {', '.join(PROGRAMS)})") from None
    return spec.build(variant)
