"""HAProxy balancing model: algorithms, eligibility, health overrides, keys, cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer, Pool
from lbguard.parsers.haproxy import parse_haproxy
from lbguard.predict import predict
from lbguard.predict.haproxy import balance, server_ids
from lbguard.predict.haproxy_keys import main_domain
from lbguard.predict.result import Prediction, ShareMethod
from lbguard.traffic import from_columns, load_profile

CASES = Path(__file__).parent.parent / "data" / "cases"


def load(tmp_path: Path, backend: str, extra: str = "") -> LoadBalancer:
    text = (
        "defaults\n    mode http\n\n"
        "frontend fe\n    bind 127.0.0.1:8080\n    default_backend be\n" + extra + "\n"
        "backend be\n" + "".join(f"    {line.strip()}\n" for line in backend.splitlines())
    )
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return parse_haproxy([path])


def shares(prediction: Prediction, pool: str = "be") -> dict[str, float]:
    found = prediction.pool(pool)
    assert found is not None
    return {server.server: server.share_of_pool for server in found.servers}


def the_pool(lb: LoadBalancer) -> Pool:
    pool = lb.pool("be")
    assert pool is not None
    return pool


# -- cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.glob("haproxy-*")))
def test_case_expected_shares(case: str) -> None:
    folder = CASES / case
    spec = yaml.safe_load((folder / "case.yaml").read_text())
    lb = parse_haproxy([folder / "haproxy.cfg"])
    profile = load_profile(folder / "case.yaml", section="traffic")
    prediction = predict(lb, profile)
    tolerance = spec["expect"]["tolerance"]
    for key, expected in spec["expect"]["shares"].items():
        server = prediction.server(key)
        assert server is not None, key
        assert server.share_of_total == pytest.approx(expected, abs=tolerance), key


# -- algorithms -------------------------------------------------------------------------


def test_roundrobin_follows_weights(tmp_path: Path) -> None:
    lb = load(
        tmp_path,
        "balance roundrobin\nserver a 127.0.0.1:1 weight 1\nserver b 127.0.0.1:2 weight 3",
    )
    prediction = predict(lb)
    assert shares(prediction) == {"a": 0.25, "b": 0.75}
    assert prediction.pool("be").method is ShareMethod.EXACT  # type: ignore[union-attr]


def test_drain_weight_zero_and_disabled_get_nothing(tmp_path: Path) -> None:
    lb = load(
        tmp_path,
        "server a 127.0.0.1:1\nserver b 127.0.0.1:2 weight 0\n"
        "server c 127.0.0.1:3 disabled\nserver d 127.0.0.1:4",
    )
    result = shares(predict(lb))
    assert result == {"a": 0.5, "b": 0.0, "c": 0.0, "d": 0.5}


def test_leastconn_is_load_dependent(tmp_path: Path) -> None:
    lb = load(tmp_path, "balance leastconn\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2 weight 2")
    pool = predict(lb).pool("be")
    assert pool is not None
    assert pool.method is ShareMethod.LOAD_DEPENDENT
    assert pool.servers[1].share_of_pool == pytest.approx(2 / 3)
    assert any("concurrency" in note for note in pool.notes)


def test_first_sends_all_to_lowest_id(tmp_path: Path) -> None:
    lb = load(
        tmp_path,
        "balance first\nserver a 127.0.0.1:1 id 9 maxconn 100\n"
        "server b 127.0.0.1:2 id 3 maxconn 100",
    )
    pool = predict(lb).pool("be")
    assert pool is not None
    assert shares(predict(lb)) == {"a": 0.0, "b": 1.0}
    assert pool.method is ShareMethod.LOAD_DEPENDENT
    assert any("maxconn 100" in note for note in pool.notes)


def test_random_one_draw_uses_ring_arcs(tmp_path: Path) -> None:
    lb = load(tmp_path, "balance random(1)\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2")
    result = shares(predict(lb))
    assert round(result["a"], 3) == 0.431
    assert round(result["b"], 3) == 0.569


def test_random_two_draws_use_ring_arcs(tmp_path: Path) -> None:
    # With equally loaded servers the last of the two draws wins, as with random(1).
    servers = "server a 127.0.0.1:1\nserver b 127.0.0.1:2 weight 3"
    two = load(tmp_path, "balance random\n" + servers)
    pool = predict(two).pool("be")
    one = load(tmp_path, "balance random(1)\n" + servers)
    assert pool is not None
    assert pool.method is ShareMethod.EXPECTED
    assert shares(predict(two)) == shares(predict(one))
    assert shares(predict(two)) != {"a": 0.25, "b": 0.75}


def test_consistent_without_traffic_reproduces_ring_table(tmp_path: Path) -> None:
    servers = "\n".join(f"server s{i} 127.0.0.1:{i}" for i in range(1, 5))
    lb = load(tmp_path, "balance uri\nhash-type consistent\n" + servers)
    result = shares(predict(lb))
    assert [round(result[f"s{i}"], 3) for i in range(1, 5)] == [0.289, 0.185, 0.243, 0.283]
    pool = predict(lb).pool("be")
    assert pool is not None
    assert pool.max_over_mean == pytest.approx(0.289 * 4, abs=0.01)


def test_map_based_without_traffic_uses_slot_counts(tmp_path: Path) -> None:
    lb = load(
        tmp_path, "balance source\nserver a 127.0.0.1:1 weight 20\nserver b 127.0.0.1:2 weight 60"
    )
    assert shares(predict(lb)) == {"a": 0.25, "b": 0.75}


def test_source_map_based_uses_low_bits(tmp_path: Path) -> None:
    lb = load(tmp_path, "balance source\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2")
    # Two slots: even addresses go to a, odd ones to b.
    profile = from_columns(client_ip=["10.0.0.2", "10.0.0.4", "10.0.0.7"])
    result = shares(predict(lb, profile))
    assert result["a"] == pytest.approx(2 / 3)
    assert result["b"] == pytest.approx(1 / 3)


def test_source_ipv6_folds_words(tmp_path: Path) -> None:
    lb = load(tmp_path, "balance source\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2")
    # XOR of the four 32-bit words: 0:1:: gives 1 (odd, so b) although its low 32 bits
    # are 0; ::2 gives 2 (even, so a).
    profile = from_columns(client_ip=["0:1::", "::2"])
    result = shares(predict(lb, profile))
    assert result == {"a": 0.5, "b": 0.5}


def test_missing_url_param_falls_back_to_round_robin(tmp_path: Path) -> None:
    lb = load(tmp_path, "balance url_param uid\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2")
    profile = from_columns([1.0, 3.0], path=["/", "/"], query=["uid=7", "x=1"])
    pool = predict(lb, profile).pool("be")
    assert pool is not None
    assert pool.method is ShareMethod.EXACT
    assert any("75.0%" in note and "round robin" in note for note in pool.notes)
    total = sum(s.share_of_pool for s in pool.servers)
    assert total == pytest.approx(1.0)


def test_key_column_missing_is_unknown(tmp_path: Path) -> None:
    lb = load(tmp_path, "balance hdr(x-user)\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2")
    prediction = predict(lb, from_columns(path=["/"]))
    pool = prediction.pool("be")
    assert pool is not None
    assert pool.method is ShareMethod.UNKNOWN
    assert any("header:x-user" in item.reason for item in prediction.unevaluated)


def test_hash_expression_with_converter_is_unknown(tmp_path: Path) -> None:
    lb = load(
        tmp_path, "balance hash req.hdr(x-id),lower\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2"
    )
    pool = predict(lb, from_columns(path=["/"], headers={"x-id": ["A"]})).pool("be")
    assert pool is not None
    assert pool.method is ShareMethod.UNKNOWN


def test_main_domain_matches_haproxy_scan() -> None:
    assert main_domain("haproxy.1wt.eu") == "1wt"
    assert main_domain("example.com") == "example"
    assert main_domain("localhost") == "localhost"
    assert main_domain("a..b") == "a."


# -- eligibility and health -----------------------------------------------------------


def test_backup_only_when_no_active(tmp_path: Path) -> None:
    lb = load(
        tmp_path,
        "server a 127.0.0.1:1\nserver b1 127.0.0.1:2 backup\nserver b2 127.0.0.1:3 backup",
    )
    assert shares(predict(lb)) == {"a": 1.0, "b1": 0.0, "b2": 0.0}
    down = shares(predict(lb, health={"a": False}))
    assert down == {"a": 0.0, "b1": 1.0, "b2": 0.0}


def test_allbackups_share_when_actives_down(tmp_path: Path) -> None:
    lb = load(
        tmp_path,
        "option allbackups\nserver a 127.0.0.1:1\n"
        "server b1 127.0.0.1:2 backup\nserver b2 127.0.0.1:3 backup",
    )
    assert shares(predict(lb, health={"be/a": False})) == {"a": 0.0, "b1": 0.5, "b2": 0.5}


def test_health_override_rebuilds_ring(tmp_path: Path) -> None:
    servers = "\n".join(f"server s{i} 127.0.0.1:{i}" for i in range(1, 4))
    lb = load(tmp_path, "balance uri\nhash-type consistent\n" + servers)
    before = shares(predict(lb))
    after = shares(predict(lb, health={"s2": False}))
    assert after["s2"] == 0.0
    assert after["s1"] > before["s1"]
    assert after["s3"] > before["s3"]
    assert after["s1"] + after["s3"] == pytest.approx(1.0)


def test_health_override_rebuilds_map(tmp_path: Path) -> None:
    lb = load(
        tmp_path, "balance uri\nserver a 127.0.0.1:1\nserver b 127.0.0.1:2\nserver c 127.0.0.1:3"
    )
    paths = [f"/p{i}" for i in range(30)]
    profile = from_columns(path=paths, query=[""] * 30)
    result = shares(predict(lb, profile, health={"b": False}))
    assert result["b"] == 0.0
    assert result["a"] + result["c"] == pytest.approx(1.0)


def test_unknown_health_name_is_rejected(tmp_path: Path) -> None:
    lb = load(tmp_path, "server a 127.0.0.1:1")
    with pytest.raises(LbguardError, match="web9"):
        predict(lb, health={"web9": False})


def test_all_down_reports_503(tmp_path: Path) -> None:
    lb = load(tmp_path, "server a 127.0.0.1:1")
    pool = predict(lb, health={"a": False}).pool("be")
    assert pool is not None
    assert pool.max_over_mean is None
    assert any("503" in note for note in pool.notes)


def test_server_ids_follow_haproxy_numbering(tmp_path: Path) -> None:
    lb = load(tmp_path, "server a 127.0.0.1:1\nserver b 127.0.0.1:2 id 1\nserver c 127.0.0.1:3")
    pool = the_pool(lb)
    # a takes the first free id from 1, which b holds, so 2. The counter advances after
    # every server (to 3 after a, 4 after b), so c takes 4.
    stripped = Pool(
        pool.name,
        pool.mode,
        pool.balance,
        tuple(s if s.name == "b" else _without_id(s) for s in pool.servers),
        pool.location,
    )
    assert server_ids(stripped) == [2, 1, 4]
    assert [s.id for s in pool.servers] == [2, 1, 4]


def _without_id(server):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(server, id=None)


def test_balancer_lists_every_server(tmp_path: Path) -> None:
    lb = load(tmp_path, "server a 127.0.0.1:1\nserver b 127.0.0.1:2 backup")
    outcome = balance(the_pool(lb), None, {})
    assert set(outcome.shares) == {"a", "b"}
    assert outcome.eligible == frozenset({"a"})
    assert outcome.fair == {"a": 1.0, "b": 0.0}


def test_endpoints_join_pools(tmp_path: Path) -> None:
    extra = "    use_backend be2 if { path_beg /x }\n\nbackend be2\n    server z 127.0.0.1:1\n"
    lb = load(tmp_path, "server a 127.0.0.1:1\nserver b 127.0.0.1:2", extra)
    prediction = predict(lb, from_columns(path=["/x", "/y", "/y", "/y"]))
    joined = {e.endpoint: e for e in prediction.endpoints}
    assert joined["127.0.0.1:1"].share_of_total == pytest.approx(0.25 + 0.75 / 2)
    assert set(joined["127.0.0.1:1"].members) == {"be/a", "be2/z"}
