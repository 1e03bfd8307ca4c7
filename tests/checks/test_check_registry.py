"""The rule registry, rule metadata and option overrides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lbguard.checks import (
    RULES,
    CheckContext,
    CheckOptionError,
    Family,
    Finding,
    Option,
    Rule,
    find_rule,
    resolve_options,
)
from lbguard.checks.registry import index_rules
from lbguard.checks.runner import sort_key
from lbguard.model import Location, Severity


def _no_findings(context: CheckContext, options: object) -> Iterator[Finding]:
    return iter(())


def make_rule(rule_id: str = "LB501", name: str = "hygiene.sample") -> Rule:
    return Rule(
        id=rule_id,
        name=name,
        family=Family.HYGIENE,
        severity=Severity.INFO,
        summary="s",
        rationale="r",
        fix_hint="f",
        check=_no_findings,
    )


def test_registry_ids_are_unique() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))


def test_registry_rejects_duplicate_id() -> None:
    with pytest.raises(ValueError, match="LB501"):
        index_rules([make_rule(), make_rule(name="hygiene.other")])


def test_registry_rejects_duplicate_name() -> None:
    with pytest.raises(ValueError, match=r"hygiene\.sample"):
        index_rules([make_rule(), make_rule(rule_id="LB502")])


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_rule_metadata_complete(rule: Rule) -> None:
    assert rule.summary.endswith(".")
    assert rule.rationale
    assert rule.fix_hint
    assert rule.examples
    for example in rule.examples:
        assert example.bad, f"{rule.id} {example.product}"
        assert example.good, f"{rule.id} {example.product}"
        assert example.bad != example.good, f"{rule.id} {example.product}"
    assert rule.name.startswith(f"{rule.family}.")


def test_rule_id_must_match_family() -> None:
    with pytest.raises(ValueError, match="LB5xx"):
        make_rule(rule_id="LB101")


def test_rule_name_must_carry_family() -> None:
    with pytest.raises(ValueError, match="hygiene"):
        make_rule(name="routing.sample")


def test_find_rule_by_id_and_name() -> None:
    assert find_rule("LB201") is find_rule("balancing.server-over-fair-share")
    assert find_rule("lb201") is find_rule("LB201")
    assert find_rule("LB999") is None


def test_option_parse_converts_and_bounds() -> None:
    option = Option("factor", 1.5, "h", minimum=1.0)
    assert option.parse("2") == 2.0
    with pytest.raises(ValueError, match=r"at least 1\.0"):
        option.parse(0.5)
    with pytest.raises(ValueError, match="expects a number"):
        option.parse("many")
    with pytest.raises(ValueError, match="expects a number"):
        option.parse(True)


def test_integer_option_rejects_fraction() -> None:
    option = Option("count", 3, "h")
    assert option.parse("4") == 4
    with pytest.raises(ValueError, match="integer"):
        option.parse("4.5")


def test_resolve_options_applies_override() -> None:
    resolved = resolve_options({"balancing.server-over-fair-share": {"factor": 2}})
    assert resolved["LB201"]["factor"] == 2.0
    assert resolved["LB401"]["min_share"] == 0.20


def test_resolve_options_unknown_rule() -> None:
    with pytest.raises(CheckOptionError, match="unknown rule 'LB999'"):
        resolve_options({"LB999": {}})


def test_resolve_options_unknown_option() -> None:
    with pytest.raises(CheckOptionError, match="no option 'fator'") as raised:
        resolve_options({"LB201": {"fator": 2}})
    assert "factor" in raised.value.hint


def test_findings_sort_by_severity_then_line() -> None:
    warning = Finding("LB201", Severity.WARNING, "w", (Location("a.cfg", 3),))
    error = Finding("LB001", Severity.ERROR, "e", (Location("a.cfg", 9),))
    early = Finding("LB101", Severity.WARNING, "w", (Location("a.cfg", 1),))
    assert sorted([warning, error, early], key=sort_key) == [error, early, warning]
