"""``lbguard check`` on bad command-line values and hostile input: exit code 2, a clear
message, no input overwritten and no raw control character on stderr."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbguard.cli.main import ExitCode, main
from lbguard.cli.messages import escaped_logging

CASES = Path(__file__).parent.parent / "data" / "cases"
TYPO = CASES / "haproxy-weight-typo"


def copy_case(tmp_path: Path) -> tuple[Path, Path]:
    """Copy the weight-typo case's config and its traffic section as a profile."""
    config = tmp_path / "haproxy.cfg"
    shutil.copyfile(TYPO / "haproxy.cfg", config)
    case = yaml.safe_load((TYPO / "case.yaml").read_text(encoding="utf-8"))
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(yaml.safe_dump(case["traffic"]), encoding="utf-8")
    return config, traffic


def run_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert out == ""
    assert "lbguard: error: " in err
    return err


def argparse_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        main(["check", *args])
    assert raised.value.code == ExitCode.ERROR
    return capsys.readouterr().err


# -o must never replace an input file.


@pytest.mark.parametrize("option", ["config", "--traffic", "--logs", "--config-file"])
def test_output_onto_input_rejected(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, traffic = copy_case(tmp_path)
    log = tmp_path / "haproxy.log"
    log.write_text("", encoding="utf-8")
    settings = tmp_path / "lbguard.toml"
    settings.write_text('fail-on = "error"\n', encoding="utf-8")
    args = [str(config), "--traffic", str(traffic), "--config-file", str(settings)]
    if option == "--logs":
        args += ["--logs", str(log)]
    target = {"config": config, "--traffic": traffic, "--logs": log, "--config-file": settings}
    before = target[option].read_bytes()

    err = run_error([*args, "-o", str(target[option])], capsys)

    assert f"-o {target[option]} is the" in err
    assert "would replace it" in err
    assert target[option].read_bytes() == before


def test_output_onto_linked_input_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = copy_case(tmp_path)
    symlink = tmp_path / "symlink.cfg"
    symlink.symlink_to(config)
    hardlink = tmp_path / "hardlink.cfg"
    os.link(config, hardlink)
    before = config.read_bytes()

    symlink_err = run_error([str(config), "-o", str(symlink)], capsys)
    hardlink_err = run_error([str(config), "-o", str(hardlink)], capsys)

    assert f"is the configuration file {config}" in symlink_err
    assert f"is the configuration file {config}" in hardlink_err
    assert config.read_bytes() == before


def test_output_onto_found_settings_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = copy_case(tmp_path)
    (tmp_path / "lbguard.toml").write_text('fail-on = "error"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    err = run_error([str(config), "-o", "lbguard.toml"], capsys)

    assert "is the settings file" in err
    assert (tmp_path / "lbguard.toml").read_text(encoding="utf-8") == 'fail-on = "error"\n'


def test_output_beside_inputs_written(tmp_path: Path) -> None:
    config, traffic = copy_case(tmp_path)
    output = tmp_path / "report.txt"
    code = main(["check", str(config), "--traffic", str(traffic), "-o", str(output)])
    assert code == ExitCode.FINDINGS
    assert "LB202" in output.read_text(encoding="utf-8")


# Control characters in inputs and values are escaped on stderr as in the reports.


def assert_no_control_characters(text: str) -> None:
    raw = sorted({char for char in text if ord(char) < 0x20 and char != "\n"})
    assert raw == []
    assert "\x7f" not in text


def test_diagnostics_before_nothing_to_analyse_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text("foo\x1b[2Jbar\n", encoding="utf-8")
    err = run_error([str(config), "--product", "haproxy"], capsys)
    assert_no_control_characters(err)
    assert "foo\\x1b[2Jbar" in err
    assert "nothing to analyse" in err


def test_missing_file_name_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error([str(tmp_path / "nonexist\x1b[2J.cfg")], capsys)
    assert_no_control_characters(err)
    assert "nonexist\\x1b[2J.cfg" in err


def test_down_value_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = copy_case(tmp_path)
    err = run_error([str(config), "--down", "be_web/x\x1b[2J"], capsys)
    assert_no_control_characters(err)
    assert "no server 'x\\x1b[2J' in pool 'be_web'" in err


@pytest.mark.parametrize("product", [None, "haproxy", "nginx"])
def test_binary_input_escaped(
    product: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "random.bin"
    config.write_bytes(random.Random(7).randbytes(4000))
    args = [str(config), *(["--product", product] if product else [])]
    err = run_error(args, capsys)
    assert_no_control_characters(err)


def test_log_messages_escaped() -> None:
    """Log records of the packages a command calls reach the handlers escaped."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with escaped_logging():
            logging.getLogger("lbguard.logs").warning("%s is not valid UTF-8", "a\x1b[2J.log")
        logging.getLogger("lbguard.logs").warning("after \x1b")
    finally:
        root.removeHandler(handler)

    first, second = stream.getvalue().splitlines()
    assert first == "a\\x1b[2J.log is not valid UTF-8"
    assert second == "after \x1b"


# --traffic FILE#SECTION reads a profile nested in a larger file.


def test_traffic_section_of_case_file(tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    code = main(
        ["check", str(TYPO / "haproxy.cfg"), "--traffic", f"{TYPO / 'case.yaml'}#traffic",
         "--format", "json", "-o", str(output)]
    )  # fmt: skip
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    shares = {
        f"{pool['pool']}/{server['server']}": server["share_of_total"]
        for pool in report["pools"]
        for server in pool["servers"]
    }

    assert code == ExitCode.FINDINGS
    assert report["traffic"]["route_level_known"] is True
    assert shares["be_web/web3"] == pytest.approx(0.8333, abs=0.001)


def test_traffic_missing_section(capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error([str(TYPO / "haproxy.cfg"), "--traffic", f"{TYPO / 'case.yaml'}#nope"], capsys)
    assert "no 'nope' key" in err


def test_traffic_file_with_hash_in_name(tmp_path: Path) -> None:
    config, traffic = copy_case(tmp_path)
    named = tmp_path / "profile#1.yaml"
    traffic.rename(named)
    code = main(["check", str(config), "--traffic", str(named), "-o", str(tmp_path / "r.txt")])
    assert code == ExitCode.FINDINGS


# Option values are checked by argparse, with the option's name and range.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fair-share-factor", "nan"], "argument --fair-share-factor: expected a finite"),
        (["--fair-share-factor", "inf"], "argument --fair-share-factor: expected a finite"),
        (["--fair-share-factor", "-1"], "of at least 1 "),
        (["--fair-share-factor", "0.5"], "got '0.5'"),
        (["--fair-share-factor", "x"], "got 'x'"),
        (["--limit", "-5"], "argument --limit: expected a whole number of rows, 0 or more"),
        (["--limit", "1.5"], "argument --limit"),
        (["--down", "web1"], "argument --down: expected POOL/SERVER"),
        (["--down", "be_web/"], "argument --down: expected POOL/SERVER"),
        (["--traffic", "case.yaml#"], "argument --traffic: expected FILE or FILE#SECTION"),
    ],
)
def test_bad_option_value(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = argparse_error([str(TYPO / "haproxy.cfg"), *args], capsys)
    assert message in err
    assert "rule LB201" not in err


def test_fair_share_factor_at_minimum_accepted(tmp_path: Path) -> None:
    code = main(
        ["check", str(TYPO / "haproxy.cfg"), "--fair-share-factor", "1", "-o",
         str(tmp_path / "r.txt")]
    )  # fmt: skip
    assert code == ExitCode.FINDINGS


def test_down_unknown_pool_lists_pools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error([str(TYPO / "haproxy.cfg"), "--down", "be_api/web1"], capsys)
    assert "no pool 'be_api'" in err
    assert "pools: be_web" in err


# A profile frontend the configuration lacks is an input error.


def test_profile_unknown_frontend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = copy_case(tmp_path)
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text("requests: 100\npaths: [/]\nfrontend: [nope]\n", encoding="utf-8")

    err = run_error([str(config), "--traffic", str(traffic)], capsys)

    assert f"{traffic}:3:" in err
    assert "frontend 'nope'" in err
    assert str(config) in err
    assert "frontends: fe_main" in err


def test_profile_unknown_sample_frontend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = copy_case(tmp_path)
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(
        "samples:\n  - {path: /, frontend: fe_main}\n  - {path: /, frontend: fe_old}\n",
        encoding="utf-8",
    )
    err = run_error([str(config), "--traffic", str(traffic)], capsys)
    assert f"{traffic}:3:" in err
    assert "frontend 'fe_old'" in err


def test_profile_known_frontend_accepted(tmp_path: Path) -> None:
    config, _ = copy_case(tmp_path)
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text("requests: 100\npaths: [/]\nfrontend: [fe_main]\n", encoding="utf-8")
    code = main(["check", str(config), "--traffic", str(traffic), "-o", str(tmp_path / "r")])
    assert code == ExitCode.FINDINGS


# Captured request headers come from the configuration unless --captured-headers is given.

HOST_ROUTED = """defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe
    bind 127.0.0.1:18080
    capture request header Host len 48
    use_backend be_admin if { hdr(host) -i admin.example.com }
    default_backend be_web

backend be_admin
    server a1 127.0.0.1:9001

backend be_web
    server w1 127.0.0.1:9002
"""


def host_routed_logs(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "haproxy.cfg"
    config.write_text(HOST_ROUTED, encoding="utf-8")
    lines = []
    for i in range(200):
        host, server = (
            ("admin.example.com", "be_admin/a1") if i % 2 else ("www.example.com", "be_web/w1")
        )
        lines.append(
            f"Dec  4 16:18:{i % 60:02d} lb1 haproxy[1]: 127.0.0.1:{30000 + i} "
            f"[04/Dec/2026:16:18:{i % 60:02d}.000] fe {server} 0/0/1/1/2 200 100 - - ---- "
            f'1/1/1/1/0 0/0 {{{host}}} "GET /page HTTP/1.1"'
        )
    log = tmp_path / "haproxy.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config, log


def observed_findings(args: list[str], tmp_path: Path) -> list[str]:
    output = tmp_path / "report.json"
    main(["check", *args, "--select", "observed", "--format", "json", "-o", str(output)])
    report = json.loads(output.read_text(encoding="utf-8"))
    return [f"{finding['rule_id']} {finding['subject']}" for finding in report["findings"]]


def test_captured_headers_from_configuration(tmp_path: Path) -> None:
    config, log = host_routed_logs(tmp_path)
    assert observed_findings([str(config), "--logs", str(log)], tmp_path) == []


def test_captured_headers_option_wins(tmp_path: Path) -> None:
    config, log = host_routed_logs(tmp_path)
    findings = observed_findings(
        [str(config), "--logs", str(log), "--captured-headers", "x-other"], tmp_path
    )
    assert "LB601 be_admin" in findings


@pytest.mark.parametrize("value", ["", ",", " "])
def test_empty_select_rejected(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = copy_case(tmp_path)
    err = run_error([str(config), "--select", value], capsys)
    assert "--select names no rule" in err
