"""Configuration rules (LB0xx): problems found while reading the configuration."""

from __future__ import annotations

from collections.abc import Iterator

from lbguard.checks.interface import CheckContext, Family, Finding, Options, Rule
from lbguard.model import Severity


def check_parse_errors(context: CheckContext, options: Options) -> Iterator[Finding]:
    for diagnostic in context.lb.diagnostics:
        if diagnostic.severity is Severity.INFO:
            continue
        reason = diagnostic.message
        if diagnostic.hint:
            reason += f" ({diagnostic.hint})"
        yield PARSE_ERROR.finding(
            reason,
            [diagnostic.location],
            subject=diagnostic.code,
            severity=diagnostic.severity,
        )


PARSE_ERROR = Rule(
    id="LB001",
    name="config.parse-error",
    family=Family.CONFIG,
    severity=Severity.ERROR,
    summary="The configuration has an error or warning that the product would report.",
    rationale="The product rejects or reinterprets these lines, so the traffic it sends "
    "may differ from what the configuration reads like. The rest of the configuration is "
    "still analysed.",
    fix_hint="Fix the line as the message says, then check it with the product itself "
    "(haproxy -c -f FILE, nginx -t).",
    check=check_parse_errors,
    bad_example="backend be_web\n    server web1 10.0.0.1:80 weight 300",
    good_example="backend be_web\n    server web1 10.0.0.1:80 weight 256",
)
