"""``ffasim hunt --hypervisor pkvm``: programs for pKVM's host, and pKVM's defects found with no
scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffasim.cli import app
from ffasim.hunt import hunt
from ffasim.hunt.generate import generate, mutate
from ffasim.scenario import load_toml
from ffasim.scenario._check import CheckError


@pytest.mark.parametrize("index", range(40))
def test_generated_pkvm_programs_are_host_programs(index: int) -> None:
    p = generate(3, index, "pkvm")
    sc = p.scenario
    assert sc.hypervisor == "pkvm" and len(sc.vms) == 1 and not sc.vm_to_vm
    assert all(t.context is None for t in sc.threads)
    assert load_toml("p.toml", text=sc.to_toml()) == sc
    child = mutate(p, 3, index + 100)
    assert child.scenario.hypervisor == "pkvm" and len(child.scenario.vms) == 1


def test_xen_programs_are_unchanged_by_the_hypervisor_option() -> None:
    assert generate(7, 2).scenario == generate(7, 2, "xen").scenario
    assert generate(7, 2).scenario.hypervisor == "xen"


def test_pkvm_hunt_finds_d6_on_the_first_release(tmp_path: Path) -> None:
    report = hunt(
        "linux-6.5", hypervisor="pkvm", seed=0, max_programs=30, time_limit=300, out_dir=tmp_path
    )
    assert report.hypervisor == "pkvm" and report.variant == "linux-6.5"
    (f,) = report.findings
    assert f.kind == "isolation" and "reaches the SPMC unfiltered" in f.message
    assert f.reproduced
    assert load_toml(f.scenario).hypervisor == "pkvm"


def test_pkvm_hunt_is_deterministic_and_reference_means_head(tmp_path: Path) -> None:
    a = hunt("reference", hypervisor="pkvm", seed=1, max_programs=4, out_dir=tmp_path / "a")
    b = hunt("head", hypervisor="pkvm", seed=1, max_programs=4, out_dir=tmp_path / "b")
    assert a.variant == "head"
    assert (a.programs, a.executions, [x.message for x in a.findings]) == (
        b.programs,
        b.executions,
        [x.message for x in b.findings],
    )


def test_a_xen_variant_or_unknown_hypervisor_is_refused() -> None:
    with pytest.raises(CheckError, match="unknown pkvm variant 'seed-v1'"):
        hunt("seed-v1", hypervisor="pkvm", max_programs=1)
    with pytest.raises(CheckError, match="unknown hypervisor 'kvm'"):
        hunt(hypervisor="kvm", max_programs=1)


def test_cli_hunt_hypervisor_pkvm_json(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "hunt",
            "--hypervisor",
            "pkvm",
            "--variant",
            "linux-6.11",
            "--time-limit",
            "60",
            "--json",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["hypervisor"] == "pkvm" and doc["variant"] == "linux-6.11"
    assert doc["findings"][0]["kind"] == "isolation"  # D12: EL2 stack words in x1..x3
