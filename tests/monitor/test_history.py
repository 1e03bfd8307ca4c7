"""History database: schema migrations, snapshots, and ``lbguard history``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from monitor_support import haproxy_config

from lbguard.monitor.codec import dumps_model, loads_model
from lbguard.monitor.history import SCHEMA_VERSION, History, HistoryError, default_path, migrate
from lbguard.monitor.shares import share_table
from lbguard.parsers import load_config
from lbguard.predict import predict

LBGUARD = Path(sys.executable).with_name("lbguard")


def test_upgrade_from_first_schema(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    connection = sqlite3.connect(db, isolation_level=None)
    assert migrate(connection, target=1) == 1
    connection.execute(
        "INSERT INTO snapshots (created_at, content_hash, product, files, model, shares)"
        " VALUES (1.0, 'abc', 'haproxy', '[]', '{}', '[]')"
    )
    connection.close()

    with History(db) as history:
        version = history.connection.execute("PRAGMA user_version").fetchone()[0]
        row = history.connection.execute("SELECT * FROM snapshots").fetchone()
        tables = {
            name
            for (name,) in history.connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }

    assert version == SCHEMA_VERSION
    assert row["content_hash"] == "abc"
    assert row["instance"] == ""
    assert {"snapshots", "audits", "alerts", "outbox"} <= tables


def test_newer_schema_is_rejected(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()

    with pytest.raises(HistoryError, match="newer than this lbguard supports"):
        History(db)


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_path() == tmp_path / "state" / "lbguard" / "history.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_path() == Path.home() / ".local" / "state" / "lbguard" / "history.db"


def test_model_json_round_trip(tmp_path: Path) -> None:
    routed = tmp_path / "routed.cfg"
    routed.write_text(
        haproxy_config().replace(
            "    default_backend be_web\n",
            "    acl is_api path_beg /api\n    acl is_api hdr(host) -i api.example.com\n"
            "    use_backend be_web if is_api !{ src 10.0.0.0/8 }\n"
            "    default_backend be_web\n",
        )
    )
    lb = load_config([routed])

    assert loads_model(dumps_model(lb)) == lb


def test_snapshot_stores_model_and_shares(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(w3=100))
    lb = load_config([config])
    shares = share_table(predict(lb))

    with History(tmp_path / "history.db") as history:
        stored = history.add_snapshot(lb, shares, "hash-1", instance="edge")
        history.add_audit(stored.id, "change", [{"rule_id": "LB201", "severity": "warning"}])
        latest = history.latest_snapshot("edge")
        other = history.latest_snapshot("another")
        audits = history.audits(stored.id)

    assert latest is not None
    assert latest.model() == lb
    assert latest.shares()["be_web/web3"].share_of_pool == pytest.approx(100 / 120)
    assert other is None
    assert [audit.findings[0]["rule_id"] for audit in audits] == ["LB201"]


def run_history(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LBGUARD), "history", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_history_cli(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    config = tmp_path / "haproxy.cfg"
    with History(db) as history:
        for weight in (10, 100):
            config.write_text(haproxy_config(w3=weight))
            lb = load_config([config])
            history.add_snapshot(lb, share_table(predict(lb)), f"hash-{weight}")

    listing = run_history(db, "list")
    shown = run_history(db, "show", "2")
    compared = run_history(db, "diff", "1", "2")
    same = run_history(db, "diff", "1", "1")
    missing = run_history(db, "show", "9")

    assert listing.returncode == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == ["2", "1"]
    assert shown.returncode == 0
    assert "be_web/web3: 83.3 % of be_web" in shown.stdout
    assert compared.returncode == 1
    assert "be_web/web3: 33.3 % → 83.3 % of be_web" in compared.stdout
    assert same.returncode == 0
    assert missing.returncode == 2
    assert "snapshot 9 not found" in missing.stderr
