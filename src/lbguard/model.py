"""Normalized model of one load balancer.

Every parser (HAProxy, NGINX, ...) produces a `LoadBalancer`; prediction, checks and
reports read only this model. All classes are frozen so that a parsed configuration can be
shared, hashed and compared (the semantic diff relies on that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, order=True)
class Location:
    """A position in a configuration file."""

    file: str
    """Path of the file as given on the command line or reached by an include."""

    line: int
    """1-based line number; 0 when the element has no line of its own."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NO_LOCATION = Location("", 0)


class Product(StrEnum):
    """Load-balancer products that lbguard models."""

    HAPROXY = "haproxy"
    NGINX = "nginx"
    ENVOY = "envoy"
    AWS_ALB = "aws-alb"
    GATEWAY_API = "gateway-api"
    TRAEFIK = "traefik"
    CADDY = "caddy"


class Mode(StrEnum):
    """Protocol level at which a frontend or pool works."""

    HTTP = "http"
    TCP = "tcp"


class Severity(StrEnum):
    """Severity of a parser diagnostic or an audit finding, lowest first."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Diagnostic:
    """A problem found while reading a configuration; the rest is still analysed."""

    severity: Severity
    message: str
    """The problem, in the product's own wording where the product has one."""

    location: Location
    hint: str = ""
    """The next step for the user."""

    code: str = ""
    """Short stable identifier, for example ``syntax`` or ``unevaluated``."""

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


# --------------------------------------------------------------------------------------
# Conditions


class MatchMethod(StrEnum):
    """Comparison of a fetched sample with a matcher's patterns (HAProxy's ``-m``)."""

    STR = "str"
    """Exact string equality."""

    BEG = "beg"
    END = "end"
    SUB = "sub"
    DIR = "dir"
    """A pattern equal to one slash-delimited component of the sample."""

    DOM = "dom"
    """A pattern equal to one dot-delimited component of the sample."""

    REG = "reg"
    """Regular expression search (PCRE in the products, Python ``re`` here)."""

    LEN = "len"
    """Sample length compared with integer patterns."""

    INT = "int"
    """Integer comparison; patterns may be ``N``, ``N:M``, ``gt N`` and similar."""

    IP = "ip"
    """Address or CIDR network membership."""

    FOUND = "found"
    """True when the sample exists, whatever its value."""

    BOOL = "bool"
    """True when the sample is non-empty and non-zero."""


@dataclass(frozen=True)
class Matcher:
    """One test of a request sample against patterns; true when any pattern matches."""

    fetch: str
    """Sample fetch in a product-neutral name: ``path``, ``url``, ``query``, ``host``,
    ``method``, ``src``, ``hdr``, ``url_param``, ``cookie``, ``sni`` or ``base`` (the Host
    header followed by the path)."""

    arg: str | None
    """Fetch argument: the header, parameter or cookie name; None when the fetch has none."""

    method: MatchMethod
    patterns: tuple[str, ...]
    ignore_case: bool = False
    location: Location = NO_LOCATION
    text: str = ""
    """The matcher as written in the configuration."""


@dataclass(frozen=True)
class AllOf:
    """Conjunction: true when every term is true (true when empty)."""

    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """Disjunction: true when some term is true (false when empty)."""

    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """Negation of one condition."""

    term: Condition


@dataclass(frozen=True)
class Named:
    """A condition that the configuration names, such as an HAProxy ``acl``."""

    name: str
    condition: Condition
    locations: tuple[Location, ...]
    """Every line that defines the name (repeated HAProxy ``acl`` lines are OR-ed)."""


@dataclass(frozen=True)
class Constant:
    """A condition with a fixed value (HAProxy's ``TRUE`` and ``FALSE`` ACLs)."""

    value: bool


@dataclass(frozen=True)
class Unevaluated:
    """A condition lbguard cannot evaluate over a traffic profile, kept and reported."""

    text: str
    reason: str
    location: Location = NO_LOCATION


Condition = Matcher | AllOf | AnyOf | Not | Named | Constant | Unevaluated


# --------------------------------------------------------------------------------------
# Routing


class ActionKind(StrEnum):
    """Kind of action a routing rule applies to the requests it matches."""

    ROUTE = "route"
    """Send to the pool named by ``Action.pool``."""

    REDIRECT = "redirect"
    DENY = "deny"
    RETURN = "return"
    """Local response with a status and body (HAProxy ``http-request return``)."""

    DYNAMIC = "dynamic"
    """Route to a pool whose name is computed at run time; kept as unevaluated."""


@dataclass(frozen=True)
class Action:
    """The terminal action of a routing rule."""

    kind: ActionKind
    pool: str | None = None
    """Target pool for ROUTE; the expression text for DYNAMIC."""

    status: int | None = None
    """HTTP status for REDIRECT, DENY and RETURN when known."""

    detail: str = ""


@dataclass(frozen=True)
class Rule:
    """One routing rule of a frontend; rules are evaluated in order, first match wins."""

    condition: Condition | None
    """None when the rule applies to every request."""

    action: Action
    location: Location
    text: str
    """The rule as written, on one line."""

    implicit: bool = False
    """True when the parser added the rule to model product behaviour that no configuration
    line states, such as nginx serving static files when no location matches. Audit rules
    about rule order skip it."""


@dataclass(frozen=True)
class Bind:
    """An address the frontend listens on."""

    address: str
    """Host part as written; empty or ``*`` for every address."""

    port: int | None
    location: Location = NO_LOCATION
    options: tuple[str, ...] = ()
    """Remaining bind keywords as written, such as ``ssl`` or ``alpn h2,http/1.1``."""


@dataclass(frozen=True)
class Frontend:
    """A listener with its ordered routing rules (an HAProxy frontend or listen, an nginx
    server block, an ALB listener)."""

    name: str
    mode: Mode
    binds: tuple[Bind, ...]
    rules: tuple[Rule, ...]
    default_pool: str | None
    """Pool for requests no rule matches. None means the product responds with an error."""

    location: Location
    default_location: Location = NO_LOCATION
    """Line of the default-pool statement."""

    accepts_http2: bool = False
    """True when a bind offers HTTP/2 (ALPN h2 or proto h2)."""

    captured_request_headers: tuple[str, ...] = ()
    """Lower-case names of the request headers the access log captures, in log order
    (HAProxy ``capture request header``)."""


# --------------------------------------------------------------------------------------
# Pools


class Algorithm(StrEnum):
    """Balancing algorithm of a pool, named as the product names it where possible."""

    ROUND_ROBIN = "roundrobin"
    STATIC_RR = "static-rr"
    LEAST_CONN = "leastconn"
    FIRST = "first"
    SOURCE = "source"
    URI = "uri"
    URL_PARAM = "url_param"
    HDR = "hdr"
    RDP_COOKIE = "rdp-cookie"
    RANDOM = "random"
    HASH = "hash"
    """Hash of an arbitrary expression: HAProxy ``balance hash <expr>``, nginx ``hash``."""

    IP_HASH = "ip_hash"
    """nginx ``ip_hash``: first three IPv4 octets or the whole IPv6 address."""

    @property
    def is_hash(self) -> bool:
        return self in _HASH_ALGORITHMS

    @property
    def is_load_dependent(self) -> bool:
        return self in (Algorithm.LEAST_CONN, Algorithm.FIRST)


_HASH_ALGORITHMS = frozenset(
    {
        Algorithm.SOURCE,
        Algorithm.URI,
        Algorithm.URL_PARAM,
        Algorithm.HDR,
        Algorithm.RDP_COOKIE,
        Algorithm.HASH,
        Algorithm.IP_HASH,
    }
)


class HashMethod(StrEnum):
    """Placement of hashed keys on servers (HAProxy ``hash-type``)."""

    MAP_BASED = "map-based"
    CONSISTENT = "consistent"


class HashFunction(StrEnum):
    """Hash function applied to the key (HAProxy ``hash-type ... <function>``)."""

    SDBM = "sdbm"
    DJB2 = "djb2"
    WT6 = "wt6"
    CRC32 = "crc32"
    NONE = "none"


@dataclass(frozen=True)
class Balance:
    """The balancing algorithm of a pool with every parameter that changes placement."""

    algorithm: Algorithm
    location: Location = NO_LOCATION
    key: str | None = None
    """Hash key: header name (hdr), parameter name (url_param), cookie name (rdp-cookie),
    sample expression (hash) or nginx key text (``$request_uri``)."""

    hash_method: HashMethod = HashMethod.MAP_BASED
    hash_function: HashFunction = HashFunction.SDBM
    avalanche: bool = False
    uri_whole: bool = False
    uri_len: int | None = None
    uri_depth: int | None = None
    uri_path_only: bool = False
    use_domain_only: bool = False
    check_post: bool = False
    draws: int | None = None
    """Number of draws for ``random`` (HAProxy default 2, nginx ``two`` is 2)."""

    hash_balance_factor: int | None = None
    """HAProxy ``hash-balance-factor`` in percent; None or 0 when off."""

    explicit: bool = True
    """False when the product default applies because no balance line was written."""

    text: str = ""


class AdminState(StrEnum):
    """Administrative state of a server as configured."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    """HAProxy ``disabled`` (maintenance), nginx ``down``."""

    DRAIN = "drain"
    """No load-balanced traffic, persistent traffic still accepted."""


@dataclass(frozen=True)
class Server:
    """A backend server of a pool."""

    name: str
    """Name as the configuration gives it (HAProxy server name, nginx ``address:port``)."""

    address: str
    port: int | None
    location: Location
    weight: int = 1
    backup: bool = False
    state: AdminState = AdminState.ENABLED
    maxconn: int | None = None
    maxqueue: int | None = None
    check: bool = False
    """True when active health checks are enabled."""

    id: int | None = None
    """Numeric identifier; HAProxy uses it to place consistent-hash ring nodes."""

    max_fails: int | None = None
    fail_timeout: float | None = None
    """Seconds (nginx ``fail_timeout``)."""

    resolved: tuple[str, ...] = ()
    """Addresses a hostname resolves to when given as input; empty means not resolved."""

    text: str = ""
    options: tuple[str, ...] = ()
    """Other server keywords as written (``slowstart 10s``, ``track be/s1``, ``resolvers dns``)."""

    @property
    def endpoint(self) -> str:
        """Physical address and port, the key that joins a server across pools."""
        if self.port is None:
            return self.address
        if ":" in self.address and not self.address.startswith("["):
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Pool:
    """A group of servers balanced together (HAProxy backend, nginx upstream, ...)."""

    name: str
    mode: Mode
    balance: Balance
    servers: tuple[Server, ...]
    location: Location
    all_backups: bool = False
    """HAProxy ``option allbackups``: every backup server shares the traffic, not only the
    first."""

    health_check_configured: bool = False
    """True when the pool defines a health check of its own (``option httpchk`` and the like)."""

    shared_state: bool = True
    """False when each worker keeps its own balancing state (nginx without ``zone``)."""

    options: tuple[str, ...] = ()
    """Other product options as written, kept for checks."""

    rules: tuple[Rule, ...] = ()
    """Rules the pool applies before balancing, in order (HAProxy backend ``http-request
    deny``). A request that such a rule handles reaches no server."""

    def server(self, name: str) -> Server | None:
        for server in self.servers:
            if server.name == name:
                return server
        return None


@dataclass(frozen=True)
class LoadBalancer:
    """One load balancer's whole configuration, normalized."""

    product: Product
    frontends: tuple[Frontend, ...]
    pools: tuple[Pool, ...]
    files: tuple[str, ...]
    """Configuration files read, in the order the product reads them."""

    diagnostics: tuple[Diagnostic, ...] = ()
    settings: tuple[tuple[str, str], ...] = field(default=())
    """Global settings that checks read, as (keyword, value) pairs."""

    def pool(self, name: str) -> Pool | None:
        for pool in self.pools:
            if pool.name == name:
                return pool
        return None

    def frontend(self, name: str) -> Frontend | None:
        for frontend in self.frontends:
            if frontend.name == name:
                return frontend
        return None
