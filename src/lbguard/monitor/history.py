"""Audit history in SQLite: configuration snapshots, audits, alerts and the alert outbox.

The schema version is SQLite's ``user_version``. Opening a database applies every
migration above its version, in order, each in its own transaction, so an older history
file is upgraded in place and a failed migration leaves the previous version intact.

Snapshots store the model and the share table as zlib-compressed JSON (a 40,000-server
model is 19 MB of JSON), with secrets redacted. A history file that lbguard creates is
readable by its owner only (mode 0600, new directories 0700).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer
from lbguard.monitor.codec import CodecError, dumps_model, loads_model
from lbguard.monitor.redact import redact_json, redact_model
from lbguard.monitor.shares import ServerShares, ShareTable, dumps_shares, loads_shares

logger = logging.getLogger(__name__)


class HistoryError(LbguardError):
    """A history database that cannot be opened, upgraded or read."""


Migration = str | Callable[[sqlite3.Connection], None]
"""An SQL script, or a function that rewrites rows inside the migration's transaction."""

ZLIB_LEVEL = 6


def compress(text: str) -> bytes:
    """Return ``text`` as zlib-compressed UTF-8, the form snapshots are stored in."""
    return zlib.compress(text.encode("utf-8"), ZLIB_LEVEL)


def decompress(data: bytes | str) -> str:
    """Return stored snapshot text: compressed (BLOB) or, before migration 4, plain."""
    if isinstance(data, str):
        return data
    return zlib.decompress(data).decode("utf-8")


def _compress_snapshots(connection: sqlite3.Connection) -> None:
    """Migration 4: compress and redact stored models and shares, and add the traffic
    profile's hash, so that a changed profile is not mistaken for a changed share."""
    connection.execute("ALTER TABLE snapshots ADD COLUMN traffic_hash TEXT NOT NULL DEFAULT ''")
    rows = connection.execute("SELECT id, model, shares FROM snapshots").fetchall()
    for snapshot_id, model, shares in rows:
        model_text = decompress(model)
        try:
            model_text = json.dumps(redact_json(json.loads(model_text)), sort_keys=True)
        except ValueError:
            # A model this version cannot read stays as it was, only compressed.
            logger.warning(
                "snapshot %d has invalid model JSON; compressed, not redacted", snapshot_id
            )
        connection.execute(
            "UPDATE snapshots SET model = ?, shares = ? WHERE id = ?",
            (compress(model_text), compress(decompress(shares)), snapshot_id),
        )


MIGRATIONS: tuple[Migration, ...] = (
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
    # 4: compressed, redacted snapshots and the traffic profile's hash.
    _compress_snapshots,
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
        migration = MIGRATIONS[number - 1]
        if isinstance(migration, str):
            # executescript commits any open transaction first, so BEGIN is part of the
            # script and the version bump commits together with the schema change.
            connection.executescript(
                f"BEGIN IMMEDIATE;\n{migration}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        else:
            connection.execute("BEGIN IMMEDIATE")
            try:
                migration(connection)
                connection.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
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
    model_data: bytes | str
    """The model JSON as stored: compressed, or plain before migration 4."""

    shares_data: bytes | str
    traffic_hash: str = ""
    """SHA-256 of the traffic profile the shares were predicted with; empty for none."""

    def model(self) -> LoadBalancer:
        try:
            return loads_model(decompress(self.model_data))
        except (CodecError, zlib.error) as error:
            raise HistoryError(
                f"snapshot {self.id} cannot be read: {error}",
                hint="the snapshot was written by another lbguard version; "
                "take a new one with lbguard watch",
            ) from error

    def shares(self) -> dict[str, ServerShares]:
        return loads_shares(decompress(self.shares_data))


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
    """One history database, opened and upgraded to the current schema.

    ``read_only`` opens an existing file without creating it or its directory; an older
    schema is still upgraded in place. Without ``create``, a missing file is an error too.
    ``choose_path`` is the step that error hints give for using another file (``pass --db
    PATH``, ``set db in watch.toml``).
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        read_only: bool = False,
        create: bool = True,
        choose_path: str = "pass --db with another path",
    ) -> None:
        self.path = (Path(path) if path is not None else default_path()).absolute()
        self.read_only = read_only
        self._choose_path = choose_path
        if (read_only or not create) and not self.path.exists():
            raise HistoryError(
                f"history database not found: {self.path}",
                hint=f"lbguard watch creates it on its first snapshot; {choose_path}",
            )
        try:
            if not read_only:
                _create_private(self.path)
            self.connection = self._connect(read_only)
            version = int(self.connection.execute("PRAGMA user_version").fetchone()[0])
            if read_only and version < SCHEMA_VERSION:
                # Upgrading an existing file creates nothing new.
                self.connection.close()
                self.connection = self._connect(False)
            self.version = migrate(self.connection)
        except OSError as error:
            raise self._open_error(error) from error
        except sqlite3.Error as error:
            raise self._open_error(error) from error

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        target = f"file:{quote(str(self.path))}" + ("?mode=ro" if read_only else "?mode=rw")
        # Autocommit mode: transactions are explicit, see `transaction`.
        connection = sqlite3.connect(
            target, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        connection.row_factory = sqlite3.Row
        if not read_only:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    def _open_error(self, error: OSError | sqlite3.Error) -> HistoryError:
        code = getattr(error, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_NOTADB:
            return HistoryError(
                f"{self.path} is not an SQLite database",
                hint=f"move the file away, or {self._choose_path}",
            )
        if isinstance(error, PermissionError) or code in (
            sqlite3.SQLITE_CANTOPEN,
            sqlite3.SQLITE_READONLY,
            sqlite3.SQLITE_PERM,
        ):
            return HistoryError(
                f"cannot open history database {self.path}: permission denied or "
                "read-only location",
                hint="give the user running lbguard write access to the file and its "
                f"directory, or {self._choose_path}",
            )
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        return HistoryError(
            f"cannot open history database {self.path}: {reason}",
            hint=self._choose_path,
        )

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
        traffic_hash: str = "",
    ) -> SnapshotRecord:
        """Store a snapshot, its model redacted and compressed, and return it."""
        created = time.time() if created_at is None else created_at
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO snapshots (created_at, content_hash, product, files, model,"
                " shares, instance, traffic_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    content_hash,
                    str(lb.product),
                    json.dumps(list(lb.files)),
                    compress(dumps_model(redact_model(lb))),
                    compress(dumps_shares(shares)),
                    instance,
                    traffic_hash,
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

    def snapshots(self, limit: int = 50, *, with_model: bool = True) -> list[SnapshotRecord]:
        """Return the newest snapshots, newest first; every one when ``limit`` is 0.

        Without ``with_model`` the records carry no model and no shares, for listings.
        """
        columns = "*" if with_model else _LIST_COLUMNS
        rows = self.connection.execute(
            f"SELECT {columns} FROM snapshots ORDER BY id DESC LIMIT ?", (limit or -1,)
        ).fetchall()
        return [_snapshot(row) for row in rows]

    def prune(
        self,
        *,
        max_snapshots: int | None = None,
        max_age_days: float | None = None,
        now: float | None = None,
    ) -> int:
        """Delete old snapshots and their audits; return how many snapshots went.

        Each instance keeps its ``max_snapshots`` newest snapshots and those younger than
        ``max_age_days``, and always its newest one, the reference for the next change.
        Alerts keep their rows; their references to deleted snapshots become NULL.
        """
        current = time.time() if now is None else now
        cutoff = None if max_age_days is None else current - max_age_days * 86400.0
        kept: dict[str, int] = {}
        doomed: list[tuple[int]] = []
        rows = self.connection.execute(
            "SELECT id, instance, created_at FROM snapshots ORDER BY id DESC"
        ).fetchall()
        for snapshot_id, instance, created_at in rows:
            rank = kept.get(instance, 0)
            kept[instance] = rank + 1
            if rank == 0:
                continue
            too_many = max_snapshots is not None and rank >= max_snapshots
            too_old = cutoff is not None and created_at < cutoff
            if too_many or too_old:
                doomed.append((snapshot_id,))
        if not doomed:
            return 0

        with self.transaction() as connection:
            connection.execute("CREATE TEMP TABLE IF NOT EXISTS pruned (id INTEGER PRIMARY KEY)")
            connection.executemany("INSERT INTO pruned (id) VALUES (?)", doomed)
            connection.execute(
                "UPDATE alerts SET snapshot_id = NULL WHERE snapshot_id IN (SELECT id FROM pruned)"
            )
            connection.execute(
                "UPDATE alerts SET resolved_snapshot_id = NULL"
                " WHERE resolved_snapshot_id IN (SELECT id FROM pruned)"
            )
            connection.execute("DELETE FROM audits WHERE snapshot_id IN (SELECT id FROM pruned)")
            connection.execute("DELETE FROM snapshots WHERE id IN (SELECT id FROM pruned)")
            connection.execute("DELETE FROM pruned")
        logger.info("pruned %d snapshots from %s", len(doomed), self.path)
        return len(doomed)

    def vacuum(self) -> None:
        """Give the space of deleted rows back to the file system."""
        self.connection.execute("VACUUM")

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


_LIST_COLUMNS = (
    "id, created_at, content_hash, product, files, instance, traffic_hash,"
    " '' AS model, '[]' AS shares"
)


def _snapshot(row: sqlite3.Row) -> SnapshotRecord:
    return SnapshotRecord(
        id=int(row["id"]),
        created_at=float(row["created_at"]),
        content_hash=str(row["content_hash"]),
        product=str(row["product"]),
        files=tuple(json.loads(row["files"])),
        instance=str(row["instance"]),
        model_data=row["model"],
        shares_data=row["shares"],
        traffic_hash=str(row["traffic_hash"]),
    )


def _create_private(path: Path) -> None:
    """Create the database file with mode 0600, and missing directories with 0700."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def _audit(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        id=int(row["id"]),
        snapshot_id=int(row["snapshot_id"]),
        created_at=float(row["created_at"]),
        trigger=str(row["trigger"]),
        findings=tuple(json.loads(row["findings"])),
    )
