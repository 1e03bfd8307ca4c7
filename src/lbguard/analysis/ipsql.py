"""DuckDB SQL that turns IPv4 and IPv6 address text into integers.

Region lookups join client addresses to networks on integers, so the conversion runs in
DuckDB over whole columns. IPv4 addresses, and IPv4-mapped IPv6 addresses
(``::ffff:a.b.c.d``), become family 4 with a 32-bit value; other IPv6 addresses become
family 6 with a 128-bit value. Text that is no valid address gives NULL for both.

Accepted forms follow Python's ipaddress module: dotted quads without leading zeros,
RFC 4291 text with at most one ``::`` and an optional trailing dotted quad, plus an
optional zone id (``%eth0``) and the ``[v6]:port`` and ``a.b.c.d:port`` forms that
proxies write into ``X-Forwarded-For``. The steps are chained CTEs rather than nested
macros, because DuckDB expands a macro at every use and nested uses multiply.
"""

from __future__ import annotations

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"{_OCTET}(\.{_OCTET}){{3}}"


def _ipv4_value(text: str) -> str:
    """SQL for the 32-bit value of a dotted quad already checked against IPV4_PATTERN."""
    return (
        f"((split_part({text}, '.', 1)::UHUGEINT << 24::UHUGEINT)"
        f" + (split_part({text}, '.', 2)::UHUGEINT << 16::UHUGEINT)"
        f" + (split_part({text}, '.', 3)::UHUGEINT << 8::UHUGEINT)"
        f" + split_part({text}, '.', 4)::UHUGEINT)"
    )


def address_query(source: str, column: str) -> str:
    """Return a query over the distinct values of ``column`` in ``source`` with the
    columns ``address`` (the original text), ``family`` (4, 6 or NULL) and ``value``
    (UHUGEINT or NULL)."""
    return f"""
    WITH lbg_a AS (
        SELECT DISTINCT {column} AS address FROM {source} WHERE {column} IS NOT NULL
    ), lbg_b AS (
        SELECT address,
            CASE
                WHEN starts_with(trim(address), '[')
                    THEN lower(regexp_extract(trim(address), '^\\[([^\\]%]*)', 1))
                WHEN regexp_full_match(trim(address), '[0-9.]+:[0-9]+')
                    THEN split_part(trim(address), ':', 1)
                ELSE lower(regexp_replace(trim(address), '%.*$', ''))
            END AS text
        FROM lbg_a
    ), lbg_c AS (
        SELECT address, text,
            regexp_full_match(text, '{IPV4_PATTERN}') AS is_v4,
            regexp_extract(text, ':({IPV4_PATTERN})$', 1) AS tail_v4
        FROM lbg_b
    ), lbg_d AS (
        SELECT address, is_v4,
            CASE WHEN is_v4 THEN {_ipv4_value("text")} END AS v4,
            CASE
                WHEN is_v4 THEN NULL
                WHEN tail_v4 = '' THEN text
                ELSE left(text, len(text) - len(tail_v4)) || printf('%x:%x',
                    {_ipv4_value("tail_v4")} >> 16::UHUGEINT,
                    {_ipv4_value("tail_v4")} & 65535::UHUGEINT)
            END AS hex
        FROM lbg_c
    ), lbg_e AS (
        SELECT address, v4, hex,
            hex IS NOT NULL AND regexp_full_match(hex, '[0-9a-f:]{{2,39}}')
                AND NOT contains(hex, ':::')
                AND len(hex) - len(replace(hex, '::', '')) <= 2 AS shape_ok,
            contains(hex, '::') AS compressed,
            CASE WHEN split_part(hex, '::', 1) = '' THEN []::VARCHAR[]
                ELSE string_split(split_part(hex, '::', 1), ':') END AS head,
            CASE WHEN split_part(hex, '::', 2) = '' THEN []::VARCHAR[]
                ELSE string_split(split_part(hex, '::', 2), ':') END AS tail
        FROM lbg_d
    ), lbg_f AS (
        SELECT address, v4,
            CASE
                WHEN NOT shape_ok THEN NULL
                WHEN NOT compressed THEN string_split(hex, ':')
                WHEN len(head) + len(tail) <= 7 THEN list_concat(
                    head,
                    list_transform(range(8 - len(head) - len(tail)), lambda x: '0'),
                    tail)
            END AS groups
        FROM lbg_e
    ), lbg_g AS (
        SELECT address, v4,
            CASE WHEN len(groups) = 8 AND list_bool_and(list_transform(groups,
                    lambda g: regexp_full_match(g, '[0-9a-f]{{1,4}}')))
                THEN list_reduce(groups,
                    lambda acc, g: (acc << 16::UHUGEINT) + ('0x' || g)::UHUGEINT,
                    0::UHUGEINT)
            END AS v6
        FROM lbg_f
    )
    SELECT address,
        CASE
            WHEN v4 IS NOT NULL THEN 4
            WHEN v6 >> 32::UHUGEINT = 65535::UHUGEINT THEN 4
            WHEN v6 IS NOT NULL THEN 6
        END AS family,
        CASE
            WHEN v4 IS NOT NULL THEN v4
            WHEN v6 >> 32::UHUGEINT = 65535::UHUGEINT THEN v6 & 4294967295::UHUGEINT
            ELSE v6
        END AS value
    FROM lbg_g
    """
