from __future__ import annotations

import pytest

from ffasim.system import VM, System

from .helpers import ready


@pytest.fixture
def system() -> System:
    return System()


@pytest.fixture
def vm(system: System) -> VM:
    """A v1.2 guest with its RX/TX mapped (TX page 0, RX page 1)."""
    return ready(system.create_vm())
