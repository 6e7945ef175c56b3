"""`kjob build`: recipe + src modules -> a checked, deterministic kernel folder.

Nothing is written until every check passes (and, with smoke, the smoke run too); the new
folder is staged beside the old one and swapped in, so a failed build leaves the previous
kernel folder exactly as it was.
"""

import ast
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kjob import __version__, swap
from kjob.build import checks
from kjob.build import paramchecks
from kjob.build import script_entry
from kjob import notebook as nbk
from kjob.errors import NotFoundError, ValidationError
from kjob.kaggle_platform import pip_import_names
from kjob.build.kernel_metadata import kernel_metadata, validate_kernel_metadata
from kjob.build.module_paths import OUTSIDE_PREFIX, check_entries, module_name, project_module, source_path
from kjob.build.recipe import KernelRecipe, ParamValue, load_recipe
from kjob.workspace import Workspace, read_utf8


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build writes, computed without writing anything."""

    recipe: KernelRecipe
    notebook: dict
    notebook_text: str
    metadata: dict
    record: dict  # build.json
    # Problems that do not stop the build (e.g. a literal /kaggle/working path), one line each.
    warnings: tuple[str, ...] = ()

    @property
    def notebook_sha256(self) -> str:
        return hashlib.sha256(self.notebook_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BuildResult:
    plan: BuildPlan
    folder: Path
    changed: bool  # the notebook differs from the one built before
    smoke: "object | None" = None  # kjob.build.smoke.SmokeResult


def read_modules(ws: Workspace, recipe: KernelRecipe) -> list[nbk.SourceModule]:
    check_entries(ws, recipe.modules, ws.paths.relative(recipe.path))
    modules, problems = [], []
    for rel in recipe.modules:
        path = source_path(ws, rel)
        if not path.is_file():
            hint = ""
            if ws.paths.src_dir != "." and not rel.startswith(OUTSIDE_PREFIX) and (ws.root / rel).is_file():
                hint = f" ({rel} is at the workspace's root: set src_dir = \".\" under [tool.kjob])"
            raise NotFoundError(f"{ws.paths.relative(recipe.path)}: module {ws.paths.relative(path)} "
                                f"does not exist{hint}")
        shown = ws.paths.relative(path)
        try:
            # A BOM (some Windows editors write one) is no code: the cell starts after it.
            text = read_utf8(path, shown, ValidationError).removeprefix("\ufeff")
            modules.append(nbk.SourceModule(shown, text))
        except ValidationError as exc:
            problems.append(exc.message)
    if problems:
        raise ValidationError(f"build of {recipe.name} failed", details=problems)
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

    dotted = {module_name(rel) for rel in recipe.modules}
    # Top-level names the recipe's modules are imported under: packages (`pkg` of pkg/util.py)
    # and top-level modules (`model` of model.py), whose imports the cells comment out alike.
    packages = {name.split(".")[0] for name in dotted}
    script = ws.paths.relative(ws.paths.src / recipe.entry) if recipe.is_script else None
    shared = recipe.namespaces == "shared"
    bodies, problems = _module_bodies(recipe, modules, packages, dotted, script)
    if shared:  # each module of its own: none shadows another's names
        problems += [f"{p} (namespaces = \"modules\" in the recipe runs each module as its own)"
                     for p in checks.collision_problems(modules)]
    recipe_name = ws.paths.relative(recipe.path)
    notes = []
    if script:  # the parameters are deleted once they made the command line: they shadow nothing
        entry_path, entry_def = script, None
        problems += script_entry.option_problems(script, list(recipe.script_options), recipe.parameters, recipe_name)
        file_places, file_note = script_entry.script_file(ws, recipe, modules)
        added_note = script_entry.hand_added_note(script, list(recipe.script_options), list(recipe.parameters))
        notes += [n for n in (file_note, added_note) if n]
    else:
        if shared:  # as modules, the modules' names never meet the parameters (globals of the notebook)
            problems += paramchecks.shadowed_parameter_problems(modules, recipe.parameters, packages)
        entry_path, entry_def = _entry_function(modules, recipe.entry)
        notes += _left_out_main_blocks(modules, recipe.entry)
    if entry_def is None and not script:
        problems.append(f"{recipe_name}: entry '{recipe.entry}' is not a function defined by any of its modules")
    elif entry_def is not None:
        problems += paramchecks.entry_signature_problems(entry_path, entry_def, recipe.parameters, recipe_name)
    if problems:
        raise ValidationError(f"build of {name} failed", details=problems)

    provenance = _provenance(ws, recipe, recipe_name, modules, overrides)
    cells = _cells(recipe, recipe_name, provenance, modules, bodies, script, entry_path,
                   file_places if script else None)
    notebook = nbk.notebook(cells, provenance)

    nb_name = f"kernels/{name}/{name}.ipynb"
    problems = checks.undefined_name_problems(notebook, nb_name, shared)
    available = ws.available_modules() | pip_import_names(recipe.pip) | set(recipe.pip_modules)
    problems += checks.import_problems(modules, available, packages, recipe_name=recipe_name,
                                       project_module=lambda name: project_module(ws, name))
    problems += checks.credential_problems(notebook, nb_name)
    owner = ws.owner_or_none()
    if owner is None:  # local builds and runs need none; a Kaggle push asks for it (Workspace.owner)
        owner = NO_OWNER
        notes.append(f"no Kaggle owner configured: kernel-metadata.json names {NO_OWNER}/{recipe.slug}; "
                     "set owner under [tool.kjob] (or KJOB_OWNER) before a Kaggle push")
    metadata = kernel_metadata(recipe, owner, f"{name}.ipynb")
    problems += checks.recipe_credential_problems(recipe, owner, metadata, recipe_name)
    if problems:
        raise ValidationError(f"build of {name} failed", details=problems)

    text = nbk.dumps(notebook)
    record = {
        "kernel": name,
        "kjob_version": __version__,
        "notebook": {"path": f"{name}.ipynb", "sha256": hashlib.sha256(text.encode()).hexdigest()},
        **{k: provenance[k] for k in ("recipe", "sources", "git", "parameters", "overrides", "pip") if k in provenance},
    }
    return BuildPlan(recipe, notebook, text, metadata, record, tuple(checks.kaggle_path_warnings(modules) + notes))


def _module_bodies(recipe: KernelRecipe, modules: list[nbk.SourceModule], packages: set[str], dotted: set[str],
                   script: str | None) -> tuple[list[str], list[str]]:
    """Each module's cell text, inlined (its imports of the recipe's modules commented out; a
    module a script imports as a module registered under its name), and the problems found."""
    bodies, problems = [], []
    shared = recipe.namespaces == "shared"
    for module in modules:
        try:
            bodies.append(nbk.inline_module(module, packages, dotted, keep_main=module.path == script, shared=shared))
        except ValidationError as exc:
            problems += exc.details
    if not shared:  # each cell is its module already
        return bodies, problems
    registered = script_entry.imported_as_modules([m.tree for m in modules], dotted)
    bodies = [body + "\n" + script_entry.module_registration(module_name(rel), [
        n for n, _ in paramchecks.module_bindings(m, packages) if not n.startswith("_kjob_")])
        if module_name(rel) in registered else body for rel, m, body in zip(recipe.modules, modules, bodies)]
    return bodies, problems


def _provenance(ws: Workspace, recipe: KernelRecipe, recipe_name: str, modules: list[nbk.SourceModule],
                overrides: dict) -> dict:
    """What the notebook is built from: kjob's version, the recipe and sources with their
    hashes, their git state, the parameters and overrides, pip packages and secret names."""
    recipe_text = read_utf8(recipe.path, recipe_name)
    provenance = {
        "kjob_version": __version__,
        "recipe": {"path": recipe_name, "sha256": hashlib.sha256(recipe_text.encode()).hexdigest()},
        "sources": [{"path": m.path, "sha256": m.sha256} for m in modules],
        "git": git_state(ws.root, [recipe_name, *(m.path for m in modules)]),
        "parameters": recipe.parameters,
        "overrides": overrides,
    }
    if recipe.pip:
        provenance["pip"] = list(recipe.pip)
    if recipe.secrets:  # names only: what kaggle_secrets may answer in a run kjob makes (the emulator's too)
        provenance["secrets"] = list(recipe.secrets)
    return provenance


def _cells(recipe: KernelRecipe, recipe_name: str, provenance: dict, modules: list[nbk.SourceModule],
           bodies: list[str], script: str | None, entry_path: str, file_places: list[str] | None = None) -> list[dict]:
    """The notebook's cells in order: provenance, pip, parameters (and a script's argv), one
    per module, and the call of the entry function (a script runs as its own module's cell)."""
    cells = [nbk.markdown_cell(nbk.PROVENANCE_ID, _provenance_markdown(recipe, provenance))]
    if recipe.pip:
        cells.append(nbk.pip_cell(list(recipe.pip), recipe_name))
    cells.append(nbk.parameters_cell(recipe.parameters))
    if script:
        text = script_entry.argv_cell_text(recipe.entry, list(recipe.script_options), list(recipe.parameters),
                                           file_places)
        cells.append(nbk.code_cell(script_entry.ARGV_ID, text))
    if recipe.namespaces == "modules":  # each module of its own, the script (in __main__) apart
        cells.append(nbk.modules_cell())
        cells += [nbk.module_cell(m, body, None if m.path == script else module_name(rel))
                  for rel, m, body in zip(recipe.modules, modules, bodies)]
    else:
        cells += [nbk.module_cell(m, body) for m, body in zip(modules, bodies)]
    if not script:
        entry_module = next((module_name(rel) for rel, m in zip(recipe.modules, modules) if m.path == entry_path), None)
        cells.append(nbk.main_cell(recipe.entry, entry_path, list(recipe.parameters),
                                   entry_module if recipe.namespaces == "modules" else None))
    return cells


# The owner in kernel-metadata.json of a build with none configured (only a Kaggle push needs one).
NO_OWNER = "no-owner-configured"


def _left_out_main_blocks(modules: list[nbk.SourceModule], entry: str) -> list[str]:
    """A note for each `if __name__ == "__main__":` block the notebook leaves out."""
    return [f"{m.path}:{node.lineno}: its `if __name__ == \"__main__\":` block is left out: the notebook calls "
            f"{entry}() instead (a script entry, `kjob init --entry {m.path.rpartition('/')[2]}`, runs a script "
            "as __main__ with its command line)"
            for m in modules for node in m.tree.body if nbk.is_main_guard(node)]


def _entry_function(modules: list[nbk.SourceModule], entry: str) -> tuple[str, ast.FunctionDef | None]:
    for module in modules:
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == entry:
                return module.path, node
    return "", None


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
    """Stage the kernel folder beside the old one, then swap it in. Returns (folder, changed).

    Concurrent builds of one kernel each swap in a complete folder, one after the other."""
    paths = ws.paths.kernel(plan.recipe.name)
    staging = swap.staging_folder(paths.folder)
    staged = type(paths)(staging)
    try:
        (staging / paths.notebook.name).write_text(plan.notebook_text, encoding="utf-8")
        staged.metadata.write_text(json.dumps(plan.metadata, indent=2) + "\n", encoding="utf-8")
        problems = validate_kernel_metadata(plan.metadata, staging)
        if problems:
            raise ValidationError(f"kernel-metadata.json of {plan.recipe.name} would be rejected", details=problems)
        record = {**plan.record, **(extra_record or {})}
        staged.build_record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        with swap.locked(paths.folder):
            notebook = paths.notebook
            old_text = notebook.read_text(encoding="utf-8", errors="replace") if notebook.is_file() else None
            swap.replace(staging, paths.folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths.folder, old_text != plan.notebook_text


def build_kernel(ws: Workspace, name: str, overrides: dict[str, ParamValue] | None = None, smoke: bool = False,
                 inputs=()) -> BuildResult:
    """`inputs`: the recipe's inputs, resolved as a push resolves them, which the smoke run mounts."""
    plan = plan_build(ws, name, overrides)
    smoke_result = None
    extra = {}
    if smoke:
        from kjob.build.smoke import smoke_run

        smoke_result = smoke_run(ws, plan, inputs)  # raises RunFailed before anything is written
        extra["smoke"] = {"passed": True, "seconds": round(smoke_result.seconds, 1)}
    folder, changed = write_kernel(ws, plan, extra)
    return BuildResult(plan, folder, changed, smoke_result)
