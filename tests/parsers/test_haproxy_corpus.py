"""Every real HAProxy configuration of the corpus parses into the facts it states."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbguard.model import (
    ActionKind,
    AdminState,
    Algorithm,
    AllOf,
    AnyOf,
    Diagnostic,
    LoadBalancer,
    Matcher,
    MatchMethod,
    Mode,
    Named,
    Not,
    Severity,
    Unevaluated,
)
from lbguard.parsers import load_config
from lbguard.parsers.haproxy import parse_haproxy

CORPUS = Path(__file__).parent.parent / "data" / "haproxy" / "corpus"

MULTIFILE_ORDER = [
    "10-global.cfg",
    "20-stats.cfg",
    "elasticsearch-acl.cfg",
    "kubernetes-master-apiserver.cfg",
    "mysql.cfg",
    "redis-master.cfg",
    "solrcloud.cfg",
    "vault.cfg",
]


def parse(name: str) -> LoadBalancer:
    return parse_haproxy([CORPUS / name])


def problems(lb: LoadBalancer) -> list[tuple[str, int, Severity]]:
    """Return (file name, line, severity) of the warnings and errors."""
    return [
        (Path(d.location.file).name, d.location.line, d.severity)
        for d in lb.diagnostics
        if d.severity is not Severity.INFO
    ]


def by_code(lb: LoadBalancer, code: str) -> list[Diagnostic]:
    return [d for d in lb.diagnostics if d.code == code]


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.cfg")), ids=lambda p: p.name)
def test_corpus_file_parses(path: Path) -> None:
    lb = load_config([path])
    assert lb.pools
    assert lb.files == (str(path),)


def test_catch_all_case_rule_order() -> None:
    lb = parse("haproxy-examples-content-sw-sample.cfg")
    public = lb.frontend("public")
    assert public is not None
    assert public.mode is Mode.HTTP
    assert [r.action.pool for r in public.rules if r.action.kind is ActionKind.ROUTE] == [
        "static",
        "static",
    ]
    assert public.default_pool == "dynamic"
    first = public.rules[-2].condition
    assert isinstance(first, Matcher)
    assert first.fetch == "host"
    assert first.method is MatchMethod.BEG
    assert first.ignore_case
    assert first.patterns == ("img",)
    second = public.rules[-1].condition
    assert isinstance(second, Matcher)
    assert second.fetch == "path"
    assert second.patterns == ("/img", "/css")
    dynamic = lb.pool("dynamic")
    assert dynamic is not None
    assert [s.maxconn for s in dynamic.servers] == [500, 500, 500, 500]
    assert dynamic.health_check_configured
    assert problems(lb) == []


def test_content_sw_stats_and_monitor_rules_come_first() -> None:
    public = parse("haproxy-examples-content-sw-sample.cfg").frontend("public")
    assert public is not None
    kinds = [(r.action.kind, r.action.detail) for r in public.rules[:2]]
    assert kinds == [
        (ActionKind.RETURN, "monitor-uri"),
        (ActionKind.RETURN, "statistics page"),
    ]


def test_fwrr_weighted_backups() -> None:
    pool = parse("haproxy-tests-fwrr-weighted-backups.cfg").pool("sample1")
    assert pool is not None
    assert pool.balance.algorithm is Algorithm.ROUND_ROBIN
    assert [s.weight for s in pool.servers] == [10, 20, 30, 40, 10, 20, 30, 40]
    assert [s.backup for s in pool.servers] == [False] * 4 + [True] * 4
    assert pool.all_backups
    assert [s.id for s in pool.servers] == list(range(1, 9))
    assert all(s.check for s in pool.servers)


def test_fwlc_leastconn_and_empty_listen() -> None:
    lb = parse("haproxy-tests-fwlc-leastconn-backups.cfg")
    sample1 = lb.pool("sample1")
    sample2 = lb.pool("sample2")
    assert sample1 is not None
    assert sample2 is not None
    assert sample1.balance.algorithm is Algorithm.LEAST_CONN
    assert sample1.mode is Mode.TCP
    assert [s.maxconn for s in sample1.servers[:4]] == [200] * 4
    assert [s.maxconn for s in sample1.servers[4:]] == [None] * 4
    assert sample2.servers == ()
    assert lb.settings == (("maxconn", "1000"),)


def test_url_param_hash() -> None:
    lb = parse("haproxy-tests-url-param-hash.cfg")
    vip1, vip2 = lb.pool("vip1"), lb.pool("vip2")
    assert vip1 is not None
    assert vip2 is not None
    assert vip1.balance.algorithm is Algorithm.URL_PARAM
    assert vip1.balance.key == "foo"
    assert not vip1.balance.check_post
    assert vip2.balance.check_post
    assert [s.endpoint for s in vip1.servers] == ["127.0.0.1:80", "127.0.0.1:80"]


def test_relative_server_ports() -> None:
    lb = parse("haproxy-tests-relative-server-ports.cfg")
    ports = {pool.name: (pool.servers[0].port, pool.servers[0].options) for pool in lb.pools}
    assert ports["fixed"] == (8001, ())
    assert ports["same"] == (None, ())
    assert ports["plus1000"] == (None, ("port-offset +1000",))
    assert ports["minus1000"] == (None, ("port-offset -1000",))
    assert all(pool.mode is Mode.TCP for pool in lb.pools)
    assert all(pool.balance.explicit for pool in lb.pools)


def test_socks4_listen_backups() -> None:
    lb = parse("haproxy-examples-socks4-backup.cfg")
    smtp = lb.pool("SMTP-20025")
    assert smtp is not None
    assert [s.backup for s in smtp.servers] == [False, True]
    assert smtp.mode is Mode.TCP
    assert smtp.health_check_configured
    frontend = lb.frontend("SMTP-20025")
    assert frontend is not None
    assert frontend.default_pool == "SMTP-20025"
    assert frontend.binds[0].address == "0.0.0.0"
    assert frontend.binds[0].port == 20025
    assert problems(lb) == []


def test_option_http_proxy_denies_before_default() -> None:
    lb = parse("haproxy-examples-option-http-proxy.cfg")
    frontend = lb.frontend("test-proxy")
    assert frontend is not None
    assert [r.action.kind for r in frontend.rules] == [ActionKind.DENY, ActionKind.DENY]
    src_rule = frontend.rules[0].condition
    assert isinstance(src_rule, Not)
    assert isinstance(src_rule.term, Named)
    assert isinstance(src_rule.term.condition, Matcher)
    assert src_rule.term.condition.method is MatchMethod.IP
    forbidden = frontend.rules[1].condition
    assert isinstance(forbidden, Named)
    assert isinstance(forbidden.condition, AnyOf)
    assert len(forbidden.locations) == 3
    assert all(isinstance(term, Unevaluated) for term in forbidden.condition.terms)
    backend = lb.pool("test-proxy-srv")
    assert backend is not None
    assert [r.action.kind for r in backend.rules] == [ActionKind.DENY]
    assert backend.servers[0].address == "0.0.0.0"


def test_basic_config_edge() -> None:
    lb = parse("haproxy-examples-basic-config-edge.cfg")
    app1 = lb.pool("app1")
    assert app1 is not None
    assert app1.balance.algorithm is Algorithm.RANDOM
    assert app1.balance.draws == 2
    assert app1.mode is Mode.HTTP
    assert [s.maxconn for s in app1.servers] == [100] * 4
    pub1 = lb.frontend("pub1")
    assert pub1 is not None
    assert [b.port for b in pub1.binds] == [80, 443, 443]
    redirect = pub1.rules[0]
    assert redirect.action.kind is ActionKind.REDIRECT
    assert redirect.action.status == 301
    assert isinstance(redirect.condition, Not)
    assert isinstance(redirect.condition.term, Unevaluated)
    assert pub1.default_pool == "app1"
    assert [d.code for d in lb.diagnostics if d.location.line == 73] == ["unevaluated"]
    assert problems(lb) == []


def test_legacy_removed_keywords_reported_at_their_lines() -> None:
    lb = parse("haproxy-examples-acl-content-sw-legacy.cfg")
    lines = [d.location.line for d in by_code(lb, "removed")]
    assert lines == [19, 35, 40, 51, 61, 65, 66, 84, 85, 87, 97, 98, 99, 103, 104, 113, 114]
    frontend = lb.frontend("http-in")
    assert frontend is not None
    routes = [r.action.pool for r in frontend.rules if r.action.kind is ActionKind.ROUTE]
    assert routes == ["demo", "www2"]
    assert frontend.default_pool == "www"
    denies = [r.location.line for r in frontend.rules if r.action.kind is ActionKind.DENY]
    assert denies == [35, 40, 51, 61]
    uris = frontend.rules[3].condition
    assert isinstance(uris, Named)
    assert uris.locations[0].line == 54
    assert len(uris.locations) == 5


def test_legacy_defaults_inheritance() -> None:
    lb = parse("haproxy-examples-acl-content-sw-legacy.cfg")
    www = lb.pool("www")
    www2 = lb.pool("www2")
    demo = lb.pool("demo")
    assert www is not None
    assert www2 is not None
    assert demo is not None
    assert [s.backup for s in www.servers] == [False, True]
    assert www2.mode is Mode.HTTP
    assert www2.balance.algorithm is Algorithm.ROUND_ROBIN
    assert www2.balance.location.line == 111
    assert demo.servers == ()
    assert demo.balance.location.line == 125


def test_k8s_ingress_crlf_sni_routing() -> None:
    lb = parse("haproxy-k8s-ingress-tcp-cr-sni-generated.cfg")
    frontend = lb.frontend("tcpcr_tests_fe-http-echo")
    assert frontend is not None
    assert frontend.mode is Mode.TCP
    routes = [r for r in frontend.rules if r.action.kind is ActionKind.ROUTE]
    assert [r.action.pool for r in routes] == [
        "tests_http-echo-0_https",
        "tests_http-echo-1_https",
    ]
    condition = routes[0].condition
    assert isinstance(condition, Named)
    assert isinstance(condition.condition, Matcher)
    assert condition.condition.fetch == "sni"
    assert condition.condition.patterns == ("backend0.example.com",)
    assert routes[0].text.endswith("if switch_be_0")
    assert frontend.default_pool == "tests_http-echo_https"
    pool = lb.pool("tests_http-echo-0_https")
    assert pool is not None
    states = [s.state for s in pool.servers]
    assert states == [AdminState.ENABLED] * 2 + [AdminState.DISABLED] * 2
    assert all(s.check for s in pool.servers)
    assert pool.servers[1].address == "fd00:10:244::32"
    assert pool.servers[1].endpoint == "[fd00:10:244::32]:8443"
    assert problems(lb) == []


def test_easyhaproxy_and_binds_or() -> None:
    lb = parse("easyhaproxy-generated-static-acl-precedence.cfg")
    frontend = lb.frontend("http_in_80")
    assert frontend is not None
    kinds = [(r.action.kind, r.action.pool, r.location.line) for r in frontend.rules]
    assert kinds == [
        (ActionKind.REDIRECT, None, 83),
        (ActionKind.ROUTE, "certbot_backend", 88),
        (ActionKind.ROUTE, "srv_host1_com_br_80", 89),
        (ActionKind.ROUTE, "srv_host2_com_br_80", 93),
    ]
    certbot = frontend.rules[1].condition
    assert isinstance(certbot, AnyOf)
    assert len(certbot.terms) == 2
    assert all(isinstance(term, AllOf) for term in certbot.terms)
    https = lb.frontend("http_in_443")
    assert https is not None
    assert https.accepts_http2
    assert not frontend.accepts_http2
    assert problems(lb) == []


def test_easyhaproxy_dashboard_rules_before_default() -> None:
    lb = parse("easyhaproxy-generated-multiple-hosts.cfg")
    dashboard = lb.frontend("dashboard")
    assert dashboard is not None
    assert [(r.action.kind, r.action.status) for r in dashboard.rules] == [
        (ActionKind.RETURN, 404)
    ]
    assert [d.location.line for d in by_code(lb, "not-modelled")] == [54]
    stats = lb.frontend("stats")
    assert stats is not None
    assert stats.rules[0].action.detail == "use-service prometheus-exporter"


def test_argocd_use_server_and_named_defaults() -> None:
    lb = parse("argocd-redis-ha-sentinel-use-server.cfg")
    master = lb.pool("bk_redis_master")
    assert master is not None
    assert master.mode is Mode.TCP
    assert [s.port for s in master.servers] == [6379] * 3
    assert [d.location.line for d in by_code(lb, "not-modelled")] == [72, 74, 76]
    assert lb.frontend("ft_redis_master") is not None
    assert lb.settings == (("maxconn", "4096"),)
    assert problems(lb) == []


def test_kubeadm_unquoted_variables() -> None:
    lb = parse("kubeadm-ha-apiserver-envvars.cfg")
    errors = [(d.location.line, d.code) for d in lb.diagnostics if d.severity is Severity.ERROR]
    assert errors == [(34, "syntax"), (52, "server")]
    warnings = [d.location.line for d in by_code(lb, "unevaluated")]
    assert warnings == [34, 52, 52, 52]
    pool = lb.pool("apiserverbackend")
    assert pool is not None
    assert pool.mode is Mode.TCP
    assert pool.servers[0].name == "${HOST1_ID}"
    assert pool.servers[0].port is None


def test_consul_wrapped_lines_and_template() -> None:
    lb = parse("consul-dns-server-template-wrapped-lines.cfg")
    assert problems(lb) == [
        ("consul-dns-server-template-wrapped-lines.cfg", 5, Severity.ERROR),
        ("consul-dns-server-template-wrapped-lines.cfg", 6, Severity.ERROR),
        ("consul-dns-server-template-wrapped-lines.cfg", 21, Severity.ERROR),
        ("consul-dns-server-template-wrapped-lines.cfg", 23, Severity.ERROR),
    ]
    pool = lb.pool("http_back")
    assert pool is not None
    assert [s.name for s in pool.servers] == [f"mywebapp{i}" for i in range(1, 11)]
    assert [s.id for s in pool.servers] == list(range(1, 11))
    assert all(s.address == "_web._tcp.service.consul" for s in pool.servers)
    assert all(s.check for s in pool.servers)
    assert "resolvers consul" in pool.servers[0].options
    assert [d.location.line for d in by_code(lb, "runtime-membership")] == [54]


def test_multifile_in_documented_order() -> None:
    folder = CORPUS / "harisekhon-multifile"
    lb = parse_haproxy([folder / name for name in MULTIFILE_ORDER])
    assert [Path(f).name for f in lb.files] == MULTIFILE_ORDER
    mysql = lb.pool("mysql")
    assert mysql is not None
    assert mysql.balance.algorithm is Algorithm.FIRST
    assert mysql.mode is Mode.TCP
    assert [s.backup for s in mysql.servers] == [False, False, True, True]
    assert mysql.rules[0].action.detail == "tcp-request content reject"
    vault = lb.pool("vault")
    assert vault is not None
    assert vault.mode is Mode.HTTP
    assert [r.action.kind for r in vault.rules] == [ActionKind.DENY]
    kube = lb.pool("kube-apiserver")
    assert kube is not None
    assert [s.name for s in kube.servers][-1] == "192.168.99.100"
    assert len(kube.servers) == 5
    stats = lb.frontend("stats")
    assert stats is not None
    assert stats.rules[-1].action.detail == "statistics page"
    assert ("maxconn", "4000") in lb.settings
    assert problems(lb) == []


def test_multifile_directory_reads_files_in_byte_order() -> None:
    lb = parse_haproxy([CORPUS / "harisekhon-multifile"])
    names = [Path(f).name for f in lb.files]
    assert names == sorted(MULTIFILE_ORDER, key=str.encode)
    assert names[0] == "10-global.cfg"
