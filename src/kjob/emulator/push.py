"""The methods that change the emulator's state: SaveKernel, DeleteKernel (and CancelKernelSession).

What SaveKernel assumes where Kaggle documents nothing, following the official client and
kagglesdk:
- `id` wins over `slug` when both are set (kagglesdk's field comment); an unknown id is the
  push error "Kernel not found", as Kaggle answered it in kaggle-cli issue 345.
- A new kernel takes its slug from its title, as Kaggle's site does: a title that does not
  slugify to the id's slug makes a kernel at the title's slug, and the id's slug stays
  unreachable (the official client only warns). A title slug already taken by another of the
  owner's kernels gets "-1", "-2", ... (assumed). An existing kernel keeps its slug whatever
  the title.
- A rejected push is HTTP 200 with `error` set; unknown sources still make a version, without
  them, and are listed in the `invalid...Sources` fields. A dataset source is known when it was
  pushed (datasets.py: its latest version, or owner/slug/N) and readable by the kernel's owner,
  or when a local folder stands for it.
- A model source ("owner/model/framework/variation[/N]") is known when that version exists and
  the kernel's owner may read the model (a private model of another account is invalid, as a
  missing one is); it is mounted by its version, at
  models/<owner>/<model>/<framework>/<variation>/<N> (the latest N when none is named).
- A kernel source ("owner/slug") is known when the kernel has a complete version and is public
  or the pusher's own: its latest complete version's outputs are mounted, under
  notebooks/<owner>/<slug> and <slug> (assumed: Kaggle documents no version for it, and a
  session still running has no output yet).
- At most `max_gpu_sessions` unfinished GPU sessions per account (by machineShape or the older
  enableGpu), and no GPU session once the week's GPU quota is used up.
- `machineShape` is one of MACHINE_SHAPES, the list in kaggle-cli's docs/kernels.md
  ("Accelerators available as of Feb 2026", kept in kjob.kaggle_platform), or "None"; another
  is refused with HTTP 400 (assumed: Kaggle's wording for it is not public), before anything
  is made. So is a `text` of SOURCE_LIMIT bytes or more, with Kaggle's reported wording (HTTP
  400 "The kernel source must be less than 1 megabytes in size"; the emulator reads a megabyte
  as 10**6 bytes, as kjob's own check does).
- `language` is "python", "r" or "rmarkdown" (the official client's valid_push_language_types).
  An R kernel is kept and answered like any other, but the emulator runs Python only: its
  session ends at once in ERROR, saying so (Kaggle would run it).
- `categoryIds` are tag names; those not in KNOWN_TAGS come back in `invalidTags` and the
  push still succeeds, as the official client expects ("The following are not valid tags and
  could not be added to the kernel"). KNOWN_TAGS is the emulator's own short list of common
  Kaggle tags (assumed: Kaggle's catalogue, kaggle.com/tags, has thousands); a tag matches
  whatever its case, with spaces read as hyphens.
"""

import json
import re
import time
from datetime import datetime, timezone

from kagglesdk.kernels.types import kernels_api_service as api

from kjob.emulator import datasets, models_api, quota
from kjob.emulator.model import ApiError, Kernel, Version, accelerator
from kjob.emulator.sessions import Session
from kjob.build.kernel_metadata import slugify
from kjob.kaggle_platform import GPU_SHAPES, SESSION_LIMIT, SOURCE_LIMIT, TPU_SHAPES, KaggleRef, input_layouts
from kjob.sandbox.folder import record_final

DEFAULT_TIMEOUT = SESSION_LIMIT["none"].value
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LANGUAGES = ("python", "r", "rmarkdown")
MACHINE_SHAPES = (*GPU_SHAPES, *TPU_SHAPES, "None")
KNOWN_TAGS = frozenset("""
    audio beginner classification clustering computer-vision data-cleaning data-visualization deep-learning
    exploratory-data-analysis feature-engineering gpu image intermediate advanced keras linear-regression
    nlp neural-networks python pytorch regression signal-processing tabular tensorflow text time-series-analysis
    transfer-learning transformers tpu
""".split())
R_NOT_RUN = "this emulator runs Python kernels only: the R kernel was kept, but not run (Kaggle runs R)"
_SOURCES = (("dataset", "invalid_dataset_sources"), ("kernel", "invalid_kernel_sources"),
            ("competition", "invalid_competition_sources"), ("model", "invalid_model_sources"))


def save_kernel(store, body: dict, user: str | None) -> dict:
    request = api.ApiSaveKernelRequest.from_dict(body)
    response = api.ApiSaveKernelResponse()
    shape = request.machine_shape
    if shape and shape not in MACHINE_SHAPES:
        raise ApiError(400, f"Invalid machine shape '{shape}': use one of {', '.join(MACHINE_SHAPES)}")
    if len((request.text or "").encode()) >= SOURCE_LIMIT.value:
        raise ApiError(400, "The kernel source must be less than 1 megabytes in size")
    kernel, owner, slug = _target(store, request, user)
    if kernel is None and owner is None:
        response.error = "Kernel not found"
        return response.to_dict()
    response.error = (store.faults.take_push_rejection() or _text_problem(request)
                      or _accelerator_problem(store, owner, body))
    if response.error:
        return response.to_dict()
    attached, mounts = {}, {}
    for kind, invalid_field in _SOURCES:
        wanted = getattr(request, f"{kind}_data_sources")
        known = [s for s in wanted if store_source(store, kind, s, owner) is not None]
        setattr(response, invalid_field, [s for s in wanted if s not in known])
        unattached = {s.lower() for s in store.faults.unattached}
        attached[f"{kind}_data_sources"] = [s for s in known if s.lower() not in unattached]
        for source in attached[f"{kind}_data_sources"]:
            for relative in input_layouts(kind, _versioned(store, kind, source, owner)):
                mounts[relative] = store_source(store, kind, source, owner)
    response.invalid_tags = [tag for tag in request.category_ids
                             if str(tag).strip().lower().replace(" ", "-") not in KNOWN_TAGS]
    if kernel is None:
        kernel = Kernel(store.new_kernel_id(), owner, slug, request.new_title or slug)
        store.kernels[kernel.ref.lower()] = kernel
    kernel.title = request.new_title or kernel.title
    number = len(kernel.versions) + 1
    # One folder per kernel id: a deleted kernel's slug can be pushed again (a new id, from v1).
    folder = store.root / kernel.owner / kernel.slug / f"kernel-{kernel.id}" / f"v{number}"
    # a session runs at most its accelerator's limit (9 h TPU), whatever it asked for (assumed: capped, not refused)
    timeout = min(request.session_timeout_seconds or DEFAULT_TIMEOUT, SESSION_LIMIT[accelerator(body) or "none"].value)
    session = Session.create(folder, request.text or "", mounts, timeout,
                             request.kernel_type or "notebook", store.faults.session_limits())
    kept = {key: value for key, value in body.items() if key != "text"}
    kernel.versions.append(Version(number, kept, attached, session))
    store.save()
    if (request.language or "python") != "python":
        record_final(session.paths, {"status": "error", "raw_status": "error", "failure_kind": "infrastructure",
                                     "failure_message": R_NOT_RUN})
    if not store.faults.hold:
        session.start()
    response.ref, response.url = f"/code/{kernel.ref}", f"{store.base_url}/code/{kernel.ref}"
    response.version_number, response.kernel_id = number, kernel.id
    return response.to_dict()


def _target(store, request, user: str | None) -> tuple[Kernel | None, str | None, str | None]:
    """(the existing kernel, or None, its owner and slug for a new one); (None, None, None) for an
    id Kaggle would not find."""
    if request.id:
        kernel = store.by_id(request.id)
        if kernel is None:
            return None, None, None
        store.may_write(kernel.owner, user)
        return kernel, kernel.owner, kernel.slug
    ref = KaggleRef.read(request.slug or "", versioned=False)
    if not (ref and _NAME.match(ref.owner) and _NAME.match(ref.slug)):
        raise ApiError(400, "slug must be 'owner/kernel-slug'")
    owner, slug = ref.owner, ref.slug
    store.may_write(owner, user)
    existing = store.kernels.get(f"{owner}/{slug}".lower())
    if existing is not None:
        return existing, existing.owner, existing.slug
    wanted = slugify(request.new_title or "") or slug
    taken = {k.slug.lower() for k in store.kernels.values() if k.owner.lower() == owner.lower()}
    candidate, n = wanted, 0
    while candidate.lower() in taken:
        n += 1
        candidate = f"{wanted}-{n}"
    return None, owner, candidate


def _text_problem(request) -> str | None:
    if (request.language or "python") not in LANGUAGES:
        return f"Unsupported language {request.language}"
    kind = request.kernel_type or "notebook"
    if kind == "script":
        return None if (request.text or "").strip() else "The script is empty"
    if kind != "notebook":
        return f"Unsupported kernel type {kind}"
    try:
        notebook = json.loads(request.text or "")
        cells = notebook["cells"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return "Notebook text is not a valid notebook (JSON with cells)"
    if any(not isinstance(cell.get("source"), str) for cell in cells):
        return "Each cell's source must be one string"
    return None


def _accelerator_problem(store, owner: str, body: dict) -> str | None:
    if accelerator(body) != "gpu":
        return None
    limit = store.faults.max_gpu_sessions
    busy = sum(1 for k in store.every_kernel() if k.owner.lower() == owner.lower()
               for v in k.versions if v.accelerator == "gpu" and not v.session.final)
    if busy >= limit:
        return f"Maximum batch GPU session count of {limit} reached"
    now = datetime.now(timezone.utc)
    used = used_hours(store, owner, "gpu", now)
    if used >= store.faults.gpu_total_hours:
        return (f"GPU quota exhausted: {used:.1f} of {store.faults.gpu_total_hours:g} hours used this week "
                f"(refreshes {quota.timestamp(quota.refresh_time(now))})")
    return None


def used_hours(store, owner: str, kind: str, now: datetime) -> float:
    intervals = [v.session.run_interval() for k in store.every_kernel() if k.owner.lower() == owner.lower()
                 for v in k.versions if v.accelerator == kind]
    seconds = quota.used_seconds([i for i in intervals if i], now)
    return seconds / 3600 + (store.faults.gpu_used_hours if kind == "gpu" else 0.0)


def delete_kernel(store, body: dict, user: str | None) -> dict:
    kernel = store.kernel(str(body.get("userName", "")), str(body.get("kernelSlug", "")))
    store.may_write(kernel.owner, user)
    for version in kernel.versions:
        version.session.cancel(wait=5)
    del store.kernels[kernel.ref.lower()]
    kernel.deleted_at = time.time()
    store.deleted.append(kernel)
    store.save()
    return api.ApiDeleteKernelResponse().to_dict()


def cancel_kernel_session(store, body: dict, user: str | None) -> dict:
    # The public API never tells a client a kernelSessionId (kaggle-cli PR 1170): nothing to find.
    response = api.ApiCancelKernelSessionResponse()
    response.error_message = f"Kernel session {body.get('kernelSessionId', 0)} not found"
    return response.to_dict()


def store_source(store, kind: str, source: str, user: str | None = None):
    """The local folder serving a data source to a kernel of `user`, or None when it is unknown."""
    if kind == "dataset":
        return datasets.source_folder(store, source, user)
    if kind == "model" and models_api.source_folder(store, source, user) is not None:
        return models_api.source_folder(store, source, user)
    if kind == "kernel":
        key = KaggleRef.parse(source.lower()).key
        kernel = store.kernels.get(key)
        if kernel is None:
            return store.data_sources.get(key)
        if kernel.private and (user or "").lower() != kernel.owner.lower():
            return None
        done = [v for v in kernel.versions if v.session.state().get("status") == "complete"]
        return done[-1].session.paths.working_dir if done else None
    parts = source.lower().split("/")  # a competition's name, or a model's owner/model/framework/instance[/N]
    return store.data_sources.get(parts[0] if kind == "competition" else "/".join(parts[:4]))


def _versioned(store, kind: str, source: str, user: str | None) -> str:
    """A model source with its version number: one named none is its variation's latest."""
    if kind != "model" or len(source.split("/")) != 4:
        return source
    version = models_api.source_version(store, source, user)
    return f"{source}/{version.number}" if version is not None else source


METHODS = {"SaveKernel": save_kernel, "DeleteKernel": delete_kernel, "CancelKernelSession": cancel_kernel_session}
