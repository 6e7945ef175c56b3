"""The ledger's table and how older ledgers are brought up to it (every row kept).

    1  the first schema: version NOT NULL, UNIQUE (kernel, backend, version)
    2  rows before the backend answers (no version yet), push tokens, kernel identities
    3  notes (push -m, `kjob runs note`), tags, archived runs, and metrics kept by source
       ({"metadata": {...}, "history": {...}, ...}; what a v2 ledger held becomes "earlier")
       with what each source declared about them (`metric_spec`)
    4  campaign members (`kjob sweep`): the campaign and stage a run belongs to, its
       signature (what it computes: sources, effective parameters, backend) and when its
       outputs were fetched (a Kaggle kernel's next version makes them unreachable)
    5  a run's inputs (`kjob push --input`): the runs whose outputs it was given, each with
       its version, backend, remote identity and the SHA-256 of every file (kjob.runs.lineage)

`PRAGMA user_version` holds the number. A ledger of a higher number (a newer kjob wrote it)
is refused, untouched: its rows may mean what this kjob cannot know.
"""

import json
import sqlite3

from kjob.errors import ConfigError

SCHEMA_VERSION = 5
COLUMNS = """
    id INTEGER PRIMARY KEY,
    kernel TEXT NOT NULL,
    backend TEXT NOT NULL,
    version INTEGER,
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
    token TEXT,
    identity TEXT,
    incarnation INTEGER NOT NULL DEFAULT 1,
    gone_at REAL,
    submitter TEXT NOT NULL DEFAULT '{}',
    message TEXT,
    note TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    archived_at REAL,
    metric_spec TEXT NOT NULL DEFAULT '{}',
    campaign TEXT,
    stage TEXT,
    signature TEXT,
    fetched_at REAL,
    inputs TEXT NOT NULL DEFAULT '[]'
"""
# What schema 3 added to schema 2, as ALTER TABLE clauses.
V3_ADDED = ("message TEXT", "note TEXT", "tags TEXT NOT NULL DEFAULT '[]'", "archived_at REAL",
            "metric_spec TEXT NOT NULL DEFAULT '{}'")
V4_ADDED = ("campaign TEXT", "stage TEXT", "signature TEXT", "fetched_at REAL")
V5_ADDED = ("inputs TEXT NOT NULL DEFAULT '[]'",)
INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS runs_identity ON runs (kernel, backend, incarnation, version);
CREATE INDEX IF NOT EXISTS runs_by_kernel ON runs (kernel, version);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_by_token ON runs (token);
CREATE INDEX IF NOT EXISTS runs_by_campaign ON runs (campaign, stage, signature);
"""
# Columns of the first schema.
V1_COLUMNS = ("id, kernel, backend, version, status, raw_status, failure_kind, failure_message, failure_location,"
              " notebook_sha256, parameters, overrides, git_commit, git_dirty, created_at, started_at,"
              " finished_at, handle, metrics")


def check_known(db: sqlite3.Connection) -> int:
    """The ledger's schema version; a ConfigError if a newer kjob wrote it."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise ConfigError(f"the ledger was written by a newer kjob (schema {found}; this kjob knows "
                          f"{SCHEMA_VERSION}): upgrade kjob")
    return found


def migrate(db: sqlite3.Connection) -> None:
    """Bring the ledger to SCHEMA_VERSION in one transaction (another process may race us)."""
    if check_known(db) == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        current = check_known(db)
        if current < SCHEMA_VERSION:
            exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
            if not exists:
                db.execute(f"CREATE TABLE runs ({COLUMNS})")
            elif current in (2, 3, 4):
                added = (V3_ADDED if current == 2 else ()) + (V4_ADDED if current < 4 else ()) + V5_ADDED
                for column in added:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column}")
                if current == 2:
                    _metrics_by_source(db)
            else:  # the first schema: copy its rows into the new table
                db.execute(f"CREATE TABLE runs_new ({COLUMNS})")
                db.execute(f"INSERT INTO runs_new ({V1_COLUMNS}) SELECT {V1_COLUMNS} FROM runs")
                db.execute("DROP TABLE runs")
                db.execute("ALTER TABLE runs_new RENAME TO runs")
                _metrics_by_source(db)
            for statement in filter(str.strip, INDEXES.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _metrics_by_source(db: sqlite3.Connection) -> None:
    """Flat metrics of an older ledger (fetch's and evaluations' mixed) kept as source "earlier"."""
    for row_id, text in db.execute("SELECT id, metrics FROM runs").fetchall():
        try:
            flat = json.loads(text or "{}")
        except json.JSONDecodeError:
            flat = {}
        by_source = {"earlier": flat} if isinstance(flat, dict) and flat else {}
        db.execute("UPDATE runs SET metrics=? WHERE id=?", (json.dumps(by_source, sort_keys=True), row_id))
