"""The built-in scenarios: TOML files shipped in ``ffasim/scenarios/``, in a fixed order."""

from __future__ import annotations

from importlib import resources

from ._model import Scenario
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

_cache: dict[str, Scenario] = {}


def builtin_scenarios() -> dict[str, Scenario]:
    """Name -> scenario for every built-in, in the order ``ffasim check --list`` shows them."""
    if not _cache:
        root = resources.files("ffasim") / "scenarios"
        for name in BUILTIN_NAMES:
            text = (root / f"{name}.toml").read_text(encoding="utf-8")
            _cache[name] = load_toml(f"scenarios/{name}.toml", text=text)
    return dict(_cache)
