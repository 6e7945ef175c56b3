"""Following a run to its end: poll the backend on its backoff schedule, record each answer,
and hand on every new log line."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kjob.backends.base import Backend, LogEntry
from kjob.errors import RunGone
from kjob.runs.ledger import Ledger
from kjob.runs.record import Run, RunStatus

Progress = Callable[[Run, float], None]  # (run as now recorded, seconds spent watching)


def refresh(ledger: Ledger, backend: Backend, run: Run) -> Run:
    """The run with its backend's current status recorded (final runs are not asked again).

    A row left `submitting` by an interrupted push is reconciled first; a run whose remote
    kernel no longer exists is marked gone (and cancelled, if it had not ended)."""
    if run.state.final:
        return run
    if run.state.status == "submitting":
        from kjob.lifecycle.push import reconcile

        run = reconcile(ledger, backend, run)
        if run.state.status == "submitting" or run.state.final:
            return run
    try:
        return ledger.update(run, backend.status(run))
    except RunGone as exc:
        run = ledger.mark_gone(run)
        return ledger.update(run, RunStatus("cancelled", "kernel gone", failure_message=exc.message))


def watch(ledger: Ledger, backend: Backend, run: Run, on_progress: Progress | None = None,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
          rng=None) -> Run:
    """Poll until the run is final. Ctrl-C (KeyboardInterrupt) stops watching, not the run.

    Where alike runs ended before (`expected_span`), the checks are dense around the moment
    this one should end and sparse before it (kjob.polling), as a sweep's are."""
    span = expected_span(ledger, run)
    expected = spread = None
    if span is not None:
        expected, spread = span[0] - (time.time() - run.created_at), span[1]
    delays = backend.poll.delays(rng, expected, spread)
    began = clock()
    while True:
        run = refresh(ledger, backend, run)
        if on_progress is not None:
            on_progress(run, clock() - began)
        if run.state.final:
            return run
        sleep(next(delays))


# How many of the recipe's latest complete runs judge when a run of it should end.
ALIKE_RUNS = 20


def expected_span(ledger: Ledger, run: Run) -> tuple[float, float] | None:
    """(median, spread) of the seconds from push to end that the latest complete runs of the
    run's recipe on its backend took (the spread: 1.48 median absolute deviations, from 3
    runs on; None with fewer: a tenth of the median); None before any completed."""
    from kjob.runs.record import recipe_name

    recipe, spans = recipe_name(run.kernel), []
    # newest first, a bounded read: a ledger of 100,000 runs is not loaded to time one
    rows = ledger.read("SELECT kernel, created_at, finished_at FROM runs WHERE backend=? AND status='complete'"
                       " AND finished_at IS NOT NULL AND id<>? ORDER BY id DESC LIMIT 2000", (run.backend, run.id))
    for row in rows:
        if recipe_name(row["kernel"]) == recipe and row["finished_at"] > row["created_at"]:
            spans.append(row["finished_at"] - row["created_at"])
            if len(spans) == ALIKE_RUNS:
                break
    if not spans:
        return None
    median = statistics.median(spans)
    spread = 1.4826 * statistics.median(abs(s - median) for s in spans) if len(spans) >= 3 else None
    return median, spread


# At most this many new lines are handed on per poll; the rest are counted in one marker
# line, so a flood neither scrolls a terminal for minutes nor goes missing silently.
LOG_LINES_PER_POLL = 200


def log_lines(entries: list[LogEntry], final: bool) -> list[str]:
    """The log as whole lines in order, stderr ones marked `[stderr]`.

    A line still being written (no newline yet) is held back until it is complete, or the
    run has ended; of a line rewritten with carriage returns (a progress bar), its last
    state. Blank lines carry nothing and are left out."""
    return LogTail(limit=None).lines(entries, final)


@dataclass
class LogTail:
    """The lines of a growing log, fed its new entries only: `take` returns (number of lines
    left out, lines to show) of the entries handed since the previous call. What it keeps is
    the line each stream is still writing, so a poll costs its new entries, not the log."""

    limit: int | None = LOG_LINES_PER_POLL
    pending: dict[str, str] = field(default_factory=dict)  # stream -> its line without a newline yet

    def lines(self, entries: list[LogEntry], final: bool) -> list[str]:
        lines, pending = [], self.pending
        for entry in entries:
            text = pending.pop(entry.stream, "") + entry.text
            *complete, rest = text.split("\n")
            lines += [(entry.stream, line) for line in complete]
            if rest:
                pending[entry.stream] = rest
        if final:
            lines += list(pending.items())
            pending.clear()
        shown = []
        for stream, line in lines:
            line = line.rstrip("\r").rsplit("\r", 1)[-1]
            if line.strip():
                shown.append(f"[stderr] {line}" if stream == "stderr" else line)
        return shown

    def take(self, entries: list[LogEntry], final: bool) -> tuple[int, list[str]]:
        new = self.lines(entries, final)
        skipped = max(0, len(new) - self.limit) if self.limit is not None else 0
        return skipped, new[skipped:]


def unfinished_runs(backend: Backend, keep, offline: bool = False) -> list[Run]:
    """The ledger's runs on `backend` that `keep(run)` selects and that have not ended, each
    asked afresh (unless `offline`); a run whose kernel is gone no longer counts."""
    from kjob.errors import NotFoundError

    found = []
    with Ledger(backend.ws.paths.ledger) as ledger:
        for run in ledger.runs(unfinished_only=True):
            if run.backend != backend.name or not keep(run):
                continue
            if not offline:
                try:
                    run = refresh(ledger, backend, run)
                except NotFoundError:
                    continue  # its kernel is gone, and its session with it
            if not run.state.final:
                found.append(run)
    return found
