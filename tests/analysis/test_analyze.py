"""Log analysis end to end on generated HAProxy logs read by the real log reader."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from loggen import SEARCH, START, WEB, Phase

from lbguard.analysis import AnalysisOptions, LogAnalysis, analyse, load_region_map
from lbguard.analysis.result import NO_SERVER, ChangeKind
from lbguard.logs import load_logs


def run(path: Path, regions: Path | None = None, window: timedelta | None = None) -> LogAnalysis:
    load = load_logs([str(path)])
    region_map = load_region_map(str(regions), load.con) if regions else None
    return analyse(
        load.con,
        files=load.files,
        region_map=region_map,
        options=AnalysisOptions(window=window),
    )


def test_server_counts_and_shares(incident_log: Path) -> None:
    analysis = run(incident_log)
    servers = {s.key: s for pool in analysis.pools for s in pool.servers}
    counted = sum(s.stats.requests for s in servers.values())

    assert analysis.stats.requests == 9000
    assert counted == 9000
    assert set(servers) == {
        "be_web/web1", "be_web/web2", "be_web/web3", "be_web/web4",
        "be_search/search1", "be_search/search2", f"be_search/{NO_SERVER}",
    }  # fmt: skip
    no_server = servers[f"be_search/{NO_SERVER}"].stats
    assert no_server.status_5xx == no_server.requests
    assert no_server.lb_errors == no_server.requests
    assert analysis.stats.errors == no_server.requests
    assert sum(p.share_of_total for p in analysis.pools) == pytest.approx(1.0)


def test_latency_percentiles_in_ms(incident_log: Path) -> None:
    analysis = run(incident_log)
    web = next(p for p in analysis.pools if p.pool == "be_web")
    search = next(p for p in analysis.pools if p.pool == "be_search")

    # Web requests take 5 to 60 ms; failed search requests wait 2000 ms in the queue.
    assert web.stats.total_ms.p50 is not None
    assert 5 <= web.stats.total_ms.p50 <= 60
    assert web.stats.total_ms.p99 is not None
    assert web.stats.total_ms.p99 <= 60
    assert search.stats.total_ms.p99 == pytest.approx(2000)


def test_onset_and_recovery_found(incident_log: Path) -> None:
    analysis = run(incident_log)
    onset = analysis.onset
    recovery = analysis.recovery

    assert onset is not None
    assert recovery is not None
    assert abs((onset.at - (START + timedelta(minutes=10))).total_seconds()) <= 30
    assert abs((recovery.at - (START + timedelta(minutes=20))).total_seconds()) <= 30
    assert [c.kind for c in analysis.changes] == [ChangeKind.ONSET, ChangeKind.RECOVERY]


def test_onset_names_risen_servers(incident_log: Path) -> None:
    analysis = run(incident_log)
    onset = analysis.onset

    assert onset is not None
    assert {s.key for s in onset.risen} == {"be_search/search1", "be_search/search2"}
    assert onset.error_rate_before == pytest.approx(0.0)
    assert onset.error_rate_after > 0.1
    assert onset.magnitude > 0.3
    assert analysis.diagnosis.pattern == "concentration"
    assert set(analysis.diagnosis.overloaded) == {"be_search/search1", "be_search/search2"}


def test_regions_split_errors(incident_log: Path, regions_csv: Path) -> None:
    analysis = run(incident_log, regions_csv)
    regions = {r.region: r for r in analysis.regions}

    assert set(regions) == {"us-east", "ap-south"}
    assert sum(r.stats.requests for r in regions.values()) == 9000
    assert regions["ap-south"].error_rate_baseline == pytest.approx(0.0)
    assert regions["ap-south"].error_rate_incident is not None
    assert regions["ap-south"].error_rate_incident > 0.2
    assert regions["us-east"].error_rate_incident is not None
    assert regions["us-east"].error_rate_incident < 0.05
    assert regions["ap-south"].incident_share_on_risen is not None
    assert regions["ap-south"].incident_share_on_risen > 0.6
    assert analysis.diagnosis.affected_regions == ("ap-south",)


def test_stable_log_has_no_onset(log_writer: Callable[..., Path]) -> None:
    servers = [*WEB, *SEARCH]
    path = log_writer([Phase(seconds=1200, rate=5, servers=servers, errors={})])
    analysis = run(path)

    assert analysis.onset is None
    assert analysis.changes == ()
    assert analysis.diagnosis.pattern == "none"


def test_sparse_log_has_no_onset(log_writer: Callable[..., Path]) -> None:
    # One request a second over four servers: about 4 per server per window, so shares
    # swing widely from window to window without any real change.
    path = log_writer([Phase(seconds=1800, rate=1, servers=WEB, errors={})], seed=11)
    analysis = run(path)

    assert analysis.timeline is not None
    assert len(analysis.timeline) == 120
    assert analysis.onset is None
    assert analysis.changes == ()


def test_short_burst_on_one_server_found(log_writer: Callable[..., Path]) -> None:
    # Twenty requests in a row on one server after ten even minutes is significant.
    path = log_writer(
        [
            Phase(seconds=600, rate=1, servers=WEB, errors={}),
            Phase(seconds=20, rate=1, servers=[WEB[0]], errors={}),
        ]
    )
    analysis = run(path)

    assert analysis.onset is not None
    assert [s.key for s in analysis.onset.risen] == ["be_web/web1"]


def test_errors_without_shift_point_to_shared_cause(log_writer: Callable[..., Path]) -> None:
    failing = {f"be_web/web{i}": 0.2 for i in range(1, 5)}
    path = log_writer(
        [
            Phase(seconds=600, rate=5, servers=WEB, errors={}),
            Phase(seconds=600, rate=5, servers=WEB, errors=failing),
        ]
    )
    analysis = run(path)

    assert analysis.onset is not None
    assert analysis.onset.risen == ()
    assert analysis.diagnosis.pattern == "shared-dependency"


def test_window_option_sets_width(incident_log: Path) -> None:
    analysis = run(incident_log, window=timedelta(minutes=1))

    assert analysis.timeline is not None
    assert analysis.timeline.width == timedelta(minutes=1)
    assert len(analysis.timeline) == 30
    assert int(analysis.timeline.requests.sum()) == 9000
    assert int(analysis.timeline.requests[0]) == 300


def test_pool_skew_per_window(incident_log: Path) -> None:
    analysis = run(incident_log, window=timedelta(minutes=1))
    timeline = analysis.timeline

    assert timeline is not None
    assert timeline.pool_names == ("be_search", "be_web")
    web = timeline.pool_names.index("be_web")
    # Four web servers at equal weight: max/mean stays near 1 in every window.
    assert float(timeline.pool_skew[:, web].max()) < 1.6
    assert float(timeline.pool_skew[:, web].min()) >= 1.0


def test_errors_count_5xx_or_lb_error_once() -> None:
    import duckdb

    from lbguard.analysis.aggregates import overall_stats
    from lbguard.logs.schema import create_table_sql

    con = duckdb.connect()
    con.execute(create_table_sql())
    rows = [(503, True), (503, False), (403, True), (200, False), (None, True)]
    for status, lb_error in rows:
        con.execute(
            "INSERT INTO requests (ts, status, lb_error) VALUES (TIMESTAMPTZ '2026-03-02 "
            "22:00:00+00', ?, ?)",
            [status, lb_error],
        )
    stats, _, _ = overall_stats(con)

    assert stats.lb_errors == 3
    assert stats.status_5xx == 2
    assert stats.errors == 4
