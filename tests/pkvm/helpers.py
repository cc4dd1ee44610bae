"""Helpers for the pKVM tests: a booted system with its host, ready-made calls, page states."""

from __future__ import annotations

from typing import Any

from ffasim import abi
from ffasim.pkvm import PkvmSystem
from ffasim.pkvm.host import Host
from ffasim.pkvm.programs import TX, setup, share_descriptor

ALL_ONES = abi.MASK64
"""``res->a0 = FFA_RET_NOT_SUPPORTED`` as the host sees it: -1 in a u64."""


def booted(
    variant: str = "head", cpus: int = 1, pages: int = 16, **options: Any
) -> tuple[PkvmSystem, Host]:
    system = PkvmSystem(variant=variant, **options)
    return system, system.create_host(cpus=cpus, pages=pages)


def ready(variant: str = "head", **options: Any) -> tuple[PkvmSystem, Host]:
    """A system whose host negotiated (the proxy's own version) and mapped its buffers."""
    system, host = booted(variant, **options)
    setup(host)
    assert host.smc(abi.FFA_ID_GET)[0] == abi.FFA_SUCCESS_32
    return system, host


def err(code: int) -> abi.Regs:
    """What the host gets for an error EL2 produces: x2 holds the code as a u64."""
    return (abi.FFA_ERROR, 0, code & abi.MASK64, *([0] * 15))


def ok(w2: int = 0) -> abi.Regs:
    return (abi.FFA_SUCCESS_32, 0, w2, *([0] * 15))


def send(host: Host, data: bytes, fid: int = abi.FFA_MEM_SHARE_64, fraglen: int | None = None,
         vcpu: int = 0) -> abi.Regs:  # fmt: skip
    """Write ``data`` into the host's TX and send its first ``fraglen`` bytes (all of it)."""
    host.write(host.ipa(TX), data)
    n = len(data) if fraglen is None else fraglen
    return host.smc(fid, len(data), n, vcpu=vcpu)


def one_page(system: PkvmSystem, host: Host, page: int = 2) -> bytes:
    """A descriptor sharing host page ``page`` with the memory partition."""
    version = system.pkvm.hyp_ffa_version.value or abi.FFA_VERSION_1_0
    return share_descriptor(version, [(host.ipa(page), 1)])


def state(system: PkvmSystem, host: Host, page: int) -> str:
    """The host stage-2 state of host page ``page``."""
    s = system.pkvm.host_page_state(host.frames[0].mfn + page)
    assert s is not None
    return s.name
