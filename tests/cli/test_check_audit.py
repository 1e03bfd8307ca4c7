"""``lbguard check`` as an audit: the incident, settings, nginx options, logs, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lbguard.cli.main import ExitCode, main

ROOT = Path(__file__).resolve().parent.parent.parent
INCIDENT = ROOT / "examples" / "incident"
TRAFFIC = str(INCIDENT / "traffic.yaml")


def check_json(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    output = tmp_path / "report.json"
    code = main(["check", *args, "--format", "json", "-o", str(output)])
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return code, report


def of_rule(report: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [finding for finding in report["findings"] if finding["rule_id"] == rule_id]


def lines(finding: dict[str, Any]) -> list[int]:
    return [location["line"] for location in finding["locations"]]


# The incident: the audit that found "no issues" must name the rule and the servers.


def test_incident_names_misrouting_rule(tmp_path: Path) -> None:
    code, report = check_json([str(INCIDENT / "haproxy-bad.cfg"), "--traffic", TRAFFIC], tmp_path)
    [finding] = of_rule(report, "LB103")

    assert code == ExitCode.FINDINGS
    assert finding["locations"][0]["file"].endswith("haproxy-bad.cfg")
    assert lines(finding)[0] == 40
    assert 35 in lines(finding)
    assert finding["severity"] == "error"
    assert "search1 and search2" in finding["reason"]
    assert "47.9 % of all requests" in finding["reason"]


def test_incident_names_idle_api_rule(tmp_path: Path) -> None:
    _, report = check_json([str(INCIDENT / "haproxy-bad.cfg"), "--traffic", TRAFFIC], tmp_path)
    [finding] = of_rule(report, "LB101")
    assert lines(finding)[:2] == [43, 40]
    assert "be_api receives nothing" in finding["reason"]


@pytest.mark.parametrize("name", ["haproxy-fixed.cfg", "haproxy-good.cfg"])
def test_incident_fixed_has_no_routing_finding(name: str, tmp_path: Path) -> None:
    code, report = check_json([str(INCIDENT / name), "--traffic", TRAFFIC], tmp_path)
    assert of_rule(report, "LB103") == []
    assert of_rule(report, "LB101") == []
    assert code == ExitCode.OK


def test_incident_logs_attribute_skew(tmp_path: Path) -> None:
    _, report = check_json(
        [
            str(INCIDENT / "haproxy-good.cfg"), "--traffic", TRAFFIC,
            "--logs", str(INCIDENT / "haproxy.log"),
            "--captured-headers", "host,x-forwarded-for", "--select", "observed",
        ],
        tmp_path,
    )  # fmt: skip
    departures = {finding["subject"]: finding for finding in of_rule(report, "LB601")}

    assert "be_search" in departures
    assert "be_api" in departures
    assert "use_backend be_search" in departures["be_search"]["reason"]


# Exit codes: 1 only at or above the failing severity, 2 for usage and input errors.


def test_fail_on_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lbguard.toml").write_text('fail-on = "error"\nignore = ["LB103"]\n')
    monkeypatch.chdir(tmp_path)
    code, report = check_json([str(INCIDENT / "haproxy-bad.cfg"), "--traffic", TRAFFIC], tmp_path)

    assert code == ExitCode.OK
    assert report["summary"]["fail_on"] == "error"
    assert of_rule(report, "LB101")
    assert "LB103" not in [rule["id"] for rule in report["rules"]]


def test_fail_on_option_overrides_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lbguard.toml").write_text('fail-on = "error"\nignore = ["LB103"]\n')
    monkeypatch.chdir(tmp_path)
    code, _ = check_json(
        [str(INCIDENT / "haproxy-bad.cfg"), "--traffic", TRAFFIC, "--fail-on", "warning"],
        tmp_path,
    )
    assert code == ExitCode.FINDINGS


def expect_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert out == ""
    assert err.startswith("lbguard: error: ")
    return err


def test_bad_settings_value_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "audit.toml"
    settings.write_text("[rules.LB201]\n\nfactor = 0.2\n", encoding="utf-8")
    err = expect_error([str(INCIDENT / "haproxy-bad.cfg"), "--config-file", str(settings)], capsys)
    assert f"{settings}:3:" in err
    assert "at least 1.0" in err


def test_capacity_for_unknown_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "lbguard.toml"
    settings.write_text('[capacity]\n"be_web/web99" = 4\n', encoding="utf-8")
    err = expect_error([str(INCIDENT / "haproxy-bad.cfg"), "--config-file", str(settings)], capsys)
    assert f"{settings}:2:" in err
    assert "be_web/web99" in err


def test_missing_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    err = expect_error([str(INCIDENT / "haproxy-bad.cfg"), "--config-file", str(missing)], capsys)
    assert str(missing) in err


def test_unknown_selector(capsys: pytest.CaptureFixture[str]) -> None:
    err = expect_error([str(INCIDENT / "haproxy-bad.cfg"), "--select", "LB9"], capsys)
    assert "--select LB9: no rule matches" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--resolve", "backend.internal"], "expected NAME=IP[,IP]"),
        (["--resolve", "backend.internal=backend2"], "is not an IP address"),
        (["--prefix-map", "etc=folder"], "absolute PREFIX"),
        (["--prefix-map", "/etc/nginx/=/nonexistent-folder"], "folder not found"),
    ],
)
def test_bad_nginx_option(
    option: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = nginx_with_include(tmp_path)
    err = expect_error([str(config), *option], capsys)
    assert message in err


def test_nginx_options_on_haproxy(capsys: pytest.CaptureFixture[str]) -> None:
    err = expect_error(
        [str(INCIDENT / "haproxy-bad.cfg"), "--resolve", "backend.internal=10.0.0.1"], capsys
    )
    assert "apply to nginx configurations" in err


# nginx: absolute includes read from a local folder, host names given addresses.


def nginx_with_include(tmp_path: Path) -> Path:
    conf_d = tmp_path / "etc-nginx" / "conf.d"
    conf_d.mkdir(parents=True)
    (conf_d / "app.conf").write_text(
        "upstream app {\n    server backend.internal:8080;\n    server 10.0.0.9:8080;\n}\n"
        "server {\n    listen 127.0.0.1:18080;\n    location / { proxy_pass http://app; }\n}\n",
        encoding="utf-8",
    )
    config = tmp_path / "nginx.conf"
    config.write_text("events {}\nhttp {\n    include /etc/nginx/conf.d/*.conf;\n}\n")
    return config


def test_prefix_map_and_resolve(tmp_path: Path) -> None:
    config = nginx_with_include(tmp_path)
    _, report = check_json(
        [
            str(config), "--prefix-map", f"/etc/nginx/={tmp_path / 'etc-nginx'}",
            "--resolve", "backend.internal=10.0.0.1,10.0.0.2",
        ],
        tmp_path,
    )  # fmt: skip
    shares = {
        server["server"]: server["share_of_pool"]
        for pool in report["pools"]
        for server in pool["servers"]
    }

    assert str(tmp_path / "etc-nginx" / "conf.d" / "app.conf") in report["files"]
    # nginx makes one peer per address of a name, each with the full weight.
    assert shares["backend.internal:8080"] == pytest.approx(2 / 3)
    assert shares["10.0.0.9:8080"] == pytest.approx(1 / 3)


def test_include_without_prefix_map_is_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", str(nginx_with_include(tmp_path))])
    out, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert out == ""
    assert "/etc/nginx/conf.d/*.conf" in err
    assert "lbguard: error: nothing to analyse" in err
    assert "no frontend and no pool" in err


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown", "html"])
def test_every_format_exit_code(fmt: str, tmp_path: Path) -> None:
    output = tmp_path / f"report.{fmt}"
    code = main(
        ["check", str(INCIDENT / "haproxy-bad.cfg"), "--traffic", TRAFFIC, "--format", fmt,
         "-o", str(output)]
    )  # fmt: skip
    assert code == ExitCode.FINDINGS
    assert output.stat().st_size > 1000
