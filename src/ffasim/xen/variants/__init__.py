"""Mediator variants: each is a class that overrides, under their C names, only the functions
that differ from its parent, each override naming the upstream commit it undoes or applies.

The mediator in ``ffasim/xen/`` is upstream HEAD exactly (``head``). ``reference`` fixes the seed's
defects and the analysed upstream bugs on top of it. The released mediators form a chain back in
history, each class undoing the commits between it and its parent: ``xen-4.22`` (HEAD without
c447b7308b), ``seed-v1`` (the seed patch, between 4.21 and 4.22), ``xen-4.21``, ``xen-4.20``,
``xen-4.19``. Two systems of different variants coexist in one process: a variant is a class,
and each system builds its own mediator object.
"""

from __future__ import annotations

from ..ffa import Ffa
from .reference import ReferenceFfa
from .seed_v1 import SeedV1Ffa
from .xen_4_19 import Xen419Ffa
from .xen_4_20 import Xen420Ffa
from .xen_4_21 import Xen421Ffa
from .xen_4_22 import Xen422Ffa

_VARIANTS: dict[str, type[Ffa]] = {
    "reference": ReferenceFfa,
    "seed-v1": SeedV1Ffa,
    "head": Ffa,
    "xen-4.19": Xen419Ffa,
    "xen-4.20": Xen420Ffa,
    "xen-4.21": Xen421Ffa,
    "xen-4.22": Xen422Ffa,
}

_DESCRIPTIONS: dict[str, str] = {
    "xen-4.19": (
        "Xen 4.19.0 (RELEASE-4.19.0, tee/ffa at b490f470f5; unchanged up to 4.19.6): FF-A 1.1, "
        "eight mandatory SPMC features, no SEND2, no VM-to-VM. Defects: an SPMC above FF-A 1.1 "
        "(the default, like Hafnium v2.14) is refused, so no VM gets FF-A; NOTIFICATION_BIND "
        "and UNBIND swap the bitmap halves; RXTX_MAP with an RX address outside the guest's "
        "RAM reaches put_page(NULL) (it tests tx_pg where it means rx_pg); RXTX_MAP/UNMAP take "
        'no lock. Scenarios for it need spmc_version = "1.1".'
    ),
    "xen-4.20": (
        "Xen 4.20.0 (RELEASE-4.20.0, tee/ffa at 39c45caef2; unchanged up to 4.20.4): FF-A 1.1 "
        "to guests, no VM-to-VM, SEND2 to SPs only. Defects: SEND2 reads its header in place "
        "from the guest's TX, fields twice (double fetch), and dereferences NULL without "
        "mapped buffers; RX_ACQUIRE never probed (SEND2 to an SP fails at the SPMC); "
        "RXTX_MAP/UNMAP and FFA_VERSION without locks (data races); FFA_RX_RELEASE after a "
        "failed boot-time PARTITION_INFO_GET; ffa_rxtx_destroy frees before it unmaps."
    ),
    "xen-4.21": (
        "Xen 4.21.0 (RELEASE-4.21.0, tee/ffa at 911b305e7b; unchanged in 4.21.1 and 4.21.2): "
        "FF-A 1.1 to guests, VM-to-VM messaging, Xen's SPMC buffers as globals. Defects: the "
        "SEND2 header may be re-read from the sender's TX after validation (double fetch); "
        "SEND2 without mapped buffers dereferences NULL; RXTX_MAP/UNMAP take no lock (two "
        "vCPUs mapping at once leak page references; an unmap races a producer writing the "
        "RX) and accept a page count of 0; FFA_VERSION rewrites the version at any time "
        "while readers use it unlocked (a data race); VM-to-VM partition info calls every VM "
        "AArch32; FFA_RX_RELEASE after a failed boot-time PARTITION_INFO_GET; "
        "ffa_rxtx_destroy frees before it unmaps; RX_ACQUIRE never probed (SEND2 to an SP "
        "fails at the SPMC)."
    ),
    "reference": (
        "Xen's latest upstream FF-A mediator (xen/arch/arm/tee, HEAD c447b7308b: FF-A v1.2 to "
        "guests, SP cache, PARTITION_INFO_GET_REGS, DIRECT_REQ2, FFA_RUN, RX_ACQUIRE probed with "
        "the Hafnium workaround) built on the seed's SPMC RX/TX helpers, with the four seed "
        "defects and the analysed upstream bugs fixed: acquire drops its lock before returning "
        "NULL, no ASSERT(!spin_is_locked), RX release notifies the SPMC only when it owns the "
        "buffer, destroy unmaps before it frees, a MEM_SHARE fragment longer than the TX buffer "
        "is DENIED, a FRAG_RX reply is ABORTED, a queued teardown holds a domain reference, "
        "FFA_VERSION bit 31 is NOT_SUPPORTED, PARTITION_INFO_GET_REGS pages past five VMs."
    ),
    "seed-v1": (
        "The seed: '[PATCH v1 05/12] xen/arm: ffa: rework SPMC RX/TX buffer management' "
        "(xen-devel, 5 Dec 2025; committed as 9e9504ef32 without its two ASSERTs) exactly, "
        "defects included: ASSERT(!spin_is_locked) in the acquire helpers (panics when two "
        "guests use the SPMC buffers at once), NULL returned with the lock held (unreachable), "
        "FFA_RX_RELEASE sent even after a failed PARTITION_INFO_GET, ffa_rxtx_spmc_destroy "
        "freeing before it unmaps; also FF-A 1.1 to guests, RX_ACQUIRE never probed (SEND2 to "
        "an SP fails at the SPMC), live partition info, RXTX_UNMAP while Xen writes the RX, "
        "SEND2 dereferencing an unmapped TX and re-reading its header after validation (no "
        "barrier), NOTIFICATION_SET to SPs refused."
    ),
    "head": (
        "Xen's upstream FF-A mediator exactly as of c447b7308b ('Harden SEND2 against invented "
        "loads', Aug 2026, the newest commit to xen/arch/arm/tee in the snapshot read), the bugs "
        "it still has included: the SPMC buffer helpers return NULL with the lock held (seed "
        "defect 2, unreachable), ffa_rxtx_spmc_destroy frees before it unmaps (seed defect 4), "
        "FFA_MEM_SHARE with a fragment longer than the TX buffer succeeds with handle 0, a "
        "FRAG_RX reply becomes a positive error code, FFA_VERSION bit 31 is not checked, a "
        "teardown queued for a VM_DESTROYED retry holds no domain reference, and "
        "PARTITION_INFO_GET_REGS cannot page past five VMs."
    ),
    "xen-4.22": (
        "Xen 4.22.0 (RELEASE-4.22.0, tee/ffa at b89ecb4dd4): HEAD without c447b7308b, so the "
        "SEND2 header may be loaded from the sender's TX again after validation (a double "
        "fetch of guest memory, an out-of-bounds copy if a sibling vCPU rewrites it); plus "
        "every defect of 'head'."
    ),
}


def names() -> list[str]:
    """The variant names, the default first."""
    return list(_VARIANTS)


def describe(name: str) -> str:
    """One paragraph on what variant ``name`` reproduces (KeyError for an unknown name)."""
    return _DESCRIPTIONS[name]


def get(name: str) -> type[Ffa]:
    """The mediator class of variant ``name``; ValueError naming the known ones otherwise."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown mediator variant {name!r} (known: {', '.join(_VARIANTS)})"
        ) from None
