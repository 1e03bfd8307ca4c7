"""Each rule on a configuration that triggers it and on one that must not, checked by
(rule id, file, line) through the real parser and predictor."""

from __future__ import annotations

import pytest
from audit_support import AuditFactory

from lbguard.checks import CheckContext, run_checks
from lbguard.model import Severity

DEFAULTS = """
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
"""


def servers(prefix: str, count: int, first_port: int, extra: str = "") -> str:
    return "\n".join(
        f"    server {prefix}{i} 127.0.0.1:{first_port + i}{extra}" for i in range(1, count + 1)
    )


PLATFORM = (
    DEFAULTS
    + """
frontend fe_main
    bind 127.0.0.1:8080
    acl is_search path_reg search
    acl is_api path_beg /api
    use_backend be_search if is_search
    use_backend be_api if is_api
    default_backend be_web

backend be_web
{web}

backend be_api
{api}

backend be_search
{search}
"""
).format(
    web=servers("web", 6, 9000),
    api=servers("api", 6, 9100),
    search=servers("search", 2, 9200, " maxconn 20"),
)

PLATFORM_TRAFFIC = {
    "requests": 10000,
    "paths": {"/": 0.3, "/api/v1/items": 0.2, "/api/search/items": 0.3, "/search": 0.2},
}


# LB001 config.parse-error


def test_parse_error_reported_at_line(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001 weight 300
    server web2 127.0.0.1:9002
"""
    )
    line = result.line_of("weight 300")
    assert ("LB001", str(result.config), line) in result.finding_keys("LB001")
    assert result.of("LB001")[0].severity is Severity.ERROR


def test_parse_error_keeps_other_findings(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001 weight 10
    server web2 127.0.0.1:9002 weight 10
    server web3 127.0.0.1:9003 weight 100
    server web4 127.0.0.1:9004 weight 999
"""
    )
    assert ("LB001", str(result.config), result.line_of("weight 999")) in result.finding_keys()
    assert ("LB202", str(result.config), result.line_of("weight 100")) in result.finding_keys()


def test_clean_config_has_no_parse_error(audit: AuditFactory) -> None:
    result = audit(PLATFORM, PLATFORM_TRAFFIC)
    assert result.finding_keys("LB001") == set()


# LB101 routing.unreachable-rule


def test_catch_all_before_specific_rule(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    acl is_any path_beg /
    acl is_api path_beg /api
    use_backend be_web if is_any
    use_backend be_api if is_api

backend be_web
    server web1 127.0.0.1:9001

backend be_api
    server api1 127.0.0.1:9002
"""
    )
    shadowed = result.line_of("use_backend be_api")
    assert result.finding_keys("LB101") == {("LB101", str(result.config), shadowed)}
    lines = [location.line for location in result.of("LB101")[0].locations]
    assert result.line_of("use_backend be_web") in lines
    assert result.line_of("acl is_api") in lines


def test_specific_rule_first_not_reported(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    acl is_any path_beg /
    acl is_api path_beg /api
    use_backend be_api if is_api
    use_backend be_web if is_any

backend be_web
    server web1 127.0.0.1:9001

backend be_api
    server api1 127.0.0.1:9002
"""
    )
    assert result.finding_keys("LB101") == set()


def test_rule_shadowed_on_profile_only(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    acl is_png path_end .png
    acl is_logo path_beg /static/logo
    use_backend be_images if is_png
    use_backend be_static if is_logo
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001

backend be_images
    server img1 127.0.0.1:9002

backend be_static
    server static1 127.0.0.1:9003
""",
        {"requests": 100, "paths": {"/": 0.5, "/static/logo.png": 0.25, "/a.png": 0.25}},
    )
    line = result.line_of("use_backend be_static")
    assert result.finding_keys("LB101") == {("LB101", str(result.config), line)}
    lines = [location.line for location in result.of("LB101")[0].locations]
    assert result.line_of("use_backend be_images") in lines


def test_redundant_rule_is_info(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    use_backend be_web if { path_beg /a }
    use_backend be_web if { path_beg /a/b }
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001
"""
    )
    [finding] = result.of("LB101")
    assert finding.location.line == result.line_of("path_beg /a/b")
    assert finding.severity is Severity.INFO


# LB102 routing.unrouted-pool


def test_unrouted_pool_reported(audit: AuditFactory) -> None:
    result = audit(PLATFORM + "\nbackend be_old\n    server old1 127.0.0.1:9300\n")
    line = result.line_of("backend be_old")
    assert result.finding_keys("LB102") == {("LB102", str(result.config), line)}


def test_default_and_listen_pools_not_reported(audit: AuditFactory) -> None:
    result = audit(
        PLATFORM + "\nlisten stats\n    bind 127.0.0.1:8404\n    server s1 127.0.0.1:9400\n"
    )
    assert result.finding_keys("LB102") == set()


# LB103 routing.concentrating-rule


def test_broad_rule_to_small_pool(audit: AuditFactory) -> None:
    result = audit(PLATFORM, PLATFORM_TRAFFIC)
    rule_line = result.line_of("use_backend be_search")
    assert result.finding_keys("LB103") == {("LB103", str(result.config), rule_line)}

    [finding] = result.of("LB103")
    lines = {location.line for location in finding.locations}
    assert result.line_of("server search1") in lines
    assert result.line_of("server search2") in lines
    assert result.line_of("acl is_search") in lines
    assert "50.0 % of all requests to be_search" in finding.reason
    assert "search1 and search2" in finding.reason


def test_proportionate_routing_not_reported(audit: AuditFactory) -> None:
    traffic = {
        "requests": 10000,
        "paths": {"/": 0.45, "/api/v1/items": 0.45, "/search": 0.1},
    }
    result = audit(PLATFORM, traffic)
    assert result.finding_keys("LB103") == set()


def test_concentration_with_capacity_hints(audit: AuditFactory) -> None:
    result = audit(PLATFORM, PLATFORM_TRAFFIC)
    hints = {f"be_web/web{i}": 2.0 for i in range(1, 7)}
    hints |= {"be_search/search1": 2.0, "be_search/search2": 2.0}
    context = CheckContext.build(result.lb, result.prediction, None, capacity=hints)
    [finding] = [item for item in run_checks(context) if item.rule_id == "LB103"]

    # 22 units of capacity share the routed traffic: 4.5 % per unit, so a search server
    # with 2 units should take 9.1 % and takes 25 %.
    assert "per unit of capacity (4.5 %, from the capacity hints)" in finding.reason
    assert "mean per server" not in finding.reason
    assert finding.metrics["ratio"] == pytest.approx(0.25 / (2 / 22))


def test_concentration_needs_traffic(audit: AuditFactory) -> None:
    result = audit(PLATFORM)
    assert result.finding_keys("LB103") == set()


# LB201 balancing.server-over-fair-share


WEIGHTED = (
    DEFAULTS
    + """
frontend fe
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    balance roundrobin
    server web1 127.0.0.1:9001 weight {0}
    server web2 127.0.0.1:9002 weight {1}
    server web3 127.0.0.1:9003 weight {2}
"""
)


def test_weight_typo_left_to_weight_outlier(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(10, 10, 100), {"requests": 1000, "paths": ["/"]})
    line = result.line_of("weight 100")
    assert result.finding_keys("LB201") == set()
    assert result.finding_keys("LB202") == {("LB202", str(result.config), line)}


def test_weight_typo_reason_names_shares(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(10, 10, 100), {"requests": 1000, "paths": ["/"]})
    [finding] = result.of("LB202")
    assert finding.reason.startswith(
        "web3's weight (100) is 10x the other servers' (10) in be_web; it receives 83.3 % of "
        "be_web's requests, 2.5x an equal share"
    )
    assert "That is 83.3 % of all requests." in finding.reason


def test_weight_typo_reason_without_traffic(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(10, 10, 100))
    [finding] = result.of("LB202")
    assert "it receives 83.3 % of be_web's requests, 2.5x an equal share" in finding.reason
    assert "of all requests" not in finding.reason


def test_low_weight_outlier_reason(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(10, 10, 1), {"requests": 1000, "paths": ["/"]})
    [finding] = result.of("LB202")
    assert finding.reason.startswith("web3's weight (1) is 1/10x of the other servers' (10)")


def test_moderate_weights_not_reported(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(1, 2, 3), {"requests": 1000, "paths": ["/"]})
    assert result.finding_keys("LB201") == set()
    assert result.finding_keys("LB202") == set()


def test_deliberate_weights_not_reported(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(5, 1, 1), {"requests": 1000, "paths": ["/"]})
    assert result.finding_keys("LB201") == set()
    assert result.finding_keys("LB202") == set()


def test_weight_outlier_factor_option(audit: AuditFactory) -> None:
    result = audit(WEIGHTED.format(5, 1, 1), None, {"LB202": {"factor": 5}})
    expected = ("LB202", str(result.config), result.line_of("weight 5"))
    assert result.finding_keys("LB202") == {expected}


TWO_URI = (
    DEFAULTS
    + """
frontend fe
    bind 127.0.0.1:8080
    default_backend be_api

backend be_api
    balance uri
    server api1 127.0.0.1:9001
    server api2 127.0.0.1:9002
"""
)

# balance uri puts /a on api1 and /b on api2, so api1 receives 65 % of the pool, 1.3x its
# weight share.
TWO_URI_TRAFFIC = {"requests": 1000, "paths": {"/a": 0.65, "/b": 0.35}}


def test_factor_option_changes_threshold(audit: AuditFactory) -> None:
    default = audit(TWO_URI, TWO_URI_TRAFFIC)
    lowered = audit(TWO_URI, TWO_URI_TRAFFIC, {"LB201": {"factor": 1.2}})
    expected = ("LB201", str(lowered.config), lowered.line_of("server api1"))
    assert default.finding_keys("LB201") == set()
    assert lowered.finding_keys("LB201") == {expected}


FIRST_POOL = (
    DEFAULTS
    + """
listen mysql
    bind 127.0.0.1:3306
    mode tcp
    balance first
    server mysql1 127.0.0.1:9001 check
    server mysql2 127.0.0.1:9002 check
"""
)


def test_first_without_maxconn_left_to_lb404(audit: AuditFactory) -> None:
    result = audit(FIRST_POOL)
    expected = ("LB404", str(result.config), result.line_of("server mysql1"))
    assert result.finding_keys("LB201") == set()
    assert result.finding_keys("LB404") == {expected}


def test_first_with_maxconn_not_reported(audit: AuditFactory) -> None:
    result = audit(FIRST_POOL.replace(" check\n", " check maxconn 50\n"))
    assert result.line_of("maxconn 50") == result.line_of("server mysql1")
    assert result.finding_keys("LB201") == set()
    assert result.finding_keys("LB404") == set()


def test_hash_on_one_key_reported(audit: AuditFactory) -> None:
    result = audit(
        DEFAULTS
        + """
frontend fe
    bind 127.0.0.1:8080
    default_backend be_api

backend be_api
    balance uri
    server api1 127.0.0.1:9001
    server api2 127.0.0.1:9002
    server api3 127.0.0.1:9003
    server api4 127.0.0.1:9004
""",
        {"requests": 1000, "paths": ["/only/one/uri"]},
    )
    [finding] = result.of("LB201")
    assert "4x its weight share (25.0 %)" in finding.reason
    assert finding.subject.startswith("be_api/")


# LB401 capacity.single-server-pool


SINGLE = (
    DEFAULTS
    + """
frontend fe
    bind 127.0.0.1:8080
    acl is_admin path_beg /admin
    use_backend be_admin if is_admin
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001
    server web2 127.0.0.1:9002

backend be_admin
    server admin1 127.0.0.1:9003
{backup}
"""
)


def test_single_server_pool_with_large_share(audit: AuditFactory) -> None:
    result = audit(SINGLE.format(backup=""), {"requests": 100, "paths": {"/admin": 0.3, "/": 0.7}})
    line = result.line_of("backend be_admin")
    assert result.finding_keys("LB401") == {("LB401", str(result.config), line)}
    assert result.of("LB401")[0].severity is Severity.WARNING


def test_single_server_pool_with_small_share(audit: AuditFactory) -> None:
    result = audit(SINGLE.format(backup=""), {"requests": 100, "paths": {"/admin": 0.1, "/": 0.9}})
    assert result.finding_keys("LB401") == set()


def test_single_server_pool_with_backup_is_info(audit: AuditFactory) -> None:
    backup = "    server admin2 127.0.0.1:9004 backup"
    result = audit(
        SINGLE.format(backup=backup), {"requests": 100, "paths": {"/admin": 0.3, "/": 0.7}}
    )
    [finding] = result.of("LB401")
    assert finding.severity is Severity.INFO
    assert "admin2" in finding.reason
