"""`kjob build --smoke`: run the built notebook on this CPU with the recipe's smoke parameters.

The same notebook, re-parameterised (a few steps), with the dataset sources mounted as a local run
mounts them (`[smoke] datasets` may map a smaller sample folder) and the recipe's `inputs` too
(other runs' fetched outputs, resolved by the caller as a push resolves them, with
kjob-inputs.json beside them), in a fresh run sandbox
`.kjob/smoke/NAME/` (`kjob.sandbox.folder`, the same isolation as every run: /kaggle/working is its
working/ folder under bubblewrap), in the foreground, with no GPU (CUDA_VISIBLE_DEVICES="")
and KAGGLE_KERNEL_RUN_TYPE=Interactive. It keeps executed.ipynb and working/ for inspection.

A smoke run never installs from the network: the recipe's `pip` packages must already be
installed here (in the Python that runs kjob, whose kernel executes the notebook), and the
notebook's install cell is skipped. A missing one fails the smoke run before it starts; a
version other than the recipe pins is a note (the run tests the code with what is here).
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kjob import notebook as nbk
from kjob.errors import RunFailed
from kjob.runs.failures import failure_hint
from kjob.sandbox.execute_notebook import Failure
from kjob.fsutil import atomic_write_text
from kjob.kaggle_platform import KaggleRef, input_layouts, output_warnings
from kjob.runs.lineage import manifest
from kjob.sandbox.folder import NO_OUTPUTS, RunSpec, Sandbox
from kjob.workspace import Workspace


@dataclass(frozen=True)
class SmokeResult:
    seconds: float
    executed_notebook: Path
    outputs: list[str]  # the files the run wrote to its working folder
    isolation: str = ""  # kjob.sandbox.isolation.BUBBLEWRAP or ENVIRONMENT_ONLY
    warnings: list[str] = field(default_factory=list)  # one line each, for the user


def smoke_run(ws: Workspace, plan, inputs=()) -> SmokeResult:
    """`inputs`: the recipe's inputs as a push resolves them (kjob.lifecycle.inputs.resolve_inputs:
    each with `folder`, its fetched outputs, and `record`, a RunInput); a recipe with inputs given
    none here runs without them, with a note."""
    recipe = plan.recipe
    paths = ws.paths.smoke(recipe.name)
    shutil.rmtree(paths.folder, ignore_errors=True)
    nb = nbk.parameterize(plan.notebook, recipe.smoke_parameters)
    pip_notes = []
    if recipe.pip:
        installed, pip_notes = local_packages(ws, recipe)
        nb = nbk.without_pip_install(nb, "kjob smoke run: pip install skipped; installed here: " + ", ".join(installed))
    spec = RunSpec(timeout=recipe.smoke_timeout, run_type="Interactive",
                   env={"CUDA_VISIBLE_DEVICES": ""},  # a smoke run never touches a GPU, even where one exists
                   hide=(ws.root,), secrets=recipe.secrets)
    mounts, mount_notes = smoke_mounts(ws, recipe)
    mounts.update(smoke_input_mounts(paths, inputs))
    if recipe.inputs and not inputs:
        mount_notes.append(f"the recipe's inputs ({', '.join(recipe.inputs)}) were not given: the smoke run "
                           "has no /kaggle/input for them")
    sandbox = Sandbox.create(paths.folder, nbk.dumps(nb), mounts, spec)
    state = sandbox.run()
    warnings = [state["isolation_note"]] if state.get("isolation_note") else []
    warnings += mount_notes
    warnings += pip_notes
    seconds = float(state.get("seconds") or (state.get("finished_at", 0) - state.get("launched_at", 0)) or 0)
    if state.get("status") != "complete":
        failure = Failure(state.get("failure_kind") or state.get("raw_status") or "error",
                          state.get("failure_message") or "the run did not complete",
                          state.get("failure_cell"), state.get("failure_location"))
        shown = ws.paths.relative(paths.executed_notebook)
        hint = failure_hint(None, dict(nb["metadata"].get("kjob", {}).get("parameters", {})), failure.message, ws.root)
        raise RunFailed(
            f"smoke run of {recipe.name} failed ({failure.kind}) after {seconds:.0f} s: "
            f"{failure.describe()}; kernels/{recipe.name} left unchanged, executed notebook in {shown}"
            + (f"; hint: {hint}" if hint else ""),
            failure=failure,
        )
    files = sandbox.outputs()
    outputs = [name for name, _ in files]
    if not outputs:
        warnings.append(NO_OUTPUTS)
    warnings += output_warnings([(name, path.stat().st_size) for name, path in files])  # Kaggle's output limits
    return SmokeResult(seconds, paths.executed_notebook, outputs, state.get("isolation", ""), warnings)


def smoke_mounts(ws: Workspace, recipe) -> tuple[dict, list[str]]:
    """Each dataset source's local folder in /kaggle/input, as a local run mounts it: the
    recipe's `[smoke] datasets` sample folder, else the workspace's `[tool.kjob.datasets]` one.
    A source with neither is a note (the smoke run sees no such input)."""
    mounts, notes = {}, []
    for source in recipe.dataset_sources:
        key = KaggleRef.parse(source).key
        mapped = recipe.smoke_datasets.get(key) or ws.config.datasets.get(key)
        folder = (ws.root / mapped).resolve() if mapped is not None else None
        if folder is None or not folder.is_dir():
            where = f"maps to {mapped}, which is not a folder" if mapped else \
                "has no local folder ([tool.kjob.datasets], or the recipe's [smoke] datasets)"
            notes.append(f"dataset source {key} {where}: the smoke run has no /kaggle/input for it")
            continue
        mounts.update(dict.fromkeys(input_layouts("dataset", key), folder))
    return mounts, notes


def smoke_input_mounts(paths, inputs) -> dict:
    """Each input's folder where a local run sees it (linked, read-only under bubblewrap), and
    kjob-inputs.json, as kjob.backends.mounts.input_mounts lays them out for local runs."""
    if not inputs:
        return {}
    mounts = {}
    for item in inputs:
        mounts.update(dict.fromkeys(item.record.mounts, item.folder))
    atomic_write_text(paths.inputs_manifest, manifest([item.record for item in inputs]))
    mounts[paths.inputs_manifest.name] = paths.inputs_manifest
    return mounts


def local_packages(ws: Workspace, recipe) -> tuple[list[str], list[str]]:
    """('name version' of each `pip` requirement installed here, notes on versions the recipe
    does not pin); RunFailed naming the first requirement that is not installed."""
    from importlib import metadata

    from kjob.kaggle_platform import requirement_name

    installed, notes = [], []
    for requirement in recipe.pip:
        name = requirement_name(requirement)
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise RunFailed(
                f"smoke run of {recipe.name}: pip package {requirement!r} ({ws.paths.relative(recipe.path)}: pip) "
                f"is not installed here, and a smoke run does not install from the network; install it "
                f"(python -m pip install {requirement!r}) and run again; kernels/{recipe.name} left unchanged"
            ) from None
        installed.append(f"{name} {version}")
        if not _satisfies(requirement, version):
            notes.append(f"the smoke run used {name} {version}, installed here; the recipe asks for {requirement!r}")
    return installed, notes


def _satisfies(requirement: str, version: str) -> bool:
    try:  # packaging is not a kjob dependency: without it, any installed version will do
        from packaging.requirements import Requirement
    except ImportError:
        return True
    try:
        return Requirement(requirement).specifier.contains(version, prereleases=True)
    except ValueError:  # a requirement or version packaging cannot read: do not guess
        return True
