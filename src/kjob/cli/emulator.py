"""`kjob emulator`: a Kaggle-compatible server on this machine, to rehearse a Kaggle run offline."""

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


@click.command("emulator")
@click.option("--port", type=click.IntRange(0, 65535), default=7777, show_default=True,
              help="Port on 127.0.0.1 (7777 is where KAGGLE_API_ENVIRONMENT=TEST looks).")
@click.option("--data-source", "data_sources", multiple=True, metavar="OWNER/SLUG=FOLDER",
              help="A local folder standing in for a Kaggle data source; repeatable. Inside a workspace, "
                   "its [tool.kjob.datasets] are used too.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Where pushed versions run and keep their outputs (default: a temporary folder, removed at exit).")
@click.option("--verbose", is_flag=True, help="Print each request line.")
def emulator(port, data_sources, state_dir, verbose):
    """Serve Kaggle's kernels API on 127.0.0.1: pushes run here with the local runner, and
    status, logs and outputs come back as from Kaggle. Any credentials are accepted (none
    are checked or kept), but the user must be the workspace's owner. Stop it with Ctrl-C.

    Example: kjob emulator, then in another shell KAGGLE_API_ENVIRONMENT=TEST
    KAGGLE_USERNAME=<owner> KAGGLE_KEY=anything kjob push r3-dpt --backend kaggle --wait
    """
    import shutil
    import signal
    import tempfile
    from pathlib import Path

    from kjob.emulator.server import Emulator
    from kjob.errors import ConfigError, UsageError

    sources = {}
    try:
        from kjob.workspace import find_workspace

        ws = find_workspace()
        sources = {key: ws.root / folder for key, folder in ws.config.datasets.items()}
    except ConfigError:
        pass
    sources.update(_parse_sources(data_sources))
    folder = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="kjob-emulator-"))
    try:
        server = Emulator(folder, sources, port=port, verbose=verbose)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    how = ("KAGGLE_API_ENVIRONMENT=TEST" if server.port == 7777 else f"KJOB_KAGGLE_ENDPOINT={server.url}")
    click.echo(f"Kaggle emulator on {server.url} (state in {folder}); data sources: "
               f"{', '.join(sorted(sources)) or 'none'}")
    click.echo(f"use it with: {how} kjob push NAME --backend kaggle --wait   (Ctrl-C stops it)")
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


COMMANDS = [emulator]
