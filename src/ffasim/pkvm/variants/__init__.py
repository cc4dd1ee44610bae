"""pKVM proxy variants: one class per Linux release, each overriding only the C functions that
differ from the next release's, the upstream commit in each docstring.

``head`` is the newest text obtainable: Linux 7.2 (damonitor/linux at 6a7a181f6921, plus
2bd3c6c702f3, whose content is inferred from its title). No later change to ffa.c was found in
the sources; the series still under review in 2026 (direct-message checks, notification
forwarding, mapping the hypervisor's buffers at init) are not modelled. Two systems of different
variants coexist in one process: a variant is a class, each system builds its own object.
"""

from __future__ import annotations

from typing import NamedTuple

from ..hyp_main import Pkvm
from .linux_6_5 import Linux65
from .linux_6_10 import Linux610
from .linux_6_11 import Linux611
from .linux_6_18 import Linux618


class Linux72(Pkvm):
    """Linux 7.2: the same text as ``head``."""

    variant = "linux-7.2"


class Defect(NamedTuple):
    """One historical defect of the proxy (the D-numbers of the pKVM reference notes)."""

    id: str
    title: str
    fixed_by: str
    first: str
    """The first variant that has it."""
    last: str
    """The last variant that has it (the next one has the fix)."""


DEFECTS: tuple[Defect, ...] = (
    Defect(
        "D1",
        "reclaim never releases the hypervisor's RX after FFA_MEM_RETRIEVE_RESP",
        "d66e50beb911 (6.10)",
        "linux-6.5",
        "linux-6.5",
    ),
    Defect(
        "D2",
        "FFA_MSG_SEND_DIRECT_REQ_32 denied while the 64-bit form passes",
        "ae69e7740770 (6.10)",
        "linux-6.5",
        "linux-6.5",
    ),
    Defect(
        "D3",
        "FFA_VERSION not trapped: a v1.1 host driver's descriptors are parsed as v1.0",
        "c9c012625e12 + 42fb33dde42b (6.11)",
        "linux-6.5",
        "linux-6.10",
    ),
    Defect(
        "D4",
        "after negotiating 1.1 a request for 1.0 gets 1.1: v1.0 descriptors parsed as v1.1",
        "f41426939244 (6.18)",
        "linux-6.11",
        "linux-6.11",
    ),
    Defect(
        "D5",
        "FFA_FEATURES(RXTX_MAP) w2 not masked: a v1.2 page count fails negotiation",
        "3f5952917498 (6.18)",
        "linux-6.5",
        "linux-6.11",
    ),
    Defect(
        "D6",
        "notifications (and every function from 0x80 before 6.11) pass through unfiltered",
        "0dd60c4632a1 (6.11) + 79195f342417 (6.18)",
        "linux-6.5",
        "linux-6.11",
    ),
    Defect(
        "D7",
        "composite offset + 16 claimed to wrap in __do_ffa_mem_xfer (not reproducible: the "
        "sum is 64-bit on arm64)",
        "103e17aac09c (6.18)",
        "",
        "",
    ),
    Defect(
        "D8",
        "the EMAD is read at a fixed offset while the SPMC follows ep_mem_offset: pKVM checks "
        "one EMAD, the SPMC shares another's pages",
        "b4d961351aa8 + a6b49d27c179 (7.2)",
        "linux-6.11",
        "linux-6.18",
    ),
    Defect(
        "D9",
        "reclaim trusts addr_range_cnt: constituents past the descriptor are unshared",
        "8c6db30d7952 (7.2)",
        "linux-6.5",
        "linux-6.18",
    ),
    Defect(
        "D10",
        "constituent address alignment unchecked: a lenient SPMC maps a page pKVM never shared",
        "6a7a181f6921 (7.2)",
        "linux-6.5",
        "linux-6.18",
    ),
    Defect(
        "D11",
        "FFA_VERSION's 32-bit NOT_SUPPORTED read as a version: pKVM init fails without FF-A",
        "582234b0d841 (7.0)",
        "linux-6.5",
        "linux-6.18",
    ),
    Defect(
        "D12",
        "kvm_host_ffa_handler's res not initialised: EL2 stack words returned to the host",
        "2bd3c6c702f3 (7.2)",
        "linux-6.11",
        "linux-6.18",
    ),
)
"""D1-D12, as the model reproduces them (docs/pkvm.md has the evidence and the commands)."""

_VARIANTS: dict[str, type[Pkvm]] = {
    "head": Pkvm,
    "linux-7.2": Linux72,
    "linux-6.18": Linux618,
    "linux-6.11": Linux611,
    "linux-6.10": Linux610,
    "linux-6.5": Linux65,
}

_ORDER = ("linux-6.5", "linux-6.10", "linux-6.11", "linux-6.18", "linux-7.2")

_SUMMARY: dict[str, str] = {
    "head": (
        "The newest ffa.c text obtainable: Linux 7.2 (the same as linux-7.2). FF-A 1.2, "
        "x0..x17 returned, every D1-D12 fix in. Known open issues kept: pages of earlier "
        "fragments stay SHARED_OWNED when a FRAG_TX fails; the hypervisor's RX is shared with "
        "the host's passed-through FFA_RX_RELEASE; FFA_RXTX_UNMAP ignores EL3's answer; "
        "DIRECT_REQ passes any source ID."
    ),
    "linux-7.2": "Linux 7.2 (kvmarm-fixes-7.2 included): the same text as head.",
    "linux-6.18": (
        "Linux 6.18: FF-A 1.2 (SMCCC 1.2 registers, x0..x17 returned, notifications and the "
        "optional 1.2 interfaces denied, FEATURES masked, no downgrade after negotiation, "
        "composite offset overflow check)."
    ),
    "linux-6.11": (
        "Linux 6.11 to 6.17: FF-A 1.1, FFA_VERSION trapped and negotiated at EL2, "
        "PARTITION_INFO_GET handled, function range 0x60-0xFF, x0..x3 returned."
    ),
    "linux-6.10": (
        "Linux 6.10: FF-A 1.0 proxy, DIRECT_REQ_32 allowed, reclaim releases the RX; "
        "FFA_VERSION and PARTITION_INFO_GET pass through, functions 0x60-0x7F only."
    ),
    "linux-6.5": "Linux 6.5: the proxy as first released (FF-A 1.0, deny list, no RX release).",
}


def names() -> list[str]:
    """The variant names: ``head`` first, then the releases in order."""
    return ["head", *_ORDER]


def get(name: str) -> type[Pkvm]:
    """The hypervisor class of variant ``name``; ValueError naming the known ones otherwise."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown pKVM variant {name!r} (known: {', '.join(names())})") from None


def defects(name: str) -> list[Defect]:
    """The historical defects variant ``name`` has (KeyError for an unknown name)."""
    if name not in _VARIANTS:
        raise KeyError(name)
    if name == "head":
        name = "linux-7.2"
    at = _ORDER.index(name)
    return [d for d in DEFECTS if d.first and _ORDER.index(d.first) <= at <= _ORDER.index(d.last)]


def describe(name: str) -> str:
    """One paragraph on what variant ``name`` reproduces, its defects listed (KeyError for an
    unknown name)."""
    text = _SUMMARY[name]
    found = defects(name)
    if found:
        text += " Defects: " + "; ".join(f"{d.id} {d.title}" for d in found) + "."
    else:
        text += " None of D1-D12."
    return text
