"""Commands over runs: push, status, logs, fetch, cancel, runs."""

import sys

import click

from kjob.cli.common import param_option, workspace
from kjob.errors import KjobError
from kjob.runs import run_duration, run_record
from kjob.cli.format import (EXIT_FOR_STATUS, EXIT_INTERRUPTED, duration, number, params_text,
                             status_text, table)

backend_option = click.option("--backend", type=click.Choice(["local", "kaggle"]), default=None,
                              help="Which backend's run (needed only when both have this version).")
version_option = click.option("--version", "version", type=int, default=None,
                              help="Version number (default: the latest run).")


def _open(name, version, backend_name, need_version=True):
    """(workspace, ledger, backend, run) for a run reference given on the command line.

    A run still `submitting` is reconciled first; commands that need its version (logs,
    fetch, cancel) refuse one that has none yet."""
    from kjob.backends import get_backend
    from kjob.errors import NotFoundError, UsageError
    from kjob.ledger import Ledger
    from kjob.watch import refresh

    ws = workspace()
    ledger = Ledger(ws.paths.ledger)
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
    if need_version and run.version is None:
        run = refresh(ledger, backend, run)
        if run.version is None:
            ledger.close()
            raise UsageError(f"{run.ref}: {backend.name} has not confirmed this push ({run.state.status}); "
                             f"see `kjob status {run.kernel}`")
    return ws, ledger, backend, run


def _progress_printer(backend):
    shown = {"status": None, "lines": 0}

    def show(run, elapsed):
        if run.state.status != shown["status"]:
            shown["status"] = run.state.status
            click.echo(f"[{duration(elapsed):>6}] {run.ref}: {status_text(run)}", err=True)
        try:
            entries = backend.log(run)
        except KjobError:  # the log is a nicety while watching; the status is what counts
            entries = []
        lines = [line for e in entries for line in e.text.splitlines() if line.strip()]
        for line in lines[max(shown["lines"], len(lines) - 3):]:
            click.echo(f"[{duration(elapsed):>6}]   | {line}", err=True)
        shown["lines"] = len(lines)

    return show


def wait_for_run(ledger, backend, run):
    from kjob.watch import watch

    try:
        return watch(ledger, backend, run, on_progress=_progress_printer(backend))
    except KeyboardInterrupt:
        click.echo(f"stopped watching; {run.ref} goes on (kjob status {run.kernel} --version {run.version})", err=True)
        sys.exit(EXIT_INTERRUPTED)


def print_fetch(ws, report):
    from kjob.errors import BackendError, LocalFileError

    run = report.run
    click.echo(f"fetched {run.ref} into {ws.paths.relative(report.folder)}: {run.state.status}, "
               f"{report.listed} output file(s) listed, {len(report.downloaded)} downloaded, "
               f"{len(report.unchanged)} unchanged")
    if report.waiting:
        click.echo(f"note: {run.ref} has not ended ({run.state.status}): its outputs are listed, not downloaded "
                   "(they may be half-written); fetch again when it ends", err=True)
    elif run.state.final and report.listed == 0:
        click.echo(f"note: {run.ref} wrote no output files", err=True)
    for name in report.gone_remotely:
        click.echo(f"warning: {name} no longer exists remotely (the local copy is stale)", err=True)
    for problem in report.problems:
        click.echo(f"warning: output file {problem}; not downloaded", err=True)
    if report.conflicts:
        names = ", ".join(report.conflicts)
        raise LocalFileError(f"{len(report.conflicts)} local file(s) differ from what kjob downloaded (edited?) and "
                             f"were left as they are: {names}; fetch with --force to replace them")
    if report.refused:
        names = ", ".join(repr(n) for n in report.refused)
        raise BackendError(f"refused output file name(s) that would escape the version folder: {names}")
    if report.problems:
        raise BackendError(f"{len(report.problems)} output file(s) could not be stored (see the warnings above)")


@click.command()
@click.argument("name")
@click.option("--backend", "backend_name", type=click.Choice(["local", "kaggle"]), default="local", show_default=True)
@param_option
@click.option("--timeout", type=click.IntRange(min=1), default=None, help="Whole-run time limit in seconds (default: the recipe's session_timeout).")
@click.option("--wait", is_flag=True, help="Follow the run to its end, then fetch its outputs.")
@click.option("--force", is_flag=True, help="Push even when the backend's safety checks (quota, concurrent runs) refuse.")
def push(name, backend_name, params, timeout, wait, force):
    """Send kernels/NAME to a backend (rebuilding it first if its sources changed) and record the run.

    Example: kjob push r3-dpt --backend local --wait
    """
    from kjob.push import push_kernel
    from kjob.recipe import load_recipe, parse_overrides

    ws = workspace()
    overrides = parse_overrides(load_recipe(ws, name), list(params))
    outcome = push_kernel(ws, name, backend_name, overrides, timeout=timeout, force=force)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    if outcome.run.handle.get("isolation") == "environment only":
        click.echo("note: bubblewrap is not available here: the run has its own HOME and environment but can "
                   "read this machine's files, and finds /kaggle/... only through KAGGLE_*_DIR", err=True)
    if outcome.rebuilt:
        click.echo(f"rebuilt kernels/{name}: its sources or parameters changed since the last build", err=True)
    run = outcome.run
    click.echo(run.ref)
    if not wait:
        return
    run = follow_and_fetch(ws, run)
    click.echo(f"{run.ref}: {status_text(run)}")
    sys.exit(EXIT_FOR_STATUS[run.state.status])


def follow_and_fetch(ws, run):
    """Watch a pushed run to its end, then fetch it: status and log whatever the ending (Kaggle
    keeps only the latest version's), the output files when it completed. Shared by
    `push --wait` and `kjob demo`."""
    from kjob.backends import get_backend
    from kjob.fetch import fetch_run
    from kjob.ledger import Ledger

    with Ledger(ws.paths.ledger) as ledger:
        backend = get_backend(ws, run.backend)
        run = wait_for_run(ledger, backend, run)
        report = fetch_run(ws, ledger, backend, run, outputs=run.state.status == "complete")
    print_fetch(ws, report)
    return report.run


@click.command()
@click.argument("name", required=False)
@version_option
@backend_option
@click.option("--watch", is_flag=True, help="Poll until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the run(s) as JSON.")
def status(name, version, backend, watch, as_json):
    """Show one run (NAME) or a table of recent runs. Exit code: 0 complete, 1 error,
    5 cancelled, 6 not finished, 4 not found.

    Example: kjob status r3-dpt --version 3 --watch
    """
    import json

    from kjob.backends import get_backend
    from kjob.ledger import Ledger
    from kjob.watch import refresh

    if name is None:
        ws = workspace()
        stale = []
        with Ledger(ws.paths.ledger) as ledger:
            runs = []
            for run in ledger.runs(limit=20):
                backend_obj = get_backend(ws, run.backend)
                if run.state.final or not (backend_obj.status_is_cheap or run.state.status == "submitting"):
                    runs.append(run)  # remote ones as last seen: the table stays instant offline
                    if not run.state.final:
                        stale.append(f"note: {run.ref} is shown as last seen; `kjob status {run.kernel} "
                                     f"--version {run.version}` asks {run.backend}")
                    continue
                try:
                    runs.append(refresh(ledger, backend_obj, run))
                except KjobError as exc:
                    runs.append(run)
                    stale.append(f"warning: {run.ref}: status not refreshed ({exc.message})")
        if as_json:
            click.echo(json.dumps([run_record(r) for r in runs], indent=2))
        else:
            rows = [[r.ref, status_text(r), duration(run_duration(r))] for r in runs]
            click.echo(table(["RUN", "STATUS", "DURATION"], rows) if rows else "no runs recorded yet")
        for line in stale:
            click.echo(line, err=True)
        return
    ws, ledger, backend_obj, run = _open(name, version, backend, need_version=False)
    with ledger:
        run = wait_for_run(ledger, backend_obj, run) if watch else refresh(ledger, backend_obj, run)
    if as_json:
        click.echo(json.dumps({**run_record(run), "url": backend_obj.url(run)}, indent=2))
    else:
        click.echo(f"{run.ref}: {status_text(run)} (duration {duration(run_duration(run))})")
        if backend_obj.url(run):
            click.echo(f"  {backend_obj.url(run)}")
    sys.exit(EXIT_FOR_STATUS[run.state.status])


@click.command()
@click.argument("name")
@version_option
@backend_option
@click.option("--follow", is_flag=True, help="Keep printing new output until the run ends.")
def logs(name, version, backend, follow):
    """Print a run's output as plain text; stderr lines are marked [stderr].

    Example: kjob logs r3-dpt --follow
    """
    from kjob.fetch import log_as_text

    ws, ledger, backend_obj, run = _open(name, version, backend)
    ledger.close()
    if not follow:
        click.echo(log_as_text(backend_obj.log(run)), nl=False)
        return
    try:
        for entry in backend_obj.follow_log(run):
            click.echo(log_as_text([entry]), nl=False)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


@click.command()
@click.argument("name")
@version_option
@backend_option
@click.option("--output", "outputs", is_flag=True, help="Also download the output files.")
@click.option("--pattern", default=None, metavar="REGEX", help="Only output files whose name matches.")
@click.option("--force", is_flag=True, help="Replace local files that differ from what kjob downloaded (edited ones).")
def fetch(name, version, backend, outputs, pattern, force):
    """Store a run's status, log and output listing (with --output, its files) in downloads/NAME/vN/.

    Example: kjob fetch r3-dpt --version 3 --output --pattern '\\.pt$'
    (after editing a downloaded file: kjob fetch r3-dpt --output --force)
    """
    from kjob.fetch import fetch_run

    ws, ledger, backend_obj, run = _open(name, version, backend)
    with ledger:
        report = fetch_run(ws, ledger, backend_obj, run, outputs=outputs, pattern=pattern, force=force)
    print_fetch(ws, report)


@click.command()
@click.argument("name")
@version_option
@backend_option
@click.option("--delete-kernel", is_flag=True,
              help="Where a backend cannot stop a run (Kaggle batch sessions), delete the remote kernel instead.")
def cancel(name, version, backend, delete_kernel):
    """Stop a run (for the local backend: its whole process tree).

    Example: kjob cancel r3-dpt --version 3
    """
    from kjob.watch import refresh

    ws, ledger, backend_obj, run = _open(name, version, backend)
    with ledger:
        click.echo(backend_obj.cancel(run, delete_kernel=delete_kernel))
        run = refresh(ledger, backend_obj, run)
    click.echo(f"{run.ref}: {status_text(run)}")


# The table shows these (when any run has them); --export shows every metric recorded.
METRIC_COLUMNS = ["best_val_loss", "pesq_wb", "stoi", "estoi", "si_sdr", "pesq_wb_delta", "si_sdr_delta"]


@click.command("runs")
@click.option("--kernel", default=None, help="Only this kernel's runs.")
@click.option("--sort-by", default=None, metavar="METRIC", help="Sort by a metric (e.g. best_val_loss, pesq_wb) or by version/duration.")
@click.option("--export", type=click.Choice(["csv", "json"]), default=None, help="Print every column as CSV or JSON.")
def runs_command(kernel, sort_by, export):
    """All recorded runs with their parameters and final metrics.

    Example: kjob runs --kernel r3-dpt --sort-by best_val_loss
    """
    import csv
    import io
    import json

    from kjob.ledger import Ledger
    from kjob.runs import sort_runs

    ws = workspace()
    with Ledger(ws.paths.ledger) as ledger:
        runs = ledger.runs(kernel)
    if sort_by:
        runs = sort_runs(runs, sort_by)
    if export == "json":
        click.echo(json.dumps([run_record(r) for r in runs], indent=2))
        return
    every_metric = METRIC_COLUMNS + sorted({k for r in runs for k in r.metrics} - set(METRIC_COLUMNS))
    metric_names = [m for m in (every_metric if export else METRIC_COLUMNS) if any(m in r.metrics for r in runs)]
    headers = ["kernel", "version", "backend", "status", "duration", "parameters", *metric_names]
    rows = [[r.kernel, number(r.version), r.backend, r.state.status + (" (gone)" if r.gone else ""),
             duration(run_duration(r)),
             params_text(r.overrides), *(number(r.metrics.get(m)) for m in metric_names)] for r in runs]
    if export == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(headers)
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    click.echo(table([h.upper() for h in headers], rows) if rows else "no runs recorded yet")


COMMANDS = [push, status, logs, fetch, cancel, runs_command]
