"""The workspace: the folder holding builders/, src/, kernels/ and the kjob configuration.

Configuration comes from `[tool.kjob]` in pyproject.toml, then `kjob.toml` beside it
(which wins), then environment variables (which win over both).
"""

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kjob.credentials import kaggle_username
from kjob.errors import ConfigError
# What Kaggle's Python image provides (kjob.kaggle_platform cites its source); a workspace adds its own
# with `target_modules = [...]`, a recipe with `pip = [...]`.
from kjob.kaggle_platform import KAGGLE_IMAGE_MODULES, KaggleRef
from kjob.paths import WorkspacePaths
from kjob.toml_tables import Where, is_identifier, shown


# The backends a workspace may configure (`[tool.kjob.<name>]`); kjob.backends maps each to its code.
BACKEND_NAMES = ("local", "kaggle", "ray")


@dataclass(frozen=True)
class WorkspaceConfig:
    owner: str | None = None
    target_modules: frozenset[str] = frozenset()
    # The folder a recipe's `modules` are relative to (and their imports resolve in): "." for a
    # project whose modules sit at its root.
    src_dir: str = "src"
    # Local stand-ins for Kaggle data sources: "owner/slug" -> folder (relative to the root).
    datasets: dict[str, str] = field(default_factory=dict)
    # Parameters every run on a backend gets, by backend name, from
    # `[tool.kjob.<backend>.parameters]` (e.g. local: device = "cpu", this machine is not Kaggle's).
    backend_parameters: dict[str, dict] = field(default_factory=dict)
    # `kjob demo`: which recipe, with which parameters.
    demo: dict = field(default_factory=dict)
    # A backend's own keys of `[tool.kjob.<backend>]` besides `parameters` (BACKEND_SETTINGS),
    # by backend name; the backend checks their types when it is used.
    backend_settings: dict[str, "BackendSettings"] = field(default_factory=dict)
    # `notify = "CMD"`: run when a run of `push --wait` or `sweep` ends (kjob.lifecycle.notify); --notify wins.
    notify: str | None = None

    def settings(self, backend: str) -> "BackendSettings":
        return self.backend_settings.get(backend) or BackendSettings(Where("pyproject.toml", f"tool.kjob.{backend}"), {})

    @property
    def local_parameters(self) -> dict:
        return self.backend_parameters.get("local", {})


@dataclass(frozen=True)
class BackendSettings:
    """`[tool.kjob.<backend>]` without its parameters, and where it was written (for errors)."""

    where: Where
    values: dict


# The keys each backend reads from its table besides `parameters`; the table refuses others.
BACKEND_SETTINGS = {
    "ray": frozenset({"address", "storage", "cluster_storage", "datasets", "resources", "python"}),
}


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: WorkspaceConfig

    @property
    def paths(self) -> WorkspacePaths:
        return WorkspacePaths(self.root, self.config.src_dir)

    def owner(self) -> str:
        """The Kaggle user owning the kernels; only a Kaggle push (or a dataset push) needs one."""
        owner = self.owner_or_none()
        if not owner:
            raise ConfigError(
                "no Kaggle owner configured: set `owner` under [tool.kjob] in pyproject.toml, "
                "in kjob.toml, or KJOB_OWNER in the environment"
            )
        return owner

    def owner_or_none(self) -> str | None:
        """`owner` (or KJOB_OWNER), else the user name of the Kaggle credentials, if any."""
        if self.config.owner:
            return self.config.owner
        name = kaggle_username()
        return name if name and OWNER_RE.fullmatch(name) else None

    def available_modules(self) -> frozenset[str]:
        return KAGGLE_IMAGE_MODULES | self.config.target_modules


# Kaggle user names: letters, digits, '-' and '_' (no spaces, no '/': it is the id's first half).
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_OWNER_EXPECTED = "expected a Kaggle user name (letters, digits, '-' and '_')"


def read_utf8(path: Path, name: str, error: type = ConfigError) -> str:
    """The text of `path`; if it is not UTF-8, one `error` line naming `name` and the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}, "
                    f"line {line}); save it as UTF-8") from exc


def environment_owner() -> str | None:
    """KJOB_OWNER: the Kaggle user owning the kernels, which wins over the configured `owner`."""
    return os.environ.get("KJOB_OWNER") or None


def _is_workspace(folder: Path) -> bool:
    if (folder / "kjob.toml").is_file():
        return True
    pyproject = folder / "pyproject.toml"
    # Bytes, not text: a pyproject.toml that is not UTF-8 is reported by load_config, by name.
    return pyproject.is_file() and b"[tool.kjob" in pyproject.read_bytes()


def find_workspace(start: Path | None = None) -> Workspace:
    """The workspace containing `start` (default: KJOB_WORKSPACE or the current folder)."""
    env_root = os.environ.get("KJOB_WORKSPACE")
    here = Path(env_root or start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_workspace(folder):
            return Workspace(folder, load_config(folder))
    raise ConfigError(
        f"no kjob workspace at or above {here}: expected a pyproject.toml with a [tool.kjob] "
        "table or a kjob.toml"
    )


def read_toml(path: Path, name: str | None = None) -> dict:
    """A TOML file's table; a file that is not UTF-8 or not TOML is one line naming `name`."""
    name = name or path.name
    try:
        return tomllib.loads(read_utf8(path, name))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


def _layers(root: Path) -> list[tuple[Where, dict]]:
    """Each configuration table with where it came from, lowest precedence first."""
    layers = []
    if (root / "pyproject.toml").is_file():
        tool = read_toml(root / "pyproject.toml").get("tool", {})
        table = tool.get("kjob", {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise Where("pyproject.toml", "tool").fail("kjob", "expected a table", table)
        layers.append((Where("pyproject.toml", "tool.kjob"), table))
    if (root / "kjob.toml").is_file():
        layers.append((Where("kjob.toml"), _unprefixed(read_toml(root / "kjob.toml"))))
    return layers


def _unprefixed(table: dict) -> dict:
    """kjob.toml's keys sit at its top (`[datasets]`); spelled as in pyproject.toml
    (`[tool.kjob.datasets]`) they are taken too, unless a key is written both ways."""
    tool = table.get("tool")
    if "tool" not in table:
        return table
    if not (isinstance(tool, dict) and set(tool) == {"kjob"} and isinstance(tool["kjob"], dict)):
        raise ConfigError("kjob.toml: [tool] is pyproject.toml's table; in kjob.toml write kjob's keys at the top "
                          "(owner = ..., [datasets], [local.parameters]), or under [tool.kjob]")
    rest = {key: value for key, value in table.items() if key != "tool"}
    both = sorted(set(rest) & set(tool["kjob"]))
    if both:
        raise ConfigError(f"kjob.toml: {both[0]} is set both at the top and under [tool.kjob]; keep one "
                          f"(in kjob.toml, [{both[0]}] without the tool.kjob prefix)")
    return {**rest, **tool["kjob"]}


def load_config(root: Path) -> WorkspaceConfig:
    table: dict = {}
    where: dict[str, Where] = {}  # each key's file, so that an error names the file it is in
    for w, layer in _layers(root):
        w.refuse_unknown(layer, {"owner", "target_modules", "src_dir", "datasets", "demo", "notify", *BACKEND_NAMES})
        table.update(layer)
        where.update(dict.fromkeys(layer, w))
    if "owner" in table and not (isinstance(table["owner"], str) and OWNER_RE.fullmatch(table["owner"])):
        raise where["owner"].fail("owner", _OWNER_EXPECTED, table["owner"])
    owner = environment_owner() or table.get("owner")
    if owner and not OWNER_RE.fullmatch(owner):
        raise ConfigError(f"KJOB_OWNER (environment): {_OWNER_EXPECTED}, not {shown(owner)}")
    modules = table.get("target_modules", [])
    if not isinstance(modules, list):
        raise where["target_modules"].fail("target_modules", "expected a list of module names", modules)
    for module in modules:
        if not is_identifier(module):
            raise where["target_modules"].fail("target_modules", "expected top-level module names", module)
    notify = table.get("notify")
    if "notify" in table and not (isinstance(notify, str) and notify.strip()):
        raise where["notify"].fail("notify", "expected a shell command (string) run when a run ends", notify)
    return WorkspaceConfig(
        notify=notify,
        owner=owner,
        target_modules=frozenset(modules),
        src_dir=_src_dir(where.get("src_dir"), table),
        datasets=_datasets(where.get("datasets"), table),
        backend_parameters={name: _backend_parameters(where[name], table, name)
                            for name in BACKEND_NAMES if name in table},
        demo=_demo(where.get("demo"), table),
        backend_settings={name: BackendSettings(where[name].at(name),
                                                {k: v for k, v in table[name].items() if k != "parameters"})
                          for name in BACKEND_SETTINGS if name in table},
    )


def _src_dir(w: Where | None, table: dict) -> str:
    if w is None:
        return "src"
    value = table["src_dir"]
    ok = isinstance(value, str) and (value == "." or (
        not value.startswith("/") and "\\" not in value and ":" not in value
        and all(part not in ("", ".", "..") for part in value.split("/"))))
    if not ok:
        raise w.fail("src_dir", 'expected a folder inside the workspace, like "src" or "." (its root)', value)
    return value


def _datasets(w: Where | None, table: dict) -> dict[str, str]:
    if w is None:
        return {}
    datasets = w.table_of(table, "datasets")
    inner = w.at("datasets")
    for key, folder in datasets.items():
        if KaggleRef.read(key, versioned=False) is None:
            raise inner.fail(key, "expected a key 'owner/slug' naming a Kaggle dataset", key)
        if not isinstance(folder, str) or not folder.strip():
            raise inner.fail(key, "expected a folder path (string)", folder)
    return dict(datasets)


def _backend_parameters(w: Where, table: dict, backend: str) -> dict:
    section = w.table_of(table, backend)
    w.at(backend).refuse_unknown(section, {"parameters", *BACKEND_SETTINGS.get(backend, ())})
    return w.at(backend).parameters(section)


def _demo(w: Where | None, table: dict) -> dict:
    if w is None:
        return {}
    demo, inner = w.table_of(table, "demo"), w.at("demo")
    inner.refuse_unknown(demo, {"recipe", "timeout", "parameters"})
    if "recipe" in demo and not (isinstance(demo["recipe"], str) and demo["recipe"]):
        raise inner.fail("recipe", "expected a recipe name (string)", demo["recipe"])
    timeout = demo.get("timeout")
    if "timeout" in demo and (type(timeout) is not int or timeout < 1):
        raise inner.fail("timeout", "expected a whole number of seconds of at least 1", timeout)
    if "parameters" in demo:
        inner.parameters(demo)
    return dict(demo)
