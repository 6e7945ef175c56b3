"""The methods that only read: GetKernel, ListKernels, session status, outputs, files, quota,
and the downloads of a version's output (DownloadKernelOutput[Zip]) and its live log
(GetKernelSessionLogsStream).

A version is asked for as `versionLabel: "v3"` (a bare "3" answers 404, kaggle-cli PR 1201).
The output listing and the log (ListKernelSessionOutput, ListKernelFiles) are those of the
kernel's latest version, whatever version is asked for (kaggle-cli issues 134, 442, 525: no
client could list an older version's output); GetKernel and the status honour the version.
DownloadKernelOutput does serve an older version's output by `versionNumber`, as kagglehub's
integration tests show Kaggle doing (`notebook_output_download("alexisbcook/titanic-tutorial/
versions/1")` gets other files than the latest): each version keeps its own run folder, so
each version's own files are served. Its answer is a redirect (kagglesdk's HttpRedirect) to a
URL that takes no credentials, as kagglehub's test server answers it with a signed GCS URL:
to the file for a `filePath`, else to a zip of the whole output. DownloadKernelOutputZip
serves that zip by the version's kernel session id, which no public call tells (kaggle-cli
PR 1170): the emulator numbers sessions itself (`session_id`). A version whose session has
not ended has no output to download yet (404, assumed).

ListKernels, where Kaggle documents nothing, assumes: `--mine` (group PROFILE) lists the
caller's kernels, private ones included; `--user NAME` lists NAME's public kernels (and the
caller's private ones when NAME is the caller); otherwise every public kernel. `search`
matches title or slug; `dataset`/`competition` match attached sources; the hotness, votes
and comments orders, which need a community the emulator lacks, fall back to the latest run.
`outputType` "data" lists kernels whose latest version wrote a file that is not an image,
"visualization" those that wrote an image (.png, .jpg, .jpeg, .gif, .svg) (assumed: Kaggle
does not say how it classifies outputs). `parentKernel` lists the kernels forked from it
(kagglesdk's field comment); no API call forks a kernel, so the emulator has none to list.
"""

import json
from datetime import datetime, timezone

from kagglesdk.kernels.types import kernels_api_service as api
from kagglesdk.kernels.types.kernels_enums import KernelsListSortType, KernelsListViewType, KernelWorkerStatus

from kjob.emulator import answers, quota
from kjob.emulator.model import ApiError, Kernel, Version
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
        if request.parent_kernel:
            return False  # nothing is forked through the API
        if request.output_type not in ("", "all") and request.output_type != _output_type(store, latest):
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
    kernel, label = store.find(body, user)
    kernel.version(label)  # a label must name a version ("v3"), though the latest is listed
    version = kernel.version(None)
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
    kernel, label = store.find(body, user)
    kernel.version(label)
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


_IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg")


def _output_type(store, version: Version) -> str | None:
    """"visualization" when the version wrote an image, else "data" when it wrote a file, else None."""
    names = [name.lower() for name, _ in store.outputs(version)]
    if any(name.endswith(_IMAGES) for name in names):
        return "visualization"
    return "data" if names else None


def session_id(kernel: Kernel, version: Version) -> int:
    """The kernel session id of a version: the emulator's own numbering, stable across restarts."""
    return kernel.id * 100_000 + version.number


def by_session_id(store, number: int, user: str | None) -> tuple[Kernel, Version]:
    kernel = store.by_id(number // 100_000) if number > 0 else None
    if kernel is None or not 1 <= number % 100_000 <= len(kernel.versions):
        raise ApiError(404, f"Kernel session {number} not found")
    store.may_read(kernel, user)
    return kernel, kernel.versions[number % 100_000 - 1]


def _ended(kernel: Kernel, version: Version) -> None:
    if not version.session.final:
        raise ApiError(404, f"Version v{version.number} of {kernel.ref} has no output yet: its session has not ended")


def download_kernel_output(store, body: dict, user: str | None):
    request = api.ApiDownloadKernelOutputRequest.from_dict(body)
    kernel, _ = store.find({"userName": request.owner_slug, "kernelSlug": request.kernel_slug}, user)
    version = kernel.numbered(request.version_number)
    _ended(kernel, version)
    if not request.file_path:
        zipped = output_zip(store, session_id(kernel, version), user)
        return answers.Redirect(store.file_link(zipped.path, zipped.name))
    found = dict(store.outputs(version)).get(request.file_path.lstrip("/"))
    if found is None:
        raise ApiError(404, f"Version v{version.number} of {kernel.ref} has no output file {request.file_path}")
    return answers.Redirect(store.file_url(version, request.file_path.lstrip("/"), found))


def download_kernel_output_zip(store, body: dict, user: str | None):
    request = api.ApiDownloadKernelOutputZipRequest.from_dict(body)
    return output_zip(store, request.kernel_session_id, user)


def output_zip(store, number: int, user: str | None) -> answers.File:
    kernel, version = by_session_id(store, number, user)
    _ended(kernel, version)
    files = [(name, content) for name, content in store.outputs(version) if not isinstance(content, bytes)]
    path = answers.archive(store.root, f"kernel-{kernel.id}-v{version.number}", files)
    return answers.File(path, f"{kernel.slug}-v{version.number}.zip", "application/zip")


def get_kernel_session_logs_stream(store, body: dict, user: str | None):
    request = api.ApiGetKernelSessionLogsStreamRequest.from_dict(body)
    if request.kernel_session_id:
        return answers.LogStream(by_session_id(store, request.kernel_session_id, user)[1].session)
    kernel, label = store.find(body, user)
    return answers.LogStream(kernel.version(label).session)


METHODS = {
    "DownloadKernelOutput": download_kernel_output, "DownloadKernelOutputZip": download_kernel_output_zip,
    "GetKernelSessionLogsStream": get_kernel_session_logs_stream,
    "GetKernel": get_kernel, "ListKernels": list_kernels, "GetKernelSessionStatus": get_kernel_session_status,
    "ListKernelSessionOutput": list_kernel_session_output, "ListKernelFiles": list_kernel_files,
    "GetAcceleratorQuotaStatistics": get_accelerator_quota_statistics,
}
