"""Inline suppressions: parsing, matching findings, unused and invalid comments."""

from __future__ import annotations

from audit_support import AuditFactory

from lbguard.checks.suppression import parse_suppressions
from lbguard.model import Product

POOL = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s

frontend fe
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001 check weight 10
    server web2 127.0.0.1:9002 check weight 10
{web3}
"""


def test_trailing_comment_targets_its_line() -> None:
    [item] = parse_suppressions(
        "f.cfg", ["server a 1.2.3.4:80  # lbguard: ignore LB201 reason: big"]
    )
    assert item.target.line == 1
    assert item.rules == ("LB201",)
    assert item.reason == "big"
    assert item.problem == ""


def test_own_line_comment_targets_next_statement() -> None:
    lines = ["# lbguard: ignore LB201, LB202 reason: big box", "", "# other", "server a"]
    [item] = parse_suppressions("f.cfg", lines)
    assert item.target.line == 4
    assert item.rules == ("LB201", "LB202")


def test_comment_without_reason_is_invalid() -> None:
    [item] = parse_suppressions("f.cfg", ["server a # lbguard: ignore LB201"])
    assert item.problem == "no reason given"


def test_unknown_verb_is_invalid() -> None:
    [item] = parse_suppressions("f.cfg", ["# lbguard: skip LB201 reason: x"])
    assert item.problem == "unknown lbguard comment 'skip'"


def test_suppression_silences_finding(audit: AuditFactory) -> None:
    result = audit(
        POOL.format(web3="    server web3 127.0.0.1:9003 check weight 100  "
                    "# lbguard: ignore LB202 reason: ten times the CPUs")
    )  # fmt: skip
    assert result.of("LB202") == []
    assert result.of("LB002") == []
    assert result.of("LB003") == []


def test_suppression_by_name_silences(audit: AuditFactory) -> None:
    result = audit(
        POOL.format(web3="    # lbguard: ignore balancing.weight-outlier reason: big box\n"
                    "    server web3 127.0.0.1:9003 check weight 100")
    )  # fmt: skip
    assert result.of("LB202") == []


def test_suppression_for_other_rule_keeps_finding(audit: AuditFactory) -> None:
    result = audit(
        POOL.format(web3="    server web3 127.0.0.1:9003 check weight 100  "
                    "# lbguard: ignore LB301 reason: checked elsewhere")
    )  # fmt: skip
    line = result.line_of("server web3")
    assert ("LB202", str(result.config), line) in result.finding_keys("LB202")
    assert ("LB002", str(result.config), line) in result.finding_keys("LB002")


def test_suppression_without_reason_keeps_finding(audit: AuditFactory) -> None:
    result = audit(
        POOL.format(
            web3="    server web3 127.0.0.1:9003 check weight 100  # lbguard: ignore LB202"
        )
    )
    line = result.line_of("server web3")
    assert ("LB202", str(result.config), line) in result.finding_keys("LB202")
    assert ("LB003", str(result.config), line) in result.finding_keys("LB003")
    assert "no reason given" in result.of("LB003")[0].reason


def test_suppression_rules_cannot_be_suppressed() -> None:
    [by_id] = parse_suppressions("f.cfg", ["# lbguard: ignore LB002 reason: keep"])
    [by_name] = parse_suppressions(
        "f.cfg", ["# lbguard: ignore config.invalid-suppression reason: keep"]
    )
    assert by_id.problem == "LB002 and LB003 cannot be suppressed"
    assert by_name.problem == "LB002 and LB003 cannot be suppressed"


def test_suppressing_lb002_yields_lb003(audit: AuditFactory) -> None:
    result = audit(
        POOL.format(web3="    # lbguard: ignore LB002 reason: keep\n"
                    "    server web3 127.0.0.1:9003 check weight 10")
    )  # fmt: skip
    line = result.line_of("lbguard: ignore LB002")
    [finding] = result.of("LB003")
    assert ("LB003", str(result.config), line) in result.finding_keys("LB003")
    assert "LB002 and LB003 cannot be suppressed" in finding.reason
    assert result.of("LB002") == []


def test_quoted_marker_in_haproxy_argument_is_no_suppression() -> None:
    line = 'http-request set-header X-Note "# lbguard: ignore LB202 reason: x"'
    assert parse_suppressions("f.cfg", [line], Product.HAPROXY) == []


def test_haproxy_comment_after_quoted_hash_is_read() -> None:
    line = 'http-request set-header X-Note "#1" # lbguard: ignore LB202 reason: x'
    [item] = parse_suppressions("f.cfg", [line], Product.HAPROXY)
    assert item.rules == ("LB202",)
    assert item.target.line == 1


def test_quoted_marker_reports_no_invalid_suppression(audit: AuditFactory) -> None:
    result = audit(
        POOL.format(web3="    http-request set-header X-Note \"# lbguard: ignore LB9 x\"\n"
                    "    server web3 127.0.0.1:9003 check weight 10")
    )  # fmt: skip
    assert result.of("LB003") == []
