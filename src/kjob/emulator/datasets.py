"""The datasets API (CreateDataset, CreateDatasetVersion[ById], GetDataset, GetDatasetStatus,
ListDatasetFiles, ListDatasets, GetDatasetMetadata, DownloadDataset, DeleteDataset), and the
folder that serves a dataset source to a kernel.

Two kinds of dataset are known. Pushed ones (`Store.datasets`), made here from uploaded blobs
(blobs.py), with versions, kept in --state-dir. And the local folders given to the emulator
(`data_sources`), which stand for datasets that already exist on Kaggle: public, owned by their
key's owner, one version, read-only. A pushed dataset wins over a folder of the same name.

What the emulator assumes where Kaggle documents nothing:
- only the owner creates or versions a dataset (403); another account's private dataset
  answers 403 ("Permission 'datasets.get' was denied"), a missing one 404;
- a refused create or version is HTTP 200 with `status: "error"` and `error`, as the official
  CLI reads it: a dataset that already exists, a name that is not a Kaggle name, no files;
- `files` land at the dataset's root and `directories` nest, each blob's name its file name;
  a blob named *.zip is unpacked into a folder of its stem (Kaggle unpacks uploaded archives,
  which the official CLI's `--dir-mode zip` relies on); a .tar stays a file;
- a version is processed before the answer, so GetDatasetStatus says READY at once (the fault
  `dataset_pending` makes the next N answers say BLOBS_RECEIVED first);
- a version holds exactly the files uploaded with it; `deleteOldVersions` is ignored (old
  versions stay readable as owner/slug/N); ListDatasetFiles names files by path ("dir/name");
- ListDatasets: the public group lists public datasets (pushed ones and the mapped folders),
  `--mine` the caller's (private ones too), `--user NAME` NAME's public ones (and the caller's
  private ones when NAME is the caller); `search` matches title or slug; every sort order is
  the latest update first, and the size, file type, license and tag filters are not applied
  (the emulator keeps none of what they filter on);
- DownloadDataset answers a redirect (kagglesdk's HttpRedirect, as Kaggle's signed GCS URL):
  for a `fileName`, to that file, named by the URL's last part (the official CLI saves it
  under that name); without one, to a zip of the version, which the official CLI saves as
  `<slug>.zip` (and unpacks with --unzip). A file the version lacks is 404;
- GetDatasetMetadata answers the dataset's `info` (title, subtitle, description, private,
  licenses, keywords): what the emulator keeps of it is the title, privacy and license;
- DeleteDataset: the owner deletes a pushed dataset, its versions' files included (other
  accounts: 403; a mapped folder is refused in `error`: it stands for a dataset on Kaggle).
"""

import os
import re
import secrets
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from kagglesdk.datasets.types import dataset_api_service as api
from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus

from kjob.emulator import answers, blobs
from kjob.emulator.model import ApiError, Dataset, DatasetVersion
from kjob.fsutil import safe_relative_path
from kjob.kaggle_platform import KaggleRef

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# -- lookup and access ----------------------------------------------------------------

def find(store, owner: str, slug: str) -> Dataset | None:
    """A pushed dataset, or a mapped folder seen as a public one-version dataset, or None."""
    key = f"{owner}/{slug}".lower()
    if key in store.datasets:
        return store.datasets[key]
    folder = store.data_sources.get(key)
    if folder is None:
        return None
    mapped = Dataset(0, owner, slug, slug, private=False, created_at=folder.stat().st_mtime)
    mapped.versions = [DatasetVersion(1, folder, created_at=mapped.created_at)]
    return mapped


def _same(a: str, b: str | None) -> bool:
    return b is not None and a.lower() == b.lower()


def readable(store, owner: str, slug: str, user: str | None) -> Dataset:
    dataset = find(store, owner, slug)
    if dataset is None:
        raise ApiError(404, f"Dataset {owner}/{slug} not found")
    if dataset.private and not _same(dataset.owner, user):
        raise ApiError(403, "Permission 'datasets.get' was denied")
    return dataset


def _may_write(owner: str, user: str | None) -> None:
    if not _same(owner, user):
        raise ApiError(403, f"Permission 'datasets.create' was denied: {owner}'s datasets belong to another account")


def source_folder(store, source: str, user: str | None) -> Path | None:
    """The folder a kernel of `user` sees for the source "owner/slug[/N]", or None (invalid)."""
    ref = KaggleRef.parse(source)
    if not ref.slug:
        return None
    try:
        dataset = readable(store, ref.owner, ref.slug, user)
    except ApiError:
        return None
    if dataset.id == 0:  # a mapped folder: every version number means that folder
        return dataset.versions[0].folder
    version = dataset.version(ref.version)
    return version.folder if version else None


# -- changes --------------------------------------------------------------------------

def create_dataset(store, body: dict, user: str | None) -> dict:
    request = api.ApiCreateDatasetRequest.from_dict(body)
    owner, slug = request.owner_slug or user or "", request.slug or ""
    if not (_NAME.match(owner) and _NAME.match(slug)):
        return _refused(f"'{owner}/{slug}' is not a dataset's owner/slug")
    _may_write(owner, user)
    if find(store, owner, slug) is not None:
        return _refused(f"Dataset {owner}/{slug} already exists: create a new version of it instead")
    dataset = Dataset(1 + max((d.id for d in store.datasets.values()), default=0), owner, slug,
                      request.title or slug, request.is_private, request.license_name or "")
    problem = _add_version(store, dataset, request.files, request.directories, "")
    if problem:
        return _refused(problem)
    store.datasets[dataset.ref.lower()] = dataset
    store.save()
    return _made(store, dataset)


def create_dataset_version(store, body: dict, user: str | None) -> dict:
    request = api.ApiCreateDatasetVersionRequest.from_dict(body)
    return _new_version(store, store.datasets.get(f"{request.owner_slug}/{request.dataset_slug}".lower()),
                        f"{request.owner_slug}/{request.dataset_slug}", request.body, user)


def create_dataset_version_by_id(store, body: dict, user: str | None) -> dict:
    request = api.ApiCreateDatasetVersionByIdRequest.from_dict(body)
    dataset = next((d for d in store.datasets.values() if d.id == request.id), None)
    return _new_version(store, dataset, f"id {request.id}", request.body, user)


def _new_version(store, dataset: Dataset | None, named: str, body, user: str | None) -> dict:
    if dataset is None:
        ref = KaggleRef.parse(named)
        if find(store, ref.owner, ref.slug) is not None:
            return _refused(f"{named} is a local folder given to the emulator: it takes no new versions")
        raise ApiError(404, f"Dataset {named} not found")
    _may_write(dataset.owner, user)
    body = body or api.ApiCreateDatasetVersionRequestBody()
    problem = _add_version(store, dataset, body.files, body.directories, body.version_notes or "")
    if problem:
        return _refused(problem)
    store.save()
    return _made(store, dataset)


def _add_version(store, dataset: Dataset, files, directories, notes: str) -> str | None:
    """Moves the named blobs into the dataset's next version folder; why not, or None."""
    number = len(dataset.versions) + 1
    final = store.root / "_datasets" / dataset.owner / dataset.slug / f"v{number}"
    problem = fill_version(store, final, files, directories, "A dataset version needs at least one file")
    if problem is None:
        dataset.versions.append(DatasetVersion(number, final, notes))
    return problem


def fill_version(store, final: Path, files, directories, empty: str) -> str | None:
    """Moves the blobs named by `files` and `directories` (the upload types kagglesdk's dataset
    and model calls share) into the new folder `final`; why not (`empty` for no file), or None."""
    try:
        plan = _plan(store, files, directories, ())
    except ApiError as exc:
        return exc.message
    if not plan:
        return empty
    if final.exists():  # left by an emulator stopped between this rename and the state's write: unknown to all
        shutil.rmtree(final)
    staging = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    staging.mkdir(parents=True)
    try:
        for parts, source in plan:
            target = staging.joinpath(*parts)
            if parts[-1].lower().endswith(".zip") and zipfile.is_zipfile(source):
                _unpack(source, target.with_name(target.name[:-4]), parts[-1])
            else:
                _place(source, target, "/".join(parts))
        os.replace(staging, final)  # a version folder appears whole, or not at all
    except ApiError as exc:
        return exc.message
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for _, source in plan:
        blobs.forget(store, source.name)
    return None


def _plan(store, files, directories, prefix: tuple) -> list[tuple[tuple, Path]]:
    """(path parts in the version, the blob's file) for every file named, nested ones too."""
    plan = []
    for file in files:
        name, source = blobs.take(store, file.token)
        plan.append((prefix + (name,), source))
    for directory in directories:
        if safe_relative_path(directory.name) is None or "/" in directory.name:
            raise ApiError(400, f"a directory's name must be a plain name, not {directory.name!r}")
        plan += _plan(store, directory.files, directory.directories, prefix + (directory.name,))
    return plan


def _place(source: Path, target: Path, shown: str) -> None:
    if target.exists():
        raise ApiError(400, f"two files would be {shown}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # the blob stays until the version exists; no second copy on disk
    except OSError:
        shutil.copyfile(source, target)


def _unpack(archive: Path, into: Path, shown: str) -> None:
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            name = member.filename.rstrip("/")
            if safe_relative_path(name) is None:
                raise ApiError(400, f"{shown} holds a name that would leave it: {member.filename!r}")
            if member.is_dir():
                continue
            target = into / name
            if target.exists():
                raise ApiError(400, f"two files would be {into.name}/{name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as data, target.open("wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)


def _refused(message: str) -> dict:
    response = api.ApiCreateDatasetResponse()
    response.status, response.error = "error", message
    return response.to_dict()


def _made(store, dataset: Dataset) -> dict:
    response = api.ApiCreateDatasetResponse()
    response.status, response.ref = "ok", dataset.ref
    response.url = f"{store.base_url}/datasets/{dataset.ref}"
    return response.to_dict()


# -- reads ----------------------------------------------------------------------------

def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


def get_dataset(store, body: dict, user: str | None) -> dict:
    request = api.ApiGetDatasetRequest.from_dict(body)
    dataset = readable(store, request.owner_slug, request.dataset_slug, user)
    answer = _dataset_answer(store, dataset)
    for version in dataset.versions:
        item = api.ApiDatasetVersion()
        item.version_number, item.creation_date = version.number, _stamp(version.created_at)
        item.version_notes, item.status, item.creator_name = version.notes or None, "ready", dataset.owner
        answer.versions.append(item)
    return answer.to_dict()


def get_dataset_status(store, body: dict, user: str | None) -> dict:
    request = api.ApiGetDatasetStatusRequest.from_dict(body)
    readable(store, request.owner_slug, request.dataset_slug, user)
    response = api.ApiGetDatasetStatusResponse()
    pending = store.faults.take_dataset_pending()
    response.status = DatabundleVersionStatus.BLOBS_RECEIVED if pending else DatabundleVersionStatus.READY
    return response.to_dict()


def list_dataset_files(store, body: dict, user: str | None) -> dict:
    from kjob.emulator.reads import paged

    request = api.ApiListDatasetFilesRequest.from_dict(body)
    dataset = readable(store, request.owner_slug, request.dataset_slug, user)
    version = dataset.version(request.dataset_version_number)
    if version is None:
        raise ApiError(404, f"Version {request.dataset_version_number} of {dataset.ref} not found")
    files, token = paged(store, body, version.files())
    response = api.ApiListDatasetFilesResponse()
    for name, path in files:
        item = api.ApiDatasetFile()
        stat = path.stat()
        item.ref, item.dataset_ref, item.owner_ref = f"{dataset.ref}/{name}", dataset.ref, dataset.owner
        item.name, item.total_bytes, item.creation_date = name, stat.st_size, _stamp(stat.st_mtime)
        response.dataset_files.append(item)
    response.next_page_token = token
    return response.to_dict()


def _dataset_answer(store, dataset: Dataset) -> "api.ApiDataset":
    latest = dataset.versions[-1]
    answer = api.ApiDataset()
    answer.id, answer.ref, answer.title = dataset.id, dataset.ref, dataset.title
    answer.owner_name = answer.owner_ref = answer.creator_name = dataset.owner
    answer.is_private, answer.current_version_number = dataset.private, latest.number
    answer.license_name = dataset.license or None
    answer.url, answer.last_updated = f"{store.base_url}/datasets/{dataset.ref}", _stamp(latest.created_at)
    answer.total_bytes = sum(path.stat().st_size for _, path in latest.files())
    return answer


def list_datasets(store, body: dict, user: str | None) -> dict:
    from kagglesdk.datasets.types.dataset_enums import DatasetSelectionGroup as Group

    request = api.ApiListDatasetsRequest.from_dict(body)
    folders = {key: KaggleRef.read(key, versioned=False) for key in store.data_sources}
    every = {**{key: find(store, ref.owner, ref.slug) for key, ref in folders.items() if ref}, **store.datasets}
    search = (request.search or "").lower()

    def visible(dataset: Dataset) -> bool:
        own = _same(dataset.owner, user)
        if request.group in (Group.DATASET_SELECTION_GROUP_MY, Group.DATASET_SELECTION_GROUP_MY_PRIVATE):
            return own
        if request.user:
            return _same(dataset.owner, request.user) and (own or not dataset.private)
        return not dataset.private

    found = [d for d in every.values() if d is not None and d.versions and visible(d)
             and (not search or search in d.title.lower() or search in d.slug.lower())]
    found.sort(key=lambda d: (d.versions[-1].created_at, d.ref), reverse=True)
    size = max(1, min(int(request.page_size or 20), 100))
    token = request.page_token or ""
    start = int(token) if token.isdigit() else (max(1, request.page or 1) - 1) * size
    response = api.ApiListDatasetsResponse()
    response.datasets = [_dataset_answer(store, d) for d in found[start:start + size]]
    if start + size < len(found):
        response.next_page_token = str(start + size)
    return response.to_dict()


def get_dataset_metadata(store, body: dict, user: str | None) -> dict:
    from kagglesdk.datasets.types.dataset_types import DatasetInfo, SettingsLicense

    request = api.ApiGetDatasetMetadataRequest.from_dict(body)
    dataset = readable(store, request.owner_slug, request.dataset_slug, user)
    info = DatasetInfo()
    info.dataset_id, info.dataset_slug, info.owner_user = dataset.id, dataset.slug, dataset.owner
    info.title, info.is_private = dataset.title, dataset.private
    if dataset.license:
        license_ = SettingsLicense()
        license_.name = dataset.license
        info.licenses = [license_]
    response = api.ApiGetDatasetMetadataResponse()
    response.info = info
    return response.to_dict()


def download_dataset(store, body: dict, user: str | None):
    request = api.ApiDownloadDatasetRequest.from_dict(body)
    dataset = readable(store, request.owner_slug, request.dataset_slug, user)
    version = dataset.version(request.dataset_version_number)
    if version is None:
        raise ApiError(404, f"Version {request.dataset_version_number} of {dataset.ref} not found")
    if request.file_name:
        path = dict(version.files()).get(request.file_name.strip("/"))
        if path is None:
            raise ApiError(404, f"{dataset.ref} version {version.number} has no file {request.file_name}")
        return answers.Redirect(store.file_link(path, path.name))
    key = f"dataset-{dataset.owner}-{dataset.slug}-v{version.number}" if dataset.id else None
    if key is None:  # a mapped folder may change: archived afresh, under a name of its contents' state
        stamp = max((p.stat().st_mtime_ns for _, p in version.files()), default=0)
        key = f"folder-{dataset.owner}-{dataset.slug}-{stamp:x}"
    path = answers.archive(store.root, key, version.files())
    return answers.Redirect(store.file_link(path, f"{dataset.slug}.zip"))


def delete_dataset(store, body: dict, user: str | None) -> dict:
    request = api.ApiDeleteDatasetRequest.from_dict(body)
    response = api.ApiDeleteDatasetResponse()
    key = f"{request.owner_slug}/{request.dataset_slug}".lower()
    dataset = store.datasets.get(key)
    if dataset is None:
        readable(store, request.owner_slug, request.dataset_slug, user)  # 404, or 403 for another's private one
        response.error = f"{request.owner_slug}/{request.dataset_slug} is a local folder given to the emulator: it cannot be deleted"
        return response.to_dict()
    if not _same(dataset.owner, user):
        raise ApiError(403, "Permission 'datasets.delete' was denied")
    del store.datasets[key]
    store.save()
    shutil.rmtree(store.root / "_datasets" / dataset.owner / dataset.slug, ignore_errors=True)
    return response.to_dict()


METHODS = {
    "ListDatasets": list_datasets, "GetDatasetMetadata": get_dataset_metadata, "DownloadDataset": download_dataset,
    "DeleteDataset": delete_dataset,
    "CreateDataset": create_dataset, "CreateDatasetVersion": create_dataset_version,
    "CreateDatasetVersionById": create_dataset_version_by_id, "GetDataset": get_dataset,
    "GetDatasetStatus": get_dataset_status, "ListDatasetFiles": list_dataset_files,
}
