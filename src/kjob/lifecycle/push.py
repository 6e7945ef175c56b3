"""`kjob push`: make sure the kernel is built from the current sources, send it, record the run.

The ledger comes first: its row is written (`submitting`) before the backend is asked, and
completed with the backend's answer. A push interrupted in between leaves that row, and
`reconcile` later finds the run by the push's token (or learns that it never started).
"""

import os
import secrets
from dataclasses import dataclass

from kjob import notebook as nbk
from kjob.backends import get_backend
from kjob.backends.base import Backend, Submission
from kjob.build.plan import plan_build, write_kernel
from kjob.backends import BACKENDS
from kjob.build.recipe import load_recipe
from kjob.errors import BackendError, ConfigError, KjobError, NoRoom, PushedWithProblem, QuotaLow, UsageError
from kjob.lifecycle.inputs import resolve_inputs
from kjob.runs.lineage import VersionName, complete_run_with
from kjob.runs.ledger import Ledger
from kjob.build.kernel_metadata import LaneKernel
from kjob.build.params import resolve_parameters
from kjob.procs import alive, kill_point, start_time
from kjob.build.recipe import ParamValue
from kjob.build.provenance import keep_notebook, run_signature
from kjob.runs.record import PushRecord, Run, RunNotes, RunStatus
from kjob.workspace import Workspace


@dataclass(frozen=True)
class PushOutcome:
    run: Run
    rebuilt: bool  # kernels/NAME was stale (sources or parameters changed) and was rebuilt
    warnings: tuple[str, ...] = ()  # the build's warnings (e.g. literal /kaggle paths)
    reused: bool = False  # `push --reuse`: `run` is a complete run of the same signature; nothing was sent


@dataclass(frozen=True)
class MemberTag:
    """A push made for a campaign member (`kjob sweep`), recorded with its run. `lane`: on a
    backend that serves only a kernel's latest version (Kaggle), the lane's own kernel
    to push to instead of the recipe's."""

    campaign: str
    stage: str
    lane: LaneKernel | None = None


def push_kernel(ws: Workspace, name: str, backend_name: str, overrides: dict[str, ParamValue] | None = None,
                timeout: int | None = None, force: bool = False, notes: RunNotes | None = None,
                member: MemberTag | None = None, inputs: tuple[str, ...] = (),
                resume_from: str | None = None, reuse: bool = False) -> PushOutcome:
    """`inputs`: runs whose outputs the run is given (KERNEL[:vN][@BACKEND], besides the
    recipe's `inputs`); `resume_from`: a version of NAME given as an input, and the recipe's
    [resume] parameter set to where it is mounted (kjob.lifecycle.inputs); `reuse`: a complete
    run of the recipe with the same signature (sources, parameters, backend, inputs) is
    answered instead of pushing (nothing written or sent)."""
    with Ledger(ws.paths.ledger) as ledger:  # a ledger that cannot be opened stops the push here
        backend = get_backend(ws, backend_name)
        given, overrides = _inputs(ws, ledger, name, backend.name, inputs, resume_from, overrides)
        plan = plan_build(ws, name, overrides)
        kernel = ws.paths.kernel(name)
        current = kernel.notebook.read_text(encoding="utf-8") if kernel.notebook.is_file() else None
        rebuilt = current != plan.notebook_text
        parameters = resolve_parameters(ws, plan.recipe, backend.name, overrides)
        token = secrets.token_hex(8)
        notebook = nbk.parameterize(plan.notebook, parameters)
        notebook["metadata"]["kjob"]["submission"] = token
        run_kernel, metadata = name, plan.metadata
        lane = member.lane if member else None
        if lane is not None:  # the same notebook, sent to the lane's kernel (its id and title agree)
            run_kernel = lane.kernel
            metadata = {**plan.metadata, "id": f"{ws.owner()}/{lane.slug}", "title": lane.title}
        submission = Submission(
            recipe=plan.recipe, folder=kernel.folder, notebook=notebook, metadata=metadata,
            session_timeout=timeout or plan.recipe.session_timeout, parameters=parameters, token=token,
            first_version=ledger.next_version(run_kernel, backend.name), force=force, inputs=given,
        )
        signature = run_signature(plan.recipe, plan.record["sources"], parameters, backend.name,
                                  [item.record for item in given])
        same = complete_run_with(ledger, signature, name) if reuse else None
        if same is not None:
            return PushOutcome(same, False, plan.warnings, reused=True)
        backend.preflight(submission)  # the platform's limits: a refusal leaves nothing written or recorded
        backend.publish_inputs(submission)  # before the row: a kill leaves none (Kaggle: model versions)
        if rebuilt:
            write_kernel(ws, plan)
        git = plan.record["git"]
        # Kept by its hash (the ledger's), so that `kjob runs diff` can compare two runs' sources.
        keep_notebook(ws, plan.notebook_sha256, plan.notebook_text)
        run = ledger.begin(PushRecord(
            kernel=run_kernel, backend=backend.name, notebook_sha256=plan.notebook_sha256, parameters=parameters,
            overrides=overrides or {}, git_commit=git["commit"], git_dirty=git["dirty"], token=token,
            handle={"accelerator": plan.recipe.accelerator},
            submitter={"pid": os.getpid(), "start": start_time(os.getpid())}, notes=notes,
            signature=signature, campaign=member.campaign if member else None, stage=member.stage if member else None,
            inputs=tuple(item.record.as_dict() for item in given)))
        kill_point("push:begun")
        run = _submit(ledger, backend, run, submission)
        return PushOutcome(run, rebuilt, plan.warnings + tuple(backend.push_notes(submission)))


def _inputs(ws: Workspace, ledger: Ledger, name: str, backend_name: str, refs, resume_from, overrides):
    """The push's inputs, resolved and fetched (refused before anything is written), and the
    overrides with the resume parameter set to where `resume_from`'s outputs are mounted."""
    recipe = load_recipe(ws, name)
    refs = [*recipe.inputs, *refs]
    if (refs or resume_from) and not get_backend(ws, backend_name).mounts_inputs:
        raise ConfigError(f"the {backend_name} backend cannot give a run another run's outputs pinned to a version "
                          "yet (push --input, --resume-from, a recipe's inputs): push to local or ray")
    if resume_from is not None:
        if recipe.resume_parameter is None:
            raise UsageError(f"--resume-from: {recipe.name}'s recipe names no resume parameter: add "
                             '[resume] parameter = "..." (the parameter that takes a checkpoint folder)')
        named = VersionName.parse(resume_from, BACKENDS)
        refs.append(f"{name}:{resume_from}" if named.backend else f"{name}:v{named.version}")
    given = get_backend(ws, backend_name).place_inputs(resolve_inputs(ws, ledger, refs, backend_name))
    if resume_from is not None:
        wanted = resolve_inputs(ws, ledger, refs[-1:], backend_name)[0].record
        wanted = next(item.record for item in given if item.record.is_run(wanted))  # where this backend mounts it
        overrides = {**(overrides or {}), recipe.resume_parameter: f"/kaggle/input/{wanted.mounts[0]}"}
    return given, overrides


def check_room(backend: Backend, submission: Submission) -> None:
    """The backend's own limits, judged with the ledger before anything is sent (unless
    forced): as many unfinished runs as its enforced capacity holds (Kaggle's two GPU
    sessions; this push's own row aside), or less quota left than the session may take."""
    if submission.force:
        return
    recipe = submission.recipe
    capacity = backend.capacity(recipe)
    if capacity is not None and capacity.enforced and capacity.limit is not None:
        from kjob.lifecycle.watch import unfinished_runs

        busy = unfinished_runs(backend, lambda run: capacity.counts(run) and run.token != submission.token)
        if len(busy) >= capacity.limit:
            names = ", ".join(run.ref for run in sorted(busy, key=lambda r: (r.kernel, r.version or 0)))
            raise NoRoom(f"{len(busy)} {capacity.what} have not finished ({names}), and {capacity.why} are all "
                         "taken: wait for one (kjob status NAME --watch), or push with --force")
    left = backend.quota_left(recipe)
    if left is not None and left < submission.session_timeout:
        kind = recipe.accelerator.upper()
        raise QuotaLow(f"only {hours(max(left, 0))} of {kind} quota left, less than the "
                       f"{hours(submission.session_timeout)} session timeout of {recipe.name}: {backend.name} "
                       "would stop the run when the quota runs out; lower session_timeout (or push --timeout "
                       "SECONDS), or push with --force")


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _submit(ledger: Ledger, backend: Backend, run: Run, submission: Submission) -> Run:
    try:
        check_room(backend, submission)
    except KjobError:
        ledger.forget(run)  # refused before anything was sent
        raise
    try:
        submitted = backend.submit(submission)
    except PushedWithProblem as exc:  # it exists remotely: record it, then report the problem
        ledger.complete_submission(run, exc.submitted)
        raise
    except BackendError as exc:
        # The request may have reached the backend (a timeout, a dropped answer): ask.
        try:
            found = backend.find_submission(run.kernel, run.token)
        except KjobError:
            raise exc from None  # the row stays `submitting`; `kjob status` asks again later
        if found is None:
            ledger.forget(run)
        else:
            ledger.complete_submission(run, found)
        raise
    except KjobError:
        ledger.forget(run)  # refused before anything was sent (configuration, quota, ...)
        raise
    kill_point("push:submitted")
    return ledger.complete_submission(run, submitted)


def reconcile(ledger: Ledger, backend: Backend, run: Run, push_over: bool = False) -> Run:
    """A `submitting` row completed from what the backend has, or closed if it has nothing.

    While the pushing process is alive its push may still be on its way: the row is left,
    unless `push_over` (the caller is that process, and its push has returned)."""
    if run.state.status != "submitting":
        return run
    found = backend.find_submission(run.kernel, run.token) if run.token else None
    if found is not None:
        return ledger.complete_submission(run, found)
    if not push_over and alive(run.submitter.get("pid"), run.submitter.get("start")):
        return run
    return ledger.update(run, RunStatus(
        "error", "never submitted", "infrastructure",
        f"the push was interrupted before {backend.name} accepted it; nothing runs (push again)"))
