"""lbguard.toml and [tool.lbguard]: discovery, selection, options, capacity, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_support import AuditFactory

from lbguard.checks import CheckContext, run_checks
from lbguard.checks.settings import (
    SettingsError,
    find_settings,
    line_of,
    load_settings,
    parse_settings,
)
from lbguard.model import Severity
from lbguard.parsers import load_config
from lbguard.predict import predict

SETTINGS = """\
fail-on = "error"
select = ["LB1", "balancing"]
ignore = ["LB207"]

[rules.LB201]
factor = 2.0

[rules]
LB103.min_share = 0.2

[capacity]
"be_web/web3" = 10
"""


def test_settings_values() -> None:
    settings = parse_settings("lbguard.toml", SETTINGS)
    ids = [rule.id for rule in settings.rules()]

    assert settings.fail_on is Severity.ERROR
    assert settings.options["LB201"] == {"factor": 2.0}
    assert settings.options["LB103"]["min_share"] == 0.2
    assert settings.capacity == {"be_web/web3": 10.0}
    assert "LB101" in ids
    assert "LB201" in ids
    assert "LB207" not in ids
    assert "LB301" not in ids


def test_settings_found_upward(tmp_path: Path) -> None:
    (tmp_path / "lbguard.toml").write_text('fail-on = "info"\n', encoding="utf-8")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)

    assert find_settings(nested) == tmp_path / "lbguard.toml"
    assert load_settings(start=nested).fail_on is Severity.INFO


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.lbguard]\nignore = ["LB301"]\n\n'
        "[tool.lbguard.rules.LB201]\nfactor = 3\n",
        encoding="utf-8",
    )
    settings = load_settings(start=tmp_path)

    assert settings.ignore == ("LB301",)
    assert settings.options["LB201"] == {"factor": 3.0}


def test_pyproject_without_table_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert (
        find_settings(tmp_path) is None or find_settings(tmp_path) != tmp_path / "pyproject.toml"
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('fail-on = "bad"\n', 1, "fail-on must be one of info, warning, error"),
        ('select = ["LB1"]\n\n[rules.LB201]\nfactor = "x"\n', 4, "expects a number"),
        ("[rules.LB201]\nfactor = 2\nfoo = 1\n", 3, "has no option 'foo'"),
        ("\n[rules.LB999]\nfoo = 1\n", 2, "unknown rule 'LB999'"),
        ("colour = 1\n", 1, "unknown setting 'colour'"),
        ('[capacity]\n"web3" = 2\n', 2, "must name POOL/SERVER"),
        ('[capacity]\n"be/web3" = -2\n', 2, "positive number"),
        ('[capacity]\n"be/web3" = inf\n', 2, "finite positive number"),
        ('\nignore = ["LB9"]\n', 2, "matches no rule"),
        ("\n\n[rules]\nLB201 = {factor = 0.5}\n", 4, "at least 1.0"),
        ("[rules.LB201]\nfactor = nan\n", 2, "expects a finite number"),
        ("[rules.LB202]\nfactor = inf\n", 2, "expects a finite number"),
        ("a = \n", 1, "invalid TOML"),
        ('[rules.LB202]\nfactor = "20"\n', 2, "expects a number, not the string '20'"),
        ("[rules.LB209]\nmin_nodes = 16.5\n", 2, "expects an integer, not 16.5"),
        (
            '[rules.LB202]\nfactor = 20.0\n\n[rules."balancing.weight-outlier"]\nfactor = 9.0\n',
            4,
            'configured twice, as [rules.LB202] and [rules."balancing.weight-outlier"]',
        ),
    ],
)
def test_settings_error_names_line(text: str, line: int, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings("lbguard.toml", text)
    error = caught.value
    assert error.location is not None
    assert error.location.line == line
    assert message in error.message
    assert error.hint


def test_line_of_dotted_and_nested() -> None:
    text = '[rules]\nLB103.min_share = 0.2\n\n[rules.LB201]\n"factor" = 2\n'
    assert line_of(text, ("rules", "LB103"), "min_share") == 2
    assert line_of(text, ("rules", "LB201"), "factor") == 5
    assert line_of(text, ("rules",), None) == 1


def test_capacity_for_unknown_server(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text("backend be_web\n    server web1 10.0.0.1:80\n", encoding="utf-8")
    settings = parse_settings("lbguard.toml", '[capacity]\n"be_web/web9" = 2\n')
    with pytest.raises(SettingsError) as caught:
        settings.check_capacity(load_config([config]))
    assert caught.value.location is not None
    assert caught.value.location.line == 2


CAPACITY_POOL = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s

frontend fe
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001 check weight 10
    server web2 127.0.0.1:9002 check weight 10
    server web3 127.0.0.1:9003 check weight 100
"""


def test_capacity_hint_makes_weight_fair(audit: AuditFactory) -> None:
    result = audit(CAPACITY_POOL)
    context = CheckContext.build(result.lb, result.prediction, None, capacity={"be_web/web3": 10})
    hinted = run_checks(context)

    assert result.of("LB202")
    assert [finding for finding in hinted if finding.rule_id in ("LB201", "LB202")] == []


def test_capacity_hint_flags_small_server(audit: AuditFactory) -> None:
    result = audit(CAPACITY_POOL.replace("weight 100", "weight 10"))
    context = CheckContext.build(
        result.lb, predict(result.lb, None), None, capacity={"be_web/web3": 10}
    )
    over = [finding for finding in run_checks(context) if finding.rule_id == "LB201"]

    assert {finding.subject for finding in over} == {"be_web/web1", "be_web/web2"}
    assert "capacity share (8.3 %)" in over[0].reason
