"""Consistency of the SPMC's state, for monitors and property tests.

:func:`invariant_problems` returns one line per inconsistency: a page with two owners or a
stale share mark, a mailbox whose frames are not mapped (or are freed behind the SPMC's back),
a handle that points at freed state, a partition that can reach memory it was never given.
An empty list means the state is consistent. It reads the model directly (no events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .mailbox import OTHER_WORLD_OWNED
from .memory import MAX_MEM_SHARES, NOT_RETRIEVED, RETRIEVED
from .spmc import is_vm_id
from .vm import WAITING

if TYPE_CHECKING:
    from .spmc import Spmc


def invariant_problems(spmc: Spmc) -> list[str]:
    out: list[str] = []
    _mailboxes(spmc, out)
    _shares(spmc, out)
    _partitions(spmc, out)
    if len(spmc.vms) > spmc.max_vms:
        out.append(f"{len(spmc.vms)} VMs tracked, more than the {spmc.max_vms} slots")
    for vm_id in spmc.vms:
        ep = spmc.endpoints[vm_id]
        if not ep.mailbox.mapped and not ep.notif.enabled:
            out.append(f"VM 0x{vm_id:x} is tracked with neither buffers nor notifications")
    if not spmc.calls_under_way():
        for sp_id in spmc.partitions:
            for vcpu in spmc.endpoints[sp_id].vcpus:
                if vcpu.state != WAITING:
                    out.append(f"0x{sp_id:x} context {vcpu.index} is {vcpu.state} outside any call")
    return out


def _mailboxes(spmc: Spmc, out: list[str]) -> None:
    seen: dict[int, int] = {}
    for ep_id, ep in spmc.endpoints.items():
        mbox = ep.mailbox
        if mbox.state is OTHER_WORLD_OWNED and not is_vm_id(ep_id):
            out.append(f"partition 0x{ep_id:x} RX is OTHER_WORLD_OWNED")
        if len(mbox.rx_frames) != len(mbox.tx_frames):
            out.append(f"0x{ep_id:x}: RX and TX sizes differ")
        for f in mbox.rx_frames + mbox.tx_frames:
            other = seen.setdefault(f.mfn, ep_id)
            if other != ep_id or (mbox.rx_frames + mbox.tx_frames).count(f) > 1:
                out.append(f"frame 0x{f.mfn:x} is a buffer of 0x{other:x} and 0x{ep_id:x}")
            if f.grants["spmc"] < 1:
                out.append(f"0x{ep_id:x} buffer frame 0x{f.mfn:x} is not mapped by the SPMC")
            if f.owner is None:
                out.append(f"0x{ep_id:x} buffer frame 0x{f.mfn:x} was freed while the SPMC maps it")
            if is_vm_id(ep_id) and spmc.ns_excluded.get(f.mfn) != ep_id:
                out.append(f"0x{ep_id:x} buffer frame 0x{f.mfn:x} is still in the NS view")
    for mfn, ep_id in spmc.ns_excluded.items():
        if seen.get(mfn) != ep_id:
            out.append(f"frame 0x{mfn:x} is out of the NS view but no buffer of 0x{ep_id:x}")


def _shares(spmc: Spmc, out: list[str]) -> None:
    for handle, share in spmc._shares.items():
        if handle != share.handle or handle >= MAX_MEM_SHARES or handle >> 63:
            out.append(f"share table slot 0x{handle:x} holds handle 0x{share.handle:x}")
        if not share.complete:
            if share.frames or any(b.state != NOT_RETRIEVED for b in share.borrowers):
                out.append(f"incomplete share 0x{handle:x} has pages or borrowers")
            continue
        if not share.frames:
            out.append(f"complete share 0x{handle:x} has no pages")
        for f in share.frames:
            if spmc.page_share.get(f.mfn) != handle:
                out.append(f"page 0x{f.mfn:x} of share 0x{handle:x} is not marked as shared")
            if f.mfn in spmc.donated:
                out.append(f"page 0x{f.mfn:x} of share 0x{handle:x} was also donated")
        for b in share.borrowers:
            if share.kind == "donate" and b.state == RETRIEVED:
                out.append(f"donation 0x{handle:x} retrieved but still in the table")
            if b.state != NOT_RETRIEVED and not is_vm_id(b.id):
                ep = spmc.endpoints[b.id]
                missing = [f.mfn for f in share.frames if f.mfn not in ep.mapped]
                if missing:
                    out.append(f"0x{b.id:x} retrieved 0x{handle:x} but lacks pages {missing}")
    for mfn, handle in spmc.page_share.items():
        owner = spmc._shares.get(handle)
        if owner is None:
            out.append(f"page 0x{mfn:x} marked shared by freed handle 0x{handle:x}")
        elif all(f.mfn != mfn for f in owner.frames):
            out.append(f"page 0x{mfn:x} marked by share 0x{handle:x} that does not hold it")


def _partitions(spmc: Spmc, out: list[str]) -> None:
    holders: dict[tuple[int, int], bool] = {}
    for share in spmc._shares.values():
        for b in share.borrowers:
            if b.state != NOT_RETRIEVED:
                for f in share.frames:
                    holders[(b.id, f.mfn)] = (b.granted & 0x3) == 0x2
    for sp_id in spmc.partitions:
        ep = spmc.endpoints[sp_id]
        party = ep.party
        for mfn, writable in ep.mapped.items():
            if spmc.donated.get(mfn) == sp_id:
                continue
            allowed = holders.get((sp_id, mfn))
            if allowed is None:
                out.append(f"0x{sp_id:x} can reach page 0x{mfn:x} it holds no share of")
            elif writable and not allowed:
                out.append(f"0x{sp_id:x} can write page 0x{mfn:x} it retrieved read-only")
            elif spmc.machine.mem.frame(mfn).grants[party] < 1:
                out.append(f"0x{sp_id:x} maps page 0x{mfn:x} without a grant")
    for mfn, sp_id in spmc.donated.items():
        if mfn not in spmc.endpoints[sp_id].mapped:
            out.append(f"page 0x{mfn:x} donated to 0x{sp_id:x} is not mapped for it")
    parties = {spmc.endpoints[i].party: i for i in spmc.partitions}
    for f in spmc.machine.mem.frames.values():
        for party, n in f.grants.items():
            holder = parties.get(party)
            if n > 0 and holder is not None and f.mfn not in spmc.endpoints[holder].mapped:
                out.append(f"0x{holder:x} holds a grant on page 0x{f.mfn:x} it was not given")
