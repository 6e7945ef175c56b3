"""The ledger's SQLite connection, and what its errors mean to the user.

Every statement the ledger runs goes through `LedgerConnection` (its cursors too), so an SQLite
error raised when the ledger is opened, read, written or committed becomes one kjob error:

    damaged (SQLITE_CORRUPT, SQLITE_NOTADB)          ConfigError (exit 2): how to check and recover
    locked past KJOB_LEDGER_TIMEOUT (SQLITE_BUSY)    LocalFileError (exit 8): which process holds it
    disk full, I/O error, read-only, no permission   LocalFileError (exit 8)
    anything else (a table this kjob cannot read)    ConfigError (exit 2)

Constraint violations (sqlite3.IntegrityError) and misuse (sqlite3.ProgrammingError) pass
through unchanged: the ledger's own code decides what those mean.

KJOB_LEDGER_TIMEOUT: seconds a command waits for another process's write to the ledger to
end (default 30).
"""

import math
import os
import sqlite3
from pathlib import Path

from kjob.errors import ConfigError, KjobError, LocalFileError, UsageError

TIMEOUT_ENV = "KJOB_LEDGER_TIMEOUT"
DEFAULT_TIMEOUT = 30.0

# Primary result codes (https://sqlite.org/rescode.html)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 26
_BY_MESSAGE = {"database disk image is malformed": _CORRUPT, "file is not a database": _NOTADB,
               "database is locked": _BUSY, "database or disk is full": _FULL, "disk I/O error": _IOERR,
               "attempt to write a readonly database": _READONLY, "unable to open database file": _CANTOPEN}


def ledger_timeout() -> float:
    """Seconds to wait for a lock on the ledger: KJOB_LEDGER_TIMEOUT, else 30."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise UsageError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds, e.g. 30")
    return seconds


def open_ledger(path: Path) -> "LedgerConnection":
    """The connection to the ledger at `path`, in WAL mode and at the current schema.

    A ledger of a newer schema is refused before anything is written to it (not even the
    switch to WAL, which rewrites the file's header)."""
    from kjob.runs.schema import check_known, migrate

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalFileError(f"cannot make the folder of the run ledger {path.parent} "
                             f"({exc.strerror or exc})") from exc
    timeout = ledger_timeout()
    db = LedgerConnection(path, timeout)
    try:
        check_known(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db)  # the table and its schema versions: kjob.runs.schema
    except BaseException:
        db.close()
        raise
    db.opening = False
    return db


class LedgerConnection:
    """An sqlite3 connection whose errors are kjob errors (see the module's docstring).

    isolation_level=None: the ledger opens transactions itself (BEGIN IMMEDIATE) where a
    read-then-write must not interleave with another process."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout, self.opening = path, timeout, True
        try:
            self._raw = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self.error(exc) from exc
        self._raw.row_factory = sqlite3.Row

    def execute(self, sql: str, parameters=()) -> "LedgerCursor":
        if sql.strip().upper() == "ROLLBACK":
            self._rollback()
            return LedgerCursor(None, self)
        try:
            return LedgerCursor(self._raw.execute(sql, parameters), self)
        except sqlite3.DatabaseError as exc:
            if not _mapped(exc):
                raise
            raise self.error(exc) from exc

    def executemany(self, sql: str, rows) -> "LedgerCursor":
        try:
            return LedgerCursor(self._raw.executemany(sql, rows), self)
        except sqlite3.DatabaseError as exc:
            if not _mapped(exc):
                raise
            raise self.error(exc) from exc

    def _rollback(self) -> None:
        # Called while handling another error: a transaction SQLite already ended (a full
        # disk rolls it back itself) or a failing rollback must not hide that error.
        if self._raw.in_transaction:
            try:
                self._raw.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @property
    def in_transaction(self) -> bool:
        return self._raw.in_transaction

    def __getattr__(self, name: str):
        # the rest of sqlite3.Connection, as it is (its errors not mapped): statements go through execute
        if name == "_raw":
            raise AttributeError(name)
        return getattr(self._raw, name)

    def close(self) -> None:
        self._raw.close()

    def error(self, exc: sqlite3.Error) -> KjobError:
        """The kjob error an SQLite error of this ledger means (one line)."""
        code = _code(exc)
        shown = _shown(self.path)
        name = self.path.name
        doing = "open" if self.opening else "use"
        if code in (_CORRUPT, _NOTADB):
            return ConfigError(
                f"cannot {doing} the run ledger {name}: it is damaged ({exc}); check it with "
                f"`sqlite3 {shown} \"PRAGMA integrity_check\"`, recover its rows with "
                f"`sqlite3 {shown} .recover | sqlite3 {shown}.recovered` and put that file in its place, "
                f"or move {shown} aside to start a new ledger")
        if code in (_BUSY, _LOCKED):
            return LocalFileError(
                f"the run ledger {name} is locked by {_holder(self.path)}: waited {self.timeout:g} s ({exc}); "
                f"run this again once it is done ({TIMEOUT_ENV} sets how long to wait)")
        if code == _FULL or (code == _IOERR and _disk_full(self.path)):  # a full disk fails the WAL index as I/O
            return LocalFileError(f"cannot {'open' if self.opening else 'write'} the run ledger {shown}: the disk "
                                  f"is full ({exc}); free some space and run this again")
        if code in (_IOERR, _READONLY, _PERM, _CANTOPEN):
            return LocalFileError(f"cannot {doing} the run ledger {shown} ({exc}): check the disk's free "
                                  f"space and the permissions of {_shown(self.path.parent)}")
        return ConfigError(f"cannot {doing} the run ledger {name} ({exc}): is it one kjob wrote? check it with "
                           f"`sqlite3 {shown} \"PRAGMA integrity_check\"`, or move {shown} aside to start a new one")


class LedgerCursor:
    """An sqlite3 cursor whose errors while fetching (a damaged page met halfway through a
    scan) are mapped like the connection's."""

    def __init__(self, cursor: sqlite3.Cursor | None, db: LedgerConnection):
        self._cursor, self._db = cursor, db

    @property
    def lastrowid(self):
        return self._cursor.lastrowid if self._cursor else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor else -1

    def fetchone(self):
        return self._fetch(lambda c: c.fetchone(), None)

    def fetchall(self) -> list:
        return self._fetch(lambda c: c.fetchall(), [])

    def fetchmany(self, size: int = 256) -> list:
        return self._fetch(lambda c: c.fetchmany(size), [])

    def __iter__(self):
        while rows := self.fetchmany(512):
            yield from rows

    def _fetch(self, how, empty):
        if self._cursor is None:
            return empty
        try:
            return how(self._cursor)
        except sqlite3.DatabaseError as exc:
            if not _mapped(exc):
                raise
            raise self._db.error(exc) from exc


def _mapped(exc: sqlite3.DatabaseError) -> bool:
    """Whether the error is about the ledger's file or its lock (not kjob's own use of SQL)."""
    return not isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.NotSupportedError))


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    return next((c for text, c in _BY_MESSAGE.items() if text in str(exc)), None)


def _disk_full(path: Path) -> bool:
    import shutil

    try:
        return shutil.disk_usage(path.parent).free < 256 * 1024
    except OSError:
        return False


def _shown(path: Path) -> str:
    """The path as the user would type it: relative to the current folder where it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _holder(path: Path) -> str:
    """Which process holds a write lock on the ledger (or its WAL index), where Linux tells
    (/proc/locks); else a general answer."""
    pids = _lock_holders(path)
    if not pids:
        return "another process (a kjob command or an sqlite3 shell using it)"
    described = []
    for pid in pids[:3]:
        try:
            command = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
        except OSError:
            command = ""
        command = command if len(command) <= 80 else command[:77] + "..."
        described.append(f"process {pid} ({command})" if command else f"process {pid}")
    return ", ".join(described)


def _lock_holders(path: Path) -> list[int]:
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    files = set()
    for candidate in (path, path.with_name(path.name + "-shm"), path.with_name(path.name + "-wal")):
        try:
            st = candidate.stat()
        except OSError:
            continue
        files.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    pids: list[int] = []
    for line in table.splitlines():
        # "12: POSIX  ADVISORY  WRITE 4242 fd:01:1234 120 120"; a waiter's line has "->" after its id
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[3] != "WRITE":
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            where = (int(major, 16), int(minor, 16), int(inode))
        except ValueError:
            continue
        if where in files and pid not in (os.getpid(), -1) and pid not in pids:
            pids.append(pid)
    return pids
