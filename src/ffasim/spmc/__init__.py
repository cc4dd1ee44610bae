"""The secure world: an SPMC that answers FF-A calls as Hafnium does, and its partitions.

``Spmc(machine, partitions=None, version=FFA_VERSION_1_2)``; ``spmc.entry(caller_id, regs)`` is
the SMC entry (caller 0: the hypervisor). ``SecurePartition`` is a partition programmable in
Python; ``default_partitions()`` the three that ``System()`` uses by default.

Modules: ``spmc`` (entry, dispatch, VERSION/FEATURES/ID), ``rxtx`` (buffers and their
ownership), ``partinfo``, ``messaging`` (direct and indirect), ``memory`` (sharing),
``notifications``, ``partition`` (``SecurePartition``), ``defaults``, ``invariants``.
"""

from .defaults import default_partitions as default_partitions
from .mailbox import Mailbox as Mailbox
from .mailbox import MailboxState as MailboxState
from .memory import ShareState as ShareState
from .partition import DirectMessage as DirectMessage
from .partition import SecurePartition as SecurePartition
from .spmc import Spmc as Spmc

__all__ = [
    "DirectMessage",
    "Mailbox",
    "MailboxState",
    "SecurePartition",
    "ShareState",
    "Spmc",
    "default_partitions",
]
