"""Commands over runs: push, status, logs, fetch, cancel (`kjob runs` and its subcommands: kjob.cli.runs)."""

import sys

import click

from kjob.backends import BACKENDS
from kjob.cli.common import (follow_and_show, notify_command, notify_option, param_option, print_fetch, run_args,
                             show_progress, stopped_watching, workspace)
from kjob.runs.record import run_duration, run_record
from kjob.cli.format import EXIT_INTERRUPTED, duration, exit_code, failure_hint_line, status_text, table

backend_option = click.option("--backend", type=click.Choice(list(BACKENDS)), default=None,
                              help="Which backend's run (needed only when both have this version).")
version_option = click.option("--version", "version", default=None, metavar="VERSION",
                              help="Version: 3, v3, or with its backend local-v3, kaggle-v1 (default: the latest "
                                   "run); NAME@BACKEND:vN says the same.")


def _open(name, version, backend_name, need_version=True):
    """(workspace, ledger, backend, run) for a run reference given on the command line
    (kjob.lifecycle.lookup.find_run)."""
    from kjob.lifecycle.lookup import find_run

    ws = workspace()
    name, version, backend_name = run_args(name, version, backend_name)
    found = find_run(ws, name, version, backend_name, need_version=need_version)
    return ws, found.ledger, found.backend, found.run


@click.command()
@click.argument("name")
@click.option("--backend", "backend_name", type=click.Choice(list(BACKENDS)), default="local", show_default=True)
@param_option
@click.option("--timeout", type=click.IntRange(min=1), default=None, help="Whole-run time limit in seconds (default: the recipe's session_timeout).")
@click.option("--wait", is_flag=True, help="Follow the run to its end, then fetch its outputs.")
@click.option("--force", is_flag=True, help="Push even when the backend's safety checks (quota, concurrent runs) refuse.")
@click.option("-m", "--message", default=None, help="Why this run: kept with it in the ledger (`kjob runs` shows it).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag the run (repeatable); `kjob runs --tag TAG` lists them.")
@click.option("--input", "inputs", multiple=True, metavar="REF",
              help="Give the run another run's outputs, KERNEL[:vN][@BACKEND] (repeatable; no version: its latest "
                   "complete run; no backend: this push's), mounted under /kaggle/input (docs/runs.md: where, "
                   "per backend) and listed in kjob-inputs.json: /kaggle/input/kjob-inputs.json on local and Ray, "
                   "/kaggle/kjob-inputs.json on Kaggle (the working folder's parent; $KJOB_INPUTS names it).")
@click.option("--resume-from", "resume_from", default=None, metavar="VERSION",
              help="Continue from NAME's run VERSION (vN, local-vN, kaggle-vN): its outputs as an input, and the recipe's "
                   "[resume] parameter set to where they are mounted.")
@click.option("--reuse", is_flag=True,
              help="If a complete run has the same sources, parameters, backend and inputs, show it instead of pushing.")
@notify_option
def push(name, backend_name, params, timeout, wait, force, message, tags, inputs, resume_from, reuse, notify_cmd):
    """Send kernels/NAME to a backend (rebuilding it first if its sources changed) and record the run.

    Example: kjob push r3-dpt --backend local -m "lr warm-up 1000 steps" --tag warmup --wait
    (and be told when it ends: --wait --notify 'notify-send "$KJOB_RUN $KJOB_STATUS $KJOB_METRIC"';
    from a finished run: --resume-from v3, or --input r3-dpt:local-v2)
    """
    from kjob.errors import UsageError
    from kjob.lifecycle.push import push_kernel
    from kjob.build.recipe import load_recipe, parse_overrides
    from kjob.runs.record import RunNotes, check_tag

    if notify_cmd is not None and not wait:
        raise UsageError("--notify needs --wait (kjob is told the run ended only while it follows it)")
    ws = workspace()
    recipe = load_recipe(ws, name)
    overrides = parse_overrides(recipe, list(params))
    notes = RunNotes((message or "").strip() or None, tuple(check_tag(t) for t in tags))
    outcome = push_kernel(ws, name, backend_name, overrides, timeout=timeout, force=force, notes=notes,
                          inputs=tuple(inputs), resume_from=resume_from, reuse=reuse)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    if outcome.run.handle.get("isolation") == "environment only":
        from kjob.sandbox.isolation import environment_only_note

        click.echo(f"note: {environment_only_note()}", err=True)
    if outcome.rebuilt:
        click.echo(f"rebuilt kernels/{name}: its sources or parameters changed since the last build", err=True)
    run = outcome.run
    if outcome.reused:
        click.echo(f"{run.ref}: {status_text(run)}, reused (the same sources, parameters, backend and inputs; "
                   "push without --reuse for a new run)")
        return
    click.echo(run.ref)
    if not wait:
        return
    run = follow_and_show(ws, run)
    click.echo(f"{run.ref}: {status_text(run)}")
    if notify_command(ws, notify_cmd):
        from kjob.lifecycle.notify import notify

        warning = notify(ws, notify_command(ws, notify_cmd), run, recipe.metrics.primary)
        if warning:
            click.echo(f"warning: {warning}", err=True)
    hint = failure_hint_line(run, ws.root)
    if hint:
        click.echo(hint)
    sys.exit(exit_code(run))


@click.command()
@click.argument("name", required=False)
@version_option
@backend_option
@click.option("--watch", is_flag=True, help="Poll until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the run(s) as JSON.")
def status(name, version, backend, watch, as_json):
    """Show one run (NAME) or a table of recent runs. Exit code: 0 complete, 1 error,
    5 cancelled, 6 not finished, 4 not found or gone (its kernel deleted, its Ray job lost).

    Example: kjob status r3-dpt --version 3 --watch
    """
    import json

    from kjob.lifecycle.follow import StoppedWatching, follow_run
    from kjob.lifecycle.watch import refresh

    if name is None:
        from kjob.lifecycle.lookup import recent_runs

        listed = recent_runs(workspace(), limit=20)
        runs = [item.run for item in listed]
        if as_json:
            click.echo(json.dumps([run_record(r) for r in runs], indent=2))
        else:
            rows = [[r.ref, status_text(r), duration(run_duration(r))] for r in runs]
            click.echo(table(["RUN", "STATUS", "DURATION"], rows) if rows else "no runs recorded yet")
        for item in listed:  # remote ones as last seen: the table stays instant offline
            run = item.run
            if item.as_last_seen:
                click.echo(f"note: {run.ref} is shown as last seen; `kjob status {run.kernel} "
                           f"--version {run.version}` asks {run.backend}", err=True)
            elif item.problem:
                click.echo(f"warning: {run.ref}: status not refreshed ({item.problem})", err=True)
        return
    ws, ledger, backend_obj, run = _open(name, version, backend, need_version=False)
    with ledger:
        try:
            run = follow_run(ledger, backend_obj, run, show_progress) if watch else refresh(ledger, backend_obj, run)
        except StoppedWatching as stopped:
            stopped_watching(stopped)
    if as_json:
        click.echo(json.dumps({**run_record(run), "url": backend_obj.url(run)}, indent=2))
    else:
        click.echo(f"{run.ref}: {status_text(run)} (duration {duration(run_duration(run))})")
        hint = failure_hint_line(run, ws.root)
        if hint:
            click.echo(hint)
        if backend_obj.url(run):
            click.echo(f"  {backend_obj.url(run)}")
    sys.exit(exit_code(run))


@click.command()
@click.argument("name")
@version_option
@backend_option
@click.option("--follow", is_flag=True, help="Keep printing new output until the run ends.")
def logs(name, version, backend, follow):
    """Print a run's output as plain text; stderr lines are marked [stderr].

    Example: kjob logs r3-dpt --follow
    """
    from kjob.lifecycle.fetch import log_as_text

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
    from kjob.lifecycle.fetch import fetch_run

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
    from kjob.lifecycle.watch import refresh

    ws, ledger, backend_obj, run = _open(name, version, backend)
    with ledger:
        click.echo(backend_obj.cancel(run, delete_kernel=delete_kernel))
        run = refresh(ledger, backend_obj, run)
    click.echo(f"{run.ref}: {status_text(run)}")


COMMANDS = [push, status, logs, fetch, cancel]
