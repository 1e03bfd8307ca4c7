"""``lbguard check`` end to end: the real parser and predictor, exit codes, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import lbguard
from lbguard.cli.main import ExitCode, main

CASES = Path(__file__).parent.parent / "data" / "cases"
SCHEMA = Path(lbguard.__file__).parent / "report" / "schema" / "check-v1.json"


def case_files(name: str, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Return the case's config, its traffic section written as a profile, and case.yaml."""
    case = yaml.safe_load((CASES / name / "case.yaml").read_text(encoding="utf-8"))
    traffic = tmp_path / f"{name}-traffic.yaml"
    traffic.write_text(yaml.safe_dump(case["traffic"]), encoding="utf-8")
    return CASES / name / "haproxy.cfg", traffic, case


def run_json(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    output = tmp_path / "report.json"
    code = main(["check", *args, "--format", "json", "-o", str(output)])
    return code, json.loads(output.read_text(encoding="utf-8"))


def server_shares(report: dict[str, Any]) -> dict[str, float]:
    return {
        f"{pool['pool']}/{server['server']}": server["share_of_total"]
        for pool in report["pools"]
        for server in pool["servers"]
    }


def finding_keys(report: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {
        (finding["rule_id"], finding["locations"][0]["file"], finding["locations"][0]["line"])
        for finding in report["findings"]
    }


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@pytest.mark.parametrize("name", ["haproxy-catch-all-first", "haproxy-weight-typo"])
def test_case_shares_match_expected(name: str, tmp_path: Path) -> None:
    config, traffic, case = case_files(name, tmp_path)
    code, report = run_json([str(config), "--traffic", str(traffic)], tmp_path)

    assert code == ExitCode.FINDINGS
    shares = server_shares(report)
    tolerance = case["expect"]["tolerance"]
    for key, expected in case["expect"]["shares"].items():
        assert shares[key] == pytest.approx(expected, abs=tolerance), key


def test_catch_all_case_finding(tmp_path: Path) -> None:
    config, traffic, _ = case_files("haproxy-catch-all-first", tmp_path)
    _, report = run_json([str(config), "--traffic", str(traffic), "--select", "routing"], tmp_path)

    assert finding_keys(report) == {("LB101", str(config), 12)}
    [finding] = report["findings"]
    lines = [location["line"] for location in finding["locations"]]
    assert lines[:2] == [12, 11]
    assert finding["locations"][1]["text"].strip() == "use_backend be_web if is_any"
    assert "be_api receives nothing" in finding["reason"]


def test_weight_typo_case_finding(tmp_path: Path) -> None:
    config, traffic, _ = case_files("haproxy-weight-typo", tmp_path)
    _, report = run_json(
        [str(config), "--traffic", str(traffic), "--select", "balancing"], tmp_path
    )

    assert finding_keys(report) == {("LB202", str(config), 15)}
    reason = report["findings"][0]["reason"]
    assert "web3's weight (100) is 10x the other servers' (10)" in reason
    assert "83.3 % of be_web" in reason
    assert "2.5x an equal share" in reason


@pytest.mark.parametrize("name", ["haproxy-catch-all-first", "haproxy-weight-typo"])
def test_json_report_matches_schema(
    name: str, tmp_path: Path, validator: jsonschema.protocols.Validator
) -> None:
    config, traffic, _ = case_files(name, tmp_path)
    _, report = run_json([str(config), "--traffic", str(traffic)], tmp_path)
    errors = [error.message for error in validator.iter_errors(report)]
    assert errors == []
    assert report["schema_version"] == 1


def test_json_report_without_traffic_matches_schema(
    tmp_path: Path, validator: jsonschema.protocols.Validator
) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    _, report = run_json([str(config)], tmp_path)
    assert [error.message for error in validator.iter_errors(report)] == []
    assert report["traffic"]["route_level_known"] is False
    assert report["pools"][0]["share_of_total"] is None


def test_schema_rejects_percent_share(validator: jsonschema.protocols.Validator) -> None:
    share_schema = {"$ref": "#/$defs/share", "$defs": validator.schema["$defs"]}
    share_validator = type(validator)(share_schema)
    assert share_validator.is_valid(0.833)
    assert not share_validator.is_valid(83.3)


def test_down_server_changes_shares(tmp_path: Path) -> None:
    config, traffic, _ = case_files("haproxy-weight-typo", tmp_path)
    code, report = run_json(
        [str(config), "--traffic", str(traffic), "--down", "be_web/web3", "--select", "LB202"],
        tmp_path,
    )
    assert code == ExitCode.FINDINGS
    assert finding_keys(report) == {("LB202", str(config), 15)}
    assert server_shares(report)["be_web/web1"] == pytest.approx(0.5)
    assert server_shares(report)["be_web/web3"] == 0.0


def test_fail_on_error_ignores_warnings(tmp_path: Path) -> None:
    config, traffic, _ = case_files("haproxy-weight-typo", tmp_path)
    code, report = run_json(
        [str(config), "--traffic", str(traffic), "--fail-on", "error", "--select", "LB202"],
        tmp_path,
    )
    assert code == ExitCode.OK
    assert report["summary"]["findings"] == 1
    assert report["summary"]["failing"] == 0


def test_fair_share_factor_option(tmp_path: Path) -> None:
    config, traffic, _ = case_files("haproxy-weight-typo", tmp_path)
    code, report = run_json(
        [str(config), "--traffic", str(traffic), "--fair-share-factor", "3", "--select", "LB201"],
        tmp_path,
    )
    assert code == ExitCode.OK
    options = {rule["id"]: rule["options"] for rule in report["rules"]}
    assert options["LB201"] == {"factor": 3.0}


def test_text_report_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, traffic, _ = case_files("haproxy-weight-typo", tmp_path)
    code = main(["check", str(config), "--traffic", str(traffic), "--select", "LB202"])
    out, err = capsys.readouterr()

    assert code == ExitCode.FINDINGS
    assert "LB202 balancing.weight-outlier" in out
    assert "83.3 %" in out
    assert "server web3 127.0.0.1:9003 check weight 100" in out
    assert "be_web/web3" in out
    assert err.startswith("lbguard: 1 finding (0 errors, 1 warning, 0 info)")


def test_text_report_escapes_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "frontend fe\n    mode http\n    bind 127.0.0.1:8080\n    default_backend be\n\n"
        "backend be\n    mode http\n"
        "    server a 127.0.0.1:9001 weight 10\n"
        "    server b 127.0.0.1:9002 weight 10\n"
        "    server c 127.0.0.1:9003 weight 100 # \x1b[2J\x1b]0;owned\x07\n",
        encoding="utf-8",
    )
    main(["check", str(config)])
    out, _ = capsys.readouterr()
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\\x1b[2J" in out


def test_console_script_runs(tmp_path: Path) -> None:
    script = shutil.which("lbguard", path=str(Path(sys.executable).parent))
    assert script is not None
    config, traffic, _ = case_files("haproxy-catch-all-first", tmp_path)
    completed = subprocess.run(
        [script, "check", str(config), "--traffic", str(traffic), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert completed.returncode == ExitCode.FINDINGS
    assert json.loads(completed.stdout)["findings"][0]["rule_id"] == "LB101"
    assert "Traceback" not in completed.stderr


# Bad input: exit code 2 with a one-line error naming the input.


def expect_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert out == ""
    assert err.startswith("lbguard: error: ")
    assert "Traceback" not in err
    return err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.cfg"
    err = expect_error([str(missing)], capsys)
    assert str(missing) in err


def test_broken_traffic_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text("requests: 10\npaths: [/a, /b\n", encoding="utf-8")
    err = expect_error([str(config), "--traffic", str(traffic)], capsys)
    assert f"{traffic}:" in err


def test_unknown_product(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    with pytest.raises(SystemExit) as raised:
        main(["check", str(config), "--product", "squid"])
    assert raised.value.code == ExitCode.ERROR
    assert "invalid choice: 'squid'" in capsys.readouterr().err


def test_unknown_down_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    err = expect_error([str(config), "--down", "be_web/web9"], capsys)
    assert "be_web/web9" in err
    assert "hint:" in err


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    output = tmp_path / "missing-dir" / "report.json"
    code = main(["check", str(config), "-o", str(output)])
    _, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert f"cannot write the report to {output}" in err


def test_config_with_nothing_to_analyse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text("global\n    maxconn 100\n", encoding="utf-8")
    err = expect_error([str(config), "--product", "haproxy"], capsys)
    assert "nothing to analyse" in err


INCIDENT = Path(__file__).parent.parent.parent / "examples" / "incident"


def test_incident_bad_config_names_rule(tmp_path: Path) -> None:
    config = INCIDENT / "haproxy-bad.cfg"
    code, report = run_json([str(config), "--traffic", str(INCIDENT / "traffic.yaml")], tmp_path)
    assert code == ExitCode.FINDINGS

    [finding] = [item for item in report["findings"] if item["rule_id"] == "LB103"]
    assert finding["severity"] == "error"
    assert finding["locations"][0]["text"].split() == [
        "use_backend",
        "be_search",
        "if",
        "path_search",
    ]
    lines = [location["text"].split()[:2] for location in finding["locations"]]
    assert ["server", "search1"] in lines
    assert ["server", "search2"] in lines


def test_incident_fixed_config_is_clean(tmp_path: Path) -> None:
    config = INCIDENT / "haproxy-fixed.cfg"
    code, report = run_json([str(config), "--traffic", str(INCIDENT / "traffic.yaml")], tmp_path)
    assert code == ExitCode.OK
    assert report["findings"] == []


def test_output_file_replaced_whole(tmp_path: Path) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    output = tmp_path / "out" / "report.txt"
    output.parent.mkdir()
    output.write_text("old report\n", encoding="utf-8")

    code = main(["check", str(config), "-o", str(output)])
    assert code == ExitCode.FINDINGS
    assert "LB202" in output.read_text(encoding="utf-8")
    assert [path.name for path in output.parent.iterdir()] == ["report.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask


def test_text_header_states_missing_profile_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, _ = case_files("haproxy-weight-typo", tmp_path)
    main(["check", str(config)])
    header = capsys.readouterr().out.split("\n\n")[0]
    assert header.count("no traffic profile") == 1
    assert header.count("unknown") == 1
