"""Options and helpers shared by the command modules."""

import click


def workspace():
    from kjob.workspace import find_workspace

    return find_workspace()


param_option = click.option(
    "-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
    help="Set a recipe parameter (typed by its default); repeatable.",
)
