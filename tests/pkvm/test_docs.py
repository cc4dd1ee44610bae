"""docs/pkvm.md's examples run, and its D1-D12 table agrees with the registry."""

from __future__ import annotations

import re
from pathlib import Path

from ffasim.pkvm import DEFECTS
from ffasim.pkvm.programs import PROGRAMS

DOC = Path(__file__).resolve().parents[2] / "docs" / "pkvm.md"


def test_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})


def test_defect_table_names_real_programs_and_fixes() -> None:
    rows = re.findall(r"^\| (D\d+) \| .*? \| (.*?) \| .*? \| (.*?) \| .*$", DOC.read_text(), re.M)
    assert [r[0] for r in rows] == [d.id for d in DEFECTS]
    for (did, fixed, progs), d in zip(rows, DEFECTS, strict=True):
        assert fixed == d.fixed_by, did
        for name in re.findall(r"`([a-z0-9-]+)`", progs):
            assert PROGRAMS[name].defect == did
