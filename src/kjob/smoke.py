"""`kjob build --smoke`: run the built notebook on this CPU with the recipe's smoke parameters.

The same notebook, re-parameterised (tiny synthetic data, a few steps), in a fresh working
folder with Kaggle-like input/output locations redirected by environment variables.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from kjob import notebook as nbk
from kjob.errors import RunFailed
from kjob.execute import execute_notebook, kaggle_like_env
from kjob.workspace import Workspace


@dataclass(frozen=True)
class SmokeResult:
    seconds: float
    executed_notebook: Path
    outputs: list[str]


def smoke_run(ws: Workspace, plan) -> SmokeResult:
    recipe = plan.recipe
    paths = ws.paths.smoke(recipe.name)
    shutil.rmtree(paths.folder, ignore_errors=True)
    for folder in (paths.input_dir, paths.working_dir, paths.temp_dir):
        folder.mkdir(parents=True)
    nb = nbk.parameterize(plan.notebook, recipe.smoke_parameters)
    env = kaggle_like_env(paths.input_dir, paths.working_dir, paths.temp_dir, "Interactive")
    env["CUDA_VISIBLE_DEVICES"] = ""  # a smoke run never touches a GPU, even where one exists
    execution = execute_notebook(nb, paths.working_dir, env, timeout=recipe.smoke_timeout, kernel_log=paths.kernel_log)
    paths.executed_notebook.write_text(nbk.dumps(execution.notebook), encoding="utf-8")
    if execution.failure:
        shown = ws.paths.relative(paths.executed_notebook)
        raise RunFailed(
            f"smoke run of {recipe.name} failed ({execution.failure.kind}) after {execution.seconds:.0f} s: "
            f"{execution.failure.describe()}; kernels/{recipe.name} left unchanged, executed notebook in {shown}"
        )
    return SmokeResult(execution.seconds, paths.executed_notebook, execution.outputs)
