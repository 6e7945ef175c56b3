"""`kjob push`: make sure the kernel is built from the current sources, send it, record the run."""

from dataclasses import dataclass

from kjob.backends import get_backend
from kjob.backends.base import Submission
from kjob.build import plan_build, write_kernel
from kjob.errors import PushedWithProblem
from kjob.ledger import Ledger
from kjob.recipe import ParamValue
from kjob.runs import Run
from kjob.workspace import Workspace


@dataclass(frozen=True)
class PushOutcome:
    run: Run
    rebuilt: bool  # kernels/NAME was stale (sources or parameters changed) and was rebuilt


def push_kernel(ws: Workspace, name: str, backend_name: str, overrides: dict[str, ParamValue] | None = None,
                timeout: int | None = None, force: bool = False) -> PushOutcome:
    backend = get_backend(ws, backend_name)
    plan = plan_build(ws, name, overrides)
    kernel = ws.paths.kernel(name)
    current = kernel.notebook.read_text(encoding="utf-8") if kernel.notebook.is_file() else None
    rebuilt = current != plan.notebook_text
    if rebuilt:
        write_kernel(ws, plan)
    submission = Submission(
        recipe=plan.recipe,
        folder=kernel.folder,
        notebook=plan.notebook,
        metadata=plan.metadata,
        session_timeout=timeout or plan.recipe.session_timeout,
        force=force,
    )
    try:
        submitted = backend.submit(submission)
    except PushedWithProblem as exc:
        _record(ws, name, backend.name, plan, overrides, exc.submitted)  # it exists remotely
        raise
    return PushOutcome(_record(ws, name, backend.name, plan, overrides, submitted), rebuilt)


def _record(ws: Workspace, name: str, backend_name: str, plan, overrides, submitted) -> Run:
    git = plan.record["git"]
    with Ledger(ws.paths.ledger) as ledger:
        return ledger.record(
            kernel=name, backend=backend_name, version=submitted.version,
            notebook_sha256=plan.notebook_sha256, parameters=submitted.parameters,
            overrides=overrides or {}, git_commit=git["commit"], git_dirty=git["dirty"],
            handle=submitted.handle, state=submitted.state,
        )
