"""The built-in scenarios: TOML files shipped in ``ffasim/scenarios/``, in a fixed order; Xen's
and pKVM's apart, since every Xen variant runs the former."""

from __future__ import annotations

from importlib import resources

from ._model import Scenario
from ._programs import ProgramScenario, program_scenarios
from ._toml import load_toml

BUILTIN_NAMES: tuple[str, ...] = (
    "default",
    "partinfo-2vcpu",
    "rxtx-map-race",
    "share-vs-partinfo",
    "destroy-during-call",
    "sri-vs-notification-get",
    "send2-vm",
    "map-2vcpu",
    "partinfo-vs-unmap",
    "send2-vs-map",
    "version-vs-partinfo",
    "send2-sp",
    "share-too-long",
    "version-mbz",
    "partinfo-vs-release-unmap",
    "destroy-with-pending-notification",
)
"""Xen's built-ins (what ``builtin_scenarios`` returns)."""

PKVM_BUILTIN_NAMES: tuple[str, ...] = ("pkvm-default",)
"""pKVM's built-in scenario files; its checker programs follow them (``pkvm_builtins``)."""

_cache: dict[str, Scenario] = {}


def _load(name: str) -> Scenario:
    if name not in _cache:
        text = (resources.files("ffasim") / "scenarios" / f"{name}.toml").read_text("utf-8")
        _cache[name] = load_toml(f"scenarios/{name}.toml", text=text)
    return _cache[name]


def builtin_scenarios() -> dict[str, Scenario]:
    """Name -> scenario for every Xen built-in, in the order ``ffasim check --list`` shows
    them."""
    return {name: _load(name) for name in BUILTIN_NAMES}


def pkvm_builtins() -> dict[str, Scenario | ProgramScenario]:
    """Name -> scenario for pKVM's built-ins: its scenario files, then its checker programs."""
    out: dict[str, Scenario | ProgramScenario] = {name: _load(name) for name in PKVM_BUILTIN_NAMES}
    out.update(program_scenarios())
    return out
