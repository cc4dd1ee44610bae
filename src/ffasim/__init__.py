"""ffasim: an executable, byte-exact model of Arm FF-A under Xen's mediator, and a checker.

Layout (imports point down this list only): ``abi`` (the wire), ``desc`` (descriptors),
``machine`` (memory, locks, the SMC conduit, the event sink), ``spmc`` (the secure world),
``xen`` (the mediator, mirroring ``xen/arch/arm/tee/``), ``guest`` (a Linux-like FF-A driver),
``system`` (the public API), ``check`` (the checker), ``trace`` (renderers), ``scenario`` and
``cli`` (the front end).

This module re-exports the public API of ``design.md``: ``System``, ``SecurePartition``,
``default_partitions``, ``abi`` and the model's exceptions, and the checker's from Python
(``check_scenario``, ``replay_file`` and their results, in ``api``). It imports each on first use
(PEP 562 module ``__getattr__``), so that ``ffasim --help`` does not load the model: ``import
ffasim; ffasim.System`` and ``from ffasim import System`` work as plain imports would.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from . import abi as abi
    from .api import Finding as Finding
    from .api import Replay as Replay
    from .api import Report as Report
    from .api import check_scenario as check_scenario
    from .api import replay_file as replay_file
    from .machine.errors import AccessFault as AccessFault
    from .machine.errors import Deadlock as Deadlock
    from .machine.errors import FirmwarePanic as FirmwarePanic
    from .machine.errors import HypervisorPanic as HypervisorPanic
    from .machine.errors import ModelError as ModelError
    from .spmc import SecurePartition as SecurePartition
    from .spmc import default_partitions as default_partitions
    from .system import System as System

# Public name -> (module, attribute); attribute None: the module itself.
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "abi": (".abi", None),
    "check_scenario": (".api", "check_scenario"),
    "replay_file": (".api", "replay_file"),
    "Finding": (".api", "Finding"),
    "Replay": (".api", "Replay"),
    "Report": (".api", "Report"),
    "AccessFault": (".machine.errors", "AccessFault"),
    "Deadlock": (".machine.errors", "Deadlock"),
    "FirmwarePanic": (".machine.errors", "FirmwarePanic"),
    "HypervisorPanic": (".machine.errors", "HypervisorPanic"),
    "ModelError": (".machine.errors", "ModelError"),
    "SecurePartition": (".spmc", "SecurePartition"),
    "default_partitions": (".spmc", "default_partitions"),
    "System": (".system", "System"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'ffasim' has no attribute {name!r}") from None
    mod = importlib.import_module(module, __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
