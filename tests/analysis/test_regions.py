"""Region maps: CIDR CSV files and MaxMind databases written with mmdb-writer."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from lbguard.analysis.regions import (
    CLIENT_REGIONS,
    UNKNOWN_REGION,
    assign_regions,
    load_region_map,
)
from lbguard.errors import LbguardError
from lbguard.logs.schema import create_table_sql

CLIENTS = [
    # (forwarded_for, client_ip)
    (None, "198.51.100.7"),
    ("203.0.113.200", "10.0.0.9"),
    ("unknown", "198.51.100.9"),
    ("2001:db8:100::5", "10.0.0.9"),
    (None, "192.0.2.1"),
    ("[2001:db8:100::9]:443", "10.0.0.9"),
    (None, "::ffff:203.0.113.5"),
]


def requests_table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(create_table_sql())
    con.executemany("INSERT INTO requests (forwarded_for, client_ip) VALUES (?, ?)", CLIENTS)
    return con


def regions_by_client(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(f"SELECT client, region FROM {CLIENT_REGIONS}").fetchall()
    return dict(rows)


def test_csv_longest_prefix(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "cidr,region\n"
        "198.51.100.0/24,us-east\n"
        "198.51.100.0/29,us-east-1a\n"
        "203.0.113.0/24,ap-south\n"
        "2001:db8:100::/40,eu-west\n",
        encoding="utf-8",
    )
    con = requests_table()
    assign_regions(con, load_region_map(str(path), con))
    regions = regions_by_client(con)

    assert regions["198.51.100.7"] == "us-east-1a"
    assert regions["198.51.100.9"] == "us-east"
    assert regions["203.0.113.200"] == "ap-south"
    assert regions["2001:db8:100::5"] == "eu-west"
    assert regions["[2001:db8:100::9]:443"] == "eu-west"
    assert regions["::ffff:203.0.113.5"] == "ap-south"
    assert regions["192.0.2.1"] == UNKNOWN_REGION


def test_forwarded_for_before_peer(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("10.0.0.0/8,internal\n203.0.113.0/24,ap-south\n", encoding="utf-8")
    con = requests_table()
    assign_regions(con, load_region_map(str(path), con))
    rows = dict(
        ((f, c), r)
        for f, c, r in con.execute(
            f"SELECT forwarded_for, client_ip, region FROM {CLIENT_REGIONS}"
        ).fetchall()
    )

    assert rows[("203.0.113.200", "10.0.0.9")] == "ap-south"
    # "unknown" is no address, so the peer address decides.
    assert rows[("unknown", "198.51.100.9")] == UNKNOWN_REGION


def test_csv_bad_rows_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "cidr,region\n"
        "198.51.100.0/24,us-east\n"
        "# comment\n"
        "\n"
        "300.1.2.0/24,nowhere\n"
        "203.0.113.0/24\n"
        "198.51.100.0/24,elsewhere\n"
        "203.0.113.0/24,ap-south\n",
        encoding="utf-8",
    )
    con = requests_table()
    region_map = load_region_map(str(path), con)
    lines = [d.location.line for d in region_map.diagnostics]

    assert region_map.networks == 2
    assert lines == [5, 6, 7]
    assert "invalid network '300.1.2.0/24'" in region_map.diagnostics[0].message
    assert region_map.diagnostics[0].location.file == str(path)


def test_csv_without_rows_rejected(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("cidr,region\n", encoding="utf-8")

    with pytest.raises(LbguardError, match="no valid 'cidr,region' row"):
        load_region_map(str(path), duckdb.connect())


def test_missing_map_rejected(tmp_path: Path) -> None:
    with pytest.raises(LbguardError, match="not found"):
        load_region_map(str(tmp_path / "absent.csv"), duckdb.connect())


def write_mmdb(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="test-regions", ipv4_compatible=True)
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"region": "us-east"})
    writer.insert_network(
        IPSet(["203.0.113.0/24"]), {"country": {"iso_code": "IN"}, "continent": {"code": "AS"}}
    )
    writer.insert_network(IPSet(["2001:db8:100::/40"]), {"region": "eu-west"})
    writer.to_db_file(str(path))
    return path


def test_mmdb_lookup(tmp_path: Path) -> None:
    database = write_mmdb(tmp_path / "regions.mmdb")
    con = requests_table()
    assign_regions(con, load_region_map(str(database), con))
    regions = regions_by_client(con)

    assert regions["198.51.100.7"] == "us-east"
    assert regions["203.0.113.200"] == "IN"
    assert regions["2001:db8:100::5"] == "eu-west"
    assert regions["::ffff:203.0.113.5"] == "IN"
    assert regions["192.0.2.1"] == UNKNOWN_REGION


def test_mmdb_field_option(tmp_path: Path) -> None:
    database = write_mmdb(tmp_path / "regions.mmdb")
    con = requests_table()
    assign_regions(con, load_region_map(str(database), con, field="continent.code"))
    regions = regions_by_client(con)

    assert regions["203.0.113.200"] == "AS"
    assert regions["198.51.100.7"] == UNKNOWN_REGION


def test_broken_mmdb_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.mmdb"
    path.write_bytes(b"not a database")

    with pytest.raises(LbguardError, match="not a readable MaxMind database"):
        load_region_map(str(path), duckdb.connect())
