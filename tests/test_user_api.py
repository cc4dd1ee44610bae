"""Checking FF-A code of one's own, written as a user would: only public names (ffasim,
ffasim.abi, ffasim.scenario, ffasim.spmc, ffasim.strategies) and the pytest plugin's
fixtures."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

import ffasim
from ffasim import abi, strategies
from ffasim.scenario import Scenario, StepEnv, ThreadSpec, VmSpec, python_step, step
from ffasim.spmc import DirectMessage

# The fixtures live as long as the test, across hypothesis's examples: one guest doing many
# shares in a row, audited once at the end.
ONE_GUEST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def partinfo_race() -> Scenario:
    """Two VMs ask for partition information at the same time."""
    return Scenario(
        "partinfo-race",
        "two VMs call FFA_PARTITION_INFO_GET at once",
        vms=[VmSpec(), VmSpec()],
        setup=[step(op, vm=vm) for vm in (0, 1) for op in ("negotiate", "map")],
        threads=[
            ThreadSpec((step("partition_info", includes=[0x8001, 0x8002]),), vm=vm) for vm in (0, 1)
        ],
    )


def test_partinfo_race_panics_the_seed_patch(ffasim_check) -> None:
    report = ffasim_check(partinfo_race(), variant="seed-v1", expect="assertion")
    (finding,) = report.findings
    assert finding.kind == "assertion"
    assert finding.message.startswith(
        "HypervisorPanic: Assertion '!spin_is_locked(&ffa_spmc_rx_lock)' failed"
    )
    assert finding.schedule is not None and finding.schedule.is_file()


def test_partinfo_race_is_clean_on_reference(ffasim_check) -> None:
    report = ffasim_check(partinfo_race(), variant="reference")
    assert report.findings == [] and report.exhausted


@ONE_GUEST
@given(d=strategies.mem_share_descriptors(sender=1))
def test_a_guest_shares_and_reclaims_drawn_descriptors(ffasim_vm, d) -> None:
    assert ffasim_vm.id == 1
    ffasim_vm.write(ffasim_vm.ipa(1), d.data)  # the TX buffer
    r = ffasim_vm.smc(abi.FFA_MEM_SHARE_64, len(d.data), len(d.data))
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)
    r = ffasim_vm.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)


@ONE_GUEST
@given(m=strategies.mutated(strategies.mem_share_descriptors(sender=1)))
def test_a_guest_sharing_broken_descriptors_gets_ffa_errors(ffasim_vm, m) -> None:
    ffasim_vm.write(ffasim_vm.ipa(1), m.data[: abi.FFA_PAGE_SIZE])
    r = ffasim_vm.smc(abi.FFA_MEM_SHARE_64, len(m.data), len(m.data))
    if r[0] == abi.FFA_SUCCESS_32:  # the change left a valid descriptor: give the pages back
        assert ffasim_vm.smc(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)[0] == abi.FFA_SUCCESS_32
    else:
        assert r[0] == abi.FFA_ERROR and abi.to_s32(r[2]) in abi.ERROR_CODES, m.change


def test_the_seed_panic_found_from_python_is_gone_on_reference(tmp_path) -> None:
    """``ffasim.check_scenario`` and ``ffasim.replay_file``: find on one variant, replay the
    schedule on the fixed one."""
    report = ffasim.check_scenario(partinfo_race(), variant="seed-v1", out=tmp_path)
    (finding,) = report.findings
    assert finding.kind == "assertion" and finding.schedule is not None
    assert (tmp_path / "partinfo-race.toml").is_file()  # what the schedule replays

    again = ffasim.replay_file(finding.schedule)
    assert again.reproduced and again.followed and again.variant == "seed-v1"
    assert again.finding is not None and again.finding.message == finding.message

    fixed = ffasim.replay_file(finding.schedule, variant="reference")
    assert not fixed.reproduced and fixed.finding is None and fixed.variant == "reference"
    assert fixed.findings == [] and fixed.trace

    clean = ffasim.check_scenario(partinfo_race(), out=tmp_path)
    assert clean.findings == [] and clean.exhausted and clean.variant == "reference"


def test_a_partition_with_two_contexts_loses_an_update(tmp_path) -> None:
    """A partition of one's own: two execution contexts count requests with a read then a
    write of one shared word. Two vCPUs calling at once lose one count."""

    def count(sp: ffasim.SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        counter = sp.atomic("counter")
        counter.set(counter.read() + 1)  # not counter.add(1): the lost update
        return ()

    def counted_both(env: StepEnv) -> None:
        sp = next(p for p in env.instance.partitions if p.id == 0x8004)
        assert sp.atomic("counter").value == 2, "lost update"

    uuid = "0b0b0b0b-0000-4000-8000-000000008004"
    scenario = Scenario(
        "counting-partition",
        "two vCPUs call a partition that counts its requests",
        vms=[VmSpec(vcpus=2)],
        partitions=lambda: [
            *ffasim.default_partitions(),
            ffasim.SecurePartition(0x8004, uuid, exec_ctx=2, properties=0x105, handler=count),
        ],
        setup=[step("negotiate", vm=0)],
        threads=[
            ThreadSpec((step("direct_req", dst=0x8004, payload=[1]),), vm=0, vcpu=v) for v in (0, 1)
        ],
        final=[python_step(counted_both, "counted both", vm=0)],
    )
    (finding,) = ffasim.check_scenario(scenario, out=tmp_path).findings
    assert finding.kind == "crash" and "lost update" in finding.message
    assert ffasim.replay_file(finding.schedule).reproduced
