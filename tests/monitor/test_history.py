"""History database: schema migrations, snapshots, and ``lbguard history``."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time
import zlib
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


def add_snapshots(db: Path, tmp_path: Path, weights: list[int], instance: str = "") -> None:
    config = tmp_path / "haproxy.cfg"
    with History(db) as history:
        for weight in weights:
            config.write_text(haproxy_config(w3=weight))
            lb = load_config([config])
            history.add_snapshot(lb, share_table(predict(lb)), f"hash-{weight}", instance=instance)


def test_snapshots_stored_compressed(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    add_snapshots(db, tmp_path, [10])

    with History(db) as history:
        row = history.connection.execute("SELECT model, shares FROM snapshots").fetchone()
        model = history.snapshots(1)[0].model()

    assert isinstance(row["model"], bytes)
    assert isinstance(row["shares"], bytes)
    assert len(row["model"]) < len(dumps_model(model)) / 3
    assert model.pool("be_web") is not None


def test_upgrade_compresses_and_redacts(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config().replace(
            "    balance roundrobin\n", "    balance roundrobin\n    stats auth admin:SECRET\n"
        )
    )
    lb = load_config([config])
    db = tmp_path / "history.db"
    connection = sqlite3.connect(db, isolation_level=None)
    assert migrate(connection, target=3) == 3
    connection.execute(
        "INSERT INTO snapshots (created_at, content_hash, product, files, model, shares)"
        " VALUES (1.0, 'abc', 'haproxy', '[]', ?, '[]')",
        (dumps_model(lb),),
    )
    connection.close()

    with History(db) as history:
        raw = history.connection.execute("SELECT model, traffic_hash FROM snapshots").fetchone()
        stored = history.snapshots(1)[0].model()

    assert isinstance(raw["model"], bytes)
    assert raw["traffic_hash"] == ""
    pool = stored.pool("be_web")
    assert pool is not None
    assert "stats auth admin:<redacted>" in pool.options
    assert b"SECRET" not in zlib.decompress(raw["model"])


def test_snapshot_model_redacted(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "userlist admins\n    user ops insecure-password plainsecret\n\n"
        + haproxy_config().replace(
            "    balance roundrobin\n", "    balance roundrobin\n    stats auth admin:SECRET\n"
        )
    )
    lb = load_config([config])
    db = tmp_path / "history.db"
    with History(db) as history:
        history.add_snapshot(lb, share_table(predict(lb)), "hash")
        raw = history.connection.execute("SELECT model FROM snapshots").fetchone()["model"]

    text = zlib.decompress(raw).decode()
    assert "SECRET" not in text
    assert "plainsecret" not in text
    assert "<redacted>" in text


def test_new_database_is_private(tmp_path: Path) -> None:
    db = tmp_path / "state" / "lbguard" / "history.db"

    with History(db):
        pass

    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_prune_keeps_newest(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    add_snapshots(db, tmp_path, [10, 20, 30, 40], instance="a")
    add_snapshots(db, tmp_path, [50], instance="b")
    with History(db) as history:
        with history.transaction() as connection:
            connection.execute(
                "INSERT INTO alerts (fingerprint, alertname, severity, labels, alert, baseline,"
                " snapshot_id, starts_at) VALUES ('f', 'x', 'warning', '{}', '{}', '{}', 1, 0)"
            )
        history.add_audit(1, "change", [])

        by_count = history.prune(max_snapshots=2)
        remaining = [snapshot.id for snapshot in history.snapshots(0, with_model=False)]
        alert_snapshot = history.connection.execute("SELECT snapshot_id FROM alerts").fetchone()
        audits = history.audits(1)
        by_age = history.prune(max_age_days=1, now=time.time() + 3 * 86400)
        after_age = [snapshot.id for snapshot in history.snapshots(0, with_model=False)]

    assert by_count == 2
    assert remaining == [5, 4, 3]
    assert alert_snapshot[0] is None
    assert audits == []
    assert by_age == 1
    assert after_age == [5, 4]


def test_history_cli_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "history.db"

    listed = run_history(missing, "list")
    shown = run_history(missing, "show", "1")

    assert listed.returncode == 2
    assert f"history database not found: {missing}" in listed.stderr
    assert shown.returncode == 2
    assert not missing.parent.exists()


def test_history_cli_limit(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    add_snapshots(db, tmp_path, list(range(10, 70, 10)))

    everything = run_history(db, "list", "--limit", "0")
    two = run_history(db, "list", "--limit", "2")
    negative = run_history(db, "list", "--limit", "-1")

    assert everything.returncode == 0
    assert len(everything.stdout.splitlines()) == 1 + 6
    assert len(two.stdout.splitlines()) == 1 + 2
    assert negative.returncode == 2
    assert "must be 0 or more" in negative.stderr


def test_history_cli_prune(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    add_snapshots(db, tmp_path, [10, 20, 30])

    pruned = run_history(db, "prune", "--max-snapshots", "1")
    without_limit = run_history(db, "prune")
    listing = run_history(db, "list")

    assert pruned.returncode == 0
    assert "pruned 2 snapshots" in pruned.stderr
    assert without_limit.returncode == 2
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == ["3"]


def test_open_errors_name_the_cause(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("these are notes, not SQLite\n" * 100)

    with pytest.raises(HistoryError) as raised:
        History(not_a_database, choose_path="set db in watch.toml")

    assert str(raised.value).startswith(f"{not_a_database} is not an SQLite database")
    assert "set db in watch.toml" in raised.value.hint
    assert "writable" not in str(raised.value)
