"""``server``, ``default-server`` and ``server-template`` lines of HAProxy 2.6.

The rules follow ``parse_server()`` and the ``srv_parse_*`` keyword parsers of HAProxy 2.6.0
``src/server.c``: a server starts from the proxy's ``default-server`` settings, then applies
its own keywords; ``server-template <prefix> <num|low-high> <fqdn>[:port]`` creates servers
``<prefix><low>`` to ``<prefix><high>`` (``<num>`` means 1 to num) in that order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lbguard.model import AdminState, Location, Server
from lbguard.parsers.haproxy.keywords import MAX_WEIGHT, SERVER_KEYWORDS

_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]*")
"""Characters HAProxy 2.6 ``invalid_char()`` accepts in proxy, server and ACL names."""


class ServerError(ValueError):
    """A server line HAProxy rejects; the message uses HAProxy's words."""


@dataclass
class ServerSettings:
    """Settings a server takes from ``default-server`` and then from its own keywords."""

    weight: int = 1
    backup: bool = False
    disabled: bool = False
    check: bool = False
    maxconn: int | None = None
    maxqueue: int | None = None
    server_id: int | None = None
    options: dict[str, str] = field(default_factory=dict)
    """Other keywords to their value as written (empty for flags)."""

    def copy(self) -> ServerSettings:
        """Return the settings for a new server: its own options and no explicit id."""
        # Copying the instance dictionary is about four times faster than
        # dataclasses.replace, which counts with 50,000 servers.
        clone = object.__new__(ServerSettings)
        clone.__dict__.update(self.__dict__)
        clone.options = dict(self.options)
        clone.server_id = None
        return clone


@dataclass
class ServerLine:
    """A parsed ``server`` or ``server-template`` line, before ids are assigned."""

    names: list[str]
    address: str
    port: int | None
    port_text: str
    settings: ServerSettings
    location: Location
    text: str
    warnings: list[str] = field(default_factory=list)


def invalid_char(name: str) -> str | None:
    """Return the first character HAProxy does not permit in a name, or None."""
    match = _NAME_CHARS.match(name)
    end = match.end() if match else 0
    return name[end] if end < len(name) else None


def apply_keywords(
    settings: ServerSettings, words: list[str], server_name: str, warnings: list[str]
) -> None:
    """Apply server keywords ``words`` to ``settings``; raise `ServerError` on bad input."""
    index = 0
    while index < len(words):
        keyword = words[index]
        if keyword not in SERVER_KEYWORDS:
            raise ServerError(f"unknown keyword '{keyword}'.")
        count = SERVER_KEYWORDS[keyword]
        if count == -1:
            end = _source_end(words, index)
            settings.options[keyword] = " ".join(words[index + 1 : end])
            index = end
            continue
        values = words[index + 1 : index + 1 + count]
        if len(values) < count:
            raise ServerError(f"'{keyword}' expects {count} argument(s).")
        _apply_one(settings, keyword, values[0] if values else "", server_name, warnings)
        index += 1 + count


def _source_end(words: list[str], index: int) -> int:
    """Return the index after ``source <addr> [usesrc <addr>] [interface <name>]``."""
    end = index + 2
    while end < len(words) and words[end] in ("usesrc", "interface"):
        end += 2
    return min(end, len(words))


def _apply_one(
    settings: ServerSettings, keyword: str, value: str, server_name: str, warnings: list[str]
) -> None:
    if keyword == "weight":
        weight = leading_int(value)
        if weight < 0 or weight > MAX_WEIGHT:
            raise ServerError(
                f"weight of server {server_name} is not within 0 and {MAX_WEIGHT} ({weight})."
            )
        if not value.isdigit():
            warnings.append(
                f"weight '{value}' of server {server_name} is not a plain number; "
                f"HAProxy 2.6 reads it as {weight}"
            )
        settings.weight = weight
    elif keyword in ("backup", "no-backup"):
        settings.backup = keyword == "backup"
    elif keyword in ("disabled", "enabled"):
        settings.disabled = keyword == "disabled"
    elif keyword in ("check", "no-check"):
        settings.check = keyword == "check"
    elif keyword in ("maxconn", "maxqueue"):
        setattr(settings, keyword, leading_int(value))
    elif keyword == "id":
        server_id = leading_int(value)
        if server_id <= 0:
            raise ServerError("'id' : custom id has to be > 0")
        settings.server_id = server_id
    else:
        settings.options[keyword] = value


_LEADING_INT = re.compile(r"[+-]?\d+")


def leading_int(text: str) -> int:
    """Read an integer as C ``atol`` does: leading digits only, 0 when there are none."""
    if text.isascii() and text.isdigit():
        return int(text)
    match = _LEADING_INT.match(text.strip())
    return int(match.group()) if match else 0


def parse_address(text: str) -> tuple[str, int | None, str]:
    """Split ``addr[:port]`` into address, absolute port and the port as written.

    A relative port (``:+1000``, ``:-1000``) or no port gives None: HAProxy then derives the
    port from the client's destination port. Raise `ServerError` for a non-numeric port.
    """
    address = text
    if "@" in address:
        for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
            if address.startswith(prefix):
                address = address[len(prefix) :]
    if address.startswith(("unix@", "abns@", "/", "sockpair@", "fd@")):
        return address, None, ""
    port_text = ""
    colons = address.count(":")
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        address = host
        port_text = rest[1:] if rest.startswith(":") else ""
    elif colons == 1:
        address, port_text = address.split(":", 1)
    elif colons > 1:
        head, _, tail = address.rpartition(":")
        if tail.isdigit() or tail.startswith(("+", "-")) or tail == "":
            address, port_text = head, tail
    if not port_text or port_text.startswith(("+", "-")):
        return address, None, port_text
    if not port_text.isdigit():
        bad = next(char for char in port_text if not char.isdigit())
        raise ServerError(f"invalid character '{bad}' in port number '{port_text}' in '{text}'")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ServerError(f"invalid port '{port_text}' in '{text}'")
    return address, port, port_text


def template_names(prefix: str, spec: str) -> list[str]:
    """Return the server names ``server-template`` creates from ``<num>`` or ``<low>-<high>``."""
    if "-" in spec:
        low_text, high_text = spec.split("-", 1)
        low, high = leading_int(low_text), leading_int(high_text)
    else:
        low, high = 1, leading_int(spec)
    if low < 0 or high < low or high == 0:
        raise ServerError(f"Wrong server-template number or range arg '{spec}'.")
    return [f"{prefix}{number}" for number in range(low, high + 1)]


def assign_ids(lines: list[ServerLine]) -> list[int]:
    """Number the servers as HAProxy 2.6 ``check_config_validity()`` does.

    Explicit ``id`` values are reserved first. Walking the servers in order with a counter
    that starts at 1 and grows by one per server, a server without an id takes the first
    free id at or above the counter.
    """
    used = {line.settings.server_id for line in lines if line.settings.server_id is not None}
    ids: list[int] = []
    next_id = 1
    for line in lines:
        for position, _name in enumerate(line.names):
            explicit = line.settings.server_id if position == 0 else None
            if explicit is not None:
                ids.append(explicit)
            else:
                while next_id in used:
                    next_id += 1
                used.add(next_id)
                ids.append(next_id)
            next_id += 1
    return ids


def build_servers(lines: list[ServerLine]) -> list[Server]:
    """Turn parsed lines into model servers with HAProxy's numeric ids."""
    ids = iter(assign_ids(lines))
    servers = []
    for line in lines:
        settings = line.settings
        options = tuple(f"{key} {value}".rstrip() for key, value in settings.options.items())
        if line.port is None and line.port_text.startswith(("+", "-")):
            options += (f"port-offset {line.port_text}",)
        for name in line.names:
            servers.append(
                Server(
                    name=name,
                    address=line.address,
                    port=line.port,
                    location=line.location,
                    weight=settings.weight,
                    backup=settings.backup,
                    state=AdminState.DISABLED if settings.disabled else AdminState.ENABLED,
                    maxconn=settings.maxconn,
                    maxqueue=settings.maxqueue,
                    check=settings.check,
                    id=next(ids),
                    text=line.text,
                    options=options,
                )
            )
    return servers
