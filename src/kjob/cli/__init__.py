"""The `kjob` command line: each command parses options, calls one library function and
formats its result. Heavy modules (torch, nbclient) are imported only inside commands."""

import click

from kjob import __version__
from kjob.cli import build, dataset, demo, emulator, evaluate, init, leakage, runs, runs_extra, sweep
from kjob.errors import KjobError, LocalFileError

# Each command module imports only click and kjob's light modules at import time.
COMMAND_MODULES = [init, build, runs, runs_extra, demo, emulator, evaluate, dataset, sweep, leakage]

EXIT_CODES_HELP = """Exit codes: 0 success (run complete), 1 run failed, 2 usage or configuration
error, 3 validation failed, 4 not found, 5 run cancelled, 6 run not finished, 7 backend
or authentication error, 8 a local file cannot be written (disk full, no permission) or
would replace one you edited, 9 leakage found (kjob leakage), 130 interrupted."""


def _os_error_text(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


class KjobGroup(click.Group):
    """Turns kjob's errors into one-line messages and documented exit codes; `--debug` (or
    KJOB_DEBUG=1) also shows the traceback with its causes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KjobError as exc:
            _debug(ctx)
            for detail in exc.details:
                click.echo(f"error: {detail}", err=True)
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # disk full, no permission, a read-only folder, ...
            _debug(ctx)
            click.echo(f"error: {_os_error_text(exc)}", err=True)
            ctx.exit(LocalFileError.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _debug(ctx: click.Context) -> None:
    import os

    if (ctx.obj or {}).get("debug") or os.environ.get("KJOB_DEBUG") == "1":
        import traceback

        click.echo(traceback.format_exc().rstrip(), err=True)


@click.group(cls=KjobGroup, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="kjob")
@click.option("--debug", is_flag=True, help="On an error, also print the traceback and its causes.")
@click.pass_context
def cli(ctx, debug):
    """Build Kaggle notebooks from plain Python modules, run them, fetch and evaluate results."""
    ctx.obj = {"debug": debug}


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main():
    cli(prog_name="kjob")
