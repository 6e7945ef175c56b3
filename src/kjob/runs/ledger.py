"""The run ledger: an SQLite database (WAL) in the workspace's .kjob folder.

Every write is its own committed transaction, so a kjob process killed mid-command loses
nothing it already recorded, and several kjob processes may write at once. A push writes
its row first (`submitting`, no version yet) and completes it once the backend answers
(`complete_submission`), so no run ever executes without a row.

A run is identified by (kernel, backend, incarnation, version). The incarnation counts how
often the remote kernel was re-created under the same name (its identity changed): Kaggle
then numbers versions from 1 again, and the earlier kernel's runs are marked gone.
"""

import json
import sqlite3
import time
from pathlib import Path

from kjob.runs import metrics as mx
from kjob.errors import BackendError, NotFoundError, UsageError
from kjob.runs.schema import SCHEMA_VERSION  # noqa: F401  (SCHEMA_VERSION: the ledger's vocabulary)
from kjob.runs.db import open_ledger
from kjob.runs.record import UNFINISHED, PushRecord, Run, RunNotes, RunStatus, can_move


class Ledger:
    def __init__(self, path: Path):
        self.path = path
        # WAL, the current schema (a newer one refused untouched), and every SQLite error of
        # this connection, now or later, turned into one kjob error: kjob.runs.db
        self._db = open_ledger(path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- a push: begin, then complete (or forget) --------------------------------------------

    def begin(self, push: PushRecord | None = None, /, **fields) -> Run:
        """The row of a push about to be sent: status `submitting`, no version yet; its
        `handle` says what the push asks for (e.g. its accelerator) until the backend's
        replaces it. A campaign member's row names its campaign and stage from the start, so
        that a sweep killed mid-push finds it again. `fields`: a PushRecord's fields as
        keywords, instead of the record."""
        if push is None:
            push = PushRecord(**fields)
        elif fields:
            raise TypeError("Ledger.begin takes a PushRecord or its fields, not both")
        notes = push.notes or RunNotes()
        cursor = self._db.execute(
            "INSERT INTO runs (kernel, backend, version, status, raw_status, notebook_sha256, parameters,"
            " overrides, git_commit, git_dirty, created_at, token, submitter, handle, message, tags,"
            " signature, campaign, stage, inputs)"
            " VALUES (?, ?, NULL, 'submitting', 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (push.kernel, push.backend, push.notebook_sha256, json.dumps(push.parameters, sort_keys=True),
             json.dumps(push.overrides or {}, sort_keys=True), push.git_commit,
             None if push.git_dirty is None else int(push.git_dirty), time.time(), push.token,
             json.dumps(push.submitter or {}), json.dumps(push.handle or {}), notes.message,
             json.dumps(list(dict.fromkeys(notes.tags))), push.signature, push.campaign, push.stage,
             json.dumps(list(push.inputs), sort_keys=True)),
        )
        return self.get(cursor.lastrowid)

    def complete_submission(self, run: Run, submitted) -> Run:
        """Give the row the version, handle and identity the backend answered with.

        Only the backend's own kernel identity (Kaggle's kernel id) says that a kernel was
        re-created: an identity the ledger has never seen for this kernel starts a new
        incarnation, and the earlier ones are marked gone (their rows and download folders
        stay as they are). kjob's own numbering never does: on the local and Ray backends
        (no identity) versions are claimed by kjob itself, and pushes that overlap or a push
        killed before its row was completed may complete in any order, leaving gaps."""
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self._row(run.id)
            if current["version"] is not None:  # completed meanwhile (a reconciliation)
                self._db.execute("COMMIT")
                return self._from_row(current)
            incarnation = self._incarnation(run.kernel, run.backend, submitted.identity, now)
            taken = self._db.execute(
                "SELECT id FROM runs WHERE kernel=? AND backend=? AND incarnation=? AND version=?",
                (run.kernel, run.backend, incarnation, submitted.version)).fetchone()
            if taken is not None:  # never file two pushes under one version: say so, keep both rows
                raise BackendError(
                    f"{run.backend} answered {run.kernel} v{submitted.version} for this push, a version the ledger "
                    f"already holds for another run (row {taken['id']}): nothing was overwritten; see `kjob runs "
                    f"--kernel {run.kernel}`")
            state = submitted.state
            self._db.execute(
                "UPDATE runs SET version=?, status=?, raw_status=?, handle=?, identity=?, incarnation=?,"
                " parameters=? WHERE id=?",
                (submitted.version, state.status, state.raw_status, json.dumps(submitted.handle),
                 submitted.identity, incarnation, json.dumps(submitted.parameters, sort_keys=True), run.id),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.get(run.id)

    def _incarnation(self, kernel: str, backend: str, identity: str | None, now: float) -> int:
        """The incarnation a version with this remote `identity` belongs to (indexed reads only)."""
        row = self._db.execute(
            "SELECT incarnation FROM runs WHERE kernel=? AND backend=? AND version IS NOT NULL"
            " ORDER BY incarnation DESC LIMIT 1", (kernel, backend)).fetchone()
        if row is None:
            return 1
        latest = row["incarnation"]
        if identity is None:  # kjob numbers these versions itself: they never mean a new kernel
            return latest
        known = self._db.execute(
            "SELECT incarnation FROM runs WHERE kernel=? AND backend=? AND identity=? ORDER BY incarnation DESC"
            " LIMIT 1", (kernel, backend, identity)).fetchone()
        if known is not None:  # that kernel's own version, however late it is reported
            return known["incarnation"]
        others = self._db.execute(
            "SELECT 1 FROM runs WHERE kernel=? AND backend=? AND incarnation=? AND identity IS NOT NULL LIMIT 1",
            (kernel, backend, latest)).fetchone()
        if others is None:  # rows recorded before kjob kept identities belong to this kernel
            self._db.execute("UPDATE runs SET identity=? WHERE kernel=? AND backend=? AND incarnation=?"
                             " AND identity IS NULL AND version IS NOT NULL", (identity, kernel, backend, latest))
            return latest
        self._db.execute("UPDATE runs SET gone_at=? WHERE kernel=? AND backend=? AND gone_at IS NULL"
                         " AND version IS NOT NULL", (now, kernel, backend))
        return latest + 1

    def record(self, *, kernel: str, backend: str, version: int, notebook_sha256: str, parameters: dict,
               git_commit: str | None, git_dirty: bool | None, handle: dict, overrides: dict | None = None,
               state: RunStatus | None = None, identity: str | None = None, token: str | None = None) -> Run:
        """A run the backend has already confirmed, in one step (begin + complete)."""
        from types import SimpleNamespace

        run = self.begin(PushRecord(kernel=kernel, backend=backend, notebook_sha256=notebook_sha256,
                                    parameters=parameters, git_commit=git_commit, git_dirty=git_dirty,
                                    token=token or "", overrides=overrides))
        answer = SimpleNamespace(version=version, identity=identity, handle=handle, parameters=parameters,
                                 state=state or RunStatus("queued"))
        return self.complete_submission(run, answer)

    def forget(self, run: Run) -> None:
        """Drop the row of a push the backend certainly never acted on (it refused it)."""
        self._db.execute("DELETE FROM runs WHERE id=? AND status='submitting'", (run.id,))

    def next_version(self, kernel: str, backend: str) -> int:
        """One above every version recorded for this kernel on this backend."""
        row = self._db.execute("SELECT MAX(version) FROM runs WHERE kernel=? AND backend=?", (kernel, backend)).fetchone()
        return (row[0] or 0) + 1

    # -- later changes ------------------------------------------------------------------------

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
            if started is None and state.status not in ("submitting", "queued"):
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

    def mark_gone(self, run: Run) -> Run:
        self._db.execute("UPDATE runs SET gone_at=? WHERE id=? AND gone_at IS NULL", (time.time(), run.id))
        return self.get(run.id)

    def set_metrics(self, run: Run, metrics: dict, source: str = "metadata", spec: mx.MetricSpec | None = None) -> Run:
        """Replace what one source (`kjob.runs.metrics.SOURCES`) says about the run; the other
        sources' metrics stay as they are. `spec`: what that source declares about them."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._row(run.id)
            sources, specs = json.loads(row["metrics"]), json.loads(row["metric_spec"])
            sources[source] = dict(metrics)
            if spec is not None:
                specs[source] = spec.as_dict()
            self._db.execute("UPDATE runs SET metrics=?, metric_spec=? WHERE id=?",
                             (json.dumps(sources, sort_keys=True), json.dumps(specs, sort_keys=True), run.id))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.get(run.id)

    def mark_fetched(self, run: Run) -> Run:
        """Record that a final run's outputs (its log, for a failed one) are downloaded: a sweep
        pushes the next version of a Kaggle lane kernel only then, since that push makes them
        unreachable."""
        self._db.execute("UPDATE runs SET fetched_at=? WHERE id=?", (time.time(), run.id))
        return self.get(run.id)

    def set_note(self, run: Run, note: str | None) -> Run:
        self._db.execute("UPDATE runs SET note=? WHERE id=?", (note or None, run.id))
        return self.get(run.id)

    def change_tags(self, run: Run, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> Run:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            tags = [t for t in json.loads(self._row(run.id)["tags"]) if t not in remove]
            tags = list(dict.fromkeys([*tags, *add]))
            self._db.execute("UPDATE runs SET tags=? WHERE id=?", (json.dumps(tags), run.id))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.get(run.id)

    def set_archived(self, run: Run, archived: bool) -> Run:
        """Mark the run's download folder as packed into its archive (or unpacked again)."""
        self._db.execute("UPDATE runs SET archived_at=? WHERE id=?", (time.time() if archived else None, run.id))
        return self.get(run.id)

    # -- reading ------------------------------------------------------------------------------

    def get(self, run_id: int) -> Run:
        return self._from_row(self._row(run_id))

    def _row(self, run_id: int) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no run with id {run_id} in the ledger")
        return row

    def find(self, kernel: str, version: int | None = None, backend: str | None = None) -> Run:
        """The run `kernel` v`version` (latest when no version); a backend narrows it down.

        Of a re-created kernel's versions, the newest kernel's is meant."""
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
            labels = ", ".join(f"{kernel}:{b}-v{version}" for b in sorted({r["backend"] for r in rows}))
            raise UsageError(f"{kernel} v{version} exists on several backends ({names}); pass --backend, "
                             f"or name one: {labels}")
        if version is not None:
            rows = sorted(rows, key=lambda r: -r["incarnation"])
        return self._from_row(rows[0])

    def runs(self, kernel: str | None = None, limit: int | None = None, unfinished_only: bool = False,
             campaign: str | None = None) -> list[Run]:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if kernel:
            query, args = query + " AND kernel=?", args + [kernel]
        if campaign:
            query, args = query + " AND campaign=?", args + [campaign]
        if unfinished_only:
            query += f" AND status IN ({', '.join(repr(s) for s in UNFINISHED)})"
        query += " ORDER BY created_at DESC, id DESC"
        if limit:
            query, args = query + " LIMIT ?", args + [limit]
        return [self._from_row(r) for r in self._db.execute(query, args).fetchall()]

    def runs_with_ids(self, ids: list[int]) -> list[Run]:
        """These runs, in this order (a listing decodes only the rows it shows)."""
        found: dict[int, Run] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._db.execute(f"SELECT * FROM runs WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            found.update((r["id"], self._from_row(r)) for r in rows.fetchall())
        return [found[i] for i in ids if i in found]

    def read(self, sql: str, args=()) -> list[sqlite3.Row]:
        """The rows of a read-only query over `runs`: kjob.runs.select asks in SQL for the few
        values a listing filters and ranks by, instead of decoding every run."""
        return self._db.execute(sql, args).fetchall()

    def first(self, sql: str, args=()) -> sqlite3.Row | None:
        """The first row of a read-only query (it stops there)."""
        return self._db.execute(sql, args).fetchone()

    @staticmethod
    def _from_row(row: sqlite3.Row) -> Run:
        sources = json.loads(row["metrics"])
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
            metrics=mx.merged(sources),
            metric_sources=sources,
            metric_specs={k: mx.MetricSpec.from_dict(v) for k, v in json.loads(row["metric_spec"]).items()},
            token=row["token"],
            identity=row["identity"],
            incarnation=row["incarnation"],
            gone_at=row["gone_at"],
            submitter=json.loads(row["submitter"]),
            notes=RunNotes(row["message"], tuple(json.loads(row["tags"]))),
            note=row["note"],
            archived_at=row["archived_at"],
            campaign=row["campaign"],
            stage=row["stage"],
            signature=row["signature"],
            fetched_at=row["fetched_at"],
            inputs=tuple(json.loads(row["inputs"])),
        )
