"""Sample fetches over a traffic profile: which column a fetch reads and how one request's
value splits into the values an ACL tries.

HAProxy 2.6 semantics (doc/configuration.txt, section 7.3): in an ACL, ``hdr(name)``
tries every comma-separated value of every occurrence of the header; ``url_param`` and
``cook`` try every occurrence of the parameter or cookie; ``url`` is the request target as
sent, ``path`` stops before ``?``; ``base`` is the Host header followed by the path.
Requests are taken as HTTP/1.1 origin-form, so ``url`` is the path plus ``?query``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from lbguard.traffic import StrColumn, TrafficProfile, header_key

Splitter = Callable[[str], list[str]]
"""Turns one request's column value into the sample values an ACL tries."""


def single_value(value: str) -> list[str]:
    """Return the value as the only sample, or no sample when it is absent (empty)."""
    return [value] if value else []


def header_values(value: str) -> list[str]:
    """Return every comma-separated value of a header, trimmed. A profile stores several
    occurrences of a header joined by commas."""
    if not value:
        return []
    return [part.strip(" \t") for part in value.split(",")]


def query_parameters(query: str, name: str) -> list[str]:
    """Return every value of parameter *name* (case-sensitive) in a query string."""
    values = []
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        if equals and key == name:
            values.append(value)
    return values


def cookie_values(header: str, name: str) -> list[str]:
    """Return every value of cookie *name* in a Cookie header (``a=1; b=2``)."""
    values = []
    for item in header.replace(",", ";").split(";"):
        key, equals, value = item.strip().partition("=")
        if equals and key == name:
            values.append(value)
    return values


@dataclass(frozen=True)
class Sample:
    """The profile column a fetch reads, and how a value splits into samples."""

    column: StrColumn
    split: Splitter
    needs: frozenset[str]
    """Profile columns the fetch needs (see ``TrafficProfile.known``)."""


def request_uri(profile: TrafficProfile) -> StrColumn:
    """Return each row's request target in HTTP/1.1 origin form: path[?query]."""
    with_query = profile.query != ""
    column = profile.path.copy()
    if with_query.any():
        column[with_query] = profile.path[with_query] + "?" + profile.query[with_query]
    return column


def _header_column(profile: TrafficProfile, name: str) -> StrColumn:
    column = profile.headers.get(name)
    return np.full(len(profile), "", dtype=object) if column is None else column


def _parameters(name: str, query: str) -> list[str]:
    return query_parameters(query, name)


def _cookies(name: str, header: str) -> list[str]:
    return cookie_values(header, name)


def sample_for(fetch: str, arg: str | None, profile: TrafficProfile) -> Sample | None:
    """Return where *fetch* reads in *profile*; None for a fetch lbguard does not model."""
    name = (arg or "").lower()
    if fetch == "path":
        return Sample(profile.path, single_value, frozenset({"path"}))
    if fetch == "url":
        return Sample(request_uri(profile), single_value, frozenset({"path", "query"}))
    if fetch == "query":
        return Sample(profile.query, single_value, frozenset({"query"}))
    if fetch == "method":
        return Sample(profile.method, single_value, frozenset({"method"}))
    if fetch == "src":
        return Sample(profile.client_ip, single_value, frozenset({"client_ip"}))
    if fetch == "host" or (fetch == "hdr" and name == "host"):
        return Sample(profile.host, header_values, frozenset({"host"}))
    if fetch == "base":
        column = np.where(profile.path != "", profile.host + profile.path, "").astype(object)
        return Sample(column, single_value, frozenset({"host", "path"}))
    if fetch == "hdr" and name:
        column = _header_column(profile, name)
        return Sample(column, header_values, frozenset({header_key(name)}))
    if fetch == "url_param" and arg:
        return Sample(profile.query, partial(_parameters, arg), frozenset({"query"}))
    if fetch == "cookie" and arg:
        column = _header_column(profile, "cookie")
        return Sample(column, partial(_cookies, arg), frozenset({header_key("cookie")}))
    return None
