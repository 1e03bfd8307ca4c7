"""``lbguard logs`` end to end: exit codes, report formats, errors and terminal safety."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lbguard.cli.main import ExitCode, main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "analysis"))

from loggen import START, WEB, Phase, haproxy_line, incident_phases, write_log  # noqa: E402


@pytest.fixture
def incident(tmp_path: Path) -> Path:
    return write_log(tmp_path / "incident.log", incident_phases())


@pytest.fixture
def regions(tmp_path: Path) -> Path:
    path = tmp_path / "regions.csv"
    path.write_text(
        "cidr,region\n198.51.100.0/24,us-east\n203.0.113.0/24,ap-south\n", encoding="utf-8"
    )
    return path


def test_onset_exits_with_findings(
    incident: Path, regions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["logs", str(incident), "--regions", str(regions)])
    out, err = capsys.readouterr()

    assert code == ExitCode.FINDINGS
    assert "ONSET at 2026-03-02 22:00:00 UTC" in out
    assert "RECOVERY at 2026-03-02 22:10:00 UTC" in out
    assert "overloaded servers: be_search/search2, be_search/search1" in out
    assert "affected regions: ap-south" in out
    assert "onset at 2026-03-02 22:00:00 UTC" in err


def test_stable_log_exits_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "stable.log", [Phase(seconds=300, rate=5, servers=WEB, errors={})])
    code = main(["logs", str(path)])
    out, _ = capsys.readouterr()

    assert code == ExitCode.OK
    assert "no onset" in out


def test_json_report(
    incident: Path, regions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "report.json"
    code = main(
        ["logs", str(incident), "--regions", str(regions), "--window", "1m", "--format",
         "json", "-o", str(output)]
    )  # fmt: skip
    document = json.loads(output.read_text(encoding="utf-8"))
    servers = {
        f"{pool['pool']}/{server['server']}": server["stats"]["requests"]
        for pool in document["pools"]
        for server in pool["servers"]
    }

    assert code == ExitCode.FINDINGS
    assert capsys.readouterr().out == ""
    assert document["schema_version"] == 1
    assert document["totals"]["requests"] == 9000
    assert sum(servers.values()) == 9000
    assert document["timeline"]["window_seconds"] == 60
    assert len(document["timeline"]["windows"]) == 30
    assert [c["kind"] for c in document["changes"]] == ["onset", "recovery"]
    assert document["changes"][0]["at"] == "2026-03-02T22:00:00+00:00"
    assert document["diagnosis"]["affected_regions"] == ["ap-south"]
    assert {row["region"] for row in document["regions"]["rows"]} == {"us-east", "ap-south"}


def test_markdown_report(incident: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["logs", str(incident), "--format", "markdown"])
    out, _ = capsys.readouterr()

    assert code == ExitCode.FINDINGS
    assert out.startswith("# lbguard logs\n")
    assert "| be\\_search/search1 |" in out
    assert "- **onset** at 2026-03-02 22:00:00 UTC" in out


def test_malformed_lines_sampled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "mixed.log", [Phase(seconds=60, rate=5, servers=WEB, errors={})])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(10, "this is not a log line")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code = main(["logs", str(path)])
    out, err = capsys.readouterr()

    assert code == ExitCode.OK
    assert "Malformed lines: 1" in out
    assert f"{path}:11:" in out
    assert "300 requests, 1 malformed line\n" in err


def test_control_characters_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "web\x1b[2J1"
    line = haproxy_line(START, "198.51.100.1", "be_web", evil, status=200, total_ms=10)
    path = tmp_path / "evil.log"
    path.write_text(line + "\n", encoding="utf-8")

    code = main(["logs", str(path), "--log-format", "haproxy"])
    out, _ = capsys.readouterr()

    assert code == ExitCode.OK
    assert "\x1b" not in out
    assert "web\\x1b[2J1" in out


def test_missing_file_is_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["logs", str(tmp_path / "absent.log")])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "lbguard: error:" in err
    assert "absent.log" in err


def test_invalid_window_is_usage_error(incident: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["logs", str(incident), "--window", "5 minutes"])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "--window: invalid width '5 minutes'" in err


def test_no_request_is_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "garbage.log"
    path.write_text("garbage one\ngarbage two\n", encoding="utf-8")

    code = main(["logs", str(path), "--log-format", "haproxy"])
    out, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "no request could be read" in err
    assert "Malformed lines: 2" in out


def test_console_script(incident: Path) -> None:
    script = Path(sys.executable).parent / "lbguard"
    result = subprocess.run(
        [str(script), "logs", str(incident), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == ExitCode.FINDINGS
    assert json.loads(result.stdout)["totals"]["requests"] == 9000


def test_memory_limit_option_rejects_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["logs", "x.log", "--memory-limit", "lots"])
    assert caught.value.code == 2
    assert "invalid memory limit 'lots'" in capsys.readouterr().err


def test_database_spills_to_its_own_directory() -> None:
    from lbguard.logs.database import open_database

    with open_database("256MB") as con:
        limit, spill = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
        assert limit == "244.1 MiB"
        assert Path(spill).is_dir()
    assert not Path(spill).exists()


@pytest.mark.parametrize("target", ["log", "glob", "regions"])
def test_output_may_not_replace_an_input(
    incident: Path, regions: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = incident.read_bytes()
    output = {"log": incident, "glob": incident, "regions": regions}[target]
    log = str(incident.parent / "*.log") if target == "glob" else str(incident)

    code = main(["logs", log, "--regions", str(regions), "-o", str(output)])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "would replace it" in err
    assert incident.read_bytes() == before
    assert "us-east" in regions.read_text(encoding="utf-8")


def test_region_map_problem_keeps_its_line_break(
    incident: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regions = tmp_path / "regions.csv"
    regions.write_text("cidr,region\n198.51.100.0/24,us-east\nbogus,eu\n", encoding="utf-8")

    main(["logs", str(incident), "--regions", str(regions)])
    out, _ = capsys.readouterr()

    assert "\\x0a" not in out
    assert f"{regions}:3: warning: region map row skipped" in out
    assert "\n  hint: fix or remove the row" in out


def test_stderr_escapes_escape_sequences(
    incident: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    named = tmp_path / "a\x1b[31mb.log"
    named.write_bytes(incident.read_bytes())
    weird = tmp_path / "weird.log"
    weird.write_text("\x1b[2Jnot a log line\n", encoding="utf-8")
    output = tmp_path / "out\x1b[2J.txt"

    main(["logs", str(named), "-o", str(output)])
    _, summary = capsys.readouterr()
    main(["logs", str(weird)])
    _, detection = capsys.readouterr()

    assert "\x1b" not in summary
    assert "out\\x1b[2J.txt" in summary
    assert "\x1b" not in detection
    assert "\\x1b[2Jnot a log line" in detection


def test_log_records_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from lbguard.cli.logs import _clean_log_records

    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    try:
        with _clean_log_records():
            logging.getLogger("lbguard.logs").warning("file %s", "x\x1b[2Jy")
    finally:
        logging.getLogger().removeHandler(handler)

    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "x\\x1b[2Jy" in err


ROOT = HERE.parents[1]


def test_readme_lists_every_option() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Usage: `lbguard logs`", 1)[1].split("\n## ", 1)[0]
    from lbguard.cli.main import build_parser

    parser = build_parser(["logs"])
    subparsers = next(a for a in parser._actions if a.dest == "command")
    logs = subparsers.choices["logs"]  # type: ignore[attr-defined]
    options = [o for a in logs._actions for o in a.option_strings if o.startswith("--")]

    assert options
    for option in options:
        if option != "--help":
            assert f"`{option}" in section or f"[{option}" in section, option
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in section


def test_json_schema_doc_names_every_key(
    incident: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["logs", str(incident), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    docs = (ROOT / "docs" / "json-schema.md").read_text(encoding="utf-8")
    section = docs.split("## `lbguard logs --format json`", 1)[1]

    for key in document:
        assert f"`{key}`" in section, key


def test_since_until_limit_the_range(incident: Path, capsys: pytest.CaptureFixture[str]) -> None:
    after_fix = main(["logs", str(incident), "--since", "2026-03-02T22:11:00", "--format", "json"])
    late = json.loads(capsys.readouterr().out)
    window = main(
        ["logs", str(incident), "--since", "2026-03-02T22:55:00+01:00",
         "--until", "2026-03-02T22:05:00Z", "--format", "json"]
    )  # fmt: skip
    around_onset = json.loads(capsys.readouterr().out)

    assert after_fix == ExitCode.OK
    assert late["first"] >= "2026-03-02T22:11:00"
    assert late["totals"]["requests"] < 9000
    assert window == ExitCode.FINDINGS
    assert around_onset["first"] >= "2026-03-02T21:55:00"
    assert around_onset["last"] < "2026-03-02T22:05:00"


def test_invalid_since_names_the_option(
    incident: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["logs", str(incident), "--since", "yesterday"])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "--since: invalid time 'yesterday'" in err


def test_region_map_is_checked_before_the_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "unknown.log"
    log.write_text("no known format here\n", encoding="utf-8")
    code = main(["logs", str(log), "--regions", str(tmp_path / "missing.csv")])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "missing.csv" in err
    assert "cannot detect" not in err


def test_binary_region_map_named_once_without_line(
    incident: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regions = tmp_path / "binary.csv"
    regions.write_bytes(bytes(range(256)) * 4)
    code = main(["logs", str(incident), "--regions", str(regions)])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert err.count("binary.csv") == 1
    assert ":0:" not in err


def test_empty_file_is_named_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "empty.log"
    log.write_bytes(b"")
    code = main(["logs", str(log)])
    _, err = capsys.readouterr()

    assert code == ExitCode.ERROR
    assert "empty.log: the file is empty" in err


def test_multi_year_log_gets_wide_windows_and_dated_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    log = tmp_path / "years.log"
    first = datetime(2021, 1, 1, tzinfo=UTC)
    with log.open("w", encoding="utf-8") as handle:
        for day in range(1000):
            when = first + timedelta(days=day)
            handle.write(
                f'127.0.0.1 - - [{when:%d/%b/%Y:%H:%M:%S} +0000] "GET /a HTTP/1.1" 200 5 "-" "c"\n'
            )
    code = main(["logs", str(log)])
    out, _ = capsys.readouterr()

    assert code == ExitCode.OK
    assert "windows of 30d" in out
    assert "│ 2020-12-04 00:00:00 │" in out


def test_requests_without_server_are_not_a_busiest_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "nosrv.log"
    log.write_text(
        '127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /a HTTP/1.1" 200 5 "-" "c"\n' * 3,
        encoding="utf-8",
    )
    main(["logs", str(log)])
    out, _ = capsys.readouterr()
    segments = out.split("Segments with a stable distribution", 1)[1].split("Malformed", 1)[0]

    assert "<none>" not in segments


def test_counts_of_one_are_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "one.log"
    log.write_text(
        '127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /a HTTP/1.1" 200 5 "-" "c"\n'
        "not a request\n",
        encoding="utf-8",
    )
    main(["logs", str(log)])
    out, err = capsys.readouterr()

    assert "1 request, 1 malformed line" in err
    assert "1 requests" not in out
    assert "1 windows" not in out
    assert "Timeline: 1 window of" in out
