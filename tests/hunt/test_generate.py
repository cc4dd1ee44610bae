"""The generator: deterministic from the seed, every program a valid scenario that a file can
hold, swarm configurations that differ, mutations that stay valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffasim.hunt.generate import GUEST_FAMILIES, Program, generate, mutate
from ffasim.scenario import load_toml


def test_generate_same_seed_same_program() -> None:
    for i in range(5):
        a, b = generate(3, i), generate(3, i)
        assert a.scenario == b.scenario
        assert (a.families, a.faults) == (b.families, b.faults)


def test_generate_other_seed_other_programs() -> None:
    assert [generate(0, i).scenario for i in range(5)] != [
        generate(1, i).scenario for i in range(5)
    ]


def _round_trip(p: Program, tmp_path: Path) -> None:
    path = tmp_path / f"{p.scenario.name}.toml"
    path.write_text(p.scenario.to_toml(), encoding="utf-8")
    assert load_toml(str(path)) == p.scenario


@pytest.mark.parametrize("seed", [0, 1])
def test_every_generated_program_is_a_valid_scenario_that_runs(seed: int, tmp_path: Path) -> None:
    for i in range(30):
        p = generate(seed, i)
        _round_trip(p, tmp_path)
        assert 1 <= len(p.scenario.vms) <= 4
        assert all(1 <= vm.vcpus <= 3 for vm in p.scenario.vms)
        inst = p.scenario.instantiate("reference")
        for th in inst.threads:
            th.body()
        inst.finish()
        # Nothing a generated step does may crash the guest side: every outcome is allowed.
        assert all(r.problem is None for r in inst.results)


def test_swarm_programs_enable_different_families() -> None:
    seen = {generate(0, i).families & set(GUEST_FAMILIES) for i in range(20)}
    assert len(seen) > 10
    assert set().union(*seen) == set(GUEST_FAMILIES)


def test_generator_covers_the_guest_abi() -> None:
    fids: set[str] = set()
    ops: set[str] = set()
    for i in range(150):
        sc = generate(0, i).scenario
        for st in [*sc.setup, *(s for t in sc.threads for s in t.steps)]:
            ops.add(st.op)
            if st.op == "call":
                fids.add(str(st.params["fid"]))
    assert {
        "negotiate",
        "map",
        "unmap",
        "share",
        "reclaim",
        "send2",
        "destroy",
        "write_bytes",
        "notification_bind",
        "partition_info_regs",
        "sp_send2",
    } <= ops
    from ffasim import abi

    names = {abi.name(int(f)) for f in fids}
    assert {
        "FFA_MEM_FRAG_TX",
        "FFA_MEM_LEND_64",
        "FFA_MSG_SEND2",
        "FFA_RX_ACQUIRE",
        "FFA_MSG_SEND_DIRECT_REQ2",
    } <= names


def test_mutate_is_deterministic_and_valid(tmp_path: Path) -> None:
    parent = generate(0, 4)
    a, b = mutate(parent, 0, 50), mutate(parent, 0, 50)
    assert a.scenario == b.scenario and a.parent == parent.index
    assert a.scenario != parent.scenario or a.faults != parent.faults
    _round_trip(a, tmp_path)
