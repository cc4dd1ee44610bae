"""Scenarios under pKVM: the ``hypervisor`` key, the host as the one VM, pKVM's built-ins and
programs through ``ffasim run``, ``check`` and ``replay`` (``--hypervisor``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ffasim
from ffasim.cli import app
from ffasim.scenario import (
    ProgramScenario,
    Scenario,
    ScenarioError,
    ThreadSpec,
    VmSpec,
    builtin_scenarios,
    load,
    load_toml,
    pkvm_builtins,
    step,
)

runner = CliRunner()

ONE_VM = """\
[scenario]
name = "host-partinfo"
hypervisor = "pkvm"

[[vm]]
vcpus = 2

[[setup]]
op = "negotiate"
vm = 0

[[setup]]
op = "map"
vm = 0

[[thread]]
vm = 0
vcpu = 0
steps = [{ op = "partition_info", includes = [0x8001] }]

[[thread]]
vm = 0
vcpu = 1
steps = [{ op = "partition_info", includes = [0x8001] }]
"""


def _partinfo(hypervisor: str = "xen") -> Scenario:
    return Scenario(
        "partinfo",
        hypervisor=hypervisor,
        vms=[VmSpec(vcpus=2)],
        setup=[step("negotiate", vm=0), step("map", vm=0)],
        threads=[
            ThreadSpec((step("partition_info", expect=["success", "BUSY"]),), vm=0, vcpu=0),
            ThreadSpec((step("partition_info", expect=["success", "BUSY"]),), vm=0, vcpu=1),
        ],
    )


def test_a_pkvm_scenario_file_runs_its_threads_on_the_host_cpus() -> None:
    sc = load_toml("h.toml", text=ONE_VM)
    assert sc.hypervisor == "pkvm" and load_toml("h.toml", text=sc.to_toml()) == sc
    inst = sc.instantiate()
    assert [t.name for t in inst.threads] == ["host0", "host1"]
    for th in inst.threads:
        th.body()
    assert inst.finish() == []
    assert inst.system.hypervisor == "pkvm" and inst.system.variant == "head"
    assert {r.thread for r in inst.results} == {"host0", "host1"}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ("[[vm]]\nvcpus = 2", "under pkvm the caller is the host kernel: give exactly one [[vm]]"),
        ('vcpus = 2\narch = "aarch32"', "the pKVM host is a 64-bit kernel"),
        ('vcpus = 2\n[[final]]\nop = "destroy"\nvm = 0', "destroy is Xen's"),
    ],
)
def test_what_pkvm_cannot_do_is_refused_with_the_reason(change: str, rule: str) -> None:
    text = ONE_VM.replace("vcpus = 2", change, 1)
    with pytest.raises(ScenarioError, match=rule.replace("[", r"\[").replace("]", r"\]")):
        load_toml("h.toml", text=text)


def test_vm_to_vm_is_xen_only() -> None:
    with pytest.raises(ScenarioError, match="VM-to-VM messaging is Xen's"):
        load_toml(
            "h.toml",
            text=ONE_VM.replace('hypervisor = "pkvm"', 'hypervisor = "pkvm"\nvm_to_vm = true'),
        )


def test_an_unknown_hypervisor_is_refused_with_the_choices() -> None:
    with pytest.raises(ScenarioError, match="hypervisor"):
        load_toml("h.toml", text=ONE_VM.replace('"pkvm"', '"kvm"'))
    with pytest.raises(ScenarioError, match="unknown hypervisor 'kvm'"):
        _partinfo().under("kvm")


def test_a_one_vm_xen_scenario_moves_under_pkvm_and_back(tmp_path: Path) -> None:
    xen = _partinfo()
    pkvm = xen.under("pkvm")
    assert pkvm.hypervisor == "pkvm" and pkvm.under("xen") == xen and xen.under(None) is xen
    clean = ffasim.check_scenario(xen, budget=200, out=tmp_path / "xen")
    assert clean.findings == [] and clean.exhausted
    # pKVM leaves its RX full at EL3 after PARTITION_INFO_GET until the host's passed-through
    # RX_RELEASE (docs/pkvm.md, head finding 1): the other CPU's request meets a full mailbox.
    report = ffasim.check_scenario(pkvm, budget=200, out=tmp_path / "pkvm")
    (f,) = report.findings
    assert f.kind == "ownership" and "still holds partition information there" in f.message
    (written,) = (tmp_path / "pkvm").glob("*.toml")  # the file its schedule names
    assert load_toml(str(written)).hypervisor == "pkvm"


def test_a_two_vm_scenario_cannot_move_under_pkvm() -> None:
    with pytest.raises(ScenarioError, match="partinfo-2vcpu cannot run under pkvm"):
        builtin_scenarios()["partinfo-2vcpu"].under("pkvm")


def test_pkvm_builtins_are_apart_from_xens() -> None:
    pkvm = pkvm_builtins()
    assert next(iter(pkvm)) == "pkvm-default" and not set(pkvm) & set(builtin_scenarios())
    programs = [sc for sc in pkvm.values() if isinstance(sc, ProgramScenario)]
    assert len(programs) == len(pkvm) - 1
    assert all(sc.hypervisor == "pkvm" for sc in pkvm.values())
    assert load("pkvm-d12-stack-leak").skip_monitors == frozenset()  # type: ignore[union-attr]
    assert "pkvm-register-taint" in load("pkvm-d1-reclaim-rx").skip_monitors  # type: ignore[union-attr]
    with pytest.raises(ScenarioError, match="is a pKVM program: it cannot run under xen"):
        load("pkvm-d1-reclaim-rx").under("xen")


# -- the command line --------------------------------------------------------------------------


def test_run_hypervisor_pkvm_runs_pkvm_default_clean() -> None:
    r = runner.invoke(app, ["run", "--hypervisor", "pkvm"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("scenario pkvm-default on pkvm head:")
    assert "(10 from the host)" in r.stdout and "verdict: ok" in r.stdout
    doc = json.loads(runner.invoke(app, ["run", "--hypervisor", "pkvm", "--json"]).stdout)
    assert doc["hypervisor"] == "pkvm" and doc["ok"]


def test_run_of_a_release_with_d3_fails_pkvm_default() -> None:
    """6.5 does not trap FFA_VERSION: the SPMC agrees 1.2 with the host, EL2 reads its
    descriptors as 1.0 (D3) and refuses the share."""
    r = runner.invoke(app, ["run", "--hypervisor", "pkvm", "--variant", "linux-6.5"])
    assert r.exit_code == 1
    assert "FFA_MEM_SHARE_64(len=112)                 -> FFA_ERROR(INVALID_PARAMETERS)" in r.stdout


def test_hypervisor_and_variant_mistakes_are_one_line_errors() -> None:
    r = runner.invoke(app, ["check", "--hypervisor", "kvm"])
    assert r.exit_code == 2
    assert "unknown hypervisor 'kvm' (expected one of: xen, pkvm) (did you mean 'pkvm'?)" in (
        r.output
    )
    r = runner.invoke(app, ["run", "--hypervisor", "pkvm", "--variant", "seed-v1"])
    assert r.exit_code == 2 and "unknown pkvm variant 'seed-v1'" in r.output
    r = runner.invoke(app, ["check", "default", "--hypervisor", "pkvm"])
    assert r.exit_code == 2 and "default cannot run under pkvm" in r.output


def test_a_pkvm_finding_replays_and_is_gone_on_the_fix(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["check", "pkvm-d1-reclaim-rx", "--variant", "linux-6.5", "--out", str(tmp_path)],
    )
    assert r.exit_code == 1, r.output
    assert "on pkvm linux-6.5" in r.stdout and "ownership: host0 returns" in r.stdout
    (schedule,) = tmp_path.glob("*.json")
    again = runner.invoke(app, ["replay", str(schedule)])
    assert again.exit_code == 1 and "finding: ownership" in again.output
    fixed = runner.invoke(app, ["replay", str(schedule), "--variant", "linux-6.10"])
    assert fixed.exit_code == 0 and "not reproduced on linux-6.10" in fixed.output


def test_a_scenario_moved_by_hypervisor_replays_under_it(tmp_path: Path) -> None:
    """The schedule keeps ``--hypervisor``, so replay builds the same system."""
    path = tmp_path / "one.toml"
    path.write_text(
        ONE_VM.replace('hypervisor = "pkvm"\n', "").replace(
            "includes = [0x8001]", "includes = [0x8009]", 1
        )
    )
    r = runner.invoke(
        app, ["check", str(path), "--hypervisor", "pkvm", "--out", str(tmp_path), "--json"]
    )
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["hypervisor"] == "pkvm"
    schedule = json.loads(Path(doc["findings"][0]["schedule"]).read_text())
    assert schedule["hypervisor"] == "pkvm"
    again = runner.invoke(app, ["replay", doc["findings"][0]["schedule"]])
    assert again.exit_code == 1 and "host0" in again.stdout


def test_check_list_shows_each_hypervisors_variants() -> None:
    r = runner.invoke(app, ["check", "--list"])
    assert r.exit_code == 0
    assert "pkvm-d10-unaligned" in r.stdout and "linux-6.18" in r.stdout
    assert "[pkvm]" in r.stdout
