"""Untrusted scenario files: any content loads or fails with one ScenarioError line."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ffasim.scenario import OPS, ScenarioError, load_toml

_KEYS = sorted({k for op in OPS.values() for k in (*op.params, *op.checks)} | {"expect", "vm"})

_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.sampled_from(
        ["success", "BUSY", "RW", "sum", "1.2", "self", "ipa:3", "x", "", "FFA_ID_GET"]
    ),
    st.text(max_size=8),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=7))


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    return str(v)


@st.composite
def _step(draw: st.DrawFn) -> str:
    table: dict[str, Any] = {}
    if draw(st.booleans()):
        table["op"] = draw(st.sampled_from([*OPS, "nope"]))
    else:
        table["call"] = draw(st.sampled_from(["FFA_ID_GET", "FFA_VERSION", "BAD", 3]))
    for key in draw(st.lists(st.sampled_from([*_KEYS, "junk"]), max_size=4, unique=True)):
        table[key] = draw(_values)
    inner = ", ".join(f"{k} = {_toml(v)}" for k, v in table.items())
    return "{ " + inner + " }"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_step(), min_size=1, max_size=4),
    vm=st.integers(min_value=-1, max_value=3),
    vcpu=st.integers(min_value=-1, max_value=3),
    context=st.sampled_from([None, "toolstack", "sri", "irq"]),
    vcpus=_scalars,
)
def test_random_files_load_or_fail_with_one_line(
    steps: list[str], vm: int, vcpu: int, context: str | None, vcpus: Any
) -> None:
    thread = f"context = {json.dumps(context)}\n" if context else f"vm = {vm}\nvcpu = {vcpu}\n"
    text = (
        '[scenario]\nname = "fuzz"\n\n[[vm]]\nvcpus = ' + _toml(vcpus) + "\n\n[[vm]]\n\n"
        "[[thread]]\n" + thread + "steps = [\n" + ",\n".join(steps) + "\n]\n"
    )
    try:
        sc = load_toml("f.toml", text=text)
    except ScenarioError as e:
        msg = str(e)
        assert msg.startswith("f.toml:") and "\n" not in msg
        return
    assert sc.name == "fuzz"


_SECTION_KEYS = {
    "scenario": ["name", "description", "variant", "vm_to_vm", "junk"],
    "partitions": ["id", "uuid", "exec_ctx", "properties", "behaviour", "vm_created", "junk"],
    "vm": ["vcpus", "pages", "junk"],
    "setup": ["op", "vm", "vcpu", "expect", "version", "sp", "junk"],
    "thread": ["vm", "vcpu", "context", "toolstack", "steps", "junk"],
    "final": ["op", "vm", "sp", "destroyed", "junk"],
}


@st.composite
def _document(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for section, keys in _SECTION_KEYS.items():
        n = draw(st.integers(min_value=0, max_value=2))
        for _ in range(n if section != "scenario" else min(n, 1)):
            header = f"[{section}]" if section == "scenario" else f"[[{section}]]"
            lines = [header]
            for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
                value = draw(st.one_of(_values, st.just(["x"]), st.just({"op": "map"})))
                if isinstance(value, dict):
                    lines.append(f'{key} = {{ op = "map" }}')
                else:
                    lines.append(f"{key} = {_toml(value)}")
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_document())
def test_random_documents_load_or_fail_with_one_line(text: str) -> None:
    try:
        load_toml("d.toml", text=text)
    except ScenarioError as e:
        msg = str(e)
        assert msg.startswith("d.toml") and "\n" not in msg
