"""Configuration rules (LB0xx): problems found while reading the configuration, and the
inline suppressions written in it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Options, Rule
from lbguard.checks.suppression import Suppression, read_suppressions
from lbguard.model import Product, Severity

DEDICATED_CODES = frozenset({"backup-with-hash"})
"""Parser diagnostic codes that a dedicated rule reports with more detail (LB214)."""


def check_parse_errors(context: CheckContext, options: Options) -> Iterator[Finding]:
    for diagnostic in context.lb.diagnostics:
        if diagnostic.severity is Severity.INFO or diagnostic.code in DEDICATED_CODES:
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
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80 weight 300",
            good="backend be_web\n    server web1 10.0.0.1:80 weight 256",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80 weight=0;\n}",
            good="upstream web {\n    server 10.0.0.1:80 weight=1;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB002 config.unused-suppression


def check_unused_suppressions(context: CheckContext, options: Options) -> Iterator[Finding]:
    """Yield nothing: whether a suppression is used is known only after every other rule
    ran, so `lbguard.checks.runner` reports LB002 through `unused_suppression_findings`."""
    return iter(())


def unused_suppression_findings(
    suppressions: Iterable[Suppression], used: Iterable[Suppression], ran: set[str]
) -> Iterator[Finding]:
    """Report valid suppressions that silenced nothing, when every rule they name ran.

    ``ran`` contains the ids and names of the rules that ran.
    """
    matched = set(used)
    for suppression in suppressions:
        if suppression.problem or suppression in matched:
            continue
        if not all(rule in ran or rule.upper() in ran for rule in suppression.rules):
            continue
        reason = (
            f"The suppression of {', '.join(suppression.rules)} at line "
            f"{suppression.location.line} matches no finding on line {suppression.target.line}: "
            "the problem it silenced is gone, or the comment moved away from its line."
        )
        yield UNUSED_SUPPRESSION.finding(
            reason, [suppression.location], subject=",".join(suppression.rules)
        )


UNUSED_SUPPRESSION = Rule(
    id="LB002",
    name="config.unused-suppression",
    family=Family.CONFIG,
    severity=Severity.WARNING,
    summary="An `lbguard: ignore` comment silences no finding.",
    rationale="A suppression that no longer matches hides nothing today but will silently "
    "hide a new problem on that line later, and it tells readers about a risk that is gone.",
    fix_hint="Delete the comment, or move it next to the line whose finding it should silence.",
    check=check_unused_suppressions,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    # lbguard: ignore LB202 reason: web3 is the big box\n"
            "    server web3 10.0.0.3:80 weight 10",
            good="backend be_web\n    server web3 10.0.0.3:80 weight 10",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    # lbguard: ignore LB202 reason: the big box\n"
            "    server 10.0.0.3:80 weight=10;\n}",
            good="upstream web {\n    server 10.0.0.3:80 weight=10;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB003 config.invalid-suppression


def check_invalid_suppressions(context: CheckContext, options: Options) -> Iterator[Finding]:
    from lbguard.checks.registry import find_rule

    for suppression in read_suppressions(context.lb.files, context.lb.product):
        problem = suppression.problem
        if not problem:
            unknown = [rule for rule in suppression.rules if find_rule(rule) is None]
            if unknown:
                problem = f"unknown rule {', '.join(unknown)}"
        if not problem:
            continue
        reason = (
            f"The comment `{suppression.text}` is not a valid suppression ({problem}), so it "
            "silences nothing. Write `# lbguard: ignore RULE reason: WHY`."
        )
        yield INVALID_SUPPRESSION.finding(reason, [suppression.location], subject=problem)


INVALID_SUPPRESSION = Rule(
    id="LB003",
    name="config.invalid-suppression",
    family=Family.CONFIG,
    severity=Severity.ERROR,
    summary="An `lbguard:` comment has no reason, names no known rule, or is not `ignore`.",
    rationale="A suppression must say why the finding does not apply, so that the next "
    "reader can judge whether it still holds. Without a reason it silences nothing.",
    fix_hint="Write `# lbguard: ignore LB201 reason: <why the finding does not apply>`.",
    check=check_invalid_suppressions,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web3 10.0.0.3:80 weight 100 # lbguard: ignore LB202",
            good="backend be_web\n    server web3 10.0.0.3:80 weight 100 "
            "# lbguard: ignore LB202 reason: 10x the CPUs",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.3:80 weight=100; # lbguard: ignore LB202\n}",
            good="upstream web {\n    server 10.0.0.3:80 weight=100; "
            "# lbguard: ignore LB202 reason: 10x the CPUs\n}",
        ),
    ),
)
