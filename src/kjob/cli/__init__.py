"""The `kjob` command line: each command parses options, calls one library function and
formats its result. Heavy modules (torch, nbclient) are imported only inside commands."""

import click

from kjob import __version__
from kjob.cli import board, build, dataset, demo, emulator, evaluate, init, leakage, lifecycle, runs, secrets, sweep
from kjob.errors import KjobError, LocalFileError
from kjob.procs import Terminated

# Each command module imports only click and kjob's light modules at import time.
COMMAND_MODULES = [init, build, lifecycle, runs, demo, emulator, evaluate, dataset, secrets, sweep, leakage, board]

EXIT_CODES_HELP = """Exit codes: 0 success (run complete), 1 run failed, 2 usage or configuration
error, 3 validation failed, 4 not found, 5 run cancelled, 6 run not finished, 7 backend
or authentication error, 8 a local file cannot be written (disk full, no permission) or
would replace one you edited, 9 leakage found (kjob leakage), 130 interrupted, 143
terminated (SIGTERM to build --smoke, whose run stops with it)."""


def _os_error_text(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


class KjobGroup(click.Group):
    """Turns kjob's errors into one-line messages and documented exit codes; `--debug` (or
    KJOB_DEBUG=1) also shows the traceback with its causes. Click's own usage errors (a
    missing argument, an unknown option) are one `error:` line with exit 2 as well, and a
    stdout closed by its reader (`kjob runs | head -1`) ends the command quietly, exit 0."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # kjob's own options: `kjob --bogus`, and the output of --help and --version
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            _usage_error(exc)
        except OSError as exc:
            if not _stdout_closed(exc):
                raise
            raise click.exceptions.Exit(0) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a command's options and arguments, an unknown command
            _usage_error(exc)
        except KjobError as exc:
            _debug(ctx)
            for detail in exc.details:
                click.echo(f"error: {detail}", err=True)
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # disk full, no permission, a read-only folder, ...
            if _stdout_closed(exc):
                ctx.exit(0)
            _debug(ctx)
            click.echo(f"error: {_os_error_text(exc)}", err=True)
            ctx.exit(LocalFileError.exit_code)
        except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM where a command turns it into one (procs.Terminated)
            terminated = isinstance(exc, Terminated)
            click.echo("terminated" if terminated else "interrupted", err=True)
            ctx.exit(143 if terminated else 130)


def _usage_error(exc: click.UsageError):
    """One line, `error: <what click says>`, and click's exit code for it (2); a bare `kjob` or
    `kjob dataset` still shows its help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        raise exc
    click.echo(f"error: {exc.format_message()}", err=True)
    raise click.exceptions.Exit(exc.exit_code) from None


def _stdout_closed(exc: OSError) -> bool:
    """Whether `exc` is a write to a stdout whose reader has gone (a pipe to `head`); if so,
    stdout now writes to the null device, so that Python's last flush does not complain.
    A broken pipe elsewhere (a socket) is an ordinary error."""
    import errno
    import os
    import sys

    if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EPIPE:
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's captured stdout)
        return False
    if not _reader_gone(fd):
        return False
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass
    return True


def _reader_gone(fd: int) -> bool:
    """Whether the pipe or socket `fd` writes to has no reader any more. Linux's poll(2) says
    so (POLLERR); elsewhere, where it may not, a broken pipe while stdout is a pipe is taken to
    be stdout's own."""
    import os
    import select
    import stat
    import sys

    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
            return True
        if sys.platform.startswith("linux"):
            return False
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


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
