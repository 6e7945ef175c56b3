"""The emulator's records: kernels, datasets, models, their versions, and how they are kept in `--state-dir`.

Everything a client can observe survives a restart: kernels (deleted ones too, whose
sessions still count against the quota), versions with the pushes that made them, each
version's run folder (outputs, log, status), the next kernel id, and pushed datasets with
their versions' files, and pushed models with their instances and those instances' versions'
files. The state is one JSON file, rewritten atomically after every change;
the run folders are the sessions' own, the dataset folders are never changed once made.

    <state-dir>/emulator-state.json              kernels, datasets and versions (pushes without their text)
    <state-dir>/emulator.lock                    held by the emulator serving the folder
    <state-dir>/<owner>/<slug>/kernel-<id>/vN/   one version's run sandbox (`kjob.sandbox.folder`)
    <state-dir>/_datasets/<owner>/<slug>/vN/     one dataset version's files (no Kaggle name starts with "_")
    <state-dir>/_models/<owner>/<model>/<framework>/<instance>/vN/   one model instance version's files
    <state-dir>/_archives/                       zips and tarballs made for whole downloads (answers.py)
    <state-dir>/_blobs/<token>[.json]            uploads not yet part of a dataset (blobs.py)

Format 2 added the datasets, format 3 the models; an older file is read as it is and written
in the current format at the next change. An older kjob refuses a newer format rather than
dropping what it does not know.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kjob.emulator.sessions import Session
from kjob.fsutil import atomic_write_json, read_json

STATE_FILE = "emulator-state.json"
LOCK_FILE = "emulator.lock"  # held while an emulator serves the folder: two would overwrite each other's state
STATE_FORMAT = 3
_READABLE = (1, 2, 3)

# Machine shapes, as the official client passes them through (kagglesdk has no enum for them):
# "NvidiaTeslaT4", "NvidiaTeslaP100", "NvidiaL4", "NvidiaH100", ... are GPUs; "Tpu1VmV38",
# "TpuV6E8" are TPUs. The emulator assumes, as the official client's `--accelerator` help says,
# that a shape overrides the enable_gpu / enable_tpu booleans.
_GPU_PREFIXES, _TPU_PREFIXES = ("nvidia", "gpu"), ("tpu",)


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def accelerator(request: dict) -> str | None:
    """"gpu", "tpu" or None (CPU) for a SaveKernel body."""
    shape = str(request.get("machineShape") or "").lower()
    if shape.startswith(_GPU_PREFIXES):
        return "gpu"
    if shape.startswith(_TPU_PREFIXES):
        return "tpu"
    if shape in ("none", "cpu"):
        return None
    return "gpu" if request.get("enableGpu") else ("tpu" if request.get("enableTpu") else None)


@dataclass
class Version:
    number: int
    request: dict  # the SaveKernel body as received, without its text (that is in the run folder)
    attached: dict[str, list[str]]  # SDK field name -> the sources actually attached
    session: Session
    pushed_at: float = field(default_factory=time.time)

    @property
    def accelerator(self) -> str | None:
        return accelerator(self.request)

    @property
    def kernel_type(self) -> str:
        return self.request.get("kernelType") or "notebook"


@dataclass
class Kernel:
    id: int
    owner: str
    slug: str
    title: str
    versions: list[Version] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    deleted_at: float | None = None

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def private(self) -> bool:
        # kagglesdk omits a false isPrivate on the wire; the official CLI sends true unless told.
        return bool(self.versions and self.versions[-1].request.get("isPrivate"))

    def version(self, label: str | None) -> Version:
        """A version by label, "v3" only (a bare "3" answers 404, as on Kaggle: kaggle-cli PR 1201);
        the latest without one."""
        if not self.versions:
            raise ApiError(404, f"Kernel {self.ref} has no versions")
        if not label:
            return self.versions[-1]
        number = label[1:] if label.startswith("v") else ""
        if number.isdigit() and 1 <= int(number) <= len(self.versions):
            return self.versions[int(number) - 1]
        raise ApiError(404, f"Version {label} of {self.ref} not found")

    def numbered(self, number: int | None) -> Version:
        """A version by number (DownloadKernelOutput's versionNumber); the latest without one."""
        return self.version(f"v{number}" if number else None)

    def last_run_time(self) -> float:
        latest = self.versions[-1] if self.versions else None
        if latest is None:
            return self.created_at
        return latest.session.state().get("started_at") or latest.pushed_at


@dataclass
class DatasetVersion:
    number: int
    folder: Path  # its files, exactly as a kernel sees them under /kaggle/input/datasets/<owner>/<slug>
    notes: str = ""
    created_at: float = field(default_factory=time.time)

    def files(self) -> list[tuple[str, Path]]:
        """("dir/name", path) of every file, in name order."""
        return sorted((p.relative_to(self.folder).as_posix(), p) for p in self.folder.rglob("*") if p.is_file())


@dataclass
class Dataset:
    id: int
    owner: str
    slug: str
    title: str
    private: bool = True
    license: str = ""
    versions: list[DatasetVersion] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    def version(self, number: int | None) -> DatasetVersion | None:
        """A version by number; the latest without one; None when it does not exist."""
        if not number:
            return self.versions[-1] if self.versions else None
        return self.versions[number - 1] if 1 <= number <= len(self.versions) else None


@dataclass
class ModelInstance:
    """A model's variation for one framework ("owner/model/framework/instance"); its versions'
    files as a kernel sees them under /kaggle/input/models/<owner>/<model>/<framework>/<instance>/<N>."""
    id: int
    slug: str
    framework: str  # kagglesdk's ModelFramework name, e.g. "MODEL_FRAMEWORK_PY_TORCH"
    license_name: str = ""
    overview: str = ""
    usage: str = ""
    fine_tunable: bool = False
    training_data: list[str] = field(default_factory=list)
    instance_type: str = "MODEL_INSTANCE_TYPE_UNSPECIFIED"
    versions: list[DatasetVersion] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)


@dataclass
class Model:
    id: int
    owner: str
    slug: str
    title: str
    subtitle: str = ""
    description: str = ""
    private: bool = True
    instances: list[ModelInstance] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


def _versions_state(root: Path, versions: list[DatasetVersion]) -> list[dict]:
    return [{"number": v.number, "notes": v.notes, "created_at": v.created_at,
             "folder": v.folder.relative_to(root).as_posix()} for v in versions]


def _versions(root: Path, items: list[dict]) -> list[DatasetVersion]:
    return [DatasetVersion(v["number"], root / v["folder"], v.get("notes", ""), v.get("created_at", 0.0)) for v in items]


def save(root: Path, kernels: list[Kernel], next_id: int, datasets: list[Dataset] = (), models: list[Model] = ()) -> None:
    atomic_write_json(root / STATE_FILE, {
        "format": STATE_FORMAT, "next_id": next_id,
        "models": [{
            "id": m.id, "owner": m.owner, "slug": m.slug, "title": m.title, "subtitle": m.subtitle,
            "description": m.description, "private": m.private, "created_at": m.created_at,
            "instances": [{
                "id": i.id, "slug": i.slug, "framework": i.framework, "license_name": i.license_name,
                "overview": i.overview, "usage": i.usage, "fine_tunable": i.fine_tunable,
                "training_data": i.training_data, "instance_type": i.instance_type, "created_at": i.created_at,
                "versions": _versions_state(root, i.versions),
            } for i in m.instances],
        } for m in models],
        "datasets": [{
            "id": d.id, "owner": d.owner, "slug": d.slug, "title": d.title, "private": d.private,
            "license": d.license, "created_at": d.created_at, "versions": _versions_state(root, d.versions),
        } for d in datasets],
        "kernels": [{
            "id": k.id, "owner": k.owner, "slug": k.slug, "title": k.title,
            "created_at": k.created_at, "deleted_at": k.deleted_at,
            "versions": [{"number": v.number, "request": v.request, "attached": v.attached,
                          "pushed_at": v.pushed_at, "folder": v.session.paths.folder.relative_to(root).as_posix()}
                         for v in k.versions],
        } for k in kernels],
    })


def load(root: Path) -> tuple[list[Kernel], int, list[Dataset], list[Model]]:
    """The kernels kept in `root`, the next kernel id, the datasets and the models; nothing when
    `root` holds no state. A state file that cannot be read is an error: starting empty would
    lose it at the next write."""
    path = root / STATE_FILE
    if not path.exists():
        return [], 1, [], []
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") not in _READABLE:
        raise ValueError(f"{path} is not an emulator state this version can read (move it away to start afresh)")
    kernels = []
    for item in data.get("kernels", []):
        kernel = Kernel(item["id"], item["owner"], item["slug"], item["title"],
                        created_at=item.get("created_at", 0.0), deleted_at=item.get("deleted_at"))
        for v in item.get("versions", []):
            session = Session.open(root / v["folder"])
            kernel.versions.append(Version(v["number"], v["request"], v["attached"], session, v.get("pushed_at", 0.0)))
        kernels.append(kernel)
    datasets = []
    for item in data.get("datasets", []):  # format 1 has none
        dataset = Dataset(item["id"], item["owner"], item["slug"], item["title"], item.get("private", True),
                          item.get("license", ""), created_at=item.get("created_at", 0.0))
        dataset.versions = _versions(root, item.get("versions", []))
        datasets.append(dataset)
    models = []
    for item in data.get("models", []):  # formats 1 and 2 have none
        model = Model(item["id"], item["owner"], item["slug"], item["title"], item.get("subtitle", ""),
                      item.get("description", ""), item.get("private", True), created_at=item.get("created_at", 0.0))
        for i in item.get("instances", []):
            model.instances.append(ModelInstance(
                i["id"], i["slug"], i["framework"], i.get("license_name", ""), i.get("overview", ""), i.get("usage", ""),
                i.get("fine_tunable", False), i.get("training_data", []),
                i.get("instance_type", "MODEL_INSTANCE_TYPE_UNSPECIFIED"), _versions(root, i.get("versions", [])),
                i.get("created_at", 0.0)))
        models.append(model)
    return kernels, int(data.get("next_id", 1 + max((k.id for k in kernels), default=0))), datasets, models


def claim(root: Path):
    """Hold `root` for this emulator (an open file, closed by `release`); ValueError when another holds it."""
    handle = open(root / LOCK_FILE, "a+")
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError(f"another emulator is serving {root}: stop it, or use another --state-dir") from None
    return handle


def release(handle) -> None:
    handle.close()  # closing the file drops the lock, on every system
