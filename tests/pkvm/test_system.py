"""The public API for pKVM: System(hypervisor="pkvm"), the host handle, audit and describe;
and that Xen's System is what it was."""

from __future__ import annotations

import pytest

import ffasim
from ffasim import abi
from ffasim.guest import FfaDriver
from ffasim.pkvm import PkvmInitError

from .helpers import err


def test_default_system_is_still_xen_reference() -> None:
    system = ffasim.System()
    assert (system.hypervisor, system.variant) == ("xen", "reference")
    with pytest.raises(ValueError) as e:
        system.create_host()
    assert str(e.value) == "create_host() needs System(hypervisor='pkvm'): Xen serves VMs"


def test_unknown_hypervisor() -> None:
    with pytest.raises(ValueError) as e:
        ffasim.System(hypervisor="kvm")
    assert str(e.value) == "unknown hypervisor 'kvm' (known: xen, pkvm)"


def test_pkvm_system_from_the_public_api() -> None:
    system = ffasim.System(hypervisor="pkvm", variant="linux-7.2")
    assert repr(system) == "<System pkvm linux-7.2>"
    host = system.create_host(cpus=2, pages=64)
    assert (host.id, host.vcpus, host.pages, host.ctx(1)) == (0, 2, 64, "host1")
    assert host.ipa(1) - host.ipa(0) == 4096
    with pytest.raises(ValueError) as e:
        system.create_vm()
    assert str(e.value) == "pKVM's FF-A proxy serves the host kernel only: use create_host()"
    with pytest.raises(ValueError, match=r"\Athe pKVM system already has its host\Z"):
        system.create_host()
    with pytest.raises(
        ValueError, match=r"\A<pKVM host, 2 CPUs, 64 pages> has no CPU 2 \(it has 2\)\Z"
    ):
        host.smc(abi.FFA_VERSION, vcpu=2)
    assert ffasim.System(hypervisor="pkvm").variant == "head"


def test_the_guest_driver_drives_the_host() -> None:
    system = ffasim.System(hypervisor="pkvm")
    host = system.create_host(cpus=1, pages=32)
    drv = FfaDriver(host)
    assert drv.negotiate(abi.FFA_VERSION_1_2) == abi.FFA_VERSION_1_2
    drv.map_buffers()
    assert [p.id for p in drv.partition_info()] == [0x8001, 0x8002, 0x8003]  # and releases
    handle = drv.share(0x8002, 2)
    assert isinstance(handle, int)
    drv.reclaim(handle)
    drv.unmap_buffers()
    assert system.audit() == []
    assert system.describe() == {
        "hypervisor": "pkvm",
        "variant": "head",
        "ffa_version": "1.2",
        "negotiated": True,
        "partitions": ["0x8001", "0x8002", "0x8003"],
        "host_cpus": 1,
    }


def test_audit_reports_what_is_left_inconsistent() -> None:
    system = ffasim.System(hypervisor="pkvm")
    host = system.create_host(pages=16)
    host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    host.smc(abi.FFA_RXTX_MAP_64, host.ipa(1), host.ipa(0), 1)
    host.smc(abi.FFA_PARTITION_INFO_GET)
    system.pkvm._pkvm_host_share_ffa(host.frames[5].mfn, 1)  # shared with nobody
    assert system.audit() == [
        f"host page 0x{host.frames[5].mfn:x} is shared with FF-A (SHARED_OWNED) but no SPMC "
        "share covers it",
        "the hypervisor's RX buffer is FULL at the SPMC: nobody released it",
    ]


def test_pkvm_init_failure_is_an_exception() -> None:
    with pytest.raises(PkvmInitError) as e:
        ffasim.System(hypervisor="pkvm", variant="linux-6.18", spmc_ffa=False)
    assert (str(e.value), e.value.errno) == ("pKVM init failed: hyp_ffa_init returned -95", -95)


def test_without_ffa_firmware_head_boots_with_ffa_off() -> None:
    system = ffasim.System(hypervisor="pkvm", spmc_ffa=False)
    host = system.create_host()
    assert host.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)[0] == abi.MASK64
    assert host.smc(abi.FFA_ID_GET) == err(abi.FFA_RET_INVALID_PARAMETERS)
    assert system.describe()["ffa_version"] is None


def test_xen_without_ffa_firmware_refuses_domains() -> None:
    system = ffasim.System(spmc_ffa=False)
    assert not system.probed
    with pytest.raises(ffasim.system.DomainCreationError) as e:
        system.create_vm()
    assert e.value.errno == -19  # -ENODEV: FF-A has no firmware
