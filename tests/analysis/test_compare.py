"""Predicted-versus-observed tests: significance plus an effect-size floor."""

from __future__ import annotations

import duckdb
import pytest

from lbguard.analysis.compare import CompareOptions, compare, profile_from_requests
from lbguard.logs.schema import create_table_sql
from lbguard.model import NO_LOCATION
from lbguard.predict.result import PoolShare, Prediction, ServerShare, ShareMethod


def prediction(shares: dict[str, float]) -> Prediction:
    """One pool ``be`` at 100 % of the traffic with the given server shares."""
    servers = tuple(
        ServerShare(
            pool="be", server=name, endpoint=f"127.0.0.1:{8000 + i}", share_of_pool=share,
            share_of_total=share, fair_share=share, weight=1, backup=False, eligible=True,
            location=NO_LOCATION,
        )
        for i, (name, share) in enumerate(shares.items())
    )  # fmt: skip
    pool = PoolShare(
        pool="be", share_of_total=1.0, method=ShareMethod.EXACT, servers=servers, notes=(),
        max_over_mean=None, coefficient_of_variation=None, location=NO_LOCATION,
    )  # fmt: skip
    return Prediction(
        rules=(), pools=(pool,), endpoints=(), unevaluated=(), assumptions=(), traffic="",
        route_level_known=True,
    )  # fmt: skip


def flagged(observed: dict[str, int]) -> set[str]:
    result = compare(prediction({"a": 0.5, "b": 0.5}), observed)
    return {c.key for c in result.flagged}


def test_large_significant_difference_flagged() -> None:
    assert flagged({"be/a": 6000, "be/b": 4000}) == {"be/a", "be/b"}


def test_significant_but_small_difference_not_flagged() -> None:
    # 52 % against 50 % over 100,000 requests: z = 12.6, but only 2 points.
    assert flagged({"be/a": 52000, "be/b": 48000}) == set()


def test_large_but_chance_difference_not_flagged() -> None:
    # 60 % against 50 % over 20 requests is chance (z = 0.9).
    assert flagged({"be/a": 12, "be/b": 8}) == set()


def test_reason_states_numbers() -> None:
    result = compare(prediction({"a": 0.5, "b": 0.5}), {"be/a": 6000, "be/b": 4000})
    server = next(c for c in result.servers if c.key == "be/a")

    assert server.observed_share == pytest.approx(0.6)
    assert server.z == pytest.approx(20.0)
    assert "observed 60.0% of 10,000 requests against 50.0% predicted" in server.reason


def test_unknown_server_reported() -> None:
    result = compare(prediction({"a": 0.5, "b": 0.5}), {"be/a": 10, "be/zz": 10, "other/x": 3})

    assert set(result.unmatched) == {"be/zz", "other/x"}


def test_ratio_floor_option() -> None:
    options = CompareOptions(min_points=0.5, min_ratio=1.1, ratio_min_points=0.01)
    result = compare(prediction({"a": 0.5, "b": 0.5}), {"be/a": 5600, "be/b": 4400}, options)

    assert {c.key for c in result.flagged} == {"be/a", "be/b"}


def test_profile_from_requests() -> None:
    con = duckdb.connect()
    con.execute(create_table_sql())
    rows = [
        ("fe", "GET", None, "/a", None, "192.0.2.1", ["www.example.com", "198.51.100.1"]),
        ("fe", "GET", None, "/a", None, "192.0.2.1", ["www.example.com", "198.51.100.1"]),
        ("fe", "POST", None, "/b", "x=1", "192.0.2.2", ["api.example.com", "198.51.100.2"]),
    ]
    con.executemany(
        "INSERT INTO requests (frontend, method, host, path, query, client_ip, "
        "captured_request_headers) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    profile = profile_from_requests(con, captured_headers=["host", "x-forwarded-for"])
    by_path = {str(p): (float(w), str(h)) for p, w, h in
               zip(profile.path, profile.weight, profile.host, strict=True)}  # fmt: skip

    assert len(profile) == 2
    assert profile.total == 3.0
    assert by_path == {"/a": (2.0, "www.example.com"), "/b": (1.0, "api.example.com")}
    assert {"path", "host", "query", "client_ip", "header:x-forwarded-for"} <= profile.known


def test_rows_without_pool_are_left_out_with_a_note() -> None:
    result = compare(prediction({"a": 0.5, "b": 0.5}), {"<none>/<none>": 7, "be/a": 5})
    assert result.unmatched == ()
    assert [c.key for c in result.pools] == ["be"]
    assert len(result.notes) == 1
    assert "7 logged requests name no pool" in result.notes[0]


def test_log_of_another_product_is_rejected(tmp_path) -> None:
    from lbguard.analysis.compare import observe_and_compare
    from lbguard.errors import LogError
    from lbguard.logs import load_logs
    from lbguard.parsers import load_config

    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n"
        "  timeout server 1s\nfrontend fe\n  bind 127.0.0.1:8080\n  default_backend be\n"
        "backend be\n  server a 127.0.0.1:9001\n"
    )
    log = tmp_path / "access.log"
    log.write_text('127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /a HTTP/1.1" 200 5 "-" "c"\n')
    load = load_logs([str(log)])
    with pytest.raises(LogError) as caught:
        observe_and_compare(load_config([str(config)]), load.con, load.table)
    assert "nginx format" in str(caught.value)
    assert "configuration is for haproxy" in str(caught.value)


def test_extreme_evidence_is_written_without_raw_infinity() -> None:
    result = compare(prediction({"a": 0.5, "b": 0.5}), {"be/a": 100000, "be/b": 0})
    reasons = " ".join(c.reason for c in result.servers)
    assert "p = 0" not in reasons
    assert "p < 1e-300" in reasons
    only = compare(prediction({"a": 1.0, "b": 0.0}), {"be/a": 50, "be/b": 50})
    text = " ".join(c.reason for c in only.servers)
    assert "inf" not in text
    assert "no room for chance" in text
