"""An evaluation's scores, kept in the ledger with the run they score."""

from kjob.runs.ledger import Ledger
from kjob.runs.metrics import declared
from kjob.runs.record import Run
from kjob.workspace import Workspace


def record_scores(ws: Workspace, run: Run, summary: dict) -> Run:
    """Put what an evaluation declares about the run (summary.json's `run_metrics`: its
    scores, the columns to show, which way each is better) next to it in the ledger, as its
    `evaluation` metrics; `kjob runs` shows them without knowing what they measure. Returns
    the run as now recorded."""
    values, spec = declared(summary.get("run_metrics"))
    with Ledger(ws.paths.ledger) as ledger:
        return ledger.set_metrics(ledger.get(run.id), values, "evaluation", spec)
