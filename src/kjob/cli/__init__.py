"""The `kjob` command line: each command parses options, calls one library function and
formats its result. Heavy modules (torch, nbclient) are imported only inside commands."""

import click

from kjob import __version__
from kjob.cli import build, demo, emulator, evaluate, runs
from kjob.errors import KjobError

# Each command module imports only click and kjob's light modules at import time.
COMMAND_MODULES = [build, runs, demo, emulator, evaluate]

EXIT_CODES_HELP = """Exit codes: 0 success (run complete), 1 run failed, 2 usage or configuration
error, 3 validation failed, 4 not found, 5 run cancelled, 6 run not finished, 7 backend
or authentication error, 130 interrupted."""


class KjobGroup(click.Group):
    """Turns kjob's errors into one-line messages and documented exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KjobError as exc:
            for detail in exc.details:
                click.echo(f"error: {detail}", err=True)
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=KjobGroup, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="kjob")
def cli():
    """Build Kaggle notebooks from plain Python modules, run them, fetch and evaluate results."""


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main():
    cli(prog_name="kjob")
