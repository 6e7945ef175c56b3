"""The models API (`kaggle models ...`, kagglehub's model_download): CreateModel, GetModel,
ListModels, CreateModelInstance, GetModelInstance, CreateModelInstanceVersion,
ListModelInstanceVersions, ListModelInstanceVersionFiles, DownloadModelInstanceVersion; and
the folder that serves a model source ("owner/model/framework/instance/N") to a kernel.

Models are kept in --state-dir (model.py). A model instance is made with its version 1 from
uploaded blobs (blobs.py, as a dataset version is: datasets.fill_version), each further
version from its own uploads.

What the emulator assumes where Kaggle documents nothing:
- only the owner creates a model, an instance or a version (403); another account's private
  model answers 403 ("Permission 'models.get' was denied"), a missing one 404;
- a refused create is HTTP 200 with `error` set and no `id`, which the official CLI prints
  ("Model creation error: ..."): a model or instance that already exists, a slug that is
  not a Kaggle name, an instance of a missing model, a version without files;
- a framework is matched as the official client's lookup_enum reads it ("PyTorch",
  "pyTorch", "py_torch" are MODEL_FRAMEWORK_PY_TORCH);
- ListModels lists public models and the caller's own, `owner` and `search` (title or slug)
  filtering them, newest first whatever the sort order;
- DownloadModelInstanceVersion answers a redirect: to the file at `path`, or to a .tar.gz of
  the version, which the official CLI saves as `<model>.tar.gz` (and unpacks with --untar).
"""

import re

from kagglesdk.models.types import model_api_service as api
from kagglesdk.models.types.model_enums import ModelFramework, ModelInstanceType
from kagglesdk.models.types.model_types import ModelInstanceVersion, ModelInstanceVersionList

from kjob.emulator import answers
from kjob.emulator.datasets import _stamp, fill_version
from kjob.emulator.model import ApiError, DatasetVersion, Model, ModelInstance

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def framework_name(value) -> str:
    """kagglesdk's ModelFramework name for an enum, its name, or a short name ("PyTorch")."""
    if isinstance(value, ModelFramework):
        return value.name
    wanted = re.sub(r"[^a-z0-9]", "", str(value).lower()).removeprefix("modelframework")
    for item in ModelFramework:
        if item.name.removeprefix("MODEL_FRAMEWORK_").replace("_", "").lower() == wanted:
            return item.name
    return ""


def short_framework(name: str) -> str:
    """"MODEL_FRAMEWORK_PY_TORCH" -> "pyTorch", as the official client and Kaggle's URLs write it."""
    words = name.removeprefix("MODEL_FRAMEWORK_").lower().split("_")
    return words[0] + "".join(word.title() for word in words[1:])


# -- lookup and access ----------------------------------------------------------------

def _same(a: str, b: str | None) -> bool:
    return b is not None and a.lower() == b.lower()


def readable(store, owner: str, slug: str, user: str | None) -> Model:
    found = store.models.get(f"{owner}/{slug}".lower())
    if found is None:
        raise ApiError(404, f"Model {owner}/{slug} not found")
    if found.private and not _same(found.owner, user):
        raise ApiError(403, "Permission 'models.get' was denied")
    return found


def instance(store, owner: str, slug: str, framework, instance_slug: str, user: str | None
             ) -> tuple[Model, ModelInstance]:
    found = readable(store, owner, slug, user)
    name = framework_name(framework)
    for item in found.instances:
        if item.framework == name and item.slug.lower() == instance_slug.lower():
            return found, item
    raise ApiError(404, f"Model instance {owner}/{slug}/{short_framework(name) or framework}/{instance_slug} not found")


def _may_write(owner: str, user: str | None) -> None:
    if not _same(owner, user):
        raise ApiError(403, f"Permission 'models.create' was denied: {owner}'s models belong to another account")


def source_version(store, source: str, user: str | None) -> DatasetVersion | None:
    """The version a kernel of `user` is given for "owner/model/framework/instance[/N]" (the
    latest without N), or None: no such version, or a private model of another account."""
    parts = source.split("/")
    if len(parts) not in (4, 5):
        return None
    try:
        _, item = instance(store, *parts[:4], user)
    except ApiError:
        return None
    if len(parts) == 5 and not parts[4].isdecimal():
        return None
    number = int(parts[4]) if len(parts) == 5 else len(item.versions)
    return item.versions[number - 1] if 1 <= number <= len(item.versions) else None


def source_folder(store, source: str, user: str | None):
    """The folder a kernel of `user` sees for "owner/model/framework/instance[/N]", or None."""
    version = source_version(store, source, user)
    return version.folder if version is not None else None


def _url(store, *parts) -> str:
    return f"{store.base_url}/models/" + "/".join(str(p) for p in parts)


# -- changes --------------------------------------------------------------------------

def _created(response_id: int, ref: str, url: str) -> dict:
    response = api.ApiCreateModelResponse()
    response.id, response.ref, response.url = response_id, ref, url
    return response.to_dict()


def _refused(message: str) -> dict:
    response = api.ApiCreateModelResponse()
    response.error = message
    return response.to_dict()


def create_model(store, body: dict, user: str | None) -> dict:
    request = api.ApiCreateModelRequest.from_dict(body)
    owner, slug = request.owner_slug or user or "", request.slug or ""
    if not (_NAME.match(owner) and _NAME.match(slug)):
        return _refused(f"'{owner}/{slug}' is not a model's owner/slug")
    _may_write(owner, user)
    if f"{owner}/{slug}".lower() in store.models:
        return _refused(f"Model {owner}/{slug} already exists")
    made = Model(1 + max((m.id for m in store.models.values()), default=0), owner, slug, request.title or slug,
                 request.subtitle or "", request.description or "", bool(request.is_private))
    store.models[made.ref.lower()] = made
    store.save()
    return _created(made.id, made.ref, _url(store, made.ref))


def create_model_instance(store, body: dict, user: str | None) -> dict:
    request = api.ApiCreateModelInstanceRequest.from_dict(body)
    found = store.models.get(f"{request.owner_slug}/{request.model_slug}".lower())
    if found is None:
        return _refused(f"Model {request.owner_slug}/{request.model_slug} not found: create the model first")
    _may_write(found.owner, user)
    spec = request.body or api.ApiCreateModelInstanceRequestBody()
    framework = framework_name(spec.framework)
    if not _NAME.match(spec.instance_slug or "") or not framework:
        return _refused(f"'{spec.instance_slug}' for framework {spec.framework} is not a model instance's slug")
    if any(i.framework == framework and i.slug.lower() == spec.instance_slug.lower() for i in found.instances):
        return _refused(f"Model instance {found.ref}/{short_framework(framework)}/{spec.instance_slug} already exists")
    made = ModelInstance(1 + max((i.id for m in store.models.values() for i in m.instances), default=0),
                         spec.instance_slug, framework, spec.license_name or "", spec.overview or "", spec.usage or "",
                         bool(spec.fine_tunable), list(spec.training_data), spec.model_instance_type.name)
    problem = _add_version(store, found, made, spec.files, spec.directories, "")
    if problem:
        return _refused(problem)
    found.instances.append(made)
    store.save()
    return _created(made.id, f"{found.ref}/{short_framework(framework)}/{made.slug}",
                    _url(store, found.ref, short_framework(framework), made.slug))


def create_model_instance_version(store, body: dict, user: str | None) -> dict:
    request = api.ApiCreateModelInstanceVersionRequest.from_dict(body)
    found, item = instance(store, request.owner_slug, request.model_slug, request.framework, request.instance_slug,
                           user)
    _may_write(found.owner, user)
    spec = request.body or api.ApiCreateModelInstanceVersionRequestBody()
    problem = _add_version(store, found, item, spec.files, spec.directories, spec.version_notes or "")
    if problem:
        return _refused(problem)
    store.save()
    number = len(item.versions)
    return _created(item.id * 1000 + number, f"{found.ref}/{short_framework(item.framework)}/{item.slug}/{number}",
                    _url(store, found.ref, short_framework(item.framework), item.slug, number))


def _add_version(store, found: Model, item: ModelInstance, files, directories, notes: str) -> str | None:
    number = len(item.versions) + 1
    final = store.root / "_models" / found.owner / found.slug / item.framework / item.slug / f"v{number}"
    problem = fill_version(store, final, files, directories, "A model instance version needs at least one file")
    if problem is None:
        item.versions.append(DatasetVersion(number, final, notes))
    return problem


# -- reads ----------------------------------------------------------------------------

def _instance_answer(store, found: Model, item: ModelInstance) -> "api.ApiModelInstance":
    answer = api.ApiModelInstance()
    answer.id, answer.slug, answer.framework = item.id, item.slug, ModelFramework[item.framework]
    answer.overview, answer.usage, answer.license_name = item.overview, item.usage, item.license_name
    answer.fine_tunable, answer.training_data = item.fine_tunable, list(item.training_data)
    answer.model_instance_type = ModelInstanceType[item.instance_type]
    answer.version_number = len(item.versions)
    answer.version_id = item.id * 1000 + len(item.versions)
    answer.url = _url(store, found.ref, short_framework(item.framework), item.slug)
    answer.total_uncompressed_bytes = sum(p.stat().st_size for _, p in item.versions[-1].files()) if item.versions else 0
    return answer


def _model_answer(store, found: Model) -> "api.ApiModel":
    answer = api.ApiModel()
    answer.id, answer.ref, answer.title, answer.subtitle = found.id, found.ref, found.title, found.subtitle
    answer.author, answer.slug, answer.is_private = found.owner, found.slug, found.private
    answer.description, answer.url = found.description, _url(store, found.ref)
    answer.instances = [_instance_answer(store, found, item) for item in found.instances]
    return answer


def get_model(store, body: dict, user: str | None) -> dict:
    request = api.ApiGetModelRequest.from_dict(body)
    return _model_answer(store, readable(store, request.owner_slug, request.model_slug, user)).to_dict()


def list_models(store, body: dict, user: str | None) -> dict:
    request = api.ApiListModelsRequest.from_dict(body)
    search = (request.search or "").lower()
    found = [m for m in store.models.values() if (not m.private or _same(m.owner, user))
             and (not request.owner or _same(m.owner, request.owner))
             and (not search or search in m.title.lower() or search in m.slug.lower())]
    found.sort(key=lambda m: (m.created_at, m.id), reverse=True)
    size = max(1, min(int(request.page_size or 20), 100))
    start = int(request.page_token) if (request.page_token or "").isdigit() else 0
    response = api.ApiListModelsResponse()
    response.models = [_model_answer(store, m) for m in found[start:start + size]]
    response.total_results = len(found)
    if start + size < len(found):
        response.next_page_token = str(start + size)
    return response.to_dict()


def get_model_instance(store, body: dict, user: str | None) -> dict:
    request = api.ApiGetModelInstanceRequest.from_dict(body)
    found, item = instance(store, request.owner_slug, request.model_slug, request.framework, request.instance_slug,
                           user)
    return _instance_answer(store, found, item).to_dict()


def list_model_instance_versions(store, body: dict, user: str | None) -> dict:
    from kjob.emulator.reads import paged

    request = api.ApiListModelInstanceVersionsRequest.from_dict(body)
    found, item = instance(store, request.owner_slug, request.model_slug, request.framework, request.instance_slug,
                           user)
    page, token = paged(store, body, list(reversed(item.versions)))  # newest first, as the model page lists them
    listed = ModelInstanceVersionList()
    for version in page:
        entry = ModelInstanceVersion()
        entry.id, entry.version_number = item.id * 1000 + version.number, version.number
        entry.variation_slug, entry.model_title, entry.is_private = item.slug, found.title, found.private
        entry.framework, entry.owner_slug, entry.model_slug = ModelFramework[item.framework], found.owner, found.slug
        entry.url = _url(store, found.ref, short_framework(item.framework), item.slug, version.number)
        listed.versions.append(entry)
    response = api.ApiListModelInstanceVersionsResponse()
    response.version_list, response.next_page_token = listed, token
    return response.to_dict()


def _version(store, request, user: str | None) -> tuple[Model, ModelInstance, DatasetVersion]:
    found, item = instance(store, request.owner_slug, request.model_slug, request.framework, request.instance_slug,
                           user)
    number = request.version_number
    if not 1 <= number <= len(item.versions):
        raise ApiError(404, f"Version {number} of {found.ref}/{short_framework(item.framework)}/{item.slug} not found")
    return found, item, item.versions[number - 1]


def list_model_instance_version_files(store, body: dict, user: str | None) -> dict:
    from kjob.emulator.reads import paged

    request = api.ApiListModelInstanceVersionFilesRequest.from_dict(body)
    _, _, version = _version(store, request, user)
    page, token = paged(store, body, version.files())
    response = api.ApiListModelInstanceVersionFilesResponse()
    for name, path in page:
        entry = api.ApiModelFile()
        stat = path.stat()
        entry.name, entry.size, entry.creation_date = name, stat.st_size, _stamp(stat.st_mtime)
        response.files.append(entry)
    response.next_page_token = token
    return response.to_dict()


def download_model_instance_version(store, body: dict, user: str | None):
    request = api.ApiDownloadModelInstanceVersionRequest.from_dict(body)
    found, item, version = _version(store, request, user)
    if request.path:
        path = dict(version.files()).get(request.path.strip("/"))
        if path is None:
            raise ApiError(404, f"Version {version.number} of {found.ref}/{item.slug} has no file {request.path}")
        return answers.Redirect(store.file_link(path, path.name))
    key = f"model-{found.owner}-{found.slug}-{item.framework}-{item.slug}-v{version.number}"
    path = answers.archive(store.root, key, version.files(), "tar.gz")
    return answers.Redirect(store.file_link(path, f"{found.slug}.tar.gz"))


METHODS = {
    "CreateModel": create_model, "GetModel": get_model, "ListModels": list_models,
    "CreateModelInstance": create_model_instance, "GetModelInstance": get_model_instance,
    "CreateModelInstanceVersion": create_model_instance_version,
    "ListModelInstanceVersions": list_model_instance_versions,
    "ListModelInstanceVersionFiles": list_model_instance_version_files,
    "DownloadModelInstanceVersion": download_model_instance_version,
}
