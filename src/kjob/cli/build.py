"""`kjob build` and `kjob builders`."""

import contextlib

import click

from kjob.cli.common import param_option, workspace
from kjob.procs import terminate_as_interrupt


@click.command()
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
    from kjob.build.plan import build_kernel
    from kjob.errors import UsageError
    from kjob.build.recipe import list_recipes, load_recipe, parse_overrides

    ws = workspace()
    if build_all == bool(name):
        raise UsageError("give a recipe NAME or --all")
    if build_all and params:
        raise UsageError("-p applies to one recipe; build it by name")
    names = list_recipes(ws) if build_all else [name]
    for each in names:
        overrides = parse_overrides(load_recipe(ws, each), list(params))
        if smoke:
            click.echo(f"{each}: checking, then a smoke run on the CPU ...", err=True)
        with terminate_as_interrupt() if smoke else contextlib.nullcontext():
            # `kill` of a smoke run stops its sandbox as Ctrl-C does, then exits 143
            result = build_kernel(ws, each, overrides, smoke=smoke, inputs=_smoke_inputs(ws, each) if smoke else ())
        for warning in result.plan.warnings:
            click.echo(f"warning: {warning}", err=True)
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
            for note in result.smoke.warnings:
                click.echo(f"note: {note}", err=True)


def _smoke_inputs(ws, name):
    """The recipe's inputs, resolved and fetched as a local push resolves them (a REF without a
    backend: the latest complete run on any), for its smoke run to mount."""
    from kjob.build.recipe import load_recipe
    from kjob.lifecycle.inputs import resolve_inputs
    from kjob.runs.ledger import Ledger

    refs = load_recipe(ws, name).inputs
    if not refs:
        return ()
    with Ledger(ws.paths.ledger) as ledger:
        return resolve_inputs(ws, ledger, refs, None)


@click.command()
def builders():
    """List the recipes in builders/, one line each.

    Example: kjob builders
    """
    from kjob.build.recipe import list_recipes, load_recipe

    ws = workspace()
    for name in list_recipes(ws):
        recipe = load_recipe(ws, name)
        machine = recipe.machine_shape or recipe.accelerator
        sources = ", ".join(recipe.dataset_sources) or "no datasets"
        click.echo(f"{name:<12} {recipe.title} - {recipe.description} [{machine}; {sources}]")



COMMANDS = [build, builders]
