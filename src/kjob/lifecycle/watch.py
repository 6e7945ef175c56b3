"""Following a run to its end: poll the backend on its backoff schedule, record each answer,
and hand on every new log line."""

import time
from collections.abc import Callable
from dataclasses import dataclass

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
    """Poll until the run is final. Ctrl-C (KeyboardInterrupt) stops watching, not the run."""
    delays = backend.poll.delays(rng)
    began = clock()
    while True:
        run = refresh(ledger, backend, run)
        if on_progress is not None:
            on_progress(run, clock() - began)
        if run.state.final:
            return run
        sleep(next(delays))


# At most this many new lines are handed on per poll; the rest are counted in one marker
# line, so a flood neither scrolls a terminal for minutes nor goes missing silently.
LOG_LINES_PER_POLL = 200


def log_lines(entries: list[LogEntry], final: bool) -> list[str]:
    """The log as whole lines in order, stderr ones marked `[stderr]`.

    A line still being written (no newline yet) is held back until it is complete, or the
    run has ended; of a line rewritten with carriage returns (a progress bar), its last
    state. Blank lines carry nothing and are left out."""
    lines, pending = [], {}
    for entry in entries:
        text = pending.pop(entry.stream, "") + entry.text
        *complete, rest = text.split("\n")
        lines += [(entry.stream, line) for line in complete]
        if rest:
            pending[entry.stream] = rest
    if final:
        lines += list(pending.items())
    shown = []
    for stream, line in lines:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        if line.strip():
            shown.append(f"[stderr] {line}" if stream == "stderr" else line)
    return shown


@dataclass
class LogTail:
    """The lines of a growing log not yet handed on: `take` returns (number of lines left
    out, lines to show) since the previous call."""

    limit: int = LOG_LINES_PER_POLL
    seen: int = 0

    def take(self, entries: list[LogEntry], final: bool) -> tuple[int, list[str]]:
        lines = log_lines(entries, final)
        new = lines[self.seen:]
        self.seen = max(self.seen, len(lines))
        skipped = max(0, len(new) - self.limit)
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
