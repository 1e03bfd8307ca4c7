"""Handlers of the proxy keywords that declare servers and listening addresses."""

from __future__ import annotations

from lbguard.model import Bind
from lbguard.parsers.haproxy.lexer import ConfigLine
from lbguard.parsers.haproxy.proxy import ProxyState
from lbguard.parsers.haproxy.report import Reporter
from lbguard.parsers.haproxy.servers import (
    ServerError,
    ServerLine,
    apply_keywords,
    invalid_char,
    parse_address,
    template_names,
)


def default_server(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "backend"):
        return
    warnings: list[str] = []
    try:
        apply_keywords(proxy.default_server, list(line.words[1:]), "default-server", warnings)
    except ServerError as error:
        report.server_error(line, proxy, "default-server", str(error))
    for message in warnings:
        report.warning(line, message, "write the weight as a number from 0 to 256", code="weight")


def server(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    """Read ``server`` or ``server-template``; a server starts from ``default-server``."""
    if not report.needs(line, proxy, "backend") or proxy.is_defaults:
        if proxy.is_defaults:
            report.error(
                line,
                f"'{line.words[0]}' not allowed in 'defaults' section.",
                "use 'default-server' in defaults sections",
            )
        return

    template = line.words[0] == "server-template"
    needed = 4 if template else 3
    if len(line.words) < needed:
        expected = (
            "<prefix> <nb | range> <addr>[:<port>]" if template else ("<name> and <addr>[:<port>]")
        )
        report.error(
            line,
            f"'{line.words[0]}' expects {expected} as arguments.",
            "complete the server line",
        )
        return

    name = line.words[1]
    bad = invalid_char(name)
    if bad is not None:
        label = "prefix" if template else "name"
        report.server_error(
            line,
            proxy,
            name,
            f"character '{bad}' is not permitted in server {label} '{name}'.",
        )

    address_index = 3 if template else 2
    address_text = line.words[address_index]
    try:
        names = template_names(name, line.words[2]) if template else [name]
        if "${" in address_text:
            # Kept as written: the unquoted variable was reported with the line.
            address, port, port_text = address_text, None, ""
        else:
            address, port, port_text = parse_address(address_text)
    except ServerError as error:
        report.server_error(line, proxy, name, str(error))
        return

    settings = proxy.default_server.copy()
    warnings: list[str] = []
    try:
        apply_keywords(settings, list(line.words[address_index + 1 :]), names[0], warnings)
    except ServerError as error:
        report.server_error(line, proxy, name, str(error))
        return
    for message in warnings:
        report.warning(line, message, "write the weight as a number from 0 to 256", code="weight")

    proxy.server_lines.append(
        ServerLine(names, address, port, port_text, settings, line.location, line.text)
    )
    if template and address.startswith("_"):
        report.info(
            line,
            f"server-template creates {len(names)} slots that DNS SRV records fill at run "
            "time; slots without a record stay in maintenance, and SRV weights become "
            "(weight + 255) / 256",
            "give the resolved servers as input to predict with the real membership",
            "runtime-membership",
        )


def bind(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "frontend") or proxy.is_defaults:
        return
    if len(line.words) < 2:
        report.error(
            line,
            "'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.",
            "give the address to listen on",
        )
        return
    options = tuple(line.words[2:])
    for index, word in enumerate(options):
        following = options[index + 1] if index + 1 < len(options) else ""
        if word in ("alpn", "proto") and "h2" in following.split(","):
            proxy.accepts_http2 = True
    for address in line.words[1].split(","):
        bind = bind_address(report, line, address, options)
        if bind is not None:
            proxy.binds.append(bind)


def bind_address(
    report: Reporter, line: ConfigLine, text: str, options: tuple[str, ...]
) -> Bind | None:
    host, _, port_text = text.rpartition(":")
    if "@" in text and ":" not in text.split("@", 1)[1]:
        return Bind(text, None, line.location, options)
    if not _ or not port_text:
        report.error(
            line,
            f"'bind' : missing port specification in '{text}'",
            "write the address as host:port, *:port or :port",
        )
        return None
    low, _, high = port_text.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        if port_text.startswith("$"):
            message = f"'bind' : missing port specification in '{text}'"
        else:
            bad = next(c for c in port_text if not c.isdigit() and c != "-")
            message = (
                f"'bind' : invalid character '{bad}' in port number '{port_text}' in '{text}'"
            )
        report.error(line, message, "write the port as a number from 1 to 65535")
        return Bind(host, None, line.location, options)
    for value in (low, high or low):
        if not 0 < int(value) < 65536:
            report.error(
                line,
                f"'bind' : invalid port '{value}'",
                "write the port as a number from 1 to 65535",
            )
            return Bind(host, None, line.location, options)
    extra = (f"ports {port_text}",) if high else ()
    return Bind(host, int(low), line.location, options + extra)


def capture(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    """Record ``capture request header <name> len <length>``; the log shows these values
    between braces, in declaration order (HAProxy 2.6 manual, "capture request header")."""
    if not report.needs(line, proxy, "frontend") or proxy.is_defaults:
        return
    if line.word(1) != "request" or line.word(2) != "header":
        return
    name = line.word(3)
    if not name or line.word(4) != "len" or not line.word(5).isdigit():
        report.error(
            line,
            "'capture request' expects 'header' <header_name> 'len' <len>.",
            "write for example 'capture request header X-Forwarded-For len 64'",
        )
        return
    proxy.captured_request_headers.append(name.lower())
