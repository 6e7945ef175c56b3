"""`kjob board`: the runs, their curves and campaigns as a static HTML page (kjob.board)."""

from pathlib import Path

import click

from kjob.cli.common import workspace


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The board's folder (default .kjob/board/); open DIR/index.html.")
@click.option("--kernel", default=None, help="Only this kernel's runs.")
@click.option("--campaign", default=None, help="Only this campaign's members (`kjob sweep NAME`).")
@click.option("--where", multiple=True, metavar="COND",
              help="Only runs for which COND holds, as in `kjob runs` (e.g. 'val_acc>0.8'); repeatable.")
@click.option("--open", "open_it", is_flag=True, help="Open the board in the default browser.")
@click.option("--watch", is_flag=True,
              help="Keep the board up to date as the ledger changes (the open page follows); Ctrl-C stops.")
def board(out, kernel, campaign, where, open_it, watch):
    """Write a static HTML board of the runs: a sortable, filterable table, training curves,
    campaigns and a page per run. One folder, opened from disk, loading nothing from the network.

    Example: kjob board --campaign lr-sweep --open   (or: kjob board --watch)
    """
    from kjob.board import BoardQuery, watch_board, write_board

    ws = workspace()
    query = BoardQuery(kernel=kernel, campaign=campaign, where=tuple(where))
    report = write_board(ws, query, out)
    index = report.folder / "index.html"
    click.echo(f"board of {report.runs} run(s), {report.campaigns} campaign(s): {ws.paths.relative(index)} "
               f"({_size(report.bytes)})")
    if open_it:
        import webbrowser

        if not webbrowser.open(index.resolve().as_uri()):
            click.echo(f"note: no browser found; open {index.resolve().as_uri()}", err=True)
    if not watch:
        return
    click.echo("watching the ledger; the open page follows (Ctrl-C stops)", err=True)

    def written(report):
        click.echo(f"updated: {report.runs} run(s), {report.written} file(s) rewritten", err=True)

    try:
        watch_board(ws, query, out, on_write=written)
    except KeyboardInterrupt:
        click.echo("stopped watching", err=True)


COMMANDS = [board]
