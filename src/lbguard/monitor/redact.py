"""Secrets in configuration text, replaced before a model is shown or stored.

Load-balancer configurations hold credentials: HAProxy ``stats auth user:password``,
``userlist`` passwords, Authorization headers set for backends or health checks, and
passwords inside URLs. The diff prints model text and history stores the model, so both
work on a copy in which every such secret reads ``<redacted>``. Prediction and audits run
on the model as parsed.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from typing import Any, TypeVar

from lbguard.model import LoadBalancer
from lbguard.monitor.codec import PLAIN_TYPES, field_names

REDACTED = "<redacted>"

_QUOTED_OR_WORD = r"(\"[^\"]*\"|'[^']*'|\S+)"

SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    # HAProxy 2.6 `stats auth <user>:<passwd>` (frontend, listen, backend, defaults).
    re.compile(r"(\bstats\s+auth\s+[^\s:]*:)(\S+)"),
    # HAProxy 2.6 userlist `user <name> password <hash>` and `insecure-password <text>`.
    re.compile(r"(\b(?:insecure-)?password\s+)" + _QUOTED_OR_WORD),
    # Credentials sent upstream: nginx `proxy_set_header Authorization ...`, HAProxy
    # `http-request set-header Authorization ...` and `http-check send hdr Authorization`.
    re.compile(r"(\b(?:proxy-)?authorization\s+)" + _QUOTED_OR_WORD, re.IGNORECASE),
    # The password part of `scheme://user:password@host` URLs.
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)([^\s/@]+)(?=@)", re.IGNORECASE),
)
"""Patterns whose second group is a secret; the first group is kept."""

_ANY_SECRET = re.compile(r"auth|password|://", re.IGNORECASE)
"""Cheap test that a string may hold a secret at all."""

T = TypeVar("T")


def redact_text(text: str) -> str:
    """Return ``text`` with every secret replaced by ``<redacted>``."""
    if not _ANY_SECRET.search(text):
        return text
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


_REDACTED: weakref.WeakValueDictionary[int, LoadBalancer] = weakref.WeakValueDictionary()
"""Models this module returned, by id, so that redacting one again costs nothing. The
references are weak: an entry goes with its model, so a reused id cannot match."""


def redact_model(lb: LoadBalancer) -> LoadBalancer:
    """Return ``lb`` with every secret in its strings redacted; ``lb`` itself when none."""
    if _REDACTED.get(id(lb)) is lb:
        return lb
    redacted: LoadBalancer = _redact(lb)
    _REDACTED[id(redacted)] = redacted
    return redacted


def redact_json(value: T) -> T:
    """Redact every string inside JSON-like data (dicts, lists, strings)."""
    result: Any = value
    if isinstance(value, str):
        result = redact_text(value)
    elif isinstance(value, list):
        result = [redact_json(item) for item in value]
    elif isinstance(value, dict):
        result = {key: redact_json(item) for key, item in value.items()}
    return result  # type: ignore[no-any-return]


def _redact(value: Any) -> Any:
    """Redact a model value, returning the same object when nothing in it changed, so that
    the walk allocates nothing for a configuration without secrets."""
    kind = type(value)
    if kind is str:
        return redact_text(value)
    if kind in PLAIN_TYPES:
        return value
    if kind is tuple:
        items = [_redact(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return tuple(items)
    names = field_names(kind)
    if names is None:
        return value
    changed = {}
    for name in names:
        old = getattr(value, name)
        kind = type(old)
        if kind in PLAIN_TYPES and (kind is not str or not _ANY_SECRET.search(old)):
            continue
        new = _redact(old)
        if new is not old:
            changed[name] = new
    return dataclasses.replace(value, **changed) if changed else value
