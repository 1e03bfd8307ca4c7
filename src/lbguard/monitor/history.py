"""Audit history in SQLite: configuration snapshots, audits, alerts and the alert outbox.

The schema version is SQLite's ``user_version``. Opening a database applies every
migration above its version, in order, each in its own transaction, so an older history
file is upgraded in place and a failed migration leaves the previous version intact.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer
from lbguard.monitor.codec import CodecError, dumps_model, loads_model
from lbguard.monitor.shares import ServerShares, ShareTable, dumps_shares, loads_shares

logger = logging.getLogger(__name__)


class HistoryError(LbguardError):
    """A history database that cannot be opened, upgraded or read."""


MIGRATIONS: tuple[str, ...] = (
    # 1: snapshots and audits.
    """
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        content_hash TEXT NOT NULL,
        product TEXT NOT NULL,
        files TEXT NOT NULL,
        model TEXT NOT NULL,
        shares TEXT NOT NULL
    );
    CREATE TABLE audits (
        id INTEGER PRIMARY KEY,
        snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
        created_at REAL NOT NULL,
        trigger TEXT NOT NULL,
        findings TEXT NOT NULL
    );
    CREATE INDEX audits_snapshot ON audits(snapshot_id);
    """,
    # 2: alerts and the delivery outbox.
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        alertname TEXT NOT NULL,
        severity TEXT NOT NULL,
        labels TEXT NOT NULL,
        alert TEXT NOT NULL,
        baseline TEXT NOT NULL,
        snapshot_id INTEGER REFERENCES snapshots(id),
        starts_at REAL NOT NULL,
        ends_at REAL,
        resolved_snapshot_id INTEGER REFERENCES snapshots(id)
    );
    CREATE INDEX alerts_firing ON alerts(fingerprint) WHERE ends_at IS NULL;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        sink TEXT NOT NULL,
        event TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        sent_at REAL,
        status TEXT NOT NULL DEFAULT 'pending'
    );
    CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
    """,
    # 3: an instance name, so that several watchers can share one history file.
    """
    ALTER TABLE snapshots ADD COLUMN instance TEXT NOT NULL DEFAULT '';
    CREATE INDEX snapshots_instance ON snapshots(instance, id);
    """,
)
"""Schema migrations; migration N (1-based) upgrades ``user_version`` N-1 to N."""

SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    """Return ``$XDG_STATE_HOME/lbguard/history.db``, by default under ``~/.local/state``."""
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "lbguard" / "history.db"


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations above the database's version up to ``target``; return the
    version reached."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"history database schema version {version} is newer than this lbguard "
            f"supports ({SCHEMA_VERSION})",
            hint="upgrade lbguard, or pass --db with another history file",
        )

    for number in range(version + 1, target + 1):
        logger.info("upgrading history schema to version %d", number)
        script = MIGRATIONS[number - 1]
        # executescript commits any open transaction first, so BEGIN is part of the script
        # and the version bump commits together with the schema change.
        connection.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
        )
        version = number
    return version


@dataclass(frozen=True)
class SnapshotRecord:
    """A stored configuration snapshot."""

    id: int
    created_at: float
    """Seconds since the Unix epoch."""

    content_hash: str
    """SHA-256 over the configuration files' paths and contents."""

    product: str
    files: tuple[str, ...]
    instance: str
    model_json: str
    shares_json: str

    def model(self) -> LoadBalancer:
        try:
            return loads_model(self.model_json)
        except CodecError as error:
            raise HistoryError(
                f"snapshot {self.id} cannot be read: {error}",
                hint="the snapshot was written by another lbguard version; "
                "take a new one with lbguard watch",
            ) from error

    def shares(self) -> dict[str, ServerShares]:
        return loads_shares(self.shares_json)


@dataclass(frozen=True)
class AuditRecord:
    """A stored audit: the findings of the check pipeline for one snapshot."""

    id: int
    snapshot_id: int
    created_at: float
    trigger: str
    """What ran the audit: ``start``, ``change``, ``retry``, ``rescan``, ``reload`` or
    ``schedule``."""

    findings: tuple[dict[str, Any], ...]


class History:
    """One history database, opened and upgraded to the current schema."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit, see `transaction`.
            self.connection = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self.connection.row_factory = sqlite3.Row
            self.connection.execute("PRAGMA journal_mode = WAL")
            self.connection.execute("PRAGMA foreign_keys = ON")
            self.version = migrate(self.connection)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(
                f"cannot open history database {self.path}: {error}",
                hint="check that the directory is writable, or pass --db with another path",
            ) from error

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction, committed on success; inside another
        transaction, the block joins it."""
        if self.connection.in_transaction:
            yield self.connection
            return
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # ----------------------------------------------------------------------------------
    # Snapshots

    def add_snapshot(
        self,
        lb: LoadBalancer,
        shares: ShareTable,
        content_hash: str,
        *,
        instance: str = "",
        created_at: float | None = None,
    ) -> SnapshotRecord:
        created = time.time() if created_at is None else created_at
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO snapshots"
                " (created_at, content_hash, product, files, model, shares, instance)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    content_hash,
                    str(lb.product),
                    json.dumps(list(lb.files)),
                    dumps_model(lb),
                    dumps_shares(shares),
                    instance,
                ),
            )
        snapshot_id = cursor.lastrowid
        assert snapshot_id is not None
        return self.snapshot(snapshot_id)

    def snapshot(self, snapshot_id: int) -> SnapshotRecord:
        row = self.connection.execute(
            "SELECT * FROM snapshots WHERE id = ?", (snapshot_id,)
        ).fetchone()
        if row is None:
            raise HistoryError(
                f"snapshot {snapshot_id} not found in {self.path}",
                hint="list the stored snapshots with `lbguard history list`",
            )
        return _snapshot(row)

    def latest_snapshot(self, instance: str = "") -> SnapshotRecord | None:
        row = self.connection.execute(
            "SELECT * FROM snapshots WHERE instance = ? ORDER BY id DESC LIMIT 1", (instance,)
        ).fetchone()
        return None if row is None else _snapshot(row)

    def snapshots(self, limit: int = 50) -> list[SnapshotRecord]:
        """Return the newest snapshots, newest first."""
        rows = self.connection.execute(
            "SELECT * FROM snapshots ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_snapshot(row) for row in rows]

    # ----------------------------------------------------------------------------------
    # Audits

    def add_audit(
        self,
        snapshot_id: int,
        trigger: str,
        findings: Sequence[dict[str, Any]],
        *,
        created_at: float | None = None,
    ) -> AuditRecord:
        created = time.time() if created_at is None else created_at
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO audits (snapshot_id, created_at, trigger, findings)"
                " VALUES (?, ?, ?, ?)",
                (snapshot_id, created, trigger, json.dumps(list(findings), sort_keys=True)),
            )
        assert cursor.lastrowid is not None
        return AuditRecord(cursor.lastrowid, snapshot_id, created, trigger, tuple(findings))

    def audits(self, snapshot_id: int) -> list[AuditRecord]:
        rows = self.connection.execute(
            "SELECT * FROM audits WHERE snapshot_id = ? ORDER BY id", (snapshot_id,)
        ).fetchall()
        return [_audit(row) for row in rows]

    def latest_audit(self, instance: str = "") -> AuditRecord | None:
        row = self.connection.execute(
            "SELECT audits.* FROM audits JOIN snapshots ON snapshots.id = audits.snapshot_id"
            " WHERE snapshots.instance = ? ORDER BY audits.id DESC LIMIT 1",
            (instance,),
        ).fetchone()
        return None if row is None else _audit(row)

    def audit_counts(self) -> dict[int, int]:
        """Return the number of findings of the latest audit of each snapshot."""
        rows = self.connection.execute(
            "SELECT snapshot_id, findings FROM audits"
            " WHERE id IN (SELECT max(id) FROM audits GROUP BY snapshot_id)"
        ).fetchall()
        return {int(row["snapshot_id"]): len(json.loads(row["findings"])) for row in rows}


def _snapshot(row: sqlite3.Row) -> SnapshotRecord:
    return SnapshotRecord(
        id=int(row["id"]),
        created_at=float(row["created_at"]),
        content_hash=str(row["content_hash"]),
        product=str(row["product"]),
        files=tuple(json.loads(row["files"])),
        instance=str(row["instance"]),
        model_json=str(row["model"]),
        shares_json=str(row["shares"]),
    )


def _audit(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        id=int(row["id"]),
        snapshot_id=int(row["snapshot_id"]),
        created_at=float(row["created_at"]),
        trigger=str(row["trigger"]),
        findings=tuple(json.loads(row["findings"])),
    )
