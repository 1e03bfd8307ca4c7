"""Traffic profiles: YAML loading, errors with file:line, columns and the default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lbguard.errors import TrafficError
from lbguard.traffic import TrafficProfile, default_profile, from_columns, load_profile

CASES = Path(__file__).parent.parent / "data" / "cases"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "traffic.yaml"
    path.write_text(text)
    return path


def share(profile: TrafficProfile, mask: np.ndarray) -> float:
    return float(profile.weight[mask].sum() / profile.total)


def test_case_traffic_mapping_loads_as_is() -> None:
    profile = load_profile(CASES / "haproxy-catch-all-first" / "case.yaml", section="traffic")
    assert profile.total == pytest.approx(10000)
    assert sorted(profile.path.tolist()) == ["/", "/api/v1/items"]
    assert share(profile, profile.path == "/") == pytest.approx(0.5)
    assert profile.known == {"path", "query"}


def test_case_traffic_list_gives_equal_weights() -> None:
    profile = load_profile(CASES / "haproxy-weight-typo" / "case.yaml", section="traffic")
    assert profile.total == pytest.approx(100000)
    assert profile.weight.tolist() == pytest.approx([50000, 50000])


def test_client_ips_list(tmp_path: Path) -> None:
    path = write(tmp_path, "requests: 900\nclient_ips: [127.0.0.1, 127.0.0.7, 127.0.0.200]\n")
    profile = load_profile(path)
    assert profile.client_ip.tolist() == ["127.0.0.1", "127.0.0.7", "127.0.0.200"]
    assert profile.weight.tolist() == pytest.approx([300, 300, 300])
    assert profile.known == {"client_ip"}


def test_distributions_multiply(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "requests: 1000\npaths: {/a: 3, /b: 1}\nmethods: {GET: 0.9, post: 0.1}\n",
    )
    profile = load_profile(path)
    assert len(profile) == 4
    assert profile.total == pytest.approx(1000)
    row = (profile.path == "/a") & (profile.method == "POST")
    assert share(profile, row) == pytest.approx(0.75 * 0.1)


def test_path_with_query_splits(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, 'paths: ["/search?q=1"]\n'))
    assert profile.path.tolist() == ["/search"]
    assert profile.query.tolist() == ["q=1"]


def test_params_join_into_query(tmp_path: Path) -> None:
    path = write(tmp_path, "paths: [\"/x?a=1\"]\nparams: {id: ['7']}\nquery: {b=2: 1}\n")
    profile = load_profile(path)
    assert profile.query.tolist() == ["a=1&id=7&b=2"]


def test_clients_expand_networks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "clients:\n"
        "  - {cidr: 198.51.100.0/24, count: 4, weight: 0.3}\n"
        "  - {address: 203.0.113.7, weight: 0.7}\n",
    )
    profile = load_profile(path)
    expected = ["198.51.100.0", "198.51.100.64", "198.51.100.128", "198.51.100.192", "203.0.113.7"]
    assert profile.client_ip.tolist() == expected
    assert share(profile, profile.client_ip == "203.0.113.7") == pytest.approx(0.7)
    assert share(profile, profile.client_ip == "198.51.100.64") == pytest.approx(0.075)


def test_headers_are_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "headers:\n  X-User: {alice: 3, bob: 1}\n  Host: [a.example]\n")
    profile = load_profile(path)
    assert "header:x-user" in profile.known
    assert "host" in profile.known
    assert share(profile, profile.headers["x-user"] == "alice") == pytest.approx(0.75)
    assert profile.host.tolist() == ["a.example", "a.example"]


def test_samples_are_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "samples:\n"
        "  - {path: /a, host: a.example, weight: 30, headers: {x-user: alice}}\n"
        "  - {path: /b, client: 192.0.2.1, weight: 10, frontend: fe2}\n",
    )
    profile = load_profile(path)
    assert profile.total == pytest.approx(40)
    assert profile.path.tolist() == ["/a", "/b"]
    assert profile.headers["x-user"].tolist() == ["alice", ""]
    assert profile.frontend.tolist() == ["", "fe2"]
    assert {"path", "host", "client_ip", "frontend", "header:x-user"} <= profile.known


def test_unknown_key_names_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "requests: 10\npaths: [/a]\nhostz: [a]\n")
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert caught.value.location is not None
    assert caught.value.location.line == 3
    assert "hostz" in caught.value.message
    assert "hosts" in caught.value.hint


def test_bad_weight_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "paths:\n  /a: 1\n  /b: lots\n")
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert caught.value.location is not None
    assert caught.value.location.line == 3
    assert "lots" in caught.value.message


def test_bad_address_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "client_ips:\n  - 10.0.0.1\n  - 10.0.0.300\n")
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert caught.value.location is not None
    assert caught.value.location.line == 3


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "requests: 10\npaths: [/a\n")
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert caught.value.location is not None
    assert caught.value.location.line >= 2
    assert "YAML" in caught.value.message


def test_field_set_twice_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts: [a]\nheaders:\n  host: [b]\n")
    with pytest.raises(TrafficError, match="already sets"):
        load_profile(path)


def test_large_network_needs_count(tmp_path: Path) -> None:
    path = write(tmp_path, "clients: [10.0.0.0/8]\n")
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert "count" in caught.value.hint


def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match="not found"):
        load_profile(tmp_path / "absent.yaml")


def test_missing_section_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match="traffic"):
        load_profile(write(tmp_path, "product: haproxy\n"), section="traffic")


def test_from_columns_marks_given_columns_known() -> None:
    profile = from_columns([2.0, 1.0], path=["/a", "/b"], headers={"X-Id": ["1", None]})
    assert profile.known == {"path", "header:x-id"}
    assert profile.headers["x-id"].tolist() == ["1", ""]
    assert profile.host.tolist() == ["", ""]
    assert profile.total == 3.0


def test_from_columns_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="length"):
        from_columns([1.0], path=["/a", "/b"])


def test_default_profile_is_empty_and_flagged() -> None:
    profile = default_profile()
    assert profile.is_default
    assert len(profile) == 0
    assert profile.known == frozenset()


def test_huge_client_count_rejected_before_expanding(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "paths: [/a]\nclients:\n  - cidr: 2001:db8::/32\n    count: 1000000000000\n",
    )
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert caught.value.location is not None
    assert caught.value.location.line == 3
    assert "1000000000000" in caught.value.message


def test_overflowing_weights_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, 'requests: 1e308\npaths: {"/": 1e308, "/api/x": 1e308}\n')
    with pytest.raises(TrafficError) as caught:
        load_profile(path)
    assert "finite" in caught.value.message
