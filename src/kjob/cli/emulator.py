"""`kjob emulator`: a Kaggle-compatible server on this machine, to rehearse a Kaggle run offline.

Which local folders it serves as data sources: each stands for a dataset that already exists on
Kaggle. So every --data-source is served, and so is each of the workspace's [tool.kjob.datasets]
owned by someone else; but one owned by the workspace's own owner is your own dataset, which
exists on Kaggle only once uploaded: it is served after `kjob dataset push FOLDER --as OWNER/SLUG`
(from what was pushed), as on Kaggle, so a rehearsal catches the push you forgot.
"""

import click


def _parse_sources(values) -> dict:
    from pathlib import Path

    from kjob.errors import UsageError

    sources = {}
    for value in values:
        key, sep, folder = value.partition("=")
        if not sep or not key or not folder:
            raise UsageError(f"--data-source '{value}' must be OWNER/SLUG=FOLDER")
        if not Path(folder).is_dir():
            raise UsageError(f"--data-source {key}: {folder} is not a folder")
        sources[key] = Path(folder)
    return sources


_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _size(value: str | None, option: str) -> int:
    """Bytes from "20G", "512M" or a plain number (decimal units, as Kaggle's "20 GB"); 0 for none."""
    from kjob.errors import UsageError

    if value is None:
        return 0
    text = value.strip().upper().removesuffix("B")
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "")
    try:
        size = int(float(number) * _UNITS[unit])
    except ValueError:
        size = 0
    if size <= 0:
        raise UsageError(f"{option} '{value}' must be a size such as 16G, 512M or a number of bytes")
    return size


@click.command("emulator")
@click.option("--port", type=click.IntRange(0, 65535), default=7777, show_default=True,
              help="Port on 127.0.0.1; 0 picks a free one (7777 is where KAGGLE_API_ENVIRONMENT=TEST looks, "
                   "80 where the official CLI's LOCALHOST does).")
@click.option("--data-source", "data_sources", multiple=True, metavar="OWNER/SLUG=FOLDER",
              help="A local folder standing in for a data source that exists on Kaggle; repeatable. Inside a "
                   "workspace, its [tool.kjob.datasets] are used too, except your own (the workspace owner's), "
                   "which are served once pushed with `kjob dataset push`.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Where kernels, versions, outputs and quota are kept; a restart with the same folder "
                   "carries on (default: a temporary folder, removed at exit).")
@click.option("--user", "token_user", default=None, metavar="NAME",
              help="Whom an access token (KAGGLE_API_TOKEN, ~/.kaggle/access_token) signs in as "
                   "(default: the workspace's owner).")
@click.option("--missing-kernel-status", type=click.Choice(["403", "404"]), default="403", show_default=True,
              help="What reading a kernel that does not exist (deleted, a wrong slug) answers: 403, as Kaggle "
                   "does, or 404.")
@click.option("--session-memory", default=None, metavar="SIZE",
              help="Memory each session's kernel may use, e.g. 16G (RLIMIT_AS; past it, Kaggle's out-of-memory "
                   "failure). Default: this machine's.")
@click.option("--session-disk", default=None, metavar="SIZE",
              help="What each session's /kaggle/working may hold, e.g. 20G (past it, the session fails with "
                   "'No space left on device'). Default: no limit.")
@click.option("--verbose", is_flag=True, help="Print each request line.")
def emulator(port, data_sources, state_dir, token_user, missing_kernel_status, session_memory, session_disk,
             verbose):
    """Serve Kaggle's kernels, datasets and models API on 127.0.0.1: pushes run here in the run sandbox,
    and status, logs, outputs, listings, quota, pushed datasets and models come back as from Kaggle, to
    kjob and to the official `kaggle` CLI alike. Any username with any key signs in (nothing is checked or kept), and
    an access token signs in as --user; each caller reaches only its own private kernels.
    Stop it with Ctrl-C.

    Example: kjob emulator --port 0, then in another shell, with the URL it prints,
    KJOB_KAGGLE_ENDPOINT=http://127.0.0.1:PORT KAGGLE_USERNAME=<owner> KAGGLE_KEY=anything
    kjob push r3-dpt --backend kaggle --wait
    """
    import shutil
    import signal
    import tempfile
    from pathlib import Path

    from kjob.emulator.faults import Faults
    from kjob.emulator.server import Emulator
    from kjob.errors import UsageError

    sources, own, workspace_owner = _workspace_sources()
    token_user = token_user or workspace_owner
    sources.update(_parse_sources(data_sources))
    own = [key for key in own if key not in sources]  # an explicit --data-source is always served
    folder = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="kjob-emulator-"))
    try:
        limits = Faults(session_memory=_size(session_memory, "--session-memory"),
                        session_disk=_size(session_disk, "--session-disk"))
        server = Emulator(folder, sources, port=port, verbose=verbose, token_user=token_user,
                          missing_kernel_status=int(missing_kernel_status), faults=limits)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a state folder this version cannot read
        raise UsageError(str(exc)) from None
    for line in _banner(server, folder, sources, own, token_user):
        click.echo(line)
    # Ctrl-C and `kill` both end it cleanly (a shell's background job starts with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping the emulator and its running sessions", err=True)
    finally:
        server.stop()
        if not state_dir:
            shutil.rmtree(folder, ignore_errors=True)


def _workspace_sources() -> tuple[dict, list[str], str | None]:
    """Inside a workspace: its [tool.kjob.datasets] served as they are (folder by key), its
    own owner's datasets (served only once pushed), and that owner; outside one, nothing."""
    from kjob.errors import ConfigError
    from kjob.kaggle_platform import KaggleRef
    from kjob.workspace import find_workspace

    try:
        ws = find_workspace()
    except ConfigError:
        return {}, [], None
    sources, own = {}, []
    owner = (ws.config.owner or "").lower()
    for key, mapped in ws.config.datasets.items():
        if owner and KaggleRef.parse(key).owner.lower() == owner:
            own.append(key)  # yours: on Kaggle only once pushed
        else:
            sources[key] = ws.root / mapped
    return sources, own, ws.config.owner


def _banner(server, folder, sources: dict, own: list[str], token_user: str | None) -> list[str]:
    """Where it listens and keeps its state, what it serves, how to reach it."""
    kept = [f"{n} {what} kept" for n, what in ((len(server.store.kernels), "kernels"),
                                               (len(server.store.datasets), "datasets"),
                                               (len(server.store.models), "models")) if n]
    lines = [f"Kaggle emulator on {server.url} (state in {folder}{''.join(', ' + k for k in kept)}); "
             f"data sources: {', '.join(sorted(sources)) or 'none'}"]
    lines += _hints(server, token_user)
    if own:
        pushed = {key.lower() for key in server.store.datasets}
        lines.append("your own datasets, served once pushed (kjob dataset push FOLDER --as OWNER/SLUG): " + ", ".join(
            f"{key} ({'pushed' if key.lower() in pushed else 'not pushed yet'})" for key in sorted(own)))
    return lines


def _hints(server, token_user: str | None) -> list[str]:
    endpoint = "KAGGLE_API_ENVIRONMENT=TEST" if server.port == 7777 else f"KJOB_KAGGLE_ENDPOINT={server.url}"
    official = ("KAGGLE_API_ENVIRONMENT=LOCALHOST kaggle kernels list --mine" if server.port == 80 else
                f"KJOB_KAGGLE_ENDPOINT={server.url} python -m kjob.emulator.kaggle_cli kernels list --mine")
    signed = f"tokens sign in as {token_user}" if token_user else "tokens are refused (no --user)"
    return [f"kjob:         {endpoint} kjob push NAME --backend kaggle --wait",
            f"official CLI: {official}",
            f"credentials:  any username with any key; {signed}.   Ctrl-C stops it"]


COMMANDS = [emulator]
