"""The scenario keys for what the guests and the SPMC are built as: ``arch`` per ``[[vm]]`` and
``spmc_version`` in ``[scenario]``."""

from __future__ import annotations

import pytest

from ffasim.scenario import ScenarioError, load_toml

SCENARIO = """
[scenario]
name = "aarch32-demo"
{extra}

[[vm]]
arch = "{arch}"

[[setup]]
op = "negotiate"
vm = 0

[[setup]]
op = "map"
vm = 0
bits = 32

[[thread]]
vm = 0
steps = [{{ op = "partition_info", includes = [0x8001] }}, {{ op = "share", receiver = 0x8002 }}]
"""


def _run(text: str, variant: str = "reference") -> list[str]:
    inst = load_toml("s.toml", text=text).instantiate(variant)
    for th in inst.threads:
        inst.system.machine.current = th.name
        th.body()
    return inst.finish()


def test_an_aarch32_vm_runs_clean_with_smc32_calls() -> None:
    sc = load_toml("s.toml", text=SCENARIO.format(arch="aarch32", extra=""))
    assert sc.vms[0].arch == "aarch32"
    assert _run(SCENARIO.format(arch="aarch32", extra="")) == []


def test_unknown_arch_is_an_error_naming_the_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load_toml("s.toml", text=SCENARIO.format(arch="riscv", extra=""))
    assert str(info.value) == "s.toml:7: vm 1, arch: must be one of aarch64, aarch32, got 'riscv'"


def test_spmc_version_selects_the_spmc_and_defaults_to_1_2() -> None:
    sc = load_toml("s.toml", text=SCENARIO.format(arch="aarch64", extra='spmc_version = "1.1"'))
    assert sc.instantiate("xen-4.20").system.spmc.version == 0x10001
    default = load_toml("s.toml", text=SCENARIO.format(arch="aarch64", extra=""))
    assert default.instantiate().system.spmc.version == 0x10002
    with pytest.raises(ScenarioError) as info:
        load_toml("s.toml", text=SCENARIO.format(arch="aarch64", extra='spmc_version = "2.0"'))
    assert str(info.value) == "s.toml:4: scenario, spmc_version: must be one of 1.1, 1.2, got '2.0'"
