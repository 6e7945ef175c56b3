"""The emulator's state and who may see what: kernels by slug and by id, datasets, access rules, dispatch.

Requests and responses are kagglesdk's own types, so field names and defaults are the SDK's
(a QUEUED status, the default, is left out of the answer, as Kaggle does). The methods live
in push.py (SaveKernel, DeleteKernel), reads.py (the kernel reads), datasets.py (datasets)
and blobs.py (uploads); this module holds what they share. Every change is written to
`--state-dir` before it is answered (model.py), so a restarted emulator answers as the old
one would have.

Access, as the official client's messages describe Kaggle's: a caller reads its own kernels
and anyone's public ones; another account's private kernel answers 403 ("Permission
'kernels.get' was denied"); only the owner pushes to or deletes a kernel. A kernel that does
not exist (deleted, never made, a wrong slug, a version written into the slug) answers the
same 403, as Kaggle does: its client's 403 message says "the most likely cause is a wrong
kernel slug ... It can also occur if the notebook is private" (kaggle 2.2.4, kernels_status),
and kaggle-cli PR 1201 shows GetKernel of `slug/1` answered 403. `missing_kernel_status=404`
keeps the older answer (404 "Kernel owner/slug not found") for tests of that path.
A version is named only as `versionLabel: "v<N>"`; a bare "1" answers 404 (PR 1201).
Datasets follow the same rules as kernels for access, but a missing one answers 404 (datasets.py).
"""

import hashlib
import re
import threading
from pathlib import Path
from urllib.parse import quote

from kjob.emulator import model
from kjob.emulator.faults import Faults
from kjob.emulator.model import ApiError, Dataset, Kernel, Model, Version
from kjob.emulator.sessions import Session

DENIED = "Permission 'kernels.get' was denied"
MISSING_KERNEL_STATUSES = (403, 404)
HOSTILE_CONTENT = b"this file's name tries to leave the download folder\n"
# How many requests the emulator remembers for inspection (store.requests and the server's
# logs of paths, downloads and uploads), the oldest forgotten first: about 1 kB each, so a
# long-lived emulator's memory stays bounded (a few MB) however many requests it answers.
REQUEST_LOG_LIMIT = 5_000


class RequestLog(list):
    """A list that keeps only its last `limit` entries (a list still, so `log == []` and
    slicing read as before); appends from several threads at once are safe."""

    def __init__(self, limit: int = REQUEST_LOG_LIMIT):
        super().__init__()
        if limit < 1:
            raise ValueError("a request log keeps at least one entry")
        self.limit = limit
        self._lock = threading.Lock()

    def append(self, entry) -> None:
        with self._lock:
            super().append(entry)
            if len(self) > self.limit:
                del self[:len(self) - self.limit]


class Store:
    def __init__(self, root: Path, data_sources: dict[str, Path] | None = None, faults: Faults | None = None,
                 page_size: int = 50, request_log_limit: int = REQUEST_LOG_LIMIT, missing_kernel_status: int = 403):
        if missing_kernel_status not in MISSING_KERNEL_STATUSES:
            raise ValueError(f"missing_kernel_status must be 403 or 404, not {missing_kernel_status}")
        self.root = root
        self.missing_kernel_status = missing_kernel_status
        self.data_sources = {k.lower(): Path(v).resolve() for k, v in (data_sources or {}).items()}
        self.faults = faults or Faults()
        self.page_size = page_size
        self.base_url = ""
        # (method, body): what clients sent, for inspection; the latest request_log_limit only.
        self.requests: list[tuple[str, dict]] = RequestLog(request_log_limit)
        self.files: dict[str, tuple[Version, str, Path | bytes]] = {}  # download token -> what it serves
        self.served: dict[str, tuple[Path, str]] = {}  # /files/ token -> (file, its name): dataset and model files
        self.lock = threading.RLock()
        root.mkdir(parents=True, exist_ok=True)
        self._claim = model.claim(root)
        try:
            every, self.next_id, datasets, models = model.load(root)
        except BaseException:
            self.close()
            raise
        self.kernels: dict[str, Kernel] = {k.ref.lower(): k for k in every if k.deleted_at is None}
        self.deleted: list[Kernel] = [k for k in every if k.deleted_at is not None]
        self.datasets: dict[str, Dataset] = {d.ref.lower(): d for d in datasets}  # pushed ones; mapped folders aside
        self.models: dict[str, Model] = {m.ref.lower(): m for m in models}

    def close(self) -> None:
        """Let another emulator serve this folder."""
        if self._claim is not None:
            model.release(self._claim)
            self._claim = None

    # -- lookup -------------------------------------------------------------------------

    def kernel(self, owner: str, slug: str) -> Kernel:
        kernel = self.kernels.get(f"{owner}/{slug}".lower())
        if kernel is None:
            raise self.no_kernel(owner, slug)
        return kernel

    def no_kernel(self, owner: str, slug: str) -> ApiError:
        """What a read of a kernel that does not exist answers: 403 as Kaggle, or 404 when asked."""
        if self.missing_kernel_status == 404:
            return ApiError(404, f"Kernel {owner}/{slug} not found")
        return ApiError(403, DENIED)

    def by_id(self, kernel_id: int) -> Kernel | None:
        return next((k for k in self.kernels.values() if k.id == kernel_id), None)

    def every_kernel(self) -> list[Kernel]:
        """Live and deleted kernels: what the quota and the session limits count."""
        return [*self.kernels.values(), *self.deleted]

    def all_sessions(self) -> list[Session]:
        with self.lock:
            return [v.session for k in self.every_kernel() for v in k.versions]

    def new_kernel_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def save(self) -> None:
        model.save(self.root, self.every_kernel(), self.next_id, list(self.datasets.values()), list(self.models.values()))

    # -- access -------------------------------------------------------------------------

    @staticmethod
    def may_write(kernel_owner: str, user: str | None) -> None:
        if user is None or kernel_owner.lower() != user.lower():
            raise ApiError(403, f"Permission 'kernels.update' was denied: {kernel_owner}'s kernels belong to another account")

    @staticmethod
    def may_read(kernel: Kernel, user: str | None) -> None:
        if kernel.private and (user is None or kernel.owner.lower() != user.lower()):
            raise ApiError(403, DENIED)

    def find(self, body: dict, user: str | None) -> tuple[Kernel, str | None]:
        """The kernel a read names, and the version label it asks for ("v3", or None). A version
        written into the slug ("slug/3", as the official client's versioned pull sends it) names
        no kernel, as on Kaggle (kaggle-cli PR 1201)."""
        owner, slug = str(body.get("userName", "")), str(body.get("kernelSlug", ""))
        kernel = self.kernel(owner, slug)
        self.may_read(kernel, user)
        return kernel, body.get("versionLabel") or None

    # -- dispatch -----------------------------------------------------------------------

    def handle(self, method: str, body: dict, user: str | None, service: str = "kernels.KernelsApiService") -> dict:
        from kjob.emulator import blobs, datasets, models_api, push, reads

        methods = {"kernels.KernelsApiService": {**push.METHODS, **reads.METHODS},
                   "datasets.DatasetApiService": datasets.METHODS, "blobs.BlobApiService": blobs.METHODS,
                   "models.ModelApiService": models_api.METHODS}
        handler = methods.get(service, {}).get(method)
        if handler is None:
            raise ApiError(404, f"Unknown method {service}/{method}")
        with self.lock:
            self.requests.append((method, body))
            return handler(self, body, user)

    def mark_released(self) -> None:
        """Start every held session (after `hold` was turned off)."""
        for session in self.all_sessions():
            if not session.final:
                session.start()

    # -- output files -------------------------------------------------------------------

    def outputs(self, version: Version) -> list[tuple[str, Path | bytes]]:
        if not version.session.final:
            return []
        files: list[tuple[str, Path | bytes]] = list(version.session.outputs())
        return files + [(name, HOSTILE_CONTENT) for name in self.faults.hostile_names]

    def file_url(self, version: Version, name: str, content: Path | bytes) -> str:
        token = _token(version, name)
        self.files[token] = (version, name, content)
        return f"{self.base_url}/outputs/{token}"

    def file_link(self, path: Path, name: str) -> str:
        """A URL that serves `path` as `name` without credentials, as a signed GCS URL does
        (the last part of the URL is the name: the official CLI names the file it saves so)."""
        token = hashlib.sha256(f"{path}\0{name}".encode()).hexdigest()[:32]
        self.served[token] = (path, name)
        return f"{self.base_url}/files/{token}/{quote(name)}"

    def linked_file(self, token: str) -> tuple[Path, str] | None:
        with self.lock:
            return self.served.get(token)

    def output_file(self, token: str) -> tuple[Version, str, Path | bytes] | None:
        """What a download URL serves; URLs handed out before a restart still work."""
        with self.lock:
            if token not in self.files:
                for kernel in self.kernels.values():
                    for version in kernel.versions:
                        for name, content in self.outputs(version):
                            if _token(version, name) == token:
                                self.files[token] = (version, name, content)
            return self.files.get(token)


def _token(version: Version, name: str) -> str:
    return hashlib.sha256(f"{version.session.paths.folder}\0{name}".encode()).hexdigest()[:32]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
