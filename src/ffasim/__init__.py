"""ffasim: an executable, byte-exact model of Arm FF-A under Xen's mediator, and a checker.

Layout (imports point down this list only): ``abi`` (the wire), ``desc`` (descriptors),
``machine`` (memory, locks, the SMC conduit, the event sink), ``spmc`` (the secure world),
``xen`` (the mediator, mirroring ``xen/arch/arm/tee/``), ``guest`` (a Linux-like FF-A driver),
``system`` (the public API), ``check`` (the checker), ``trace`` (renderers), ``scenario`` and
``cli`` (the front end).

This module re-exports the public API of ``design.md``: ``System``, ``SecurePartition``,
``default_partitions``, ``abi`` and the model's exceptions.
"""

from . import abi as abi
from .machine.errors import AccessFault as AccessFault
from .machine.errors import Deadlock as Deadlock
from .machine.errors import FirmwarePanic as FirmwarePanic
from .machine.errors import HypervisorPanic as HypervisorPanic
from .machine.errors import ModelError as ModelError
from .spmc import SecurePartition as SecurePartition
from .spmc import default_partitions as default_partitions
from .system import System as System

__version__ = "0.1.0"
