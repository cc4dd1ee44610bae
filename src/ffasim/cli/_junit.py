"""``ffasim check --junit FILE``: the check as JUnit XML, the report CI systems read (GitLab,
Jenkins, GitHub test reporters).

One ``<testsuite>`` per check; one failing ``<testcase>`` per finding, whose ``<failure>``
holds what the text report says about it (contexts, calls, locks held, the schedule and the
command that replays it); a check that found nothing is one passing test case, named for what
was explored. The search itself (scenario, variant, strategy, seed, faults, executions) goes in
``<properties>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _finding_text(issue: Any) -> str:
    f, r = issue.finding, issue.result
    lines = [f"{f.kind}: {f.message}"]
    if f.threads:
        lines.append(f"contexts:  {', '.join(f.threads)}")
    if f.calls:
        lines.append(f"calls:     {', '.join(f.calls)}")
    if issue.locks_held:
        held = ", ".join(f"{lock} by {who}" for lock, who in issue.locks_held)
        lines.append(f"held:      {held}")
    for other in issue.also:
        lines.append(f"also:      {other.summary()}")
    pre = f"{r.preemptions} preemption{'' if r.preemptions == 1 else 's'}"
    lines.append(f"schedule:  {issue.path} ({pre}, {r.steps} steps)")
    lines.append(f"replay:    {issue.replay_command}")
    return "\n".join(lines)


def junit_xml(report: Any, stopped_by: str) -> str:
    """``report`` (a :class:`~ffasim.scenario.CheckReport`) as a JUnit XML document;
    ``stopped_by`` says why the search ended (``exhausted``, ``finding``, ``budget``...)."""
    n = len(report.issues)
    suite_name = f"ffasim check {report.scenario} on {report.variant}"
    elapsed = f"{report.elapsed:.3f}"
    root = ET.Element(
        "testsuites",
        name="ffasim check",
        tests=str(max(n, 1)),
        failures=str(n),
        errors="0",
        time=elapsed,
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(max(n, 1)),
        failures=str(n),
        errors="0",
        skipped="0",
        time=elapsed,
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("scenario", report.scenario),
        ("variant", report.variant),
        ("strategy", report.strategy),
        ("seed", report.seed),
        ("faults", " ".join(report.faults)),
        ("executions", report.executions),
        ("stopped_by", stopped_by),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    classname = f"ffasim.{report.scenario}.{report.variant}"
    if not n:
        runs = f"{report.executions} execution{'s' if report.executions != 1 else ''}"
        ET.SubElement(
            suite,
            "testcase",
            classname=classname,
            name=f"nothing found in {runs} ({stopped_by})",
            time=elapsed,
        )
    for issue in report.issues:
        f = issue.finding
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=f"{f.kind}: {f.message}", time="0"
        )
        failure = ET.SubElement(case, "failure", type=f.kind, message=f.message)
        failure.text = _finding_text(issue)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write_junit(path: Path, report: Any, stopped_by: str) -> None:
    """Write :func:`junit_xml` to ``path`` (OSError when it cannot)."""
    path.write_text(junit_xml(report, stopped_by), encoding="utf-8")
