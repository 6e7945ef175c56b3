"""What a run was made from, and how two runs differ.

Every notebook kjob pushes is kept once, by its SHA-256 (the hash the ledger records), in
`.kjob/notebooks/<sha256>.ipynb`. Its module cells say which src file each came from
(cell metadata `kjob.source`), so two runs' sources can be compared file by file long after
src/ has moved on, without git.
"""

import difflib
import hashlib
import json
from dataclasses import dataclass

from kjob.fsutil import atomic_write_text
from kjob.runs.lineage import inputs_of
from kjob.runs.record import Run


# The recipe's keys that reach a run; its title, description and [metrics] change no result.
_RUN_KEYS = ("entry", "accelerator", "machine_shape", "internet", "pip", "dataset_sources", "kernel_sources",
             "model_sources", "competition_sources")


def run_signature(recipe, sources: list[dict], parameters: dict, backend: str, inputs=()) -> str:
    """What a run computes, as one SHA-256: its src modules in order (path and hash, as
    build.json records them), the recipe's keys that reach the run, the effective parameters,
    the backend and its inputs (each input run and the SHA-256 of every file it gave: two runs
    given different checkpoints differ). A sweep matches its members to recorded runs by it
    (never by files)."""
    payload = {
        "sources": [[s["path"], s["sha256"]] for s in sources],
        "recipe": {key: getattr(recipe, key) for key in _RUN_KEYS},
        "parameters": parameters,
        "backend": backend,
    }
    if inputs:  # (a run without inputs keeps the signature it always had)
        payload["inputs"] = sorted([item.label, sorted(item.files.items())] for item in inputs)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Change:
    name: str
    old: object  # None: the first run has no such value
    new: object  # None: the second has none


@dataclass(frozen=True)
class SourceChange:
    path: str  # src/pkg/module.py
    change: str  # "changed", "added" or "removed"
    added: int  # lines
    removed: int
    patch: str  # unified diff of the module's text


@dataclass(frozen=True)
class RunDiff:
    a: Run
    b: Run
    parameters: list[Change]
    metrics: list[Change]
    sources: list[SourceChange] | None  # None: a notebook was not kept (see `unkept`)
    unkept: list[str]  # the refs of runs pushed before kjob kept notebooks
    recipe_changed: bool | None  # None: not known
    inputs: list[Change] = ()  # per input kernel, the run it gave (`train:local-v3`), where they differ


def keep_notebook(ws, sha256: str, text: str) -> None:
    path = ws.paths.pushed_notebook(sha256)
    if not path.is_file():  # same hash, same bytes: written once
        atomic_write_text(path, text)


def kept_notebook(ws, sha256: str) -> dict | None:
    path = ws.paths.pushed_notebook(sha256)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def module_sources(nb: dict) -> dict[str, str]:
    """{src path: the module's text as inlined} for each module cell of a built notebook."""
    found = {}
    for cell in nb.get("cells", []):
        info = cell.get("metadata", {}).get("kjob", {})
        if cell.get("cell_type") == "code" and "source" in info:
            text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            found[info["source"]] = text.split("\n", info.get("first_line", 2) - 1)[-1]  # without the header line
    return found


def _changes(old: dict, new: dict) -> list[Change]:
    return [Change(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _source_changes(old: dict[str, str], new: dict[str, str]) -> list[SourceChange]:
    changes = []
    for path in [*old, *(p for p in new if p not in old)]:
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        lines = list(difflib.unified_diff((before or "").splitlines(), (after or "").splitlines(),
                                          f"a/{path}", f"b/{path}", lineterm=""))
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        change = "added" if before is None else "removed" if after is None else "changed"
        changes.append(SourceChange(path, change, added, removed, "\n".join(lines)))
    return changes


def diff_runs(ws, a: Run, b: Run) -> RunDiff:
    """Parameters (as the runs saw them), sources (from their kept notebooks) and metrics."""
    notebooks = {run.ref: kept_notebook(ws, run.notebook_sha256) for run in (a, b)}
    unkept = [ref for ref, nb in notebooks.items() if nb is None]
    sources = recipe_changed = None
    if not unkept:
        nb_a, nb_b = notebooks[a.ref], notebooks[b.ref]
        sources = _source_changes(module_sources(nb_a), module_sources(nb_b))
        recipes = [nb.get("metadata", {}).get("kjob", {}).get("recipe", {}).get("sha256") for nb in (nb_a, nb_b)]
        recipe_changed = None if None in recipes else recipes[0] != recipes[1]
    return RunDiff(a, b, _changes(a.parameters, b.parameters), _changes(a.metrics, b.metrics), sources, unkept,
                   recipe_changed, _changes(_inputs_by_kernel(a), _inputs_by_kernel(b)))


def _inputs_by_kernel(run: Run) -> dict:
    """{input kernel: the run it gave (`train:local-v3`)}."""
    return {item.kernel: item.label for item in inputs_of(run)}
