"""ffasim.pytest_plugin, run inside pytest by ``pytester``: fixtures, the variant option, the
teardown audit, checks that fail with their findings, and replay of a scenario object."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

PLUGIN = ("-p", "no:ffasim", "-p", "ffasim.pytest_plugin")
"""Load the plugin from the source tree under test, whether or not an installed ffasim's entry
point would load it too (``no:`` blocks the entry point's name, so it is loaded once)."""

SCENARIO = '''
from ffasim.scenario import Scenario, ThreadSpec, VmSpec, step


def partinfo_race():
    """Two VMs ask for partition information at once (the built-in partinfo-2vcpu)."""
    return Scenario(
        "partinfo-race",
        "two VMs call FFA_PARTITION_INFO_GET at once",
        vms=[VmSpec(), VmSpec()],
        setup=[step(op, vm=i) for i in (0, 1) for op in ("negotiate", "map")],
        threads=[
            ThreadSpec((step("partition_info", includes=[0x8001]),), vm=i) for i in (0, 1)
        ],
    )
'''


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=SCENARIO + source)
    return pytester.runpytest_inprocess(*PLUGIN, "-p", "no:cacheprovider", *args)


def test_entry_point_names_the_plugin() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"ffasim": "ffasim.pytest_plugin"}


def test_vm_is_negotiated_and_mapped_and_a_clean_test_passes(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
from ffasim import abi

def test_partition_info(ffasim_system, ffasim_vm):
    assert ffasim_system.variant == "reference" and ffasim_vm.vcpus == 2
    assert ffasim_vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)[0] == abi.FFA_VERSION_1_2
    r = ffasim_vm.smc(abi.FFA_PARTITION_INFO_GET)
    assert (r[0], r[2], r[3]) == (abi.FFA_SUCCESS_32, 4, 24)
    assert ffasim_vm.read(ffasim_vm.ipa(0), 2) == (0x8001).to_bytes(2, "little")
    assert ffasim_vm.smc(abi.FFA_RX_RELEASE)[0] == abi.FFA_SUCCESS_32
    r = ffasim_vm.smc(abi.FFA_RXTX_MAP_64, ffasim_vm.ipa(3), ffasim_vm.ipa(2), 1)
    assert abi.to_s32(r[2]) == abi.FFA_RET_DENIED  # already mapped
""",
    )
    result.assert_outcomes(passed=1)


def test_system_that_leaves_something_behind_fails_at_teardown(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_leaky(ffasim_system, ffasim_vm):
    heap = ffasim_system.machine.heap
    heap.alloc_page("xen", tag="planted one")
    heap.alloc_page("xen", tag="planted two")
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.re_match_lines(
        [
            r"_+ ERROR at teardown of test_leaky _+",
            r"ffasim_system left things behind at teardown:",
            r"  xen page 0x[0-9a-f]+ \(planted one\) still allocated",
            r"  xen page 0x[0-9a-f]+ \(planted two\) still allocated",
        ]
    )


def test_variant_option_picks_the_variant_and_refuses_unknown_ones(
    pytester: pytest.Pytester,
) -> None:
    source = """
def test_variant(ffasim_system):
    assert ffasim_system.variant == "seed-v1"
"""
    run(pytester, source, "--ffasim-variant", "seed-v1").assert_outcomes(passed=1)
    result = run(pytester, source, "--ffasim-variant", "seed-v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ffasim-variant: unknown variant 'seed-v2' (known: reference, seed-v1, "
            "head, xen-4.19, xen-4.20, xen-4.21, xen-4.22)*"
        ]
    )


def test_check_of_a_name_fails_with_the_finding_and_ffasim_replay(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
def test_seed(ffasim_check):
    ffasim_check("partinfo-2vcpu", variant="seed-v1")
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"ffasim check of partinfo-2vcpu on seed-v1: 1 finding in 2 executions",
            r"assertion: HypervisorPanic: Assertion '!spin_is_locked\(&ffa_spmc_rx_lock\)' failed",
            r"  schedule:  (\S+)/test_seed0/ffasim-findings/partinfo-2vcpu-seed-v1-assertion\.json",
            r"  replay:    ffasim replay \S+/partinfo-2vcpu-seed-v1-assertion\.json",
        ]
    )


def test_check_expect_passes_on_that_kind_and_fails_without_it(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_found(ffasim_check):
    report = ffasim_check(partinfo_race(), variant="seed-v1", expect="assertion")
    assert [f.kind for f in report.findings] == ["assertion"]

def test_clean(ffasim_check):
    report = ffasim_check(partinfo_race(), preemption_bound=1)
    assert report.findings == [] and report.exhausted and report.executions > 1

def test_missing(ffasim_check):
    ffasim_check(partinfo_race(), expect="assertion", preemption_bound=1)

def test_other_kind(ffasim_check):
    ffasim_check(partinfo_race(), variant="seed-v1", expect=["deadlock", "lock-leak"])
""",
    )
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.re_match_lines(
        [
            r"ffasim check of partinfo-race on reference: expected a finding of kind assertion: "
            r"nothing found \(exhaustive\) in \d+ executions",
            r"ffasim check of partinfo-race on seed-v1: expected a finding of kind deadlock or "
            r"lock-leak: 1 finding in 2 executions",
        ]
    )


def test_check_of_a_scenario_object_replays_through_its_test(pytester: pytest.Pytester) -> None:
    source = """
def test_race(ffasim_check):
    ffasim_check(partinfo_race(), variant="seed-v1")
"""
    first = run(pytester, source)
    first.assert_outcomes(failed=1)
    text = first.stdout.str()
    m = re.search(r"  replay:    pytest test_user\.py::test_race --ffasim-replay (\S+)\n", text)
    assert m is not None, text
    again = run(pytester, source, "--ffasim-replay", m.group(1))
    again.assert_outcomes(failed=1)
    again.stdout.re_match_lines(
        [
            r"ffasim replay of \S+: \d+ events, from the first thread on:",
            r"\s+\d+  d0v0\s+thread-start d0v0",
            r"\s+\d+  d1v0\s+finding\s+!! assertion: HypervisorPanic: .*",
            r"assertion: HypervisorPanic: Assertion .*",
        ]
    )


def test_scenario_file_of_an_object_refuses_to_load_outside_its_session(tmp_path: Path) -> None:
    from ffasim.pytest_plugin import scenario_for
    from ffasim.scenario import ScenarioError

    message = (
        "this file stands for a Python scenario object of a pytest session; replay it with "
        "the test that checked it: pytest TEST --ffasim-replay SCHEDULE"
    )
    with pytest.raises(ScenarioError, match=f"^{re.escape(message)}$"):
        scenario_for(str(tmp_path / "x.py"))


def test_readme_examples_pass_under_pytest(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Test your own code", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]  # the pytest one
    pytester.makepyfile(test_from_readme=block)
    result = pytester.runpytest_inprocess(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
