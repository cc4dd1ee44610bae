"""Failures of the modelled platform, raised as Python exceptions.

A ``ModelError`` escaping the model is a crash or hang of a real component (a hypervisor panic, a
CPU spinning forever): the checker reports each as a finding. ``AccessFault`` is what a secure
partition gets for touching memory it was never given.
"""

from __future__ import annotations


class ModelError(Exception):
    """A crash or hang of the modelled system."""


class HypervisorPanic(ModelError):
    """A failed ``ASSERT``/``BUG_ON`` in the hypervisor: Xen panics (debug build)."""


class FirmwarePanic(ModelError):
    """The secure world (SPMC) reached a state it treats as fatal."""


class Deadlock(ModelError):
    """A CPU waits for a lock that nothing will ever release (sequential runs only)."""


class AccessFault(Exception):
    """A party touched memory outside what it may see (a stage-2 or stage-1 fault)."""

    def __init__(self, party: str, addr: int, size: int, why: str) -> None:
        super().__init__(f"{party}: access to 0x{addr:x}+{size} faults: {why}")
        self.party = party
        self.addr = addr
        self.size = size
        self.why = why


def ASSERT(cond: object, what: str = "") -> None:  # Xen's name, on purpose
    """Xen's ``ASSERT``: a false condition panics the hypervisor."""
    if not cond:
        raise HypervisorPanic(f"Assertion '{what}' failed" if what else "Assertion failed")
