"""Commands of the local evaluator: eval-local and compare. The evaluator (speechscore,
torch, pesq) is imported inside the commands only."""

import json
import re
from pathlib import Path

import click

from kjob.backends import BACKENDS
from kjob.cli.common import ProgressPrinter, run_args, workspace
from kjob.cli.format import duration, table
from kjob.errors import ConfigError, UsageError
from kjob.extras import require_speech, speech_installed

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _find_run(ws, spec: str, backend: str | None):
    from kjob.runs.ledger import Ledger

    kernel, version, backend = run_args(spec, None, backend)  # NAME, NAME:v3, NAME:local-v3, NAME@ray:v2
    with Ledger(ws.paths.ledger) as ledger:
        return ledger.find(kernel, version, backend)


def _print_summary(summary: dict, out: Path, ws) -> None:
    p = summary["provenance"]
    what = p.get("run_label") or p.get("checkpoint") or p.get("enhanced_dir") or "-"
    if p.get("parameters"):
        what += f" ({p['model']}, {p['parameters'] / 1e6:.2f} M parameters)"
    failed = summary["utterances_with_failures"]
    click.echo(f"evaluated {summary['count']} utterances ({summary['data']['source']}) of {what} in "
               f"{duration(summary['timing']['total_s'])}; {failed} with values that could not be computed")
    rows = []
    intervals = summary.get("improvement_intervals") or {}
    for m in summary["metrics"]:
        f = summary["failures"]
        ci = intervals.get(m) or {}
        bounds = "-" if ci.get("low") is None else f"{_num(ci['low'], signed=True)} to {_num(ci['high'], signed=True)}"
        rows.append([m, _num(summary["means"]["noisy"][m]), _num(summary["means"]["enhanced"][m]),
                     _num(summary["improvements"][m], signed=True), bounds,
                     f"{f['noisy'][m]['count']}/{f['enhanced'][m]['count']}"])
    click.echo(table(["METRIC", "NOISY", "ENHANCED", "IMPROVEMENT", "95% CI", "FAILURES"], rows))
    changes = summary["changes"]["any"]
    click.echo(f"utterances improved {changes['improved']}, unchanged {changes['unchanged']}, "
               f"worse on some metric {changes['worse']}")
    ceiling = summary.get("si_sdr_ceiling")
    if ceiling and ceiling["enhanced"]["count"]:
        click.echo(f"SI-SDR without the {ceiling['enhanced']['count']} enhanced value(s) at the numerical ceiling: "
                   f"enhanced {_num(ceiling['enhanced']['mean_without'])}, "
                   f"improvement {_num(ceiling['improvement_without'], signed=True)}")
    written = ", ".join(v.rstrip("/") for v in summary["outputs"].values() if v)
    where = ws.paths.relative(out) if ws else str(out)
    click.echo(f"wrote {where}/: {written}")


def print_warnings(warnings: list[str], limit: int = 10) -> None:
    """Each of an evaluation's warnings as a `warning:` line on stderr (where the model hurts
    first), at most `limit` of them; `kjob demo` can show its evaluation's the same way."""
    for warning in warnings[:limit]:
        click.echo(f"warning: {warning}", err=True)
    if len(warnings) > limit:
        click.echo(f"warning: ... and {len(warnings) - limit} more (see warnings in summary.json)", err=True)


def _num(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


@click.command("eval-local", hidden=not speech_installed())
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Test set: a folder (noisy/+clean/, test/+y_test/, nested, .zip/.7z archives) or a CSV with columns noisy,clean.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="A checkpoint file (training dict or plain state_dict).")
@click.option("--run", "run_spec", metavar="NAME[:vN]", default=None, help="The best.pt of a fetched run (latest version by default).")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default=None, help="Which backend's run, for --run.")
@click.option("--enhanced", type=click.Path(path_type=Path), default=None, help="Score already-enhanced files (matched by name) instead of a model.")
@click.option("--model", "model_name", metavar="NAME", default=None, help="Architecture of a plain state_dict (crn, dpt).")
@click.option("--save-audio", is_flag=True, help="Also write the enhanced WAVs (float) to OUT/enhanced/.")
@click.option("--pesq-nb", is_flag=True, help="Add narrow-band PESQ.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Scoring processes (default: all cores).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output folder (default: eval/reports/NAME).")
@click.option("--name", default=None,
              help="Report name (default: what was evaluated and the test set, e.g. r3-dpt-v3--demo-1a2b3c4d).")
@click.option("--replace", is_flag=True, help="Let --name or --out replace the evaluation report already there.")
@click.option("--report", is_flag=True, help="Also write report.html with players and spectrograms.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
@click.option("--compare", "show_compare", is_flag=True, help="Print the table across all evaluations (alone: only that).")
def eval_local(data, checkpoint, run_spec, backend, enhanced, model_name, save_audio, pesq_nb, jobs, out, name,
               replace, report, as_json, show_compare):
    """Score a model (or enhanced files) on a test set with PESQ, STOI, ESTOI and SI-SDR,
    per utterance and overall, on the CPU, with 95 % bootstrap intervals of the mean
    improvements. Warnings come first: a mean improvement below zero, more than a tenth of
    the utterances worse (by noise kind, SNR band and voice where the data name them), a
    checkpoint from an epoch below 3, stereo files averaged to mono. A report never
    replaces another evaluation's (an existing --name or --out needs --replace). Exit
    code: 0 done, 2 bad options, 3 unusable data or checkpoint (one line naming the file
    and the bad key), 4 not found.

    Example: kjob eval-local --data data/demo --run r3-dpt:v3 --report
    """
    require_speech("eval-local")
    sources = [s for s in (checkpoint, run_spec, enhanced) if s is not None]
    if show_compare and data is None and not sources:
        click.echo(_compare_text("markdown"), nl=False)
        return
    _check_options(sources, data, model_name, enhanced, name, out)
    try:
        ws = workspace()
    except ConfigError as exc:
        if run_spec is not None:
            raise
        if out is None:
            raise ConfigError(f"{exc.message}; outside a workspace, name the output folder with --out") from None
        ws = None  # --checkpoint/--enhanced with --out work outside a workspace (no cache)
    if name is not None:
        out = ws.paths.report(name)
    options = {"save_audio": save_audio, "pesq_nb": pesq_nb, "report": report, "jobs": jobs, "replace": replace}
    if run_spec is not None:
        from kjob.runs.scores import record_scores
        from speechscore.recorded_run import evaluate_run

        run = _find_run(ws, run_spec, backend)
        summary = evaluate_run(ws, run, data, progress=ProgressPrinter(), out=out, model=model_name, **options)
        record_scores(ws, run, summary)
    else:
        from speechscore.runner import EvalRequest, evaluate

        request = EvalRequest(data=data, out=out, checkpoint=checkpoint, model=model_name, enhanced=enhanced,
                              cache_dir=ws.paths.eval_cache if ws else None,
                              reports=ws.paths.reports if ws else None, **options)
        summary = evaluate(request, progress=ProgressPrinter())
    folder = Path(summary.pop("folder"))
    print_warnings(summary["warnings"])
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_summary(summary, folder, ws)
    if show_compare:
        # Outside a workspace, the reports beside this one are the ones to compare.
        reports = ws.paths.reports if ws else folder.parent
        click.echo(_compare_text("markdown", reports), nl=False, err=as_json)


def _check_options(sources: list, data, model_name, enhanced, name, out) -> None:
    """eval-local's options that do not go together, or are missing, in one line each."""
    if len(sources) != 1:
        raise UsageError("give exactly one of --checkpoint FILE, --run NAME[:vN] or --enhanced DIR")
    if data is None:
        raise UsageError("--data DIR is needed: the folder, archive or CSV manifest of the test set")
    if model_name is not None and enhanced is not None:
        raise UsageError("--model applies to a checkpoint, not to --enhanced files")
    if name is not None and out is not None:
        raise UsageError("give --name or --out, not both")
    if name is not None and not _NAME.match(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")


def _compare_text(fmt: str, reports: Path | None = None) -> str:
    from speechscore.compare import compare

    return compare(reports or workspace().paths.reports, fmt)


@click.command("compare", hidden=not speech_installed())
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv"]), default="markdown", show_default=True)
def compare_command(fmt):
    """Print the comparison of all evaluations in eval/reports, noisy input first.

    Columns: run, model, parameters, PESQ-WB, STOI, ESTOI, SI-SDR and their improvements;
    each test set gets its own table.

    Example: kjob compare --format csv > review.csv
    """
    require_speech("compare")
    click.echo(_compare_text(fmt), nl=False)


COMMANDS = [eval_local, compare_command]
