"""nginx-specific findings over a parsed configuration and, when given, a traffic profile.

These are plain `Diagnostic` records with stable codes, ready to move into the check
registry: ``nginx-regex-captures-prefix``, ``nginx-hash-few-subnets``,
``nginx-hash-not-consistent`` and ``nginx-backup-in-hash-pool``.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator

import numpy as np

from lbguard.model import (
    Algorithm,
    AllOf,
    AnyOf,
    Condition,
    Diagnostic,
    HashMethod,
    LoadBalancer,
    Matcher,
    MatchMethod,
    Not,
    Pool,
    Severity,
)
from lbguard.traffic import TrafficProfile

CLIENT_KEYS = frozenset({"$remote_addr", "$binary_remote_addr"})
CONCENTRATION = 0.5
"""A /24 (or single address) carrying more than this share of a hashed pool's requests
is reported: every request from it lands on one server."""


def nginx_findings(lb: LoadBalancer, profile: TrafficProfile | None = None) -> list[Diagnostic]:
    """Return the nginx findings for ``lb``, using ``profile`` for traffic shares."""
    findings = list(_regex_captures_prefix(lb, profile))
    for pool in lb.pools:
        findings.extend(_client_hash(lb, pool, profile))
        if (
            pool.balance.algorithm is Algorithm.HASH
            and (pool.balance.hash_method is HashMethod.MAP_BASED)
            and len(pool.servers) > 1
        ):
            findings.append(
                Diagnostic(
                    Severity.INFO,
                    f'upstream "{pool.name}" uses hash {pool.balance.key} without consistent: '
                    "adding or removing one server moves most keys to other servers",
                    pool.balance.location,
                    hint=f"write hash {pool.balance.key} consistent; to keep keys in place",
                    code="nginx-hash-not-consistent",
                )
            )
    findings.extend(
        Diagnostic(d.severity, d.message, d.location, d.hint, "nginx-backup-in-hash-pool")
        for d in lb.diagnostics
        if d.code == "backup-with-hash"
    )
    return findings


# --------------------------------------------------------------------------------------
# Regex locations that take requests under a prefix location


def _path_matchers(
    condition: Condition | None, negated: bool = False
) -> Iterator[tuple[Matcher, bool]]:
    if condition is None:
        return
    if isinstance(condition, Matcher):
        if condition.fetch == "path":
            yield condition, negated
    elif isinstance(condition, (AllOf, AnyOf)):
        for term in condition.terms:
            yield from _path_matchers(term, negated)
    elif isinstance(condition, Not):
        yield from _path_matchers(condition.term, not negated)


def _literal_head(pattern: str) -> str | None:
    """Return the literal text a ``^``-anchored regex starts with; None if unanchored."""
    if not pattern.startswith("^"):
        return None
    head = []
    for char in pattern[1:]:
        if char in ".^$*+?()[]{}|\\":
            break
        head.append(char)
    return "".join(head)


def _regex_captures_prefix(
    lb: LoadBalancer, profile: TrafficProfile | None
) -> Iterator[Diagnostic]:
    seen: set[tuple[str, str]] = set()
    for frontend in lb.frontends:
        prefixes: dict[str, Matcher] = {}
        regexes: dict[str, Matcher] = {}
        for rule in frontend.rules:
            for matcher, negated in _path_matchers(rule.condition):
                if negated or not matcher.text.startswith("location"):
                    continue
                if matcher.method is MatchMethod.BEG and not matcher.text.startswith(
                    "location ^~"
                ):
                    prefixes.setdefault(matcher.patterns[0], matcher)
                elif matcher.method is MatchMethod.REG:
                    regexes.setdefault(matcher.text, matcher)
        for regex in regexes.values():
            for prefix, prefix_matcher in prefixes.items():
                key = (regex.text, prefix_matcher.text)
                if prefix == "/" or key in seen or not _overlaps(regex, prefix):
                    continue
                seen.add(key)
                share = _captured_share(regex, prefix, profile)
                if share == 0.0:
                    continue
                amount = "" if share is None else f" ({share:.1%} of requests under it)"
                yield Diagnostic(
                    Severity.WARNING,
                    f"{regex.text} takes requests under {prefix_matcher.text}{amount}: "
                    "nginx tries regexes after the longest prefix, first match wins",
                    regex.location,
                    hint=f"write location ^~ {prefix} at {prefix_matcher.location}, "
                    "or nest the regex location inside the prefix location",
                    code="nginx-regex-captures-prefix",
                )


def _overlaps(regex: Matcher, prefix: str) -> bool:
    head = _literal_head(regex.patterns[0])
    if head is None:
        return True
    if regex.ignore_case:
        head, prefix = head.lower(), prefix.lower()
    return head.startswith(prefix) or prefix.startswith(head)


def _captured_share(regex: Matcher, prefix: str, profile: TrafficProfile | None) -> float | None:
    if profile is None or "path" not in profile.known or profile.total == 0:
        return None
    under = np.array([str(p).startswith(prefix) for p in profile.path], dtype=bool)
    total = float(profile.weight[under].sum())
    if total == 0:
        return 0.0
    flags = re.IGNORECASE if regex.ignore_case else 0
    compiled = re.compile(regex.patterns[0], flags)
    hit = np.array([bool(compiled.search(str(p))) for p in profile.path], dtype=bool)
    return float(profile.weight[under & hit].sum()) / total


# --------------------------------------------------------------------------------------
# Client-address hashing


def _subnet(address: str, ip_hash: bool) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip_hash and parsed.version == 4:
        return str(ipaddress.ip_network(f"{address}/24", strict=False))
    return str(parsed)


def _client_hash(
    lb: LoadBalancer, pool: Pool, profile: TrafficProfile | None
) -> Iterator[Diagnostic]:
    ip_hash = pool.balance.algorithm is Algorithm.IP_HASH
    by_client = pool.balance.algorithm is Algorithm.HASH and pool.balance.key in CLIENT_KEYS
    if not (ip_hash or by_client) or len(pool.servers) < 2:
        return
    method = "ip_hash" if ip_hash else f"hash {pool.balance.key}"
    unit = "/24" if ip_hash else "client address"
    if profile is None or "client_ip" not in profile.known or profile.total == 0:
        if not any(name == "set_real_ip_from" for name, _ in lb.settings):
            yield Diagnostic(
                Severity.INFO,
                f'upstream "{pool.name}" uses {method}: behind a proxy, NAT or load '
                f"balancer every request shares one {unit} and lands on one server",
                pool.balance.location,
                hint="configure realip (set_real_ip_from, real_ip_header) or hash a "
                "per-user key with hash $cookie_session consistent",
                code="nginx-hash-few-subnets",
            )
        return
    weights: Counter[str] = Counter()
    for address, weight in zip(profile.client_ip.tolist(), profile.weight.tolist(), strict=True):
        weights[_subnet(str(address), ip_hash)] += weight
    top, top_weight = weights.most_common(1)[0]
    share = top_weight / profile.total
    if share > CONCENTRATION or len(weights) < len(pool.servers):
        yield Diagnostic(
            Severity.WARNING,
            f'upstream "{pool.name}" uses {method} and {share:.1%} of requests come from '
            f"{top} ({len(weights)} distinct {unit} keys for {len(pool.servers)} servers): "
            "those requests all land on one server",
            pool.balance.location,
            hint="configure realip so nginx sees the real client, or use hash "
            "$remote_addr consistent or a per-user cookie key",
            code="nginx-hash-few-subnets",
        )
