"""``check --logs`` restricted to the time a configuration was live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbguard.cli.main import ExitCode, main

INCIDENT = Path(__file__).resolve().parents[2] / "examples" / "incident"


def phase(name: str) -> dict[str, str]:
    timeline = json.loads((INCIDENT / "timeline.json").read_text())
    return next(p for p in timeline["phases"] if p["name"] == name)


def observed_rules(config: str, since: str, until: str, tmp_path: Path) -> list[str]:
    report = tmp_path / "report.json"
    code = main(
        [
            "check",
            str(INCIDENT / config),
            "--logs",
            str(INCIDENT / "haproxy.log"),
            "--since",
            since,
            "--until",
            until,
            "--format",
            "json",
            "-o",
            str(report),
        ]
    )
    assert code in (ExitCode.OK, ExitCode.FINDINGS)
    findings = json.loads(report.read_text())["findings"]
    return [f["rule_id"] for f in findings if f["rule_id"].startswith("LB6")]


def test_bad_config_explains_incident_window(tmp_path: Path) -> None:
    incident = phase("incident")
    assert observed_rules("haproxy-bad.cfg", incident["start"], incident["end"], tmp_path) == []


def test_good_config_departs_during_incident(tmp_path: Path) -> None:
    incident = phase("incident")
    rules = observed_rules("haproxy-good.cfg", incident["start"], incident["end"], tmp_path)
    assert "LB601" in rules


def test_invalid_since_names_option(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "check",
            str(INCIDENT / "haproxy-bad.cfg"),
            "--logs",
            str(INCIDENT / "haproxy.log"),
            "--since",
            "yesterday",
        ]
    )
    assert code == ExitCode.ERROR
    assert "--since: invalid time 'yesterday'" in capsys.readouterr().err
