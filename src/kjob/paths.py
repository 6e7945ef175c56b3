"""Every file and folder name kjob reads or writes in a workspace, defined once."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KernelPaths:
    """kernels/<name>/: the folder pushed to a backend."""

    folder: Path

    @property
    def metadata(self) -> Path:
        return self.folder / "kernel-metadata.json"

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.folder.name}.ipynb"

    @property
    def build_record(self) -> Path:
        return self.folder / "build.json"


@dataclass(frozen=True)
class SmokePaths:
    """.kjob/smoke/<name>/: the last smoke run of a kernel, kept for inspection."""

    folder: Path

    @property
    def executed_notebook(self) -> Path:
        return self.folder / "executed.ipynb"

    @property
    def kernel_log(self) -> Path:
        return self.folder / "kernel.log"

    @property
    def input_dir(self) -> Path:
        return self.folder / "input"

    @property
    def working_dir(self) -> Path:
        return self.folder / "working"

    @property
    def temp_dir(self) -> Path:
        return self.folder / "temp"


@dataclass(frozen=True)
class WorkspacePaths:
    root: Path

    @property
    def builders(self) -> Path:
        return self.root / "builders"

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def state(self) -> Path:
        """kjob's own state (ledger, smoke runs, local runs); git-ignored."""
        return self.root / ".kjob"

    def recipe(self, name: str) -> Path:
        return self.builders / f"{name}.toml"

    def kernel(self, name: str) -> KernelPaths:
        return KernelPaths(self.kernels / name)

    def smoke(self, name: str) -> SmokePaths:
        return SmokePaths(self.state / "smoke" / name)

    def relative(self, path: Path) -> str:
        """A path as shown to the user: relative to the workspace when inside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)
