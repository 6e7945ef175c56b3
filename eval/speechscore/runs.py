"""Evaluating a recorded run: its fetched best.pt and a report named after it. (Storing the
scores in the ledger is the toolkit's job: `kjob.cli.evaluate.record_scores`.)"""

from pathlib import Path

from kjob.errors import NotFoundError
from kjob.paths import version_label


def report_name(run) -> str:
    """r3-dpt-v3 for Kaggle runs, r3-dpt-local-v3 for local ones."""
    return f"{run.kernel}-{version_label(run.backend, run.version, run.incarnation)}"


def run_checkpoint(ws, run) -> Path:
    """The fetched best.pt of a run, or a NotFoundError that says how to fetch it."""
    best = ws.paths.download(run.kernel, run.backend, run.version, run.incarnation).best_checkpoint
    if not best.is_file():
        raise NotFoundError(f"{run.ref} has no fetched checkpoint at {ws.paths.relative(best)}: run "
                            f"`kjob fetch {run.kernel} --version {run.version} --backend {run.backend} --output` first")
    return best


def evaluate_run(ws, run, data: Path, progress=None, **options) -> dict:
    """Evaluate a run's best.pt on `data` into eval/reports/<report_name(run)> (or
    options["out"]) and return the summary.

    options: other EvalRequest fields (report, save_audio, pesq_nb, jobs, model, name, out)."""
    from speechscore.runner import EvalRequest, evaluate

    name = options.pop("name", None) or report_name(run)
    out = options.pop("out", None) or ws.paths.report(name)
    provenance = {"run": run.kernel, "version": run.version, "backend": run.backend, "run_label": run.ref}
    request = EvalRequest(data=Path(data), out=Path(out), checkpoint=run_checkpoint(ws, run), name=name,
                          cache_dir=ws.paths.eval_cache, provenance=provenance, **options)
    return evaluate(request, progress=progress)
