"""Random step sequences run on the reference mediator: every step ends in an outcome (success,
an FF-A error, skipped or a driver refusal), nothing escapes, and finish() gives a verdict."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ffasim.scenario import OUTCOMES, Scenario, ThreadSpec, VmSpec, step

_page = st.integers(min_value=0, max_value=15)
_sp = st.sampled_from([0x8001, 0x8002, 0x8003, 0x1, 0x2, 0x7FFF])

_STEPS: list[st.SearchStrategy[dict[str, Any]]] = [
    st.builds(dict, op=st.just("negotiate"), version=st.sampled_from(["1.0", "1.1", "1.2", "2.0"])),
    st.builds(dict, op=st.just("id_get")),
    st.builds(
        dict,
        op=st.just("map"),
        rx_page=_page,
        tx_page=_page,
        pages=st.integers(min_value=0, max_value=2),
        bits=st.sampled_from([32, 64]),
    ),
    st.builds(dict, op=st.just("unmap")),
    st.builds(dict, op=st.just("rx_release")),
    st.builds(dict, op=st.just("partition_info"), count_only=st.booleans()),
    st.builds(dict, op=st.just("partition_info_regs")),
    st.builds(
        dict,
        op=st.just("direct_req"),
        dst=_sp,
        payload=st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=5),
        bits=st.sampled_from([32, 64]),
    ),
    st.builds(dict, op=st.just("direct_req2"), dst=_sp),
    st.builds(
        dict,
        op=st.just("share"),
        receiver=_sp,
        pages=st.one_of(
            st.integers(min_value=1, max_value=3),
            st.lists(_page, min_size=1, max_size=3, unique=True),
        ),
        name=st.sampled_from(["a", "b"]),
    ),
    st.builds(dict, op=st.just("reclaim"), handle=st.sampled_from(["a", "b"])),
    st.builds(
        dict,
        op=st.just("mem_op"),
        handle=st.sampled_from(["a", "b"]),
        request=st.sampled_from(["fill", "sum"]),
        arg=st.integers(0, 255),
    ),
    st.builds(dict, op=st.just("notification_bind"), sender=_sp, bitmap=st.integers(0, 7)),
    st.builds(dict, op=st.just("notification_get")),
    st.builds(dict, op=st.just("notification_info_get"), bits=st.sampled_from([32, 64])),
    st.builds(dict, op=st.just("send2"), dst=_sp, data=st.text(max_size=20)),
    st.builds(dict, op=st.just("receive")),
    st.builds(
        dict,
        op=st.just("call"),
        call=st.sampled_from(
            ["FFA_RX_RELEASE", "FFA_ID_GET", "FFA_MEM_RECLAIM", "FFA_MSG_POLL", 0x84000099]
        ),
        args=st.lists(st.integers(0, 2**32), max_size=3),
    ),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    v0=st.lists(st.one_of(*_STEPS), min_size=1, max_size=8),
    v1=st.lists(st.one_of(*_STEPS), min_size=1, max_size=4),
    destroy_first=st.booleans(),
)
def test_random_steps_always_end_in_an_outcome(
    v0: list[dict[str, Any]], v1: list[dict[str, Any]], destroy_first: bool
) -> None:
    shared = {t["name"] for t in v0 + v1 if t["op"] == "share"}
    assume(all(t["handle"] in shared for t in v0 + v1 if "handle" in t))

    def steps(tables: list[dict[str, Any]]) -> tuple[Any, ...]:
        return tuple(step(t.pop("op"), expect="any", **t) for t in map(dict, tables))

    threads = [ThreadSpec(steps(v0), vm=0, vcpu=0), ThreadSpec(steps(v1), vm=0, vcpu=1)]
    destroy = ThreadSpec((step("destroy", vm=0),), context="toolstack")
    threads.insert(0 if destroy_first else 2, destroy)
    sc = Scenario(
        "random",
        vms=[VmSpec(vcpus=2, pages=16)],
        setup=[step("negotiate", vm=0)],
        threads=threads,
    )
    inst = sc.instantiate()
    for th in inst.threads:
        inst.system.machine.current = th.name
        th.body()
    verdict = inst.finish()
    assert all(isinstance(line, str) for line in verdict)
    assert not [ln for ln in verdict if not ln.startswith("leak: ")]  # expect = "any"
    assert len(inst.results) == 1 + len(v0) + len(v1) + 1
    for rec in inst.results:
        assert rec.outcome in (*OUTCOMES, "skipped", "driver error") or rec.outcome.startswith(
            ("FFA_", "version ")
        ), rec
