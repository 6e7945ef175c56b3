"""The run ledger: an SQLite database (WAL) in the workspace's .kjob folder.

Every write is its own committed transaction, so a kjob process killed mid-command loses
nothing it already recorded, and several kjob processes may write at once.
"""

import json
import sqlite3
import time
from pathlib import Path

from kjob.errors import NotFoundError, UsageError
from kjob.runs import Run, RunStatus, can_move

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    kernel TEXT NOT NULL,
    backend TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    raw_status TEXT,
    failure_kind TEXT,
    failure_message TEXT,
    failure_location TEXT,
    notebook_sha256 TEXT NOT NULL,
    parameters TEXT NOT NULL,
    overrides TEXT NOT NULL DEFAULT '{}',
    git_commit TEXT,
    git_dirty INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    handle TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    UNIQUE (kernel, backend, version)
);
CREATE INDEX IF NOT EXISTS runs_by_kernel ON runs (kernel, version);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at);
"""


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE) where a
        # read-then-write must not interleave with another process.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self, *, kernel: str, backend: str, version: int, notebook_sha256: str,
               parameters: dict, git_commit: str | None, git_dirty: bool | None,
               handle: dict, overrides: dict | None = None, state: RunStatus | None = None) -> Run:
        state = state or RunStatus("queued")
        try:
            cursor = self._db.execute(
                "INSERT INTO runs (kernel, backend, version, status, raw_status, notebook_sha256,"
                " parameters, overrides, git_commit, git_dirty, created_at, handle)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kernel, backend, version, state.status, state.raw_status, notebook_sha256,
                 json.dumps(parameters, sort_keys=True), json.dumps(overrides or {}, sort_keys=True), git_commit,
                 None if git_dirty is None else int(git_dirty), time.time(), json.dumps(handle)),
            )
        except sqlite3.IntegrityError:
            raise UsageError(f"the ledger already holds {kernel} v{version} on {backend}") from None
        return self.get(cursor.lastrowid)

    def update(self, run: Run, state: RunStatus, *, now: float | None = None) -> Run:
        """Record a newer status; an older or equal one is ignored (statuses never go back)."""
        now = now or time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self._row(run.id)
            if not can_move(current["status"], state.status):
                self._db.execute("COMMIT")
                return self._from_row(current)
            started = current["started_at"]
            if started is None and state.status != "queued":
                started = state.started_at or now
            finished = (state.finished_at or now) if state.final else None
            self._db.execute(
                "UPDATE runs SET status=?, raw_status=?, failure_kind=?, failure_message=?,"
                " failure_location=?, started_at=?, finished_at=? WHERE id=?",
                (state.status, state.raw_status, state.failure_kind, state.failure_message,
                 state.failure_location, started, finished, run.id),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.get(run.id)

    def set_metrics(self, run: Run, metrics: dict) -> Run:
        self._db.execute("UPDATE runs SET metrics=? WHERE id=?", (json.dumps(metrics, sort_keys=True), run.id))
        return self.get(run.id)

    def get(self, run_id: int) -> Run:
        return self._from_row(self._row(run_id))

    def _row(self, run_id: int) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no run with id {run_id} in the ledger")
        return row

    def find(self, kernel: str, version: int | None = None, backend: str | None = None) -> Run:
        """The run `kernel` v`version` (latest when no version); a backend narrows it down."""
        query, args = "SELECT * FROM runs WHERE kernel=?", [kernel]
        if version is not None:
            query, args = query + " AND version=?", args + [version]
        if backend is not None:
            query, args = query + " AND backend=?", args + [backend]
        rows = self._db.execute(query + " ORDER BY created_at DESC, id DESC", args).fetchall()
        if not rows:
            what = f"{kernel} v{version}" if version is not None else kernel
            where = f" on {backend}" if backend else ""
            raise NotFoundError(f"no recorded run of {what}{where} (see `kjob runs`)")
        if version is not None and len({r["backend"] for r in rows}) > 1:
            names = ", ".join(sorted({r["backend"] for r in rows}))
            raise UsageError(f"{kernel} v{version} exists on several backends ({names}); pass --backend")
        return self._from_row(rows[0])

    def runs(self, kernel: str | None = None, limit: int | None = None, unfinished_only: bool = False) -> list[Run]:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if kernel:
            query, args = query + " AND kernel=?", args + [kernel]
        if unfinished_only:
            query += " AND status IN ('queued', 'running')"
        query += " ORDER BY created_at DESC, id DESC"
        if limit:
            query, args = query + " LIMIT ?", args + [limit]
        return [self._from_row(r) for r in self._db.execute(query, args).fetchall()]

    @staticmethod
    def _from_row(row: sqlite3.Row) -> Run:
        return Run(
            id=row["id"],
            kernel=row["kernel"],
            backend=row["backend"],
            version=row["version"],
            state=RunStatus(row["status"], row["raw_status"], row["failure_kind"],
                            row["failure_message"], row["failure_location"]),
            notebook_sha256=row["notebook_sha256"],
            parameters=json.loads(row["parameters"]),
            overrides=json.loads(row["overrides"]),
            git_commit=row["git_commit"],
            git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            handle=json.loads(row["handle"]),
            metrics=json.loads(row["metrics"]),
        )
