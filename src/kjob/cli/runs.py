"""`kjob runs`: the table of every recorded run, and its subcommands diff, note, tag, archive."""

import click

from kjob.backends import BACKENDS
from kjob.cli.common import run_args, workspace
from kjob.cli.format import duration, number, table

_NOTE_WIDTH = 40


def _recipe_specs(ws, runs) -> dict:
    from kjob.runs.metrics import recipe_spec

    return {kernel: recipe_spec(ws, kernel) for kernel in dict.fromkeys(r.kernel for r in runs)}


def _cell(field, run) -> str:
    value = field.value(run)
    if value is None or value == []:
        return "-"
    if field.kind == "column":
        name = field.name
        if name == "duration":
            return duration(value)
        if name in ("created", "started", "finished"):
            import datetime

            return datetime.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
        if name in ("notebook", "commit"):
            return value[:12] + ("+dirty" if name == "commit" and run.git_dirty else "")
        if name == "status":
            return value + (" (gone)" if run.gone else "") + (" (archived)" if run.archived else "")
        if name == "tags":
            return ",".join(value)
        if name == "archived":
            return "yes" if value else "-"
        if name in ("message", "note"):
            line = next((x for x in str(value).splitlines() if x.strip()), "-")  # the first line says most
            return line if len(line) <= _NOTE_WIDTH else line[: _NOTE_WIDTH - 3] + "..."
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return number(value)


@click.group("runs", invoke_without_command=True)
@click.option("--kernel", default=None, help="Only this kernel's runs.")
@click.option("--sort-by", default=None, metavar="[+|-]NAME[,...]",
              help="Rank by a metric, parameter or column: -NAME descending, +NAME ascending, a bare metric best first.")
@click.option("--where", "conditions", multiple=True, metavar="EXPR",
              help="Keep runs where NAME OP VALUE holds (OP: < <= > >= = !=), e.g. 'lr<0.01'; repeatable (all must hold).")
@click.option("--columns", default=None, metavar="NAME,...",
              help="Show these columns after kernel, version and backend (metrics, parameters, status, duration, "
                   "created, notebook, commit, message, note, tags, ...).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only runs with this tag (repeatable: all of them).")
@click.option("--archived", "with_archived", is_flag=True, help="Also list archived runs.")
@click.option("--campaign", default=None, metavar="NAME",
              help="Only the members of this campaign (`kjob sweep NAME`), ranked by its metric.")
@click.option("--export", type=click.Choice(["csv", "json"]), default=None,
              help="Print every selected run (not only the first 50), every column (one per parameter and per "
                   "metric) as CSV or JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show the first N runs (default 50).")
@click.option("--all", "show_all", is_flag=True, help="Show every run, however many.")
@click.pass_context
def runs_group(ctx, kernel, sort_by, conditions, columns, tags, with_archived, campaign, export, limit, show_all):
    """Every recorded run with its parameters and metrics, ranked and filtered by any of them
    (the first 50 unless --limit N or --all).

    Example: kjob runs --kernel r3-dpt --sort-by best_val_loss --where 'lr<0.01' --columns lr,best_val_loss,best_epoch
    """
    if ctx.invoked_subcommand is not None:
        return
    import json

    from kjob.runs import query as rq
    from kjob.errors import UsageError

    if show_all and limit is not None:
        raise UsageError("--all and --limit N: give one of them")
    ws = workspace()
    if campaign and not sort_by:
        sort_by = _campaign_metric(ws, campaign)
    names = [n.strip() for n in columns.split(",") if n.strip()] if columns else None
    shown = None if export or show_all else (limit or rq.DEFAULT_LIMIT)
    selection = rq.select_runs(ws, rq.RunQuery(kernel, sort_by, tuple(conditions), tuple(tags), with_archived,
                                               campaign, limit=shown,
                                               columns=tuple(names) if names and not export else None))
    runs = selection.runs
    if export == "json":
        click.echo(json.dumps([rq.export_record(r) for r in runs], indent=2))
        return
    if export == "csv":
        header, rows = rq.export_rows(runs, names)
        click.echo(rq.csv_text([header, *rows]), nl=False)
        return
    if runs:
        fields = selection.fields(names)
        headers = ["kernel", "version", "backend", *(h for h, _ in fields)]
        rows = [[r.kernel, number(r.version), r.backend, *(_cell(f, r) for _, f in fields)] for r in runs]
        click.echo(table([h.upper() for h in headers], rows))
    else:
        click.echo("no runs to show" if selection.hidden or conditions or tags else "no runs recorded yet")
    if selection.more:
        click.echo(f"{selection.more:,} more: --all or --limit N", err=True)
    if selection.hidden:
        click.echo(f"note: {selection.hidden} archived run(s) not shown (--archived lists them)", err=True)
    for note in selection.base_name_notes():
        click.echo(note, err=True)


def _campaign_metric(ws, name: str) -> str | None:
    """The metric campaigns/NAME.toml ranks by, if its members have it (else newest first)."""
    from kjob.campaigns.file import load_campaign
    from kjob.errors import KjobError
    from kjob.runs.ledger import Ledger
    from kjob.runs.select import has_metric

    try:
        metric = load_campaign(ws, name).metric
    except KjobError:  # the file is gone or broken (another machine's ledger): the newest first
        return None
    if not metric:
        return None
    with Ledger(ws.paths.ledger) as ledger:
        # a base name (`val_loss`) ranks by its series' best (`val_loss.best`) where only that is recorded
        return next((m for m in (metric, f"{metric}.best") if has_metric(ledger, name, m)), None)


def _diff_side(name: str, version: str, backend: str | None) -> tuple:
    """(kernel, version, backend) of one side of `runs diff`: v3, local-v3, kaggle-v1, or
    another kernel's run spelt out (NAME@BACKEND:vN)."""
    from kjob.runs.lineage import RunName

    if ":" in version or "@" in version:
        named = RunName.parse(version, BACKENDS)
        return run_args(f"{named.kernel}{'@' + named.backend if named.backend else ''}",
                        None if named.version is None else f"v{named.version}", backend)
    return run_args(name, version, backend)


backend_option = click.option("--backend", type=click.Choice(list(BACKENDS)), default=None,
                              help="Which backend's run (needed only when both have this version).")


@runs_group.command("diff")
@click.argument("name")
@click.argument("first")
@click.argument("second")
@backend_option
@click.option("--patch", is_flag=True, help="Also print the changed src files' lines (unified diff).")
def diff_command(name, first, second, backend, patch):
    """What changed between two runs of NAME: parameters, src files (from the notebooks
    kjob kept when it pushed them) and metrics.

    Example: kjob runs diff r3-dpt v2 v3 --patch
    """
    from kjob.runs import query as rq
    from kjob.runs.ledger import Ledger
    from kjob.build.provenance import diff_runs

    ws = workspace()
    with Ledger(ws.paths.ledger) as ledger:
        a = ledger.find(*_diff_side(name, first, backend))
        b = ledger.find(*_diff_side(name, second, backend))
    diff = diff_runs(ws, a, b)
    modes = rq.mode_book([a, b], _recipe_specs(ws, [a, b]))
    click.echo(f"{a.ref} -> {b.ref}")
    same_notebook = a.notebook_sha256 == b.notebook_sha256
    click.echo(f"notebook: {a.notebook_sha256[:12]} -> {b.notebook_sha256[:12]}" if not same_notebook
               else f"notebook: {a.notebook_sha256[:12]} (the same)")
    if a.git_commit != b.git_commit:
        click.echo(f"git commit: {(a.git_commit or '-')[:12]} -> {(b.git_commit or '-')[:12]}")
    click.echo("parameters:" if diff.parameters else "parameters: the same")
    for c in diff.parameters:
        click.echo(f"  {c.name}: {_shown(c.old)} -> {_shown(c.new)}")
    if diff.sources is None:
        click.echo(f"sources: not known (kjob kept no notebook of {', '.join(diff.unkept)}: pushed before it kept them)")
    else:
        click.echo("sources:" if diff.sources or diff.recipe_changed else "sources: the same")
        for s in diff.sources:
            click.echo(f"  {s.path}: {s.change} (+{s.added} -{s.removed} lines)")
        if diff.recipe_changed:
            click.echo(f"  builders/{name}.toml: changed")
    if diff.inputs or a.inputs or b.inputs:
        click.echo("inputs:" if diff.inputs else "inputs: the same")
        for c in diff.inputs:
            click.echo(f"  {c.name}: {_shown(c.old)} -> {_shown(c.new)}")
    click.echo("metrics:" if diff.metrics else "metrics: the same")
    for c in diff.metrics:
        click.echo(f"  {c.name}: {_shown(c.old)} -> {_shown(c.new)}{_verdict(c, modes)}")
    if patch and diff.sources:
        for s in diff.sources:
            click.echo(s.patch)


def _shown(value) -> str:
    return "(none)" if value is None else number(value)


def _verdict(change, modes) -> str:
    from kjob.runs.metrics import is_number

    if not (is_number(change.old) and is_number(change.new)):
        return ""
    delta = change.new - change.old
    better = delta < 0 if modes.mode(change.name) == "min" else delta > 0
    return f" ({delta:+.4g}, {'better' if better else 'worse'})"


version_option = click.option("--version", "version", default=None, metavar="VERSION",
                              help="Version: 3, v3, or with its backend local-v3, kaggle-v1 (default: the latest run).")


@runs_group.command("note")
@click.argument("name")
@click.argument("text")
@version_option
@backend_option
@click.option("--append", is_flag=True, help="Add TEXT as a new line of the note instead of replacing it.")
def note_command(name, text, version, backend, append):
    """Write what a run taught you next to it (an empty TEXT clears the note).

    Example: kjob runs note r3-dpt "lr too high: diverged after epoch 3" --version 4
    """
    from kjob.runs.ledger import Ledger

    ws = workspace()
    name, version, backend = run_args(name, version, backend)
    with Ledger(ws.paths.ledger) as ledger:
        run = ledger.find(name, version, backend)
        text = text.strip()
        if append and run.note:
            text = f"{run.note}\n{text}" if text else run.note
        run = ledger.set_note(run, text)
    click.echo(f"{run.ref}: note {'cleared' if not run.note else 'saved'}")


@runs_group.command("tag")
@click.argument("name")
@click.argument("tags", nargs=-1, required=True)
@version_option
@backend_option
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
def tag_command(name, tags, version, backend, remove):
    """Add (or --remove) tags of a run; `kjob runs --tag TAG` lists the runs with a tag.

    Example: kjob runs tag r3-dpt baseline --version 2
    """
    from kjob.runs.ledger import Ledger
    from kjob.runs.record import check_tag

    tags = tuple(check_tag(t) for t in tags)
    ws = workspace()
    name, version, backend = run_args(name, version, backend)
    with Ledger(ws.paths.ledger) as ledger:
        run = ledger.find(name, version, backend)
        run = ledger.change_tags(run, remove=tags) if remove else ledger.change_tags(run, add=tags)
    click.echo(f"{run.ref}: tags {', '.join(run.notes.tags) or '(none)'}")


@runs_group.command("archive")
@click.argument("name")
@click.option("--version", "version", required=True, metavar="VERSION", help="The run's version (3, v3, local-v3).")
@backend_option
@click.option("--restore", is_flag=True, help="Unpack the archive into its download folder again.")
def archive_command(name, version, backend, restore):
    """Pack a finished run's download folder into one file (downloads/NAME/<version>.tar.gz)
    and hide the run from `kjob runs` (`--archived` lists it); --restore unpacks it.

    Example: kjob runs archive r3-dpt --version 2   (later: ... --version 2 --restore)
    """
    from kjob.runs.archive import archive_run, restore_run
    from kjob.runs.ledger import Ledger

    ws = workspace()
    name, version, backend = run_args(name, version, backend)
    with Ledger(ws.paths.ledger) as ledger:
        run = ledger.find(name, version, backend)
        if restore:
            run, folder = restore_run(ws, ledger, run)
            click.echo(f"{run.ref}: restored into {ws.paths.relative(folder)}")
        else:
            run, archive = archive_run(ws, ledger, run)
            click.echo(f"{run.ref}: archived into {ws.paths.relative(archive)}")


COMMANDS = [runs_group]


@runs_group.command("lineage")
@click.argument("name")
@version_option
@backend_option
def lineage_command(name, version, backend):
    """What a run was made from (its inputs, and theirs) and what was made from it (the runs
    given its outputs, and theirs), each input with the files it gave.

    Example: kjob runs lineage r3-dpt-eval --version 2   (or: kjob runs lineage r3-dpt@local:v3)
    """
    from kjob.runs.ledger import Ledger
    from kjob.runs.lineage import lineage

    ws = workspace()
    name, version, backend = run_args(name, version, backend)
    with Ledger(ws.paths.ledger) as ledger:
        run = ledger.find(name, version, backend)
        made_from, made_into = lineage(ledger, run)
    click.echo(f"{run.ref}: {run.state.status}")
    click.echo("made from:" if made_from else "made from: nothing (no inputs)")
    _tree(made_from, "  ", files=True)
    click.echo("made into:" if made_into else "made into: nothing yet")
    _tree(made_into, "  ", files=False)


def _tree(links, indent: str, files: bool) -> None:
    for link in links:
        status = f": {link.run.state.status}" if link.run is not None else ""
        shown = ""
        if files and link.input.files:
            names = sorted(link.input.files)
            shown = f"  ({', '.join(names[:4])}{f', +{len(names) - 4} more' if len(names) > 4 else ''})"
        click.echo(f"{indent}{link.label}{status}{shown}")
        _tree(link.next, indent + "  ", files)
