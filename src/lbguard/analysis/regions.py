"""Client regions: map each request's client address to a region.

The client is the first ``X-Forwarded-For`` address when the log carries a valid one, else
the connection's source address. Regions come from a CIDR map (CSV rows ``cidr,region``) or
from a MaxMind-format database (``.mmdb``, read with the ``maxminddb`` package). The lookup
runs once per distinct (forwarded_for, client_ip) pair: CIDR maps by longest-prefix match
as equality joins in DuckDB, one join per prefix length present in the map.
"""

from __future__ import annotations

import csv
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb
import numpy as np

from lbguard.analysis.ipsql import address_query
from lbguard.errors import LbguardError
from lbguard.model import Diagnostic, Location, Severity

logger = logging.getLogger(__name__)

UNKNOWN_REGION = "unknown"
"""Region of a client whose address is missing, invalid or in no network of the map."""

CLIENT_REGIONS = "lbg_client_regions"
"""Table with one row per distinct (forwarded_for, client_ip) pair and its region."""

_NETWORKS = "lbg_region_networks"

MMDB_FIELDS = ("region", "country.iso_code", "continent.code", "registered_country.iso_code")
"""Record fields tried in order when no field is given: a custom ``region`` string, then
the GeoIP2/GeoLite2 country and continent codes."""

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass(frozen=True)
class RegionMap:
    """A region source ready for lookups."""

    path: str
    kind: str
    """``csv`` or ``mmdb``."""

    networks: int
    """Valid networks read from a CSV map; 0 for a database."""

    diagnostics: tuple[Diagnostic, ...]
    """Rows of a CSV map that were skipped, each with its line."""

    field: str | None = None
    """Dotted record field used for ``mmdb`` lookups; None means MMDB_FIELDS in order."""


def load_region_map(path: str, con: Any, *, field: str | None = None) -> RegionMap:
    """Read a region map: ``.mmdb`` databases by suffix, anything else as a CIDR CSV.

    CSV networks go into a DuckDB table on ``con``. Raises LbguardError when the file is
    missing or holds no usable network.
    """
    file = Path(path)
    if not file.is_file():
        raise LbguardError(
            f"region map {path!r} not found",
            hint="give a CSV file with 'cidr,region' rows or a MaxMind .mmdb database",
        )

    if file.suffix.lower() == ".mmdb":
        try:
            maxminddb.open_database(path).close()
        except (maxminddb.InvalidDatabaseError, OSError, ValueError) as error:
            raise LbguardError(
                f"{path}: not a readable MaxMind database: {error}",
                hint="check that the file is a complete .mmdb database",
            ) from error
        return RegionMap(path=path, kind="mmdb", networks=0, diagnostics=(), field=field)

    families, prefixes, networks, regions, diagnostics = _read_cidr_csv(path)
    if not regions:
        raise LbguardError(
            f"{path}: no valid 'cidr,region' row",
            hint="write one network per line, e.g. '198.51.100.0/24,eu-west'",
        )

    con.register(
        "lbg_region_rows",
        {
            "family": np.array(families, dtype=np.int32),
            "prefix_len": np.array(prefixes, dtype=np.int32),
            "network": np.array(networks, dtype=object),
            "region": np.array(regions, dtype=object),
        },
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_NETWORKS} AS SELECT family, prefix_len, "
        "network::UHUGEINT AS network, region FROM lbg_region_rows"
    )
    con.unregister("lbg_region_rows")
    return RegionMap(path=path, kind="csv", networks=len(regions), diagnostics=diagnostics)


def _read_cidr_csv(
    path: str,
) -> tuple[list[int], list[int], list[str], list[str], tuple[Diagnostic, ...]]:
    """Parse CSV rows ``cidr,region``; skip blank lines, ``#`` comments and a header."""
    families: list[int] = []
    prefixes: list[int] = []
    networks: list[str] = []
    regions: list[str] = []
    diagnostics: list[Diagnostic] = []
    seen: dict[tuple[int, int, int], str] = {}

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        for row in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue

            location = Location(path, line)
            if len(cells) < 2 or not cells[1]:
                diagnostics.append(_bad_row(location, "expected 'cidr,region'"))
                continue

            try:
                network = ipaddress.ip_network(cells[0], strict=False)
            except ValueError:
                if not regions and not diagnostics:
                    continue  # a header row such as "cidr,region"
                diagnostics.append(_bad_row(location, f"invalid network {cells[0]!r}"))
                continue

            family, prefix, value = _network_key(network)
            key = (family, prefix, value)
            if key in seen:
                if seen[key] != cells[1]:
                    diagnostics.append(
                        _bad_row(
                            location,
                            f"network {network} already maps to {seen[key]!r}; "
                            "the first row is used",
                        )
                    )
                continue

            seen[key] = cells[1]
            families.append(family)
            prefixes.append(prefix)
            networks.append(str(value))
            regions.append(cells[1])

    return families, prefixes, networks, regions, tuple(diagnostics)


def _network_key(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int, int]:
    """Return (family, prefix length, network address >> host bits); IPv4-mapped IPv6
    networks count as IPv4, as the SQL macros count the addresses."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        prefix = network.prefixlen - 96
        value = int(network.network_address) & 0xFFFFFFFF
        return 4, prefix, value >> (32 - prefix)

    bits = network.max_prefixlen
    return (
        network.version,
        network.prefixlen,
        int(network.network_address) >> (bits - network.prefixlen),
    )


def _bad_row(location: Location, message: str) -> Diagnostic:
    return Diagnostic(
        severity=Severity.WARNING,
        message=f"region map row skipped: {message}",
        location=location,
        hint="fix or remove the row; clients in that network count as 'unknown'",
        code="region-map",
    )


def assign_regions(con: Any, region_map: RegionMap, table: str = "requests") -> None:
    """Create CLIENT_REGIONS for every distinct client of ``table``.

    The table has columns forwarded_for, client_ip, client (the address used), family,
    value and region.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE lbg_client_pairs AS "
        f"SELECT DISTINCT forwarded_for, client_ip FROM {table}"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {CLIENT_REGIONS} AS
        WITH forwarded AS ({address_query("lbg_client_pairs", "forwarded_for")}),
        peer AS ({address_query("lbg_client_pairs", "client_ip")})
        SELECT p.forwarded_for, p.client_ip,
            CASE WHEN f.family IS NOT NULL THEN p.forwarded_for ELSE p.client_ip END
                AS client,
            CASE WHEN f.family IS NOT NULL THEN f.family ELSE c.family END AS family,
            CASE WHEN f.family IS NOT NULL THEN f.value ELSE c.value END AS value,
            NULL::VARCHAR AS region
        FROM lbg_client_pairs p
        LEFT JOIN forwarded f ON f.address = p.forwarded_for
        LEFT JOIN peer c ON c.address = p.client_ip
        """
    )
    con.execute("DROP TABLE lbg_client_pairs")

    if region_map.kind == "csv":
        _assign_from_networks(con)
    else:
        _assign_from_mmdb(con, region_map)

    con.execute(f"UPDATE {CLIENT_REGIONS} SET region = '{UNKNOWN_REGION}' WHERE region IS NULL")


def _assign_from_networks(con: Any) -> None:
    con.execute(
        f"""
        UPDATE {CLIENT_REGIONS} AS c SET region = m.region
        FROM (
            WITH clients AS (
                SELECT DISTINCT family, value FROM {CLIENT_REGIONS} WHERE value IS NOT NULL
            ), lengths AS (
                SELECT DISTINCT family, prefix_len FROM {_NETWORKS}
            ), candidates AS (
                SELECT c.family, c.value, n.prefix_len, n.region
                FROM clients c
                JOIN lengths l ON l.family = c.family
                JOIN {_NETWORKS} n ON n.family = l.family AND n.prefix_len = l.prefix_len
                    AND n.network = CASE WHEN l.prefix_len = 0 THEN 0::UHUGEINT
                        ELSE c.value >> ((CASE WHEN c.family = 4 THEN 32 ELSE 128 END)
                            - l.prefix_len)::UHUGEINT END
            )
            SELECT family, value, arg_max(region, prefix_len) AS region
            FROM candidates GROUP BY family, value
        ) AS m
        WHERE c.family = m.family AND c.value = m.value
        """
    )


def _assign_from_mmdb(con: Any, region_map: RegionMap) -> None:
    rows = con.execute(
        f"SELECT DISTINCT family, value::VARCHAR FROM {CLIENT_REGIONS} WHERE value IS NOT NULL"
    ).fetchall()
    fields = (region_map.field,) if region_map.field else MMDB_FIELDS

    families: list[int] = []
    values: list[str] = []
    regions: list[str] = []
    with maxminddb.open_database(region_map.path) as reader:
        for family, value in rows:
            address = (
                ipaddress.IPv4Address(int(value))
                if family == 4
                else ipaddress.IPv6Address(int(value))
            )
            region = _record_region(reader.get(address), fields)
            if region is not None:
                families.append(family)
                values.append(value)
                regions.append(region)

    logger.info("%s: %d of %d client addresses found", region_map.path, len(regions), len(rows))
    con.register(
        "lbg_mmdb_rows",
        {
            "family": np.array(families, dtype=np.int32),
            "value": np.array(values, dtype=object),
            "region": np.array(regions, dtype=object),
        },
    )
    con.execute(
        f"""
        UPDATE {CLIENT_REGIONS} AS c SET region = m.region
        FROM lbg_mmdb_rows AS m
        WHERE c.family = m.family AND c.value = m.value::UHUGEINT
        """
    )
    con.unregister("lbg_mmdb_rows")


def _record_region(record: Any, fields: tuple[str, ...]) -> str | None:
    """Return the first of ``fields`` (dotted paths) that the record holds as text."""
    if not isinstance(record, Mapping):
        return None
    for path in fields:
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return None
