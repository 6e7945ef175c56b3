"""`kjob demo`: the whole loop on this machine, on the shipped demo data."""

import json
import math
import sys
from pathlib import Path

import click

from kjob.cli.common import ProgressPrinter, follow_and_show, workspace
from kjob.cli.format import exit_code, number, status_text
from kjob.extras import require_speech, speech_installed


@click.command(hidden=not speech_installed())
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps (default: the workspace's demo configuration). The figures depend "
                   "on the steps, never on the machine's speed.")
def demo(steps):
    """Build the demo recipe, run it on the local backend on the demo data, wait, fetch its
    outputs and evaluate the best checkpoint. Configured under [tool.kjob.demo]; it trains a
    fixed number of steps with a fixed seed and thread count, so every machine gets the same figures.

    Example: kjob demo --steps 20
    """
    require_speech("demo")
    from kjob.errors import ConfigError
    from kjob.lifecycle.push import push_kernel
    from kjob.build.recipe import load_recipe, parse_overrides

    ws = workspace()
    config = ws.config.demo
    if "recipe" not in config:
        raise ConfigError("no demo configured: add [tool.kjob.demo] with recipe = \"NAME\" to pyproject.toml")
    recipe = load_recipe(ws, config["recipe"])
    values = dict(config.get("parameters", {}))
    if steps:
        # Replaces the configured amount of work: enough epochs of the configured length, cut at `steps`.
        per_epoch = int(values.get("steps_per_epoch") or recipe.parameters.get("steps_per_epoch") or steps)
        values.update(max_steps=steps, epochs=math.ceil(steps / per_epoch))
    # As if typed with -p: lists as JSON, the way -p reads them.
    overrides = parse_overrides(recipe, [f"{k}={json.dumps(v) if isinstance(v, list) else v}"
                                         for k, v in values.items()])
    click.echo(f"demo: building {recipe.name} and running it on the local backend ({recipe.description})")
    outcome = push_kernel(ws, recipe.name, "local", overrides, timeout=config.get("timeout"))
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    run = outcome.run
    click.echo(f"demo: pushed {run.ref}; following it (Ctrl-C stops watching, not the run)")
    run = follow_and_show(ws, run)
    if run.state.status != "complete":
        click.echo(f"{run.ref}: {status_text(run)}")
        sys.exit(exit_code(run))
    click.echo(f"demo: {run.ref} complete; best validation loss {number(run.metrics.get('best_val_loss'))} "
               f"(epoch {number(run.metrics.get('best_epoch'))})")
    evaluate_demo_run(ws, recipe, run)


def evaluate_demo_run(ws, recipe, run) -> None:
    """Score the run's best checkpoint on the held-out test split of the demo data, then show
    every evaluated run side by side."""
    from kjob.errors import ConfigError
    from kjob.kaggle_platform import KaggleRef
    from kjob.runs.scores import record_scores
    from speechscore.compare import compare
    from speechscore.recorded_run import evaluate_run

    sources = [KaggleRef.parse(s).key for s in recipe.dataset_sources]
    folders = [ws.config.datasets[s] for s in sources if s in ws.config.datasets]
    if not folders:
        raise ConfigError(f"{recipe.name} has no dataset source mapped to a local folder to evaluate on")
    data = ws.root / folders[0]
    click.echo(f"demo: evaluating {run.ref}'s best checkpoint on the test pairs of {ws.paths.relative(data)}")
    summary = evaluate_run(ws, run, data, progress=ProgressPrinter(), report=True)
    record_scores(ws, run, summary)
    click.echo(f"demo: report in {ws.paths.relative(Path(summary['folder']))}/report.html "
               "(open it in a browser to listen)")
    click.echo("")
    click.echo(compare(ws.paths.reports))


COMMANDS = [demo]
