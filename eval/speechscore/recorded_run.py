"""Evaluating a recorded run: its fetched best.pt and a report named after it. (Storing the
scores in the ledger is the toolkit's job: `kjob.runs.scores.record_scores`.)"""

from pathlib import Path

from kjob.errors import NotFoundError
from kjob.paths import version_label


def report_name(run) -> str:
    """What a run's evaluations are labelled: r3-dpt-v3 for Kaggle runs, r3-dpt-local-v3 for
    local ones (the report folder adds the test set, speechscore.naming)."""
    return f"{run.kernel}-{version_label(run.backend, run.version, run.incarnation)}"


def run_checkpoint(ws, run) -> Path:
    """The fetched best.pt of a run, or a NotFoundError that says how to fetch it."""
    best = ws.paths.download(run.kernel, run.backend, run.version, run.incarnation).best_checkpoint
    if not best.is_file():
        raise NotFoundError(f"{run.ref} has no fetched checkpoint at {ws.paths.relative(best)}: run "
                            f"`kjob fetch {run.kernel} --version {run.version} --backend {run.backend} --output` first")
    return best


def evaluate_run(ws, run, data: Path, progress=None, **options) -> dict:
    """Evaluate a run's best.pt on `data` and return the summary (its "folder" says where
    it was written): by default under eval/reports/, named after the run and the test set
    (`r3-dpt-v3--demo-1a2b3c4d`, see speechscore.naming), or in options["out"].

    options: other EvalRequest fields (report, save_audio, pesq_nb, jobs, model, out, replace)."""
    from speechscore.runner import EvalRequest, evaluate

    out = options.pop("out", None)
    provenance = {"run": run.kernel, "version": run.version, "backend": run.backend, "run_label": run.ref}
    request = EvalRequest(data=Path(data), out=Path(out) if out else None, checkpoint=run_checkpoint(ws, run),
                          reports=ws.paths.reports, label=report_name(run), cache_dir=ws.paths.eval_cache,
                          provenance=provenance, **options)
    return evaluate(request, progress=progress)
