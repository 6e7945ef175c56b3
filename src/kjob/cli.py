"""The `kjob` command line: each command parses options, calls one library function and
formats its result. Heavy modules (torch, nbclient) are imported only inside commands."""

import click

from kjob import __version__
from kjob.errors import KjobError

EXIT_CODES_HELP = """Exit codes: 0 success, 1 run failed, 2 usage or configuration error,
3 validation failed, 4 not found, 7 backend error."""


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


@click.group(cls=KjobGroup, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="kjob")
def cli():
    """Build Kaggle notebooks from plain Python modules, run them, fetch and evaluate results."""


def _workspace():
    from kjob.workspace import find_workspace

    return find_workspace()


param_option = click.option(
    "-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
    help="Set a recipe parameter (typed by its default); repeatable.",
)


@cli.command()
@click.argument("name", required=False)
@param_option
@click.option("--all", "build_all", is_flag=True, help="Build every recipe in builders/.")
@click.option("--smoke", is_flag=True, help="Also run the notebook on this CPU with tiny synthetic data.")
def build(name, params, build_all, smoke):
    """Build kernels/NAME from builders/NAME.toml and the src modules it names.

    Every cell is parsed and checked (undefined names, unavailable imports, credentials)
    before anything is written; a failed build leaves the old kernel folder untouched.

    Example: kjob build r3-dpt -p epochs=30 --smoke
    """
    from kjob.build import build_kernel
    from kjob.errors import UsageError
    from kjob.recipe import list_recipes, load_recipe, parse_overrides

    ws = _workspace()
    if build_all == bool(name):
        raise UsageError("give a recipe NAME or --all")
    if build_all and params:
        raise UsageError("-p applies to one recipe; build it by name")
    names = list_recipes(ws) if build_all else [name]
    for each in names:
        overrides = parse_overrides(load_recipe(ws, each), list(params))
        if smoke:
            click.echo(f"{each}: checks passed; smoke run on the CPU ...", err=True)
        result = build_kernel(ws, each, overrides, smoke=smoke)
        state = "updated" if result.changed else "unchanged"
        click.echo(
            f"built {ws.paths.relative(result.folder)} (notebook {state}, "
            f"sha256 {result.plan.notebook_sha256[:12]})"
        )
        if result.smoke:
            outputs = ", ".join(result.smoke.outputs) or "none"
            click.echo(
                f"  smoke run passed in {result.smoke.seconds:.1f} s; outputs: {outputs}; "
                f"executed notebook: {ws.paths.relative(result.smoke.executed_notebook)}"
            )


@cli.command()
def builders():
    """List the recipes in builders/, one line each.

    Example: kjob builders
    """
    from kjob.recipe import list_recipes, load_recipe

    ws = _workspace()
    for name in list_recipes(ws):
        recipe = load_recipe(ws, name)
        machine = recipe.machine_shape or recipe.accelerator
        sources = ", ".join(recipe.dataset_sources) or "no datasets"
        click.echo(f"{name:<12} {recipe.title} - {recipe.description} [{machine}; {sources}]")


def main():
    cli(prog_name="kjob")
