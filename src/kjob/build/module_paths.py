"""Where a recipe's `modules` entries live, and the names they are imported under.

An entry is a path under the source folder (`enhancer/stft.py`, imported as `enhancer.stft`),
or `../FOLDER/REL.py`: a module in another top-level folder of the workspace, that folder being
its import root (`../eval/speechscore/metrics.py` is `speechscore.metrics`). The evaluator's own
code is inlined from where it lives: no copy under src/ to drift, no link that a Windows checkout
turns into a text file.
"""

from pathlib import Path

from kjob.errors import ConfigError
from kjob.workspace import Workspace

OUTSIDE_PREFIX = "../"
# Top-level folders never searched for a project module: setuptools' copies of the packages.
_NOT_IMPORT_ROOTS = frozenset({"build", "dist"})


def split_entry(rel: str) -> tuple[str | None, str]:
    """(FOLDER, REL.py) of `../FOLDER/REL.py`; (None, rel) of a path under the source folder."""
    if rel.startswith(OUTSIDE_PREFIX):
        folder, _, inner = rel.removeprefix(OUTSIDE_PREFIX).partition("/")
        return folder, inner
    return None, rel


def module_name(rel: str) -> str:
    """The dotted name a `modules` entry is imported under (relative to its import root)."""
    return split_entry(rel)[1].removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def module_file(src: Path, name: str) -> Path | None:
    """The file under `src` that `import name` would load, if any (a module or a package)."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def source_path(ws: Workspace, rel: str) -> Path:
    """The file a `modules` entry names."""
    folder, inner = split_entry(rel)
    return (ws.paths.src if folder is None else ws.root / folder) / inner


def check_entries(ws: Workspace, modules: tuple[str, ...], recipe_name: str) -> None:
    """Refuse, in one line naming the recipe and key, an entry the workspace cannot take: a
    `../` one that leaves the workspace (through a link) or names the source folder itself, or
    two entries imported under one name (their cells would be one module twice)."""
    root, src = ws.root.resolve(), ws.paths.src.resolve()
    seen: dict[str, str] = {}
    for rel in modules:
        folder, inner = split_entry(rel)
        if folder is not None:
            resolved = source_path(ws, rel).resolve()
            if not resolved.is_relative_to(root):
                raise ConfigError(f"{recipe_name}: modules: {rel!r} leads outside the workspace, to {resolved}")
            if (ws.root / folder).resolve() == src:
                raise ConfigError(f"{recipe_name}: modules: {rel!r} is in the source folder: write it as {inner!r}")
        name = module_name(rel)
        if name in seen:
            raise ConfigError(f"{recipe_name}: modules: {seen[name]!r} and {rel!r} are both imported as {name}")
        seen[name] = rel


def project_module(ws: Workspace, name: str) -> tuple[str, str] | None:
    """(`modules` entry, path as shown) of the project's module `import name` would load: under
    the source folder, else in a package of another top-level folder; None if neither has it."""
    path = module_file(ws.paths.src, name)
    if path is not None:
        return path.relative_to(ws.paths.src).as_posix(), ws.paths.relative(path)
    src, top = ws.paths.src.resolve(), name.split(".")[0]
    for folder in sorted(ws.root.iterdir()):
        if (folder.name.startswith((".", "_")) or folder.name in _NOT_IMPORT_ROOTS or not folder.is_dir()
                or folder.resolve() == src or not (folder / top / "__init__.py").is_file()):
            continue
        path = module_file(folder, name)
        if path is not None:
            return f"{OUTSIDE_PREFIX}{folder.name}/{path.relative_to(folder).as_posix()}", ws.paths.relative(path)
    return None
