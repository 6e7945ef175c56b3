"""Following a run for a person: each status change and every new log line handed to a
callback that shows them, and, once the run has ended, its fetch. `kjob push --wait`,
`kjob status --watch` and `kjob demo` all follow runs this way; the printing is theirs."""

from collections.abc import Callable
from dataclasses import dataclass

from kjob.backends import get_backend
from kjob.backends.base import Backend
from kjob.errors import KjobError
from kjob.lifecycle.fetch import FetchReport, fetch_run
from kjob.lifecycle.watch import LogTail, Progress, watch
from kjob.runs.ledger import Ledger
from kjob.runs.record import Run
from kjob.workspace import Workspace


@dataclass(frozen=True)
class WatchUpdate:
    """One poll of a followed run: the run as now recorded, the seconds spent watching, whether
    its status changed, and the new log lines (`skipped`: how many more were left out, past
    `watch.LOG_LINES_PER_POLL`)."""

    run: Run
    elapsed: float
    status_changed: bool
    skipped: int = 0
    lines: tuple[str, ...] = ()


class StoppedWatching(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) while following a run: watching stops, the run goes on. `run` is
    the run as it was when following began."""

    def __init__(self, run: Run):
        super().__init__()
        self.run = run


def log_progress(backend: Backend, on_update: Callable[[WatchUpdate], None]) -> Progress:
    """A `watch` progress callback that reads what the run's log gained since the last poll
    (`Backend.log_since`: the new bytes, not the whole log) and hands `on_update` what changed.

    The log is read after the status, so a run seen ended has written all of it; and on the
    poll that sees the end, its last lines are handed on before the final status, in an update
    of their own: whoever prints them prints every log line before the line that says the run
    ended."""
    last_status = None
    tail, cursor = LogTail(), 0

    def progress(run: Run, elapsed: float) -> None:
        nonlocal last_status, cursor
        changed, last_status = run.state.status != last_status, run.state.status
        try:
            entries, cursor = backend.log_since(run, cursor)
        except KjobError:  # the log is a nicety while watching; the status is what counts
            on_update(WatchUpdate(run, elapsed, changed))
            return
        skipped, lines = tail.take(entries, run.state.final)
        if run.state.final and changed and (skipped or lines):
            on_update(WatchUpdate(run, elapsed, False, skipped, tuple(lines)))
            skipped, lines = 0, []
        on_update(WatchUpdate(run, elapsed, changed, skipped, tuple(lines)))

    return progress


def follow_run(ledger: Ledger, backend: Backend, run: Run,
               on_update: Callable[[WatchUpdate], None] | None = None) -> Run:
    """Watch the run to its end, handing `on_update` each poll; Ctrl-C raises StoppedWatching."""
    try:
        return watch(ledger, backend, run, on_progress=log_progress(backend, on_update) if on_update else None)
    except KeyboardInterrupt as exc:
        raise StoppedWatching(run) from exc


def follow_and_fetch(ws: Workspace, run: Run, on_update: Callable[[WatchUpdate], None] | None = None) -> FetchReport:
    """Follow a pushed run to its end, then fetch it: status and log whatever the ending (Kaggle
    keeps only the latest version's), the output files when it completed. `kjob push --wait`
    and `kjob demo` both call it."""
    with Ledger(ws.paths.ledger) as ledger:
        backend = get_backend(ws, run.backend)
        run = follow_run(ledger, backend, run, on_update)
        return fetch_run(ws, ledger, backend, run, outputs=run.state.status == "complete")
