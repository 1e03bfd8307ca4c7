"""docs/rules.md and ``lbguard explain`` come from the rules' metadata."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lbguard.checks import RULES
from lbguard.cli import explain
from lbguard.cli.main import ExitCode
from lbguard.report.rules_doc import explain_text, rules_markdown

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "rules.md"


def run_explain(args: list[str]) -> ExitCode:
    parser = argparse.ArgumentParser(prog="lbguard")
    explain.register(parser.add_subparsers())
    parsed = parser.parse_args(["explain", *args])
    result: ExitCode = parsed.handler(parsed)
    return result


def test_rules_page_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == rules_markdown(RULES), (
        "docs/rules.md is stale: run lbguard explain --format markdown -o docs/rules.md"
    )


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_rules_page_documents_rule(rule: object) -> None:
    from lbguard.checks import Rule

    assert isinstance(rule, Rule)
    page = rules_markdown(RULES)
    section = page.split(f"### {rule.id}\n", 1)[1].split("\n### ", 1)[0]
    assert rule.rationale in section
    assert rule.fix_hint in section
    for example in rule.examples:
        assert example.bad in section
        assert example.good in section
    for option in rule.options:
        assert f"`{option.name}`" in section


def test_explain_one_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_explain(["balancing.server-over-fair-share"])
    out, _ = capsys.readouterr()

    assert code == ExitCode.OK
    assert out.startswith("LB201 balancing.server-over-fair-share")
    assert "factor = 1.5" in out
    assert "HAProxy, triggers the rule:" in out
    assert "NGINX, fixed:" in out


def test_explain_text_names_options() -> None:
    text = explain_text(next(rule for rule in RULES if rule.id == "LB103"))
    assert "min_share = 0.1" in text
    assert "[rules.LB103]" in text


def test_explain_unknown_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_explain(["LB999"])
    _, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert "unknown rule 'LB999'" in err


def test_explain_writes_rules_page(tmp_path: Path) -> None:
    output = tmp_path / "rules.md"
    assert run_explain(["--format", "markdown", "-o", str(output)]) == ExitCode.OK
    assert output.read_text(encoding="utf-8") == rules_markdown(RULES)


def _readme_ids(label: str) -> set[str]:
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(label + r" \(([^)]*)\)", readme)
    assert match is not None, label
    return set(re.findall(r"LB\d{3}", match.group(1)))


def test_readme_names_rules_that_need_traffic() -> None:
    needs = {rule.id for rule in RULES if rule.needs == "traffic"}
    assert _readme_ids("rules that need a traffic profile") == needs


def test_readme_names_rules_a_profile_sharpens() -> None:
    sharpens = {rule.id for rule in RULES if rule.needs == "sharpens"}
    assert _readme_ids("rules that a profile sharpens") == sharpens


def test_rules_page_says_when_lb203_is_info() -> None:
    section = DOCS.read_text(encoding="utf-8").split("### LB203", 1)[1].split("### ", 1)[0]
    assert "has severity info" in section
    assert "no backup weighted like the active servers" in section


def test_explain_help_states_unknown_rule_exit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_explain(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "exit with 2 before it prints anything" in help_text


def test_explain_unknown_rule_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_explain(["LB201", "LB999"])
    out, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert out == ""
    assert "unknown rule 'LB999'" in err
