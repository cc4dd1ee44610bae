"""``ffasim check --junit FILE``: one failing test case per finding, or one passing one."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from ffasim.cli import app

runner = CliRunner()


def test_finding_is_a_failing_testcase_with_its_replay_command(tmp_path: Path) -> None:
    xml = tmp_path / "report.xml"
    r = runner.invoke(
        app,
        [
            "check",
            "partinfo-2vcpu",
            "--variant",
            "seed-v1",
            "--out",
            str(tmp_path),
            "--junit",
            str(xml),
        ],
    )
    assert r.exit_code == 1
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["variant"] == "seed-v1" and props["stopped_by"] == "finding"
    (case,) = suite.iter("testcase")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "assertion"
    assert case.get("name", "").startswith("assertion: HypervisorPanic: Assertion")
    assert failure.text is not None
    assert f"replay:    ffasim replay {tmp_path}/partinfo-2vcpu-seed-v1-assertion" in failure.text


def test_clean_check_is_one_passing_testcase(tmp_path: Path) -> None:
    xml = tmp_path / "report.xml"
    r = runner.invoke(app, ["check", "partinfo-2vcpu", "--budget", "2", "--junit", str(xml)])
    assert r.exit_code == 0
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("1", "0")
    (case,) = suite.iter("testcase")
    assert case.get("name") == "nothing found in 2 executions (budget)"
    assert case.find("failure") is None


def test_unwritable_junit_file_is_a_usage_error(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["check", "partinfo-2vcpu", "--budget", "1", "--junit", str(tmp_path / "no" / "x.xml")]
    )
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: cannot write {tmp_path}/no/x.xml: ")
