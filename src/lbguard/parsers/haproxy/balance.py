"""``balance``, ``hash-type`` and ``hash-balance-factor`` as HAProxy 2.6 reads them.

The argument rules and messages follow ``backend_parse_balance()`` in ``src/backend.c`` and
the ``hash-type`` parser in ``src/cfgparse-listen.c`` of HAProxy 2.6.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbguard.model import (
    NO_LOCATION,
    Algorithm,
    Balance,
    HashFunction,
    HashMethod,
    Location,
)

_SIMPLE = {
    "roundrobin": Algorithm.ROUND_ROBIN,
    "static-rr": Algorithm.STATIC_RR,
    "first": Algorithm.FIRST,
    "leastconn": Algorithm.LEAST_CONN,
    "source": Algorithm.SOURCE,
}

_FUNCTIONS = {
    "sdbm": HashFunction.SDBM,
    "djb2": HashFunction.DJB2,
    "wt6": HashFunction.WT6,
    "crc32": HashFunction.CRC32,
}


class BalanceError(ValueError):
    """A ``balance`` or ``hash-type`` line HAProxy rejects; the message is HAProxy's."""


@dataclass
class BalanceState:
    """Balancing settings of a proxy while it is read; copied from its defaults section."""

    algorithm: Algorithm = Algorithm.ROUND_ROBIN
    key: str | None = None
    uri_whole: bool = False
    uri_len: int | None = None
    uri_depth: int | None = None
    uri_path_only: bool = False
    use_domain_only: bool = False
    check_post: bool = False
    draws: int | None = None
    location: Location = NO_LOCATION
    text: str = ""
    explicit: bool = False
    hash_method: HashMethod = HashMethod.MAP_BASED
    hash_function: HashFunction = HashFunction.SDBM
    avalanche: bool = False
    hash_balance_factor: int | None = None

    def copy(self) -> BalanceState:
        return BalanceState(**vars(self))

    def to_model(self) -> Balance:
        return Balance(
            algorithm=self.algorithm,
            location=self.location,
            key=self.key,
            hash_method=self.hash_method,
            hash_function=self.hash_function,
            avalanche=self.avalanche,
            uri_whole=self.uri_whole,
            uri_len=self.uri_len,
            uri_depth=self.uri_depth,
            uri_path_only=self.uri_path_only,
            use_domain_only=self.use_domain_only,
            check_post=self.check_post,
            draws=self.draws,
            hash_balance_factor=self.hash_balance_factor,
            explicit=self.explicit,
            text=self.text,
        )


def parse_balance(state: BalanceState, args: list[str], location: Location, text: str) -> None:
    """Apply ``balance <args>`` to ``state``; raise `BalanceError` as HAProxy would."""
    if not args:
        _set(state, Algorithm.ROUND_ROBIN, location, text)
        return
    name = args[0]
    if name in _SIMPLE:
        _set(state, _SIMPLE[name], location, text)
    elif name.startswith("random"):
        state.draws = _random_draws(name)
        _set(state, Algorithm.RANDOM, location, text)
    elif name == "uri":
        _parse_uri(state, args)
        _set(state, Algorithm.URI, location, text)
    elif name == "url_param":
        if len(args) < 2:
            raise BalanceError("url_param requires an URL parameter name.")
        # HAProxy 2.6 accepts and ignores words after 'check_post' (the old max_wait value).
        if len(args) > 2 and args[2] != "check_post":
            raise BalanceError(f"url_param only accepts 'check_post' modifier (got '{args[2]}').")
        state.key = args[1]
        state.check_post = len(args) > 2
        _set(state, Algorithm.URL_PARAM, location, text)
    elif name == "hash":
        if len(args) < 2:
            raise BalanceError("hash requires a sample expression.")
        if len(args) > 2:
            raise BalanceError(f"hash takes no other argument (got '{args[2]}').")
        state.key = args[1]
        _set(state, Algorithm.HASH, location, text)
    elif name.startswith("hdr("):
        header = name[4:].split(")", 1)[0] if ")" in name else ""
        if not header:
            raise BalanceError("hdr requires an http header field name.")
        if len(args) > 1 and args[1] != "use_domain_only":
            raise BalanceError(
                f"{name} only accepts 'use_domain_only' modifier (got '{args[1]}')."
            )
        state.key = header.lower()
        state.use_domain_only = len(args) > 1
        _set(state, Algorithm.HDR, location, text)
    elif name.startswith("rdp-cookie"):
        state.key = _rdp_cookie_name(name)
        _set(state, Algorithm.RDP_COOKIE, location, text)
    else:
        raise BalanceError(
            "only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', "
            "'url_param', 'hdr(name)' and 'rdp-cookie(name)' options."
        )


def _set(state: BalanceState, algorithm: Algorithm, location: Location, text: str) -> None:
    state.algorithm = algorithm
    state.location = location
    state.text = text
    state.explicit = True
    if algorithm not in (Algorithm.URL_PARAM, Algorithm.HASH, Algorithm.HDR, Algorithm.RDP_COOKIE):
        state.key = None
    if algorithm != Algorithm.RANDOM:
        state.draws = None


def _random_draws(name: str) -> int:
    """Return the draws of ``random`` or ``random(N)``; HAProxy's default is 2."""
    if name in {"random", "random()"}:
        return 2
    if not name.startswith("random("):
        raise BalanceError(
            "only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', "
            "'url_param', 'hdr(name)' and 'rdp-cookie(name)' options."
        )
    inner = name[len("random(") :]
    digits = inner.split(")", 1)[0]
    if not inner.endswith(")") or not digits.isdigit():
        raise BalanceError("random : missing closing parenthesis.")
    if int(digits) < 1:
        raise BalanceError("random : number of draws must be at least 1.")
    return int(digits)


def _parse_uri(state: BalanceState, args: list[str]) -> None:
    state.uri_whole = state.uri_path_only = False
    state.uri_len = state.uri_depth = None
    index = 1
    while index < len(args):
        word = args[index]
        if word in ("len", "depth"):
            value = args[index + 1] if index + 1 < len(args) else ""
            if not value.isdigit() or int(value) <= 0:
                raise BalanceError(f"uri : '{word}' expects a positive integer (got '{value}').")
            if word == "len":
                state.uri_len = int(value)
            else:
                state.uri_depth = int(value)
            index += 2
        elif word == "whole":
            state.uri_whole = True
            index += 1
        elif word == "path-only":
            state.uri_path_only = True
            index += 1
        else:
            raise BalanceError(
                "uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' "
                f"(got '{word}')."
            )


def _rdp_cookie_name(name: str) -> str:
    if name == "rdp-cookie":
        return "mstshash"
    if not name.startswith("rdp-cookie(") or ")" not in name:
        raise BalanceError("rdp-cookie : missing cookie name.")
    cookie = name[len("rdp-cookie(") :].split(")", 1)[0]
    if not cookie:
        raise BalanceError("rdp-cookie : missing cookie name.")
    return cookie


def parse_hash_type(state: BalanceState, args: list[str]) -> None:
    """Apply ``hash-type <method> [<function> [avalanche]]``.

    Without a function HAProxy 2.6 uses sdbm, and adds avalanche for ``consistent``.
    """
    method = args[0] if args else ""
    if method == "avalanche":
        raise BalanceError(
            "experimental feature 'hash-type avalanche' is not supported anymore, please use "
            "'hash-type map-based sdbm avalanche' instead."
        )
    if method not in ("consistent", "map-based"):
        raise BalanceError("'hash-type' only supports 'consistent' and 'map-based'.")
    function = args[1] if len(args) > 1 else ""
    modifier = args[2] if len(args) > 2 else ""
    if function and function not in _FUNCTIONS:
        raise BalanceError(
            "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions."
        )
    if modifier and modifier != "avalanche":
        raise BalanceError(
            "'hash-type' only supports 'avalanche' as a modifier for hash functions."
        )
    state.hash_method = HashMethod(method)
    state.hash_function = _FUNCTIONS.get(function, HashFunction.SDBM)
    if function:
        state.avalanche = modifier == "avalanche"
    else:
        state.avalanche = state.hash_method is HashMethod.CONSISTENT


def parse_hash_balance_factor(state: BalanceState, args: list[str]) -> None:
    """Apply ``hash-balance-factor <percent>``: 0 turns it off, otherwise above 100."""
    if not args:
        raise BalanceError("'hash-balance-factor' expects an integer argument.")
    value = _leading_int(args[0])
    if value != 0 and value <= 100:
        raise BalanceError("'hash-balance-factor' must be 0 or greater than 100.")
    state.hash_balance_factor = value or None


def _leading_int(text: str) -> int:
    """Read an integer as C ``atol`` does: leading digits only, 0 when there are none."""
    digits = ""
    for index, char in enumerate(text):
        if char.isdigit() or (index == 0 and char in "+-"):
            digits += char
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0
