"""HAProxy parser behaviour on small configurations written for one feature each."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lbguard.errors import ConfigError
from lbguard.model import (
    ActionKind,
    AllOf,
    AnyOf,
    Constant,
    Frontend,
    HashFunction,
    HashMethod,
    LoadBalancer,
    Matcher,
    MatchMethod,
    Mode,
    Named,
    Not,
    Pool,
    Product,
    Severity,
    Unevaluated,
)
from lbguard.parsers import detect_product, load_config
from lbguard.parsers.haproxy import parse_haproxy
from lbguard.parsers.haproxy.lexer import LineError, split_words


def write(tmp_path: Path, text: str, name: str = "haproxy.cfg") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def parse_text(tmp_path: Path, text: str) -> LoadBalancer:
    return parse_haproxy([write(tmp_path, text)])


def frontend(lb: LoadBalancer, name: str = "fe") -> Frontend:
    result = lb.frontend(name)
    assert result is not None
    return result


def pool(lb: LoadBalancer, name: str = "be") -> Pool:
    result = lb.pool(name)
    assert result is not None
    return result


def errors(lb: LoadBalancer) -> list[tuple[int, str]]:
    return [(d.location.line, d.message) for d in lb.diagnostics if d.severity is Severity.ERROR]


# ------------------------------------------------------------------------------------------
# Lexer


def test_words_quotes_and_escapes() -> None:
    words = split_words(r"""a "b c" 'd "e' f\ g h\#i "j\"k" \x41 l\1""").words
    assert words == ["a", "b c", 'd "e', "f g", "h#i", 'j"k', "A", "l\\1"]


def test_words_comment_and_crlf() -> None:
    split = split_words("server s1 127.0.0.1:80 # comment\r\n")
    assert split.words == ["server", "s1", "127.0.0.1:80"]
    assert split.end == len("server s1 127.0.0.1:80 ")


def test_words_environment_variables_kept() -> None:
    split = split_words('server "${NAME}" ${ADDR}:80')
    assert split.words == ["server", "${NAME}", "${ADDR}:80"]
    assert split.env_vars == ["NAME"]
    assert split.unquoted_vars == ["${ADDR}"]


def test_words_unmatched_quote() -> None:
    with pytest.raises(LineError) as raised:
        split_words('acl a path "/x')
    assert raised.value.position == 12


def test_trailing_backslash_is_not_a_continuation(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        backend be
            server s1 127.0.0.1:80 \\
            weight 5
        """,
    )
    assert [d.location.line for d in lb.diagnostics if d.severity is Severity.WARNING] == [2]
    assert errors(lb)[0][0] == 2
    assert errors(lb)[1] == (
        3,
        "parsing [haproxy.cfg:3] : unknown keyword 'weight' in 'backend' section".replace(
            "haproxy.cfg", str(tmp_path / "haproxy.cfg")
        ),
    )


def test_unmatched_quote_skips_only_that_line(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        backend be
            server s1 127.0.0.1:80
            server "s2 127.0.0.1:81
            server s3 127.0.0.1:82
        """,
    )
    assert [s.name for s in pool(lb).servers] == ["s1", "s3"]
    assert [line for line, _ in errors(lb)] == [3]
    assert "unmatched quote at position 12" in errors(lb)[0][1]


def test_missing_final_newline_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text("backend be\n    server s1 127.0.0.1:80")
    lb = parse_haproxy([path])
    assert [line for line, _ in errors(lb)] == [2]
    assert [s.name for s in pool(lb).servers] == ["s1"]


def test_conditional_blocks(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        backend be
        .if version_atleast(2.4)
            server new 127.0.0.1:80
        .else
            server old 127.0.0.1:81
        .endif
        .if version_atleast(3.0)
            server v3 127.0.0.1:82
        .elif 1
            server elif 127.0.0.1:83
        .endif
        .if defined(HOME)
            server env 127.0.0.1:84
        .endif
        """,
    )
    assert [s.name for s in pool(lb).servers] == ["new", "elif", "env"]
    assert [d.location.line for d in lb.diagnostics if d.code == "unevaluated"] == [12]


# ------------------------------------------------------------------------------------------
# Sections and inheritance


def test_defaults_inheritance_and_named_from(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        defaults web
            mode http
            balance source
            hash-type consistent
            default-server check weight 7 maxconn 30
            option allbackups
        defaults tcp
            mode tcp
        backend be
            server s1 127.0.0.1:80
        backend fromweb from web
            server s1 127.0.0.1:80 weight 2 no-check
            server s2 127.0.0.1:81 backup
        """,
    )
    plain = pool(lb)
    assert plain.mode is Mode.TCP
    assert plain.servers[0].weight == 1
    assert not plain.balance.explicit
    named = pool(lb, "fromweb")
    assert named.mode is Mode.HTTP
    assert named.balance.algorithm.value == "source"
    assert named.balance.location.line == 3
    assert named.balance.hash_method is HashMethod.CONSISTENT
    assert named.balance.avalanche
    assert named.all_backups
    assert [(s.weight, s.check, s.maxconn) for s in named.servers] == [
        (2, False, 30),
        (7, True, 30),
    ]
    assert [s.backup for s in named.servers] == [False, True]


def test_unknown_named_defaults(tmp_path: Path) -> None:
    lb = parse_text(tmp_path, "backend be from nowhere\n    server s1 127.0.0.1:80\n")
    assert errors(lb) == [
        (
            1,
            f"parsing [{tmp_path / 'haproxy.cfg'}:1] : defaults section 'nowhere' not found "
            "for backend 'be'.",
        )
    ]
    assert [s.name for s in pool(lb).servers] == ["s1"]


def test_other_sections_are_skipped(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        userlist users
            user admin insecure-password x
        resolvers dns
            nameserver ns 127.0.0.1:53
        peers p
            peer a 127.0.0.1:1024
        backend be
            server s1 127.0.0.1:80
        """,
    )
    assert lb.diagnostics == ()
    assert [p.name for p in lb.pools] == ["be"]


# ------------------------------------------------------------------------------------------
# ACLs and rules


ACL_CONFIG = """
    frontend fe
        mode http
        bind 127.0.0.1:8080
        acl api path_beg /api
        acl api path_beg /v2
        acl host_a hdr(Host) -i a.example.com
        acl get method GET
        acl ua hdr_sub(User-Agent) -i bot
        acl dashes path -- -x
        acl len path_len gt 10
        acl re path -m reg ^/x[0-9]+
        acl cookie cook(session) -m found
        acl nets src -f {nets}
        use_backend be if api host_a || get
        use_backend be unless ua
        use_backend be if !api { path_end .css } METH_POST
        use_backend be if TRUE
        use_backend be if nets
        use_backend be if len re cookie
        http-request deny if dashes
        default_backend be
    backend be
        server s1 127.0.0.1:80
    """


@pytest.fixture
def acl_lb(tmp_path: Path) -> LoadBalancer:
    (tmp_path / "nets.lst").write_text("# networks\n10.0.0.0/8\n\n 192.168.0.0/16 \n")
    return parse_text(tmp_path, ACL_CONFIG.replace("{nets}", "nets.lst"))


def test_acl_repeated_lines_are_ored(acl_lb: LoadBalancer) -> None:
    first = frontend(acl_lb).rules[1].condition
    assert isinstance(first, AnyOf)
    suite = first.terms[0]
    assert isinstance(suite, AllOf)
    api = suite.terms[0]
    assert isinstance(api, Named)
    assert [loc.line for loc in api.locations] == [4, 5]
    assert isinstance(api.condition, AnyOf)
    assert [m.patterns for m in api.condition.terms if isinstance(m, Matcher)] == [
        ("/api",),
        ("/v2",),
    ]


def test_acl_host_header_and_flags(acl_lb: LoadBalancer) -> None:
    acls = {
        name: condition
        for rule in frontend(acl_lb).rules
        for name, condition in _named(rule.condition)
    }
    host = acls["host_a"]
    assert (host.fetch, host.arg, host.ignore_case) == ("host", None, True)
    ua = acls["ua"]
    assert (ua.fetch, ua.arg, ua.method) == ("hdr", "user-agent", MatchMethod.SUB)
    assert acls["dashes"].patterns == ("-x",)
    assert acls["len"].method is MatchMethod.LEN
    assert acls["len"].patterns == ("11:",)
    assert acls["re"].method is MatchMethod.REG
    assert (acls["cookie"].fetch, acls["cookie"].arg) == ("cookie", "session")
    assert acls["cookie"].method is MatchMethod.FOUND
    assert acls["nets"].patterns == ("10.0.0.0/8", "192.168.0.0/16")
    assert acls["nets"].method is MatchMethod.IP


def _named(condition: object) -> list[tuple[str, Matcher]]:
    found: list[tuple[str, Matcher]] = []
    if isinstance(condition, Named) and isinstance(condition.condition, Matcher):
        found.append((condition.name, condition.condition))
    for attribute in ("terms",):
        for term in getattr(condition, attribute, ()):
            found += _named(term)
    if isinstance(condition, Not):
        found += _named(condition.term)
    return found


def test_unless_negation_and_anonymous(acl_lb: LoadBalancer) -> None:
    rules = frontend(acl_lb).rules
    unless = rules[2].condition
    assert isinstance(unless, Not)
    assert isinstance(unless.term, Named)
    third = rules[3].condition
    assert isinstance(third, AllOf)
    assert isinstance(third.terms[0], Not)
    anonymous = third.terms[1]
    assert isinstance(anonymous, Matcher)
    assert (anonymous.fetch, anonymous.method, anonymous.patterns) == (
        "path",
        MatchMethod.END,
        (".css",),
    )
    post = third.terms[2]
    assert isinstance(post, Named)
    assert post.name == "METH_POST"
    assert post.locations == ()
    assert rules[4].condition == Constant(True)


def test_http_request_rules_run_first(acl_lb: LoadBalancer) -> None:
    rules = frontend(acl_lb).rules
    assert rules[0].action.kind is ActionKind.DENY
    assert rules[0].action.status == 403
    assert rules[0].location.line == 20
    assert [r.location.line for r in rules[1:]] == [14, 15, 16, 17, 18, 19]


def test_missing_pattern_file(tmp_path: Path) -> None:
    lb = parse_text(tmp_path, ACL_CONFIG.replace("{nets}", "missing.lst"))
    assert [line for line, _ in errors(lb)] == [13, 18]
    assert "failed to open pattern file <missing.lst>" in errors(lb)[0][1]
    assert "no such ACL : 'nets'" in errors(lb)[1][1]
    assert len(frontend(lb).rules) == 6


def test_allow_excludes_later_denies(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        frontend fe
            mode http
            acl admin src 10.0.0.0/8
            http-request allow if admin
            http-request deny deny_status 429
            use_backend be if { path_beg /x }
        backend be
            server s1 127.0.0.1:80
        """,
    )
    rules = frontend(lb).rules
    assert [r.action.kind for r in rules] == [ActionKind.DENY, ActionKind.ROUTE]
    assert rules[0].action.status == 429
    condition = rules[0].condition
    assert isinstance(condition, AllOf)
    assert isinstance(condition.terms[0], Not)


def test_dynamic_use_backend(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        frontend fe
            mode http
            use_backend %[req.hdr(host),lower,map_dom(/etc/hosts.map,be)]
            default_backend be
        backend be
            server s1 127.0.0.1:80
        """,
    )
    rule = frontend(lb).rules[0]
    assert rule.action.kind is ActionKind.DYNAMIC
    assert rule.action.pool == "%[req.hdr(host),lower,map_dom(/etc/hosts.map,be)]"
    assert [d.location.line for d in lb.diagnostics if d.code == "unevaluated"] == [3]
    assert errors(lb) == []


def test_unevaluated_fetch_kept(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        frontend fe
            mode http
            use_backend be if { nbsrv(be) ge 1 }
        backend be
            server s1 127.0.0.1:80
        """,
    )
    condition = frontend(lb).rules[0].condition
    assert isinstance(condition, Unevaluated)
    assert "server health" in condition.reason
    assert [d.location.line for d in lb.diagnostics if d.code == "unevaluated"] == [3]


# ------------------------------------------------------------------------------------------
# Balancing


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("balance roundrobin", ("roundrobin", None, {})),
        ("balance static-rr", ("static-rr", None, {})),
        ("balance leastconn", ("leastconn", None, {})),
        ("balance first", ("first", None, {})),
        ("balance source", ("source", None, {})),
        ("balance uri", ("uri", None, {})),
        (
            "balance uri whole len 20 depth 3 path-only",
            (
                "uri",
                None,
                {"uri_whole": True, "uri_len": 20, "uri_depth": 3, "uri_path_only": True},
            ),
        ),
        ("balance url_param id", ("url_param", "id", {"check_post": False})),
        ("balance url_param id check_post 64", ("url_param", "id", {"check_post": True})),
        ("balance hdr(X-Tenant)", ("hdr", "x-tenant", {"use_domain_only": False})),
        ("balance hdr(host) use_domain_only", ("hdr", "host", {"use_domain_only": True})),
        ("balance random", ("random", None, {"draws": 2})),
        ("balance random(5)", ("random", None, {"draws": 5})),
        ("balance rdp-cookie", ("rdp-cookie", "mstshash", {})),
        ("balance rdp-cookie(user)", ("rdp-cookie", "user", {})),
        ("balance hash req.cookie(id)", ("hash", "req.cookie(id)", {})),
    ],
)
def test_balance_algorithms(
    tmp_path: Path, line: str, expected: tuple[str, str | None, dict[str, object]]
) -> None:
    lb = parse_text(tmp_path, f"backend be\n    {line}\n    server s1 127.0.0.1:80\n")
    balance = pool(lb).balance
    algorithm, key, attributes = expected
    assert balance.algorithm.value == algorithm
    assert balance.key == key
    for name, value in attributes.items():
        assert getattr(balance, name) == value
    assert balance.text == line
    assert errors(lb) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("balance foobar", "balance only supports 'roundrobin', 'static-rr', 'leastconn'"),
        ("balance uri depth x", "balance uri : 'depth' expects a positive integer (got 'x')."),
        ("balance hash", "balance hash requires a sample expression."),
        ("balance random(0)", "balance random : number of draws must be at least 1."),
        (
            "hash-type consistent foo",
            "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.",
        ),
        ("hash-balance-factor 50", "'hash-balance-factor' must be 0 or greater than 100."),
    ],
)
def test_balance_errors(tmp_path: Path, line: str, message: str) -> None:
    lb = parse_text(tmp_path, f"backend be\n    {line}\n    server s1 127.0.0.1:80\n")
    assert [n for n, _ in errors(lb)] == [2]
    assert message in errors(lb)[0][1]
    assert len(pool(lb).servers) == 1


@pytest.mark.parametrize(
    ("line", "method", "function", "avalanche"),
    [
        ("", HashMethod.MAP_BASED, HashFunction.SDBM, False),
        ("hash-type map-based", HashMethod.MAP_BASED, HashFunction.SDBM, False),
        ("hash-type consistent", HashMethod.CONSISTENT, HashFunction.SDBM, True),
        ("hash-type consistent djb2", HashMethod.CONSISTENT, HashFunction.DJB2, False),
        ("hash-type consistent wt6 avalanche", HashMethod.CONSISTENT, HashFunction.WT6, True),
        ("hash-type map-based crc32 avalanche", HashMethod.MAP_BASED, HashFunction.CRC32, True),
    ],
)
def test_hash_type_defaults(
    tmp_path: Path, line: str, method: HashMethod, function: HashFunction, avalanche: bool
) -> None:
    lb = parse_text(
        tmp_path, f"backend be\n    balance uri\n    {line}\n    server s 127.0.0.1:80\n"
    )
    balance = pool(lb).balance
    assert balance.hash_method is method
    assert balance.hash_function is function
    assert balance.avalanche is avalanche


def test_hash_balance_factor(tmp_path: Path) -> None:
    lb = parse_text(tmp_path, "backend be\n    hash-balance-factor 150\n")
    assert pool(lb).balance.hash_balance_factor == 150


# ------------------------------------------------------------------------------------------
# Servers


def test_server_template_and_ids(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        backend be
            server a 127.0.0.1:80
            server b 127.0.0.1:81 id 3
            server-template web 2-4 127.0.0.1:8080 weight 5
            server-template app 2 127.0.0.1:9000 id 10
            server c 127.0.0.1:82
        """,
    )
    servers = pool(lb).servers
    assert [s.name for s in servers] == ["a", "b", "web2", "web3", "web4", "app1", "app2", "c"]
    assert [s.id for s in servers] == [1, 3, 4, 5, 6, 10, 8, 9]
    assert [s.weight for s in servers[2:5]] == [5, 5, 5]
    assert all(s.location.line == 4 for s in servers[2:5])


def test_server_states_and_keywords(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        backend be
            default-server disabled inter 2s
            server s1 127.0.0.1:80 enabled slowstart 30s track other/s1 maxqueue 5
            server s2 [::1]:80 source 10.0.0.1 usesrc clientip weight 0
        """,
    )
    s1, s2 = pool(lb).servers
    assert s1.state.value == "enabled"
    assert s2.state.value == "disabled"
    assert s1.options == ("inter 2s", "slowstart 30s", "track other/s1")
    assert s1.maxqueue == 5
    assert s2.address == "::1"
    assert s2.weight == 0
    assert errors(lb) == []


def test_weight_out_of_range_and_non_numeric(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        backend be
            server s1 127.0.0.1:80 weight 300
            server s2 127.0.0.1:81 weight x
        """,
    )
    path = tmp_path / "haproxy.cfg"
    assert errors(lb) == [
        (2, f"[{path}:2] : 'server be/s1' : weight of server s1 is not within 0 and 256 (300).")
    ]
    assert [d.location.line for d in lb.diagnostics if d.code == "weight"] == [3]
    assert [(s.name, s.weight) for s in pool(lb).servers] == [("s2", 0)]


def test_structural_errors_with_lines(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        server s0 127.0.0.1:1
        frontend fe
            mode http
            foo bar
            use_backend be if missing
            use_backend nope
            default_backend be
        backend be
            server s1 127.0.0.1:80
            server s1 127.0.0.1:81
            server s2 127.0.0.1:82 bogus
        frontend fe
        """,
    )
    lines = [line for line, _ in errors(lb)]
    assert lines == [1, 4, 5, 11, 12, 6, 10]
    messages = [message for _, message in errors(lb)]
    assert messages[0].endswith("unknown keyword 'server' out of section.")
    assert messages[1].endswith("unknown keyword 'foo' in 'frontend' section")
    assert messages[2].endswith(
        "error detected while parsing switching rule : no such ACL : 'missing'."
    )
    assert messages[3].endswith("'server be/s2' : unknown keyword 'bogus'.")
    assert "has the same name as frontend 'fe'" in messages[4]
    assert messages[5] == "Proxy 'fe': unable to find required use_backend: 'nope'."
    assert messages[6].endswith(
        "backend 'be', another server named 's1' was already defined "
        "at line 9, please use distinct names."
    )
    assert [s.name for s in pool(lb).servers] == ["s1", "s1"]


def test_capability_warnings(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        frontend fe
            balance source
            server s1 127.0.0.1:80
        backend be
            bind :80
            use_backend be
        """,
    )
    warnings = [d.location.line for d in lb.diagnostics if d.code == "capability"]
    assert warnings == [2, 3, 5, 6]


# ------------------------------------------------------------------------------------------
# Binds, settings and entry points


def test_binds_and_http2(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        global
            maxconn 5000
            nbthread 4
        frontend fe
            bind :::443 ssl crt x.pem alpn h2,http/1.1
            bind 127.0.0.1:8000-8002,127.0.0.2:9000
            bind unix@/run/x.sock
        frontend h2c
            bind :80 proto h2
        """,
    )
    binds = frontend(lb).binds
    assert [(b.address, b.port) for b in binds] == [
        ("::", 443),
        ("127.0.0.1", 8000),
        ("127.0.0.2", 9000),
        ("unix@/run/x.sock", None),
    ]
    assert binds[1].options == ("ports 8000-8002",)
    assert frontend(lb).accepts_http2
    assert frontend(lb, "h2c").accepts_http2
    assert lb.settings == (("maxconn", "5000"), ("nbthread", "4"))


def test_config_errors_for_unusable_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        parse_haproxy([tmp_path / "missing.cfg"])
    (tmp_path / "notes.txt").write_text("x\n")
    with pytest.raises(ConfigError, match=r"no \*\.cfg file"):
        parse_haproxy([tmp_path])


def test_directory_skips_hidden_and_other_files(tmp_path: Path) -> None:
    write(tmp_path, "backend b\n    server s 127.0.0.1:80\n", "b.cfg")
    write(tmp_path, "defaults\n    mode http\n", "a.cfg")
    write(tmp_path, "junk\n", ".hidden.cfg")
    write(tmp_path, "junk\n", "c.cfg.bak")
    lb = parse_haproxy([tmp_path])
    assert [Path(f).name for f in lb.files] == ["a.cfg", "b.cfg"]
    assert pool(lb, "b").mode is Mode.HTTP
    assert errors(lb) == []


def test_load_config_detects_haproxy(tmp_path: Path) -> None:
    path = write(tmp_path, "backend be\n    server s 127.0.0.1:80\n", "lb.conf")
    assert detect_product([path]) is Product.HAPROXY
    assert load_config([path]).product is Product.HAPROXY
    other = write(tmp_path, "nothing here\n", "x.txt")
    with pytest.raises(ConfigError, match="--product"):
        detect_product([other])


def test_captured_request_headers(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        frontend fe
            mode http
            bind 127.0.0.1:8080
            capture request header Host len 32
            capture request header X-Forwarded-For len 64
            capture request header Bad
            default_backend be
        backend be
            server s1 127.0.0.1:9001
        """,
    )
    assert lb.frontends[0].captured_request_headers == ("host", "x-forwarded-for")
    errors = [d for d in lb.diagnostics if d.severity is Severity.ERROR]
    assert [d.location.line for d in errors] == [6]
    assert "'capture request' expects 'header'" in errors[0].message


def test_default_backend_with_condition_rejected(tmp_path: Path) -> None:
    lb = parse_text(
        tmp_path,
        """
        frontend fe
            mode http
            bind 127.0.0.1:8080
            acl is_api path_beg /api
            default_backend be_api if is_api
        backend be_api
            server s1 127.0.0.1:9001
        """,
    )
    assert [line for line, _ in errors(lb)] == [5]
    assert "cannot handle unexpected argument 'if'" in errors(lb)[0][1]
    assert frontend(lb).default_pool is None
