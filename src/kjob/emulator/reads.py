"""The methods that only read: GetKernel, ListKernels, session status, outputs, files, quota.

Like Kaggle, the output listing and the log are those of the kernel's latest version,
whatever version is asked for (kaggle-cli issue 1200); GetKernel does honour a version, as
the official client's versioned pull (`owner/slug/3`) expects.

ListKernels, where Kaggle documents nothing, assumes: `--mine` (group PROFILE) lists the
caller's kernels, private ones included; `--user NAME` lists NAME's public kernels (and the
caller's private ones when NAME is the caller); otherwise every public kernel. `search`
matches title or slug; `dataset`/`competition` match attached sources; the hotness, votes
and comments orders, which need a community the emulator lacks, fall back to the latest run.
"""

import json
from datetime import datetime, timezone

from kagglesdk.kernels.types import kernels_api_service as api
from kagglesdk.kernels.types.kernels_enums import KernelsListSortType, KernelsListViewType, KernelWorkerStatus

from kjob.emulator import quota
from kjob.emulator.model import Kernel, Version
from kjob.emulator.push import used_hours


def metadata(kernel: Kernel, version: Version) -> "api.ApiKernelMetadata":
    request = api.ApiSaveKernelRequest.from_dict(version.request)
    meta = api.ApiKernelMetadata()
    meta.id, meta.ref, meta.title = kernel.id, kernel.ref, kernel.title
    meta.author, meta.slug = kernel.owner, kernel.slug
    meta.language, meta.kernel_type = request.language or "python", version.kernel_type
    meta.is_private, meta.enable_gpu = kernel.private, version.accelerator == "gpu"
    meta.enable_internet, meta.enable_tpu = bool(request.enable_internet), version.accelerator == "tpu"
    meta.machine_shape = request.machine_shape
    meta.docker_image = request.docker_image
    meta.category_ids = list(request.category_ids)
    meta.current_version_number = len(kernel.versions)
    meta.last_run_time = datetime.fromtimestamp(kernel.last_run_time(), timezone.utc).replace(tzinfo=None)
    for name, sources in version.attached.items():
        setattr(meta, name, list(sources))
    return meta


def get_kernel(store, body: dict, user: str | None) -> dict:
    kernel, label = store.find(body, user)
    version = kernel.version(label)
    blob = api.ApiKernelBlob()
    blob.source, blob.language = version.session.text, version.request.get("language") or "python"
    blob.kernel_type, blob.slug = version.kernel_type, kernel.slug
    response = api.ApiGetKernelResponse()
    response.metadata, response.blob = metadata(kernel, version), blob
    return response.to_dict()


def list_kernels(store, body: dict, user: str | None) -> dict:
    request = api.ApiListKernelsRequest.from_dict(body)
    me = (user or "").lower()

    def visible(kernel: Kernel) -> bool:
        own = kernel.owner.lower() == me
        if request.group == KernelsListViewType.PROFILE:
            return own
        if request.user:
            return kernel.owner.lower() == request.user.lower() and (own or not kernel.private)
        if request.group == KernelsListViewType.PUBLIC_AND_USERS_PRIVATE:
            return own or not kernel.private
        return not kernel.private

    def matches(kernel: Kernel) -> bool:
        latest = kernel.versions[-1]
        search = (request.search or "").lower()
        if search and search not in kernel.title.lower() and search not in kernel.slug.lower():
            return False
        for wanted, field in ((request.dataset, "dataset_data_sources"), (request.competition, "competition_data_sources")):
            if wanted and wanted.lower() not in [s.lower() for s in latest.attached.get(field, [])]:
                return False
        if request.kernel_type not in ("", "all", latest.kernel_type):
            return False
        return request.language in ("", "all", latest.request.get("language") or "python")

    found = [k for k in store.kernels.values() if k.versions and visible(k) and matches(k)]
    if request.sort_by == KernelsListSortType.DATE_CREATED:
        found.sort(key=lambda k: (k.created_at, k.id), reverse=True)
    else:
        found.sort(key=lambda k: (k.last_run_time(), k.id), reverse=True)
    size = max(1, min(int(request.page_size or 20), 100))
    start = int(request.page_token) if (request.page_token or "").isdigit() else (max(1, request.page or 1) - 1) * size
    response = api.ApiListKernelsResponse()
    response.kernels = [metadata(k, k.versions[-1]) for k in found[start:start + size]]
    if start + size < len(found):
        response.next_page_token = str(start + size)
    return response.to_dict()


def get_kernel_session_status(store, body: dict, user: str | None) -> dict:
    kernel, label = store.find(body, user)
    name, message = kernel.version(label).session.kaggle_status()
    response = api.ApiGetKernelSessionStatusResponse()
    response.status = KernelWorkerStatus[name]
    if message:
        response.failure_message = message
    return response.to_dict()


def paged(store, body: dict, items: list) -> tuple[list, str | None]:
    size = min(int(body.get("pageSize") or 20), store.page_size)
    start = int(body.get("pageToken") or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def list_kernel_session_output(store, body: dict, user: str | None) -> dict:
    kernel, _ = store.find(body, user)
    version = kernel.version(None)  # the latest, whatever was asked
    page, token = paged(store, body, store.outputs(version))
    response = api.ApiListKernelSessionOutputResponse()
    for name, content in page:
        item = api.ApiKernelSessionOutputFile()
        item.file_name, item.url = name, store.file_url(version, name, content)
        response.files.append(item)
    response.log = json.dumps(version.session.log_entries())
    response.next_page_token = token
    return response.to_dict()


def list_kernel_files(store, body: dict, user: str | None) -> dict:
    kernel, _ = store.find(body, user)
    page, token = paged(store, body, store.outputs(kernel.version(None)))
    response = api.ApiListKernelFilesResponse()
    for name, content in page:
        item = api.ApiListKernelFilesItem()
        item.name = name
        if isinstance(content, bytes):
            item.size, stamp = len(content), 0.0
        else:
            stat = content.stat()
            item.size, stamp = stat.st_size, stat.st_mtime
        item.creation_date = datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="microseconds")
        response.files.append(item)
    response.next_page_token = token
    return response.to_dict()


def get_accelerator_quota_statistics(store, body: dict, user: str | None) -> dict:
    now = datetime.now(timezone.utc)
    answer = {"quotaRefreshTime": quota.timestamp(quota.refresh_time(now))}
    for kind, total in (("gpu", store.faults.gpu_total_hours), ("tpu", quota.WEEKLY_HOURS["tpu"])):
        used = used_hours(store, user or "", kind, now) * 3600
        answer[f"{kind}Quota"] = {"timeUsed": quota.duration(used), "totalTimeAllowed": quota.duration(total * 3600),
                                  "timeReserved": quota.duration(0), "hasEverRun": used > 0}
    return answer


METHODS = {
    "GetKernel": get_kernel, "ListKernels": list_kernels, "GetKernelSessionStatus": get_kernel_session_status,
    "ListKernelSessionOutput": list_kernel_session_output, "ListKernelFiles": list_kernel_files,
    "GetAcceleratorQuotaStatistics": get_accelerator_quota_statistics,
}
