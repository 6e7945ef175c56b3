"""Following a run to its end: poll the backend on its backoff schedule, record each answer."""

import time
from collections.abc import Callable

from kjob.backends.base import Backend
from kjob.errors import RunGone
from kjob.ledger import Ledger
from kjob.runs import Run, RunStatus

Progress = Callable[[Run, float], None]  # (run as now recorded, seconds spent watching)


def refresh(ledger: Ledger, backend: Backend, run: Run) -> Run:
    """The run with its backend's current status recorded (final runs are not asked again).

    A row left `submitting` by an interrupted push is reconciled first; a run whose remote
    kernel no longer exists is marked gone (and cancelled, if it had not ended)."""
    if run.state.final:
        return run
    if run.state.status == "submitting":
        from kjob.push import reconcile

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
