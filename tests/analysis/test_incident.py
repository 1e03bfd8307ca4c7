"""The incident example: a log captured from a real HAProxy 2.6 during a bad reload.

examples/incident/timeline.json records what happened (reload times, the bad rule, the
overloaded servers and the most affected regions); the analysis must find the same facts
from the log alone, and the comparison must attribute the skew to the bad rule.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lbguard.analysis import AnalysisOptions, LogAnalysis, analyse, load_region_map
from lbguard.analysis.compare import observe_and_compare
from lbguard.analysis.result import ChangeKind
from lbguard.logs import LogLoad, load_logs
from lbguard.parsers import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "incident"
CAPTURES = ("host", "x-forwarded-for")
"""The ``capture request header`` lines of the example configs, in order."""


@pytest.fixture(scope="module")
def timeline() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLE / "timeline.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def load() -> LogLoad:
    return load_logs([str(EXAMPLE / "haproxy.log")])


@pytest.fixture(scope="module")
def analysis(load: LogLoad) -> LogAnalysis:
    region_map = load_region_map(str(EXAMPLE / "regions.csv"), load.con)
    return analyse(load.con, files=load.files, region_map=region_map)


def reload_time(timeline: dict[str, Any], config: str) -> datetime:
    entry = next(r for r in timeline["reloads"] if r["config"] == config)
    return datetime.fromisoformat(entry["at"])


def test_onset_after_bad_reload(analysis: LogAnalysis, timeline: dict[str, Any]) -> None:
    onset = analysis.onset
    reload = reload_time(timeline, "haproxy-bad.cfg")

    assert onset is not None
    assert reload - timedelta(seconds=1) <= onset.at <= reload + timedelta(seconds=3)


def test_recovery_after_fix(analysis: LogAnalysis, timeline: dict[str, Any]) -> None:
    recovery = analysis.recovery
    reload = reload_time(timeline, "haproxy-fixed.cfg")

    assert recovery is not None
    assert reload - timedelta(seconds=1) <= recovery.at <= reload + timedelta(seconds=5)


def test_overloaded_servers(analysis: LogAnalysis, timeline: dict[str, Any]) -> None:
    onset = analysis.onset

    assert onset is not None
    assert sorted(s.key for s in onset.risen) == sorted(timeline["overloaded_servers"])
    assert sorted(analysis.diagnosis.overloaded) == sorted(timeline["overloaded_servers"])
    assert analysis.diagnosis.pattern == "concentration"


def test_starved_servers_fell(analysis: LogAnalysis, timeline: dict[str, Any]) -> None:
    onset = analysis.onset

    assert onset is not None
    assert set(timeline["starved_servers"]) <= {s.key for s in onset.fallen}


def test_error_rate_rise(analysis: LogAnalysis, timeline: dict[str, Any]) -> None:
    phases = {phase["name"]: phase for phase in timeline["phases"]}
    diagnosis = analysis.diagnosis

    assert diagnosis.error_rate_baseline == pytest.approx(0.0, abs=0.005)
    assert diagnosis.error_rate_incident is not None
    assert diagnosis.error_rate_incident == pytest.approx(
        phases["incident"]["client"]["error_rate"], abs=0.03
    )


def test_affected_regions(analysis: LogAnalysis, timeline: dict[str, Any]) -> None:
    # timeline.json orders by error rate, the analysis by excess errors.
    assert set(analysis.diagnosis.affected_regions) == set(timeline["most_affected_regions"])


def test_bad_config_explains_incident(load: LogLoad, timeline: dict[str, Any]) -> None:
    bad = timeline["bad_rule"]
    since = reload_time(timeline, "haproxy-bad.cfg") + timedelta(seconds=2)
    until = reload_time(timeline, "haproxy-fixed.cfg")
    lb = load_config([str(EXAMPLE / bad["file"])])
    comparison = observe_and_compare(
        lb, load.con, captured_headers=CAPTURES, since=since, until=until
    )
    rules = comparison.attributions[bad["backend"]]

    assert comparison.flagged == ()
    assert rules[0].location.line == bad["use_backend_line"]
    assert rules[0].text == bad["use_backend_text"]
    assert rules[0].share > 0.4


def test_good_config_departs_during_incident(load: LogLoad, timeline: dict[str, Any]) -> None:
    since = reload_time(timeline, "haproxy-bad.cfg") + timedelta(seconds=2)
    until = reload_time(timeline, "haproxy-fixed.cfg")
    lb = load_config([str(EXAMPLE / "haproxy-good.cfg")])
    comparison = observe_and_compare(
        lb, load.con, captured_headers=CAPTURES, since=since, until=until
    )
    flagged = {c.key: c for c in comparison.flagged}

    assert "be_search" in flagged
    assert flagged["be_search"].predicted_share is not None
    assert flagged["be_search"].observed_share > flagged["be_search"].predicted_share
    assert "be_api" in flagged
    assert flagged["be_api"].observed == 0


@pytest.mark.parametrize("seconds", [5, 20, 30, 60])
def test_onset_found_at_every_window_width(
    load: LogLoad, timeline: dict[str, Any], seconds: int
) -> None:
    width = timedelta(seconds=seconds)
    analysis = analyse(load.con, files=load.files, options=AnalysisOptions(window=width))
    onset = analysis.onset
    bad = reload_time(timeline, "haproxy-bad.cfg")
    fixed = reload_time(timeline, "haproxy-fixed.cfg")
    kinds = [change.kind for change in analysis.changes]

    assert onset is not None
    assert bad - width <= onset.at <= bad + width
    assert kinds.index(ChangeKind.ONSET) < kinds.index(ChangeKind.RECOVERY)
    assert analysis.recovery is not None
    assert fixed - width <= analysis.recovery.at <= fixed + width
