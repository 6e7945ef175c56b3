"""Options and helpers shared by the command modules."""

import click


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


def notify_command(ws, given: str | None) -> str | None:
    """--notify, else the workspace's `notify`."""
    return given if given is not None else ws.config.notify
