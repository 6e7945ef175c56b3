"""Which run a command means: NAME with --version and --backend (`kjob status`, `logs`,
`fetch`, `cancel`), reconciling interrupted pushes on the way, and the recent runs
`kjob status` lists, refreshed where asking is cheap."""

from dataclasses import dataclass

from kjob.backends import get_backend
from kjob.backends.base import Backend
from kjob.errors import KjobError, NotFoundError, UsageError
from kjob.lifecycle.watch import refresh
from kjob.runs.ledger import Ledger
from kjob.runs.record import Run
from kjob.workspace import Workspace


@dataclass
class FoundRun:
    """A run found for a command, with the ledger (open: the caller closes it) and the backend
    it ran on."""

    ledger: Ledger
    backend: Backend
    run: Run


def find_run(ws: Workspace, name: str, version: int | None = None, backend_name: str | None = None,
             need_version: bool = True) -> FoundRun:
    """The run NAME [--version N] [--backend B] refers to (the latest when no version).

    A run still `submitting` is reconciled first; with `need_version` (logs, fetch, cancel) a
    run the backend has not confirmed yet is refused, and when the latest row is a push that
    never reached the backend, the latest real run is meant."""
    ledger = Ledger(ws.paths.ledger)
    try:
        return _find(ws, ledger, name, version, backend_name, need_version)
    except BaseException:
        ledger.close()
        raise


def _find(ws: Workspace, ledger: Ledger, name: str, version: int | None, backend_name: str | None,
          need_version: bool) -> FoundRun:
    try:
        run = ledger.find(name, version, backend_name)
    except NotFoundError:
        # The version may belong to an interrupted push whose row has none yet: reconcile those.
        pending = [r for r in ledger.runs(name, unfinished_only=True) if r.version is None]
        for row in pending:
            refresh(ledger, get_backend(ws, row.backend), row)
        if not pending:
            raise
        run = ledger.find(name, version, backend_name)
    backend = get_backend(ws, run.backend)
    if need_version and version is None and run.version is None and run.state.final:
        # The latest row is a push that never reached the backend: the latest real run is meant.
        real = [r for r in ledger.runs(name, limit=50) if r.version is not None
                and (backend_name is None or r.backend == backend_name)]
        if real:
            run, backend = real[0], get_backend(ws, real[0].backend)
    if need_version and run.version is None:
        run = refresh(ledger, backend, run)
        if run.version is None:
            raise UsageError(f"{run.ref}: {backend.name} has not confirmed this push ({run.state.status}); "
                             f"see `kjob status {run.kernel}`")
    return FoundRun(ledger, backend, run)


@dataclass(frozen=True)
class ListedRun:
    """One run of the recent runs: `asked` whether its backend was asked for its status now
    (a final run needs no asking), `problem` why asking failed."""

    run: Run
    asked: bool
    problem: str | None = None

    @property
    def as_last_seen(self) -> bool:
        """Not ended, and shown as the ledger last saw it."""
        return not self.asked and not self.run.state.final


def recent_runs(ws: Workspace, limit: int = 20) -> list[ListedRun]:
    """The latest `limit` runs, newest first. Only backends whose status is cheap to ask (local
    ones) are asked, and rows left `submitting` are reconciled; remote runs are listed as last
    seen, so that the list stays instant offline."""
    listed = []
    with Ledger(ws.paths.ledger) as ledger:
        for run in ledger.runs(limit=limit):
            backend = get_backend(ws, run.backend)
            if run.state.final or not (backend.status_is_cheap or run.state.status == "submitting"):
                listed.append(ListedRun(run, asked=False))
                continue
            try:
                listed.append(ListedRun(refresh(ledger, backend, run), asked=True))
            except KjobError as exc:
                listed.append(ListedRun(run, asked=True, problem=exc.message))
    return listed
