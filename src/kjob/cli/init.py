"""`kjob init`: make the current project folder a kjob workspace with a recipe (kjob.build.scaffold)."""

import click


@click.command()
@click.option("--entry", required=True, metavar="PATH[:FUNCTION]",
              help="The script the kernel runs as __main__ (train.py), or the function it calls (src/pkg/train.py:main).")
@click.option("--name", default=None, help="The recipe's name (default: the folder's name).")
@click.option("--owner", default=None, metavar="KAGGLE_USER", help="The Kaggle user that owns the kernels.")
def init(entry, name, owner):
    """Set up kjob in the current project folder: [tool.kjob] in pyproject.toml (or kjob.toml
    when there is none), kjob's .gitignore lines, and builders/NAME.toml for ENTRY, its
    [parameters] taken from the script's command-line options (read, never run) or the
    function's defaults, and its modules from what it imports. Never replaces a file.

    Example: kjob init --entry train.py (or --entry src/pkg/train.py:main --owner alice)
    """
    from pathlib import Path

    from kjob.build.scaffold import init_project

    result = init_project(Path.cwd(), entry, name, owner)
    for line in result.done:
        click.echo(line)
    for line in result.skipped:
        click.echo(f"  skipped parameter {line}")
    for step in result.next_steps:
        click.echo(f"next: {step}")


COMMANDS = [init]
