"""Address text to integers in DuckDB, checked against Python's ipaddress module."""

from __future__ import annotations

import ipaddress
import re

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.analysis.ipsql import address_query


def convert(addresses: list[str]) -> dict[str, tuple[int | None, int | None]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE a (address VARCHAR)")
    con.executemany("INSERT INTO a VALUES (?)", [(a,) for a in addresses])
    rows = con.execute(
        f"SELECT address, family, value::VARCHAR FROM ({address_query('a', 'address')})"
    ).fetchall()
    return {a: (f, int(v) if v is not None else None) for a, f, v in rows}


def expected(text: str) -> tuple[int | None, int | None]:
    if re.fullmatch(r"[0-9.]+:[0-9]+", text):
        text = text.split(":", maxsplit=1)[0]  # "a.b.c.d:port" as proxies write it
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None, None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return 4, int(address.ipv4_mapped)
    return address.version, int(address)


@pytest.mark.parametrize(
    ("text", "family", "value"),
    [
        ("1.2.3.4", 4, 0x01020304),
        ("255.255.255.255", 4, 0xFFFFFFFF),
        ("::", 6, 0),
        ("::1", 6, 1),
        ("2001:db8::1", 6, 0x20010DB8 << 96 | 1),
        ("[2001:db8::1]:443", 6, 0x20010DB8 << 96 | 1),
        ("198.51.100.7:5123", 4, int(ipaddress.IPv4Address("198.51.100.7"))),
        ("::ffff:192.0.2.1", 4, int(ipaddress.IPv4Address("192.0.2.1"))),
        ("fe80::1%eth0", 6, int(ipaddress.IPv6Address("fe80::1"))),
        ("64:ff9b::192.0.2.33", 6, int(ipaddress.IPv6Address("64:ff9b::192.0.2.33"))),
        ("1:2:3:4:5:6:7::", 6, int(ipaddress.IPv6Address("1:2:3:4:5:6:7::"))),
        (" 203.0.113.9 ", 4, int(ipaddress.IPv4Address("203.0.113.9"))),
    ],
)
def test_address_forms(text: str, family: int, value: int) -> None:
    result = convert([text])[text]
    assert result[0] == family
    assert result[1] == value


@pytest.mark.parametrize(
    "text",
    [
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "garbage",
        "",
        "1:2:3:4:5:6:7:8::",
        ":::1",
        "1::2::3",
        "12345::",
        "unknown",
        "1.2.3.4.5",
    ],
)
def test_invalid_addresses_give_null(text: str) -> None:
    assert convert([text])[text] == (None, None)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.ip_addresses().map(str),
            st.ip_addresses(v=6).map(lambda a: a.exploded),
            st.text(alphabet="0123456789abcdef:.", max_size=20),
        ),
        min_size=1,
        max_size=40,
        unique=True,
    )
)
def test_matches_ipaddress(addresses: list[str]) -> None:
    result = convert(addresses)
    for text in addresses:
        assert result[text] == expected(text), text
