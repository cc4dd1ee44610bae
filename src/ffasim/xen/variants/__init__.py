"""Mediator variants: each is a small class that overrides only the functions that differ.

``reference`` is Xen's latest upstream mediator (FF-A v1.2 to guests) on top of the seed's SPMC
buffer helpers, with the seed's defects and the analysed upstream bugs fixed. ``seed-v1`` is the
seed patch exactly. ``head`` is the upstream mediator exactly, with the bugs it still has.
Two systems of different variants coexist in one process: a variant is a class, and each
system builds its own mediator object.
"""

from __future__ import annotations

from ..ffa import Ffa
from .head import HeadFfa
from .seed_v1 import SeedV1Ffa

_VARIANTS: dict[str, type[Ffa]] = {
    "reference": Ffa,
    "seed-v1": SeedV1Ffa,
    "head": HeadFfa,
}

_DESCRIPTIONS: dict[str, str] = {
    "reference": (
        "Xen's latest upstream FF-A mediator (xen/arch/arm/tee, HEAD c447b7308b: FF-A v1.2 to "
        "guests, SP cache, PARTITION_INFO_GET_REGS, DIRECT_REQ2, FFA_RUN, RX_ACQUIRE probed with "
        "the Hafnium workaround) built on the seed's SPMC RX/TX helpers, with the four seed "
        "defects and the analysed upstream bugs fixed: acquire drops its lock before returning "
        "NULL, no ASSERT(!spin_is_locked), RX release notifies the SPMC only when it owns the "
        "buffer, destroy unmaps before it frees, a MEM_SHARE fragment longer than the TX buffer "
        "is DENIED, a FRAG_RX reply is ABORTED, a queued teardown holds a domain reference."
    ),
    "seed-v1": (
        "The seed: '[PATCH v1 05/12] xen/arm: ffa: rework SPMC RX/TX buffer management' "
        "(xen-devel, 5 Dec 2025) exactly, defects included: FF-A 1.1 to guests, RX_ACQUIRE never "
        "probed, ASSERT(!spin_is_locked) in the acquire helpers (panics when two guests use the "
        "SPMC buffers at once), NULL returned with the lock held, FFA_RX_RELEASE sent even after a "
        "failed PARTITION_INFO_GET, ffa_rxtx_spmc_destroy freeing before it unmaps, live "
        "partition info, SEND2 dereferencing an unmapped TX, NOTIFICATION_SET to SPs refused."
    ),
    "head": (
        "Xen's upstream FF-A mediator exactly as of c447b7308b (Aug 2026), the bugs it still has "
        "included: the SPMC buffer helpers return NULL with the lock held (seed defect 2), "
        "ffa_rxtx_spmc_destroy frees before it unmaps (seed defect 4), FFA_MEM_SHARE with a "
        "fragment longer than the TX buffer succeeds with handle 0, a FRAG_RX reply becomes a "
        "positive error code, FFA_VERSION bit 31 is not checked, a teardown queued for a "
        "VM_DESTROYED retry holds no domain reference, and PARTITION_INFO_GET_REGS cannot page "
        "past five VMs."
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
