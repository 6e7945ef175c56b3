"""`kjob build`: recipe + src modules -> a checked, deterministic kernel folder.

Nothing is written until every check passes (and, with smoke, the smoke run too); the new
folder is staged beside the old one and swapped in, so a failed build leaves the previous
kernel folder exactly as it was.
"""

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kjob import __version__, checks
from kjob import notebook as nbk
from kjob.errors import NotFoundError, ValidationError
from kjob.metadata import kernel_metadata, validate_kernel_metadata
from kjob.recipe import KernelRecipe, ParamValue, load_recipe
from kjob.workspace import Workspace


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build writes, computed without writing anything."""

    recipe: KernelRecipe
    notebook: dict
    notebook_text: str
    metadata: dict
    record: dict  # build.json

    @property
    def notebook_sha256(self) -> str:
        return hashlib.sha256(self.notebook_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BuildResult:
    plan: BuildPlan
    folder: Path
    changed: bool  # the notebook differs from the one built before
    smoke: "object | None" = None  # kjob.smoke.SmokeResult


def read_modules(ws: Workspace, recipe: KernelRecipe) -> list[nbk.SourceModule]:
    modules = []
    for rel in recipe.modules:
        path = ws.paths.src / rel
        if not path.is_file():
            raise NotFoundError(f"{ws.paths.relative(recipe.path)}: module src/{rel} does not exist")
        modules.append(nbk.SourceModule(ws.paths.relative(path), path.read_text(encoding="utf-8")))
    return modules


def git_state(root: Path, files: list[str]) -> dict:
    """The last commit that touched `files` and whether any of them differs from it.

    Scoped to the build's inputs (not HEAD) so that committing the built kernel does not
    change the next build of the same sources."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("log", "-1", "--format=%H", "--", *files)
    status = git("status", "--porcelain", "--", *files)
    return {"commit": commit or None, "dirty": None if status is None else bool(status)}


def plan_build(ws: Workspace, name: str, overrides: dict[str, ParamValue] | None = None) -> BuildPlan:
    overrides = overrides or {}
    recipe = load_recipe(ws, name).with_parameters(overrides)
    modules = read_modules(ws, recipe)
    problems = checks.syntax_problems(modules)
    if problems:
        raise ValidationError(f"build of {name} failed", details=problems)

    packages = {Path(rel).parts[0] for rel in recipe.modules if len(Path(rel).parts) > 1}
    dotted = {rel.removesuffix(".py").replace("/", ".") for rel in recipe.modules}
    bodies, problems = [], []
    for module in modules:
        try:
            bodies.append(nbk.inline_module(module, packages, dotted))
        except ValidationError as exc:
            problems += exc.details
    problems += checks.collision_problems(modules)
    entry_path = _entry_module(modules, recipe.entry)
    if entry_path is None:
        problems.append(f"{ws.paths.relative(recipe.path)}: entry '{recipe.entry}' is not a function defined by any of its modules")
    if problems:
        raise ValidationError(f"build of {name} failed", details=problems)

    recipe_text = recipe.path.read_text(encoding="utf-8")
    provenance = {
        "kjob_version": __version__,
        "recipe": {"path": ws.paths.relative(recipe.path), "sha256": hashlib.sha256(recipe_text.encode()).hexdigest()},
        "sources": [{"path": m.path, "sha256": m.sha256} for m in modules],
        "git": git_state(ws.root, [ws.paths.relative(recipe.path), *(m.path for m in modules)]),
        "parameters": recipe.parameters,
        "overrides": overrides,
    }
    cells = [nbk.markdown_cell("kjob-provenance", _provenance_markdown(recipe, provenance))]
    cells.append(nbk.parameters_cell(recipe.parameters))
    cells += [nbk.module_cell(m, body) for m, body in zip(modules, bodies)]
    cells.append(nbk.main_cell(recipe.entry, entry_path or "", list(recipe.parameters)))
    notebook = nbk.notebook(cells, provenance)

    nb_name = f"kernels/{name}/{name}.ipynb"
    problems = checks.undefined_name_problems(notebook, nb_name)
    problems += checks.import_problems(modules, ws.available_modules(), packages)
    problems += checks.credential_problems(notebook, nb_name)
    if problems:
        raise ValidationError(f"build of {name} failed", details=problems)

    text = nbk.dumps(notebook)
    metadata = kernel_metadata(recipe, ws.owner(), f"{name}.ipynb")
    record = {
        "kernel": name,
        "kjob_version": __version__,
        "notebook": {"path": f"{name}.ipynb", "sha256": hashlib.sha256(text.encode()).hexdigest()},
        **{k: provenance[k] for k in ("recipe", "sources", "git", "parameters", "overrides")},
    }
    return BuildPlan(recipe, notebook, text, metadata, record)


def _entry_module(modules: list[nbk.SourceModule], entry: str) -> str | None:
    import ast

    for module in modules:
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == entry:
                return module.path
    return None


def _provenance_markdown(recipe: KernelRecipe, provenance: dict) -> str:
    git = provenance["git"]
    if git["commit"]:
        at = f" at git {git['commit'][:12]}" + (" with uncommitted changes" if git["dirty"] else "")
    else:
        at = " (sources not committed to git)"
    rows = "\n".join(f"| `{s['path']}` | `{s['sha256'][:16]}` |" for s in provenance["sources"])
    return (
        f"# {recipe.title}\n\n" + (f"{recipe.description}\n\n" if recipe.description else "")
        + f"Built by kjob {provenance['kjob_version']} from `{provenance['recipe']['path']}`{at}. "
        f"Do not edit: rebuild with `kjob build {recipe.name}`.\n\n"
        f"| source | sha256 |\n|---|---|\n{rows}\n"
    )


def write_kernel(ws: Workspace, plan: BuildPlan, extra_record: dict | None = None) -> tuple[Path, bool]:
    """Stage the kernel folder beside the old one, then swap it in. Returns (folder, changed)."""
    paths = ws.paths.kernel(plan.recipe.name)
    paths.folder.parent.mkdir(parents=True, exist_ok=True)
    staging = paths.folder.with_name(f".{paths.folder.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    staged = type(paths)(staging)
    try:
        (staging / paths.notebook.name).write_text(plan.notebook_text, encoding="utf-8")
        staged.metadata.write_text(json.dumps(plan.metadata, indent=2) + "\n", encoding="utf-8")
        problems = validate_kernel_metadata(plan.metadata, staging)
        if problems:
            raise ValidationError(f"kernel-metadata.json of {plan.recipe.name} would be rejected", details=problems)
        record = {**plan.record, **(extra_record or {})}
        staged.build_record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        old_text = paths.notebook.read_text(encoding="utf-8") if paths.notebook.is_file() else None
        retired = paths.folder.with_name(f".{paths.folder.name}.old-{os.getpid()}")
        if paths.folder.exists():
            paths.folder.rename(retired)
        staging.rename(paths.folder)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths.folder, old_text != plan.notebook_text


def build_kernel(ws: Workspace, name: str, overrides: dict[str, ParamValue] | None = None, smoke: bool = False) -> BuildResult:
    plan = plan_build(ws, name, overrides)
    smoke_result = None
    extra = {}
    if smoke:
        from kjob.smoke import smoke_run

        smoke_result = smoke_run(ws, plan)  # raises RunFailed before anything is written
        extra["smoke"] = {"passed": True, "seconds": round(smoke_result.seconds, 1)}
    folder, changed = write_kernel(ws, plan, extra)
    return BuildResult(plan, folder, changed, smoke_result)
