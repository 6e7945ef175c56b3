"""The emulator's state and the kernels service's behaviour: kernels, their versions and sessions.

Requests and responses are kagglesdk's own types, so field names and defaults are the SDK's
(a QUEUED status, the default, is left out of the answer, as Kaggle does). Like Kaggle, the
output listing and the log are those of the kernel's latest version, whatever version is
asked for, and a push with unknown sources still makes a version (without them).
"""

import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kagglesdk.kernels.types import kernels_api_service as api
from kagglesdk.kernels.types.kernels_enums import KernelWorkerStatus

from kjob.emulator.faults import Faults
from kjob.emulator.sessions import Session

DEFAULT_TIMEOUT = 12 * 3600
HOSTILE_CONTENT = b"this file's name tries to leave the download folder\n"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Version:
    number: int
    request: dict  # the SaveKernel body as received
    attached: dict[str, list[str]]  # SDK field name -> the sources actually attached
    session: Session


@dataclass
class Kernel:
    id: int
    owner: str
    slug: str
    title: str
    versions: list[Version] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    def version(self, label: str | None) -> Version:
        if not label:
            return self.versions[-1]
        number = label[1:] if label.lower().startswith("v") else label
        if number.isdigit() and 1 <= int(number) <= len(self.versions):
            return self.versions[int(number) - 1]
        raise ApiError(404, f"Version {label} of {self.ref} not found")


def _duration(seconds: float) -> str:
    """A protobuf duration ("108000s", "1.5s"), written here: the SDK's own drops days."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


class Store:
    def __init__(self, root: Path, data_sources: dict[str, Path] | None = None, faults: Faults | None = None,
                 page_size: int = 50):
        self.root = root
        self.data_sources = {k.lower(): Path(v).resolve() for k, v in (data_sources or {}).items()}
        self.faults = faults or Faults()
        self.page_size = page_size
        self.base_url = ""
        self.kernels: dict[str, Kernel] = {}
        self.requests: list[tuple[str, dict]] = []  # (method, body): what clients sent, for inspection
        self.files: dict[str, Path | bytes] = {}  # download token -> file (or content of a hostile one)
        self.lock = threading.RLock()
        self._ids = itertools.count(1)

    # -- lookup -------------------------------------------------------------------------

    def kernel(self, owner: str, slug: str) -> Kernel:
        kernel = self.kernels.get(f"{owner}/{slug}".lower())
        if kernel is None:
            raise ApiError(404, f"Kernel {owner}/{slug} not found")
        return kernel

    def all_sessions(self) -> list[Session]:
        with self.lock:
            return [v.session for k in self.kernels.values() for v in k.versions]

    def handle(self, method: str, body: dict, user: str | None) -> dict:
        handler = getattr(self, f"_{_snake(method)}", None)
        if handler is None:
            raise ApiError(404, f"Unknown method {method}")
        with self.lock:
            self.requests.append((method, body))
            return handler(body, user)

    @staticmethod
    def _allowed(owner: str, user: str | None) -> None:
        if user is not None and owner.lower() != user.lower():
            raise ApiError(403, f"Permission denied: {owner}'s kernels belong to another account")

    def _find(self, body: dict, user: str | None) -> Kernel:
        owner, slug = body.get("userName", ""), body.get("kernelSlug", "")
        self._allowed(owner, user)
        return self.kernel(owner, slug)

    # -- push ---------------------------------------------------------------------------

    def _save_kernel(self, body: dict, user: str | None) -> dict:
        request = api.ApiSaveKernelRequest.from_dict(body)
        response = api.ApiSaveKernelResponse()
        owner, _, slug = (request.slug or "").partition("/")
        if not (_NAME.match(owner) and _NAME.match(slug)):
            raise ApiError(400, "slug must be 'owner/kernel-slug'")
        self._allowed(owner, user)
        response.error = self.faults.take_push_rejection() or self._text_problem(request)
        if not response.error and request.enable_gpu and self._busy_gpu_sessions(owner) >= self.faults.max_gpu_sessions:
            response.error = f"Maximum batch GPU session count of {self.faults.max_gpu_sessions} reached"
        if response.error:
            return response.to_dict()
        attached, mounts = {}, {}
        for kind, invalid_field in (("dataset", "invalid_dataset_sources"), ("kernel", "invalid_kernel_sources"),
                                    ("competition", "invalid_competition_sources"), ("model", "invalid_model_sources")):
            wanted = getattr(request, f"{kind}_data_sources")
            known = [s for s in wanted if self._source_folder(kind, s) is not None]
            setattr(response, invalid_field, [s for s in wanted if s not in known])
            attached[f"{kind}_data_sources"] = [s for s in known if s.lower() not in map(str.lower, self.faults.unattached)]
            for source in attached[f"{kind}_data_sources"]:
                for relative in _layouts(kind, source):
                    mounts[relative] = self._source_folder(kind, source)
        kernel = self.kernels.get(request.slug.lower())
        if kernel is None:
            kernel = self.kernels[request.slug.lower()] = Kernel(next(self._ids), owner, slug, request.new_title or slug)
        kernel.title = request.new_title or kernel.title
        number = len(kernel.versions) + 1
        # One folder per kernel id: a deleted kernel's slug can be pushed again (a new id, from v1).
        session = Session(self.root / owner / slug / f"kernel-{kernel.id}" / f"v{number}", request.text or "", mounts,
                          request.session_timeout_seconds or DEFAULT_TIMEOUT, bool(request.enable_gpu))
        kernel.versions.append(Version(number, body, attached, session))
        if not self.faults.hold:
            session.start()
        response.ref, response.url = f"/code/{kernel.ref}", f"{self.base_url}/code/{kernel.ref}"
        response.version_number, response.kernel_id = number, kernel.id
        return response.to_dict()

    @staticmethod
    def _text_problem(request) -> str | None:
        if (request.language or "python") != "python":
            return f"Unsupported language {request.language}"
        if (request.kernel_type or "notebook") != "notebook":
            return None
        try:
            notebook = json.loads(request.text or "")
            cells = notebook["cells"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return "Notebook text is not a valid notebook (JSON with cells)"
        if any(not isinstance(cell.get("source"), str) for cell in cells):
            return "Each cell's source must be one string"
        return None

    def _busy_gpu_sessions(self, owner: str) -> int:
        return sum(1 for k in self.kernels.values() if k.owner.lower() == owner.lower()
                   for v in k.versions if v.session.gpu and not v.session.final)

    def _source_folder(self, kind: str, source: str) -> Path | None:
        parts = source.lower().split("/")
        if kind == "kernel" and "/".join(parts[:2]) in self.kernels:
            return self.kernels["/".join(parts[:2])].versions[-1].session.paths.working_dir
        key = {"dataset": "/".join(parts[:2]), "kernel": "/".join(parts[:2]), "competition": parts[0]}.get(kind)
        key = key or "/".join(parts[:4])
        return self.data_sources.get(key)

    def mark_released(self) -> None:
        """Start every held session (after `hold` was turned off)."""
        for session in self.all_sessions():
            if not session.final:
                session.start()

    # -- reading back -------------------------------------------------------------------

    def _get_kernel(self, body: dict, user: str | None) -> dict:
        kernel = self._find(body, user)
        version = kernel.version(body.get("versionLabel"))
        request = api.ApiSaveKernelRequest.from_dict(version.request)
        meta = api.ApiKernelMetadata()
        meta.id, meta.ref, meta.title = kernel.id, kernel.ref, kernel.title
        meta.author, meta.slug = kernel.owner, kernel.slug
        meta.language, meta.kernel_type = request.language or "python", request.kernel_type or "notebook"
        meta.is_private, meta.enable_gpu = bool(request.is_private), bool(request.enable_gpu)
        meta.enable_internet, meta.enable_tpu = bool(request.enable_internet), bool(request.enable_tpu)
        meta.machine_shape = request.machine_shape
        meta.current_version_number = len(kernel.versions)
        for name, sources in version.attached.items():
            setattr(meta, name, list(sources))
        blob = api.ApiKernelBlob()
        blob.source, blob.language, blob.kernel_type, blob.slug = request.text, meta.language, meta.kernel_type, kernel.slug
        response = api.ApiGetKernelResponse()
        response.metadata, response.blob = meta, blob
        return response.to_dict()

    def _get_kernel_session_status(self, body: dict, user: str | None) -> dict:
        version = self._find(body, user).version(body.get("versionLabel"))
        name, message = version.session.kaggle_status()
        response = api.ApiGetKernelSessionStatusResponse()
        response.status = KernelWorkerStatus[name]
        if message:
            response.failure_message = message
        return response.to_dict()

    def _outputs(self, kernel: Kernel) -> tuple[Version, list[tuple[str, Path | bytes]]]:
        version = kernel.versions[-1]  # Kaggle: always the latest version's, whatever was asked
        if not version.session.final:
            return version, []
        files: list[tuple[str, Path | bytes]] = list(version.session.outputs())
        files += [(name, HOSTILE_CONTENT) for name in self.faults.hostile_names]
        return version, files

    def _page(self, body: dict, items: list) -> tuple[list, str | None]:
        size = min(int(body.get("pageSize") or 20), self.page_size)
        start = int(body.get("pageToken") or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    def _list_kernel_session_output(self, body: dict, user: str | None) -> dict:
        version, files = self._outputs(self._find(body, user))
        page, token = self._page(body, files)
        response = api.ApiListKernelSessionOutputResponse()
        response.files = [self._output_file(version, name, content) for name, content in page]
        response.log = json.dumps(version.session.log_entries())
        response.next_page_token = token
        return response.to_dict()

    def _output_file(self, version: Version, name: str, content: Path | bytes) -> "api.ApiKernelSessionOutputFile":
        token = hashlib.sha256(f"{version.session.paths.folder}\0{name}".encode()).hexdigest()[:32]
        self.files[token] = content
        item = api.ApiKernelSessionOutputFile()
        item.file_name, item.url = name, f"{self.base_url}/outputs/{token}"
        return item

    def _list_kernel_files(self, body: dict, user: str | None) -> dict:
        _, files = self._outputs(self._find(body, user))
        page, token = self._page(body, files)
        response = api.ApiListKernelFilesResponse()
        for name, content in page:
            item = api.ApiListKernelFilesItem()
            item.name = name
            if isinstance(content, Path):
                stat = content.stat()
                item.size, stamp = stat.st_size, stat.st_mtime
            else:
                item.size, stamp = len(content), 0.0
            item.creation_date = datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="microseconds")
            response.files.append(item)
        response.next_page_token = token
        return response.to_dict()

    def _get_accelerator_quota_statistics(self, body: dict, user: str | None) -> dict:
        used = self.faults.gpu_used_hours * 3600 + sum(s.gpu_seconds() for s in self.all_sessions())
        refresh = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=7 - datetime.now().weekday())
        quota = {"timeUsed": _duration(used), "totalTimeAllowed": _duration(self.faults.gpu_total_hours * 3600),
                 "timeReserved": _duration(0), "hasEverRun": used > 0}
        return {"quotaRefreshTime": refresh.strftime("%Y-%m-%dT00:00:00.000Z"), "gpuQuota": quota,
                "tpuQuota": {"timeUsed": "0s", "totalTimeAllowed": _duration(20 * 3600)}}

    def _delete_kernel(self, body: dict, user: str | None) -> dict:
        kernel = self._find(body, user)
        for version in kernel.versions:
            version.session.cancel(wait=5)
        del self.kernels[kernel.ref.lower()]
        return api.ApiDeleteKernelResponse().to_dict()

    def _cancel_kernel_session(self, body: dict, user: str | None) -> dict:
        response = api.ApiCancelKernelSessionResponse()
        response.error_message = f"Kernel session {body.get('kernelSessionId', 0)} not found"
        return response.to_dict()

    def session_for_stream(self, owner: str, slug: str, user: str | None) -> Session:
        with self.lock:
            self._allowed(owner, user)
            return self.kernel(owner, slug).versions[-1].session


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _layouts(kind: str, source: str) -> list[str]:
    """Where Kaggle mounts a source under /kaggle/input (the 2026 layout and the older one)."""
    parts = source.split("/")
    if kind == "dataset":
        return [f"datasets/{parts[0]}/{parts[1]}", parts[1]]
    if kind == "kernel":
        return [f"notebooks/{parts[0]}/{parts[1]}", parts[1]]
    if kind == "competition":
        return [f"competitions/{parts[0]}", parts[0]]
    return ["models/" + "/".join(parts[:4] + (parts[4:5] or ["1"]))]
