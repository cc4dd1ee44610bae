"""Endpoints as the SPMC sees them, and their RX/TX mailboxes.

Mirrors Hafnium's ``struct vm`` / ``struct mailbox`` (``inc/hf/vm.h``) for the parts a
hypervisor can observe: each endpoint (the hypervisor, ID 0; each normal-world VM the SPMC
learnt of through a forwarded FFA_RXTX_MAP or FFA_NOTIFICATION_BITMAP_CREATE; each secure
partition) has at most one RX/TX pair and an RX ownership state:

- ``EMPTY``: the producer (the SPMC) owns the RX buffer and may write into it;
- ``FULL``: the SPMC wrote something (partition info, a retrieve response, a fragment, an
  indirect message) and the endpoint owns the buffer until FFA_RX_RELEASE;
- ``OTHER_WORLD_OWNED``: only for normal-world endpoints: the hypervisor took the VM's RX
  with FFA_RX_ACQUIRE and the SPMC must not write it.

Producers test :meth:`Mailbox.busy` (state not EMPTY, or no RX mapped) and answer BUSY;
consumers releasing a buffer they do not own get DENIED (``mailbox.py`` holds no policy: the
ABI handlers in ``spmc.py`` do).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..machine import Frame, Spinlock

if TYPE_CHECKING:
    from .vm import Vcpu


class MailboxState(enum.Enum):
    """Who owns an endpoint's RX buffer (Hafnium ``enum mailbox_state``)."""

    EMPTY = "EMPTY"
    FULL = "FULL"
    OTHER_WORLD_OWNED = "OTHER_WORLD_OWNED"


EMPTY = MailboxState.EMPTY
FULL = MailboxState.FULL
OTHER_WORLD_OWNED = MailboxState.OTHER_WORLD_OWNED


@dataclass(eq=False, slots=True)
class Mailbox:
    """One endpoint's RX/TX pair as the SPMC mapped it (empty lists when unmapped)."""

    endpoint: int
    rx_frames: list[Frame] = field(default_factory=list)
    tx_frames: list[Frame] = field(default_factory=list)
    state: MailboxState = EMPTY
    # The ABI whose answer sits in a FULL RX buffer (Hafnium ``recv_func``): for logs only.
    recv_func: int = 0

    @property
    def mapped(self) -> bool:
        return bool(self.rx_frames)

    @property
    def rx(self) -> int:
        """Physical address of the RX buffer (0 when unmapped)."""
        return self.rx_frames[0].pa if self.rx_frames else 0

    @property
    def tx(self) -> int:
        """Physical address of the TX buffer (0 when unmapped)."""
        return self.tx_frames[0].pa if self.tx_frames else 0

    @property
    def size(self) -> int:
        """Bytes in each buffer (Hafnium ``buf_size``)."""
        return len(self.rx_frames) * 4096

    @property
    def owner(self) -> str:
        """Who may write the RX buffer now: ``"spmc"``, ``"endpoint"`` or ``"hypervisor"``."""
        if self.state is FULL:
            return "endpoint"
        if self.state is OTHER_WORLD_OWNED:
            return "hypervisor"
        return "spmc"

    def busy(self) -> bool:
        """Hafnium ``vm_is_mailbox_busy``: a producer may not write now."""
        return self.state is not EMPTY or not self.rx_frames


@dataclass(eq=False, slots=True)
class Notifications:
    """One receiver's notification state (Hafnium ``struct notifications`` pair).

    As in Hafnium, notifications from VMs and from partitions are two separate 64-bit
    bitmaps: ``bindings_vm`` / ``bindings_sp`` map each bound bit of one to the sender allowed
    to set it. Pending bits are kept
    per source kind, as FFA_NOTIFICATION_GET returns them: from partitions, from VMs, and the
    64-bit framework bitmap (bit 0: SPM "RX buffer full", bit 32: hypervisor "RX buffer full").
    """

    enabled: bool
    vcpu_count: int = 1
    bindings_sp: dict[int, int] = field(default_factory=dict)
    bindings_vm: dict[int, int] = field(default_factory=dict)
    pending_sp: int = 0
    pending_vm: int = 0
    pending_framework: int = 0
    # Set when bits become pending, cleared once FFA_NOTIFICATION_INFO_GET reported them.
    info_get_due: bool = False

    def any_pending(self) -> bool:
        return bool(self.pending_sp or self.pending_vm or self.pending_framework)


@dataclass(eq=False, slots=True)
class Endpoint:
    """An endpoint the SPMC knows: the hypervisor (0), a VM (1..0x7FFF) or a partition.

    Hafnium's ``struct vm``: ``lock`` guards the mailbox, the notifications, the version and
    (partitions) ``mapped``; ``vcpus`` are a partition's execution contexts, or the
    hypervisor's vCPUs (one per CPU, made on first use); VMs have none (``vm.py``).
    """

    id: int
    version: int
    mailbox: Mailbox
    notif: Notifications
    lock: Spinlock
    # Whether FFA_VERSION is locked: set by the first call other than FFA_VERSION.
    negotiated: bool = False
    # Partitions only: pages the partition may reach besides its own, mfn -> writable.
    mapped: dict[int, bool] = field(default_factory=dict)
    vcpus: list[Vcpu] = field(default_factory=list)

    @property
    def party(self) -> str:
        """The machine party of this endpoint's own memory."""
        party = _PARTY.get(self.id)
        if party is None:
            if self.id & 0x8000:
                party = f"sp{self.id:04x}"
            else:
                party = "xen" if self.id == 0 else f"d{self.id - 1}"
            _PARTY[self.id] = party
        return party


# Endpoint ID -> party name (a pure function of the ID, asked on every page-mapping change).
_PARTY: dict[int, str] = {}
