"""Kernel recipes: one declarative TOML file per kernel under builders/.

A recipe names what goes into the notebook (src modules in order, the entry function,
typed parameters) and how Kaggle should run it (sources, accelerator, internet, timeout).
Reading a recipe does no other I/O and runs no code.
"""

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import ConfigError, NotFoundError, UsageError
from kjob.workspace import Workspace

ParamValue = bool | int | float | str | list
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SOURCE_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/\d+)?$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACCELERATORS = {"gpu", "tpu", "none"}
DEFAULT_MACHINE_SHAPE = {"gpu": "NvidiaTeslaT4", "tpu": "TpuV38", "none": None}
KAGGLE_MAX_SESSION_SECONDS = 12 * 3600

_KEYS = {
    "title", "slug", "description", "modules", "entry", "parameters", "smoke",
    "dataset_sources", "kernel_sources", "model_sources", "competition_sources",
    "accelerator", "machine_shape", "internet", "private", "session_timeout",
}


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
    smoke_timeout: int = 120
    dataset_sources: tuple[str, ...] = ()
    kernel_sources: tuple[str, ...] = ()
    model_sources: tuple[str, ...] = ()
    competition_sources: tuple[str, ...] = ()
    accelerator: str = "gpu"
    machine_shape: str | None = "NvidiaTeslaT4"
    internet: bool = False
    private: bool = True
    session_timeout: int = KAGGLE_MAX_SESSION_SECONDS

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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{rel}: {exc}") from None
    return _recipe_from_table(name, path, rel, data)


def _recipe_from_table(name: str, path: Path, rel: str, data: dict) -> KernelRecipe:
    def fail(msg: str) -> ConfigError:
        return ConfigError(f"{rel}: {msg}")

    unknown = set(data) - _KEYS
    if unknown:
        raise fail(f"unknown keys: {', '.join(sorted(unknown))}")
    for key in ("title", "modules", "entry"):
        if key not in data:
            raise fail(f"missing required key '{key}'")
    slug = data.get("slug", name)
    if not SLUG_RE.match(slug):
        raise fail(f"slug '{slug}' must be lowercase letters, digits and single dashes")
    modules = data["modules"]
    if not modules or not all(isinstance(m, str) and m.endswith(".py") for m in modules):
        raise fail("modules must be a non-empty list of .py paths relative to src/")
    if not IDENT_RE.match(data["entry"]):
        raise fail(f"entry '{data['entry']}' must be a function name")
    params = data.get("parameters", {})
    for key, value in params.items():
        if not IDENT_RE.match(key):
            raise fail(f"parameter name '{key}' is not a Python identifier")
        if not isinstance(value, ParamValue):
            raise fail(f"parameter '{key}' has an unsupported type ({type(value).__name__})")
    smoke = dict(data.get("smoke", {}))
    smoke_params = smoke.pop("parameters", {})
    smoke_timeout = smoke.pop("timeout", 120)
    if smoke:
        raise fail(f"unknown keys in [smoke]: {', '.join(sorted(smoke))}")
    for key, value in smoke_params.items():
        if key not in params:
            raise fail(f"smoke parameter '{key}' is not a recipe parameter")
        coerce_value(key, value, params[key], where=rel)
    for key in ("internet", "private"):
        if key in data and not isinstance(data[key], bool):
            raise fail(f"{key} must be true or false, not {data[key]!r}")
    accelerator = data.get("accelerator", "gpu")
    if accelerator not in ACCELERATORS:
        raise fail(f"accelerator must be one of {sorted(ACCELERATORS)}")
    sources = {}
    for key in ("dataset_sources", "kernel_sources", "model_sources", "competition_sources"):
        values = data.get(key, [])
        bad = [v for v in values if key != "competition_sources" and not SOURCE_RE.match(v)]
        if bad:
            raise fail(f"{key}: '{bad[0]}' is not 'owner/slug' or 'owner/slug/version'")
        sources[key] = tuple(values)
    timeout = data.get("session_timeout", KAGGLE_MAX_SESSION_SECONDS)
    if not isinstance(timeout, int) or not 60 <= timeout <= KAGGLE_MAX_SESSION_SECONDS:
        raise fail(f"session_timeout must be seconds between 60 and {KAGGLE_MAX_SESSION_SECONDS}")
    return KernelRecipe(
        name=name,
        path=path,
        title=data["title"],
        slug=slug,
        description=data.get("description", ""),
        modules=tuple(modules),
        entry=data["entry"],
        parameters=dict(params),
        smoke_parameters=dict(smoke_params),
        smoke_timeout=int(smoke_timeout),
        accelerator=accelerator,
        machine_shape=data.get("machine_shape", DEFAULT_MACHINE_SHAPE[accelerator]),
        internet=bool(data.get("internet", False)),
        private=bool(data.get("private", True)),
        session_timeout=timeout,
        **sources,
    )


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
                if not isinstance(parsed, list):
                    raise ValueError
                return parsed
        except ValueError:
            raise UsageError(
                f"{where}: parameter '{key}' expects {kind.__name__}, got {value!r}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
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
        if key not in recipe.parameters:
            known = ", ".join(recipe.parameters) or "none"
            raise UsageError(f"unknown parameter '{key}' for {recipe.name} (known: {known})")
        if key in result:
            raise UsageError(f"parameter '{key}' is set twice with -p")
        result[key] = coerce_value(key, raw, recipe.parameters[key])
    return result
