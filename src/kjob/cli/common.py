"""Options and helpers shared by the command modules."""

import sys

import click

from kjob.cli.format import EXIT_INTERRUPTED, duration, status_text


def workspace():
    from kjob.workspace import find_workspace

    return find_workspace()


param_option = click.option(
    "-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
    help="Set a recipe parameter (typed by its default); repeatable.",
)

notify_option = click.option(
    "--notify", "notify_cmd", default=None, metavar="CMD",
    help="Run CMD (a shell command) when a run ends, with KJOB_RUN, KJOB_STATUS, KJOB_METRIC, ... in its "
         "environment (default: [tool.kjob] notify); a failing CMD is a warning.",
)


def run_args(name: str | None, version, backend: str | None) -> tuple:
    """(kernel, version number, backend) of a run named on the command line: NAME with
    --version (3, v3, local-v3, kaggle-v1) and --backend, or NAME:local-v3 / NAME@BACKEND:vN alone."""
    from kjob.backends import BACKENDS
    from kjob.errors import UsageError
    from kjob.runs.lineage import RunName, VersionName

    if name is None:
        return None, None if version is None else VersionName.parse(str(version), BACKENDS).version, backend
    named = RunName.parse(name, BACKENDS)
    number, said = named.version, named.backend
    if version is not None:
        if number is not None:
            raise UsageError(f"{name} names its version: drop --version {version}")
        given = VersionName.parse(str(version), BACKENDS)
        if said is not None and given.backend not in (None, said):
            raise UsageError(f"{name} is on {said}, --version {version} on {given.backend}")
        number, said = given.version, said or given.backend
    if backend is not None and said is not None and backend != said:
        raise UsageError(f"{name}{'' if version is None else ' --version ' + str(version)} names {said}, "
                         f"--backend {backend}")
    return named.kernel, number, backend or said


def notify_command(ws, given: str | None) -> str | None:
    """--notify, else the workspace's `notify`."""
    return given if given is not None else ws.config.notify


def show_progress(update) -> None:
    """A followed run's status changes, and every new log line (or, past a poll's limit, how
    many were left out and where to read them), on stderr."""
    run = update.run
    stamp = f"[{duration(update.elapsed):>6}]"
    if update.status_changed:
        click.echo(f"{stamp} {run.ref}: {status_text(run)}", err=True)
    if update.skipped:
        lines_word = "line" if update.skipped == 1 else "lines"
        click.echo(f"{stamp}   | ... {update.skipped} {lines_word} not shown (kjob logs {run.kernel} "
                   f"--version {run.version})", err=True)
    for line in update.lines:
        click.echo(f"{stamp}   | {line}", err=True)


def stopped_watching(stopped) -> None:
    """Ctrl-C while following a run (kjob.lifecycle.follow.StoppedWatching): say it goes on."""
    run = stopped.run
    click.echo(f"stopped watching; {run.ref} goes on (kjob status {run.kernel} --version {run.version})", err=True)
    sys.exit(EXIT_INTERRUPTED)


def follow_and_show(ws, run):
    """Follow a pushed run to its end, showing its progress, then fetch it and say what was
    fetched (kjob.lifecycle.follow.follow_and_fetch): `push --wait` and `kjob demo`. Returns
    the run as it ended."""
    from kjob.lifecycle.follow import StoppedWatching, follow_and_fetch

    try:
        report = follow_and_fetch(ws, run, on_update=show_progress)
    except StoppedWatching as stopped:
        stopped_watching(stopped)
    print_fetch(ws, report)
    return report.run


def print_fetch(ws, report):
    """What a fetch stored, its notes and warnings; raises for conflicts and refused or unstored files."""
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
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
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


class ProgressPrinter:
    """Stage counters on stderr: one updating line on a terminal, one line per stage
    otherwise. Pass an instance as `progress` to speechscore's evaluate functions (eval-local, demo)."""

    def __init__(self):
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.tty:
            filled = round(24 * done / max(total, 1))
            click.echo(f"\r{stage:<10} [{'#' * filled}{'.' * (24 - filled)}] {done}/{total}", err=True, nl=done == total)
        elif done == total:
            click.echo(f"{stage}: {done}/{total} done", err=True)
