"""The workspace: the folder holding builders/, src/, kernels/ and the kjob configuration.

Configuration comes from `[tool.kjob]` in pyproject.toml, then `kjob.toml` beside it
(which wins), then environment variables (which win over both).
"""

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import ConfigError
from kjob.paths import WorkspacePaths

# Modules importable on Kaggle's Python image besides the standard library. A workspace
# adds its own with `target_modules = [...]` in its configuration.
KAGGLE_IMAGE_MODULES = frozenset(
    """
    numpy scipy pandas sklearn matplotlib seaborn PIL cv2 skimage tqdm yaml requests h5py
    torch torchvision torchaudio soundfile librosa transformers datasets tokenizers timm
    accelerate einops safetensors huggingface_hub lightgbm xgboost catboost tensorflow keras
    jax optax flax IPython ipywidgets kaggle kagglehub polars pyarrow joblib numba sympy
    statsmodels nltk py7zr psutil
    """.split()
)


@dataclass(frozen=True)
class WorkspaceConfig:
    owner: str | None = None
    target_modules: frozenset[str] = frozenset()
    # Local stand-ins for Kaggle data sources: "owner/slug" -> folder (relative to the root).
    datasets: dict[str, str] = field(default_factory=dict)
    # Parameters every local run gets (this machine is not Kaggle's: e.g. device = "cpu").
    local_parameters: dict = field(default_factory=dict)
    # `kjob demo`: which recipe, with which parameters.
    demo: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: WorkspaceConfig

    @property
    def paths(self) -> WorkspacePaths:
        return WorkspacePaths(self.root)

    def owner(self) -> str:
        if not self.config.owner:
            raise ConfigError(
                "no Kaggle owner configured: set `owner` under [tool.kjob] in pyproject.toml, "
                "in kjob.toml, or KJOB_OWNER in the environment"
            )
        return self.config.owner

    def available_modules(self) -> frozenset[str]:
        return KAGGLE_IMAGE_MODULES | self.config.target_modules


def _is_workspace(folder: Path) -> bool:
    if (folder / "kjob.toml").is_file():
        return True
    pyproject = folder / "pyproject.toml"
    return pyproject.is_file() and "[tool.kjob" in pyproject.read_text(encoding="utf-8")


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


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None


def load_config(root: Path) -> WorkspaceConfig:
    table: dict = {}
    if (root / "pyproject.toml").is_file():
        table.update(_read_toml(root / "pyproject.toml").get("tool", {}).get("kjob", {}))
    if (root / "kjob.toml").is_file():
        table.update(_read_toml(root / "kjob.toml"))
    unknown = set(table) - {"owner", "target_modules", "datasets", "local", "demo"}
    if unknown:
        raise ConfigError(f"unknown kjob configuration keys: {', '.join(sorted(unknown))}")
    owner = os.environ.get("KJOB_OWNER") or table.get("owner")
    modules = table.get("target_modules", [])
    datasets = table.get("datasets", {})
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError("kjob configuration: target_modules must be a list of module names")
    if not isinstance(datasets, dict):
        raise ConfigError("kjob configuration: datasets must be a table of 'owner/slug' = folder")
    local = table.get("local", {})
    demo = table.get("demo", {})
    if not isinstance(local, dict) or set(local) - {"parameters"}:
        raise ConfigError("kjob configuration: [tool.kjob.local] takes only a parameters table")
    return WorkspaceConfig(
        owner=owner,
        target_modules=frozenset(modules),
        datasets=dict(datasets),
        local_parameters=dict(local.get("parameters", {})),
        demo=dict(demo),
    )
