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


def test_overreaching_descriptors_point_past_the_fragment_or_the_page() -> None:
    import random

    from ffasim import abi
    from ffasim.hunt._steps import Layout, _Maker

    for version in (abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2):
        lay = Layout(vcpus=1, pages=32, version=version, rx=0, tx=1, buf_pages=1, mapped=True)
        maker = _Maker(random.Random(1), [lay], [0x8001, 0x8002], frozenset({"malformed"}))
        for _ in range(30):
            buf = maker.overreach(0)
            emad = (
                0x20 if version == abi.FFA_VERSION_1_0 else int.from_bytes(buf[0x20:0x24], "little")
            )
            comp = int.from_bytes(buf[emad + 4 : emad + 8], "little")
            count = (
                int.from_bytes(buf[comp + 4 : comp + 8], "little") if comp + 8 <= len(buf) else 0
            )
            # the composite header or its ranges run past the fragment (or the 4 KiB page)
            assert len(buf) > 4096 or comp + 16 > len(buf) or comp + 16 + 16 * count > len(buf)


def test_state_family_makes_calls_in_the_state_others_left() -> None:
    seqs = []
    for i in range(300):
        p = generate(0, i)
        if "state" not in p.families:
            continue
        for t in p.scenario.threads:
            ops = [s.op if s.op != "call" else str(s.params.get("fid")) for s in t.steps]
            seqs.append(ops)
    flat = [" ".join(o) for o in seqs]
    assert any("unmap unmap" in f for f in flat)
    assert any("rx_release rx_release" in f for f in flat)
