"""Kernel recipes: one declarative TOML file per kernel under builders/.

A recipe names what goes into the notebook (src modules in order, the entry function,
typed parameters) and how Kaggle should run it (sources, accelerator, internet, timeout).
Reading a recipe does no other I/O and runs no code.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import NotFoundError, UsageError
from kjob.runs.metrics import MetricSpec
from kjob.build.script_entry import ScriptOption, is_script, read_options, unknown_option_hint
from kjob.build.schema import (  # noqa: F401  (re-exported: the recipe's vocabulary)
    ACCELERATORS, DEFAULT_MACHINE_SHAPE, DEFAULT_SMOKE_TIMEOUT, KAGGLE_MAX_SESSION_SECONDS, SLUG_RE,
    SOURCE_RE, ParamValue, param_value_problem, recipe_fields,
)
from kjob.workspace import Workspace, read_toml


@dataclass(frozen=True)
class KernelRecipe:
    name: str
    path: Path
    title: str
    slug: str
    description: str
    modules: tuple[str, ...]
    entry: str
    parameters: dict[str, ParamValue]
    smoke_parameters: dict[str, ParamValue] = field(default_factory=dict)
    smoke_timeout: int = DEFAULT_SMOKE_TIMEOUT
    smoke_datasets: dict[str, str] = field(default_factory=dict)  # [smoke] datasets: sample folders
    dataset_sources: tuple[str, ...] = ()
    kernel_sources: tuple[str, ...] = ()
    model_sources: tuple[str, ...] = ()
    competition_sources: tuple[str, ...] = ()
    accelerator: str = "gpu"
    machine_shape: str | None = "NvidiaTeslaT4"
    internet: bool = False
    private: bool = True
    session_timeout: int = KAGGLE_MAX_SESSION_SECONDS
    metrics: MetricSpec = field(default_factory=MetricSpec)  # [metrics]: how `kjob runs` ranks its runs
    pip: tuple[str, ...] = ()  # requirements the notebook's first cell installs (internet on)
    pip_modules: tuple[str, ...] = ()  # import names they provide beyond kjob.kaggle_platform's guesses
    docker_image: str | None = None  # Kaggle's image pinned (SaveKernel dockerImage); None: Kaggle's choice
    secrets: tuple[str, ...] = ()  # names the kernel may read with kaggle_secrets.UserSecretsClient
    # A script entry's command-line options (kjob.build.script_entry), read from the script; () otherwise.
    script_options: tuple = ()
    inputs: tuple[str, ...] = ()  # runs whose outputs it is given (KERNEL[:vN][@BACKEND]; kjob.lifecycle.inputs)
    resume_parameter: str | None = None  # [resume] parameter: set by `push --resume-from` to where they are
    # "shared": the modules' cells share the notebook's namespace; "modules": each runs as its own
    # module (sys.modules, relative imports, one `logger` each), as Python imports a project.
    namespaces: str = "shared"

    @property
    def is_script(self) -> bool:
        return is_script(self.entry)

    def with_parameters(self, overrides: dict[str, ParamValue]) -> "KernelRecipe":
        from dataclasses import replace

        return replace(self, parameters={**self.parameters, **overrides})


def list_recipes(ws: Workspace) -> list[str]:
    folder = ws.paths.builders
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def load_recipe(ws: Workspace, name: str) -> KernelRecipe:
    if not NAME_RE.match(name) or ".." in name:
        raise UsageError(f"'{name}' is not a recipe name (the stem of a file in builders/)")
    path = ws.paths.recipe(name)
    if not path.is_file():
        known = ", ".join(list_recipes(ws)) or "none"
        raise NotFoundError(f"no recipe '{name}' in builders/ (known: {known})")
    rel = ws.paths.relative(path)
    fields = recipe_fields(name, rel, read_toml(path, rel))
    if is_script(fields["entry"]):
        fields["script_options"] = tuple(_script_options(ws.paths.src / fields["entry"], ws.paths.src))
    return KernelRecipe(name=name, path=path, **fields)


def _script_options(path: Path, src: Path) -> list[ScriptOption]:
    """The script's options; none if it cannot be read (the build then reports it by line)."""
    import ast

    try:
        return read_options(ast.parse(path.read_bytes().decode("utf-8").removeprefix("\ufeff")), (path.parent, src))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return []


def coerce_value(key: str, value, default: ParamValue, *, where: str = "-p") -> ParamValue:
    """`value` (a string from the command line, or a TOML value) as the type of `default`."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                lowered = text.lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError
                return lowered in {"true", "1", "yes"}
            if kind is int:
                return int(text)
            if kind is float:
                number = float(text)
                if not math.isfinite(number):  # inf and nan have no literal in a notebook cell
                    raise ValueError
                return number
            if kind is list:
                parsed = json.loads(text)
                if not isinstance(parsed, list) or param_value_problem(parsed):
                    raise ValueError  # nested lists, objects, NaN: no plain literal in the cell
                return parsed
        except ValueError as exc:
            raise UsageError(
                f"{where}: parameter '{key}' expects {kind.__name__}, got {value!r}"
            ) from exc
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind or param_value_problem(value):
        raise UsageError(f"{where}: parameter '{key}' expects {kind.__name__}, got {value!r}")
    return value


def parse_overrides(recipe: KernelRecipe, items: list[str]) -> dict[str, ParamValue]:
    """`-p key=value` items as typed values; unknown keys and bad values are usage errors."""
    result: dict[str, ParamValue] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-p expects key=value, got {item!r}")
        options = {o.name: o for o in recipe.script_options}
        if key not in recipe.parameters and key not in options:
            if recipe.is_script:
                known = ", ".join(options) or "none"
                raise UsageError(f"unknown parameter '{key}' for {recipe.name}: not an option of {recipe.entry} "
                                 f"(its options: {known})" + unknown_option_hint(
                                     list(options.values()), key, f"builders/{recipe.name}.toml"))
            known = ", ".join(recipe.parameters) or "none"
            raise UsageError(f"unknown parameter '{key}' for {recipe.name} (known: {known})")
        if key in result:
            raise UsageError(f"parameter '{key}' is set twice with -p")
        default = recipe.parameters[key] if key in recipe.parameters else options[key].example
        result[key] = coerce_value(key, raw, default)
    return result
