"""Writing the board's folder (`write_board`) and keeping it fresh (`watch_board`).

The page itself (index.html, board.css and its scripts) is static and holds no data: it is copied
from this package's assets/. The data goes into scripts (data.js, runs/<id>.js) because a
page opened from file:// may load a `<script src>` but not `fetch` one. Each is JSON inside a
call, with `<`, `>`, `&`, U+2028 and U+2029 escaped, so that no run's content can end the
script or become markup; the page puts every value in with textContent. Each file is written
atomically (a reader sees the old one or the new one, never half), and only when it changed.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kjob.board.data import BoardQuery, collect, run_detail
from kjob.fsutil import atomic_write_text
from kjob.paths import BoardPaths

ASSETS = ("index.html", "board.css", "dom.js", "charts.js", "query.js", "pages.js", "board.js")
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass(frozen=True)
class BoardReport:
    folder: Path
    runs: int
    campaigns: int
    written: int  # files (re)written this time
    bytes: int  # the whole folder's size
    in_flight: int = 0  # runs not ended: their files grow without the ledger changing


def script_json(value) -> str:
    """JSON that is safe inside a script: nothing in it can close the script or start markup.
    NaN and Infinity (a parameter may hold one) stay what JavaScript reads them as."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return "".join(_ESCAPES.get(ch, ch) for ch in text) if any(ch in text for ch in _ESCAPES) else text


def _stamp(text: str) -> str:
    """Tells one version of a file from another: the page reloads what changed."""
    import hashlib

    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def write_board(ws, query: BoardQuery = BoardQuery(), out: Path | None = None) -> BoardReport:
    """Write (or bring up to date) the board of the runs `query` selects into `out` (default
    .kjob/board/): the page, data.js, and runs/<id>.js of each run with files here."""
    paths = BoardPaths(Path(out)) if out is not None else ws.paths.board
    paths.folder.mkdir(parents=True, exist_ok=True)
    data = collect(ws, query, paths.folder)
    written = 0
    assets = resources.files("kjob.board") / "assets"
    for name in ASSETS:
        written += _write_if_changed(paths.asset(name), (assets / name).read_text(encoding="utf-8"))
    keep: dict[int, str] = {}  # run id -> its detail's stamp
    for run in data.runs:
        files = data.details[run.id]
        detail = run_detail(ws, run, files, paths.folder) if files["state"] in ("ok", "live") or run.inputs \
            else None
        if detail is None:
            continue
        path = paths.run_detail(run.id)
        text = script_json(detail)
        keep[run.id] = _stamp(text)
        written += _write_if_changed(path, f"kjobRun({run.id},{text});\n")
    if paths.runs.is_dir():
        for stale in paths.runs.glob("*.js"):
            if not stale.stem.isdigit() or int(stale.stem) not in keep:
                stale.unlink(missing_ok=True)
    for row in data.summary["runs"]:
        row["detail"] = row["id"] in keep
        row["dstamp"] = keep.get(row["id"])
    data.summary["stamp"] = _stamp(script_json(data.summary))
    # data.js last: the page that sees a new one finds every run file it names
    written += _write_if_changed(paths.data, f"kjobBoard({script_json(data.summary)});\n")
    size = sum(p.stat().st_size for p in paths.folder.rglob("*") if p.is_file())
    return BoardReport(paths.folder, len(data.runs), len(data.summary["campaigns"]), written, size,
                       sum(1 for r in data.runs if not r.state.final))


def ledger_stamp(ws) -> tuple:
    """What changes whenever the ledger does (its file and its write-ahead log)."""
    stamp = []
    for path in (ws.paths.ledger, ws.paths.ledger.with_name(ws.paths.ledger.name + "-wal")):
        try:
            info = path.stat()
            stamp.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


class BoardKeeper:
    """Keeps a board current, called as often as a caller likes (`kjob board --watch`'s loop,
    `kjob sweep NAME --board` after each of its ticks): writes when the ledger changed, every
    `live_every` seconds while runs are in flight (a local run's curves grow in its sandbox
    without the ledger changing), every `refresh_every` seconds anyway (files fetched by hand),
    and never sooner than `least` seconds, nor `pace` times the last write's duration, after
    it: a large board cannot take over the loop that calls it."""

    def __init__(self, ws, query: BoardQuery = BoardQuery(), out: Path | None = None, refresh_every: float = 30.0,
                 live_every: float = 5.0, pace: float = 4.0, least: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.ws, self.query, self.out = ws, query, out
        self.refresh_every, self.live_every, self.clock = refresh_every, live_every, clock
        self.pace, self.least = pace, least
        self.last: tuple | None = None
        self.written_at: float | None = None
        self.took = 0.0
        self.in_flight = 0

    def __call__(self, force: bool = False) -> BoardReport | None:
        """Write the board if it is due (or `force`); the report of the write, None if none."""
        now = self.clock()
        stamp = ledger_stamp(self.ws)
        if not force and self.written_at is not None:
            every = self.live_every if self.in_flight else self.refresh_every
            if now - self.written_at < max(self.least, self.pace * self.took) or (stamp == self.last and now - self.written_at < every):
                return None
        report = write_board(self.ws, self.query, self.out)
        self.in_flight = report.in_flight
        # reading may itself touch the ledger's files (a checkpoint of its log): what they are
        # now is what this board shows, unless a write came in meanwhile
        after = ledger_stamp(self.ws)
        self.last = after if after == stamp or self.last is None else stamp
        self.written_at, self.took = self.clock(), self.clock() - now
        return report


def watch_board(ws, query: BoardQuery = BoardQuery(), out: Path | None = None,
                on_write: Callable[[BoardReport], None] | None = None, interval: float = 1.0,
                keep_going: Callable[[], bool] = lambda: True, sleep: Callable[[float], None] = time.sleep,
                refresh_every: float = 30.0, live_every: float = 5.0) -> None:
    """Write the board, then again each time the ledger changes (looked at every `interval`
    seconds), as BoardKeeper says, until `keep_going()` is false or Ctrl-C."""
    keeper = BoardKeeper(ws, query, out, refresh_every=refresh_every, live_every=live_every)
    while keep_going():
        report = keeper()
        if on_write is not None and report is not None and report.written:
            on_write(report)
        sleep(interval)
