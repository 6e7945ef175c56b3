"""A push's inputs on Kaggle (`push --input`, issue 23): each input run's fetched outputs
published as a private Kaggle Model instance version, attached to the run pinned to that
version through `model_sources` (docs/kaggle.md says why a model and not a dataset).

Where: one private model per kernel, `<owner>/kjob-<kernel>`, framework Other; one variation
per source run, named after the run and the digest of what it holds,
`<backend>-v<N>[-k<incarnation>]-<12 hex>`, whose version 1 is the run's files. The run sees them at
/kaggle/input/models/<owner>/kjob-<kernel>/other/<variation>/1/. Since the name says the content,
kjob never gives a variation a second version: version 1 of it is exactly the files whose
SHA-256 the ledger keeps, and a variation found made (by an earlier push, killed or not, on
this machine or another) is reused as it is.

How: the files are uploaded first (kjob.backends.kaggle_upload_record.UploadBook: a killed
publish's uploads are reused by the next), then CreateModel where the model is new, then one
CreateModelInstance carrying every file: Kaggle makes the variation and its version 1 in one
call, so a kill leaves no version or the whole one, never half of one. It all happens before
the push's ledger row is written (`Backend.publish_inputs`): a kill leaves no row.

`.kjob/published.json` records which model version holds which run (keyed by the endpoint, the
account and the digest), for a person to read; a push still asks Kaggle (GetModelInstance)
whether the variation is there, so a model deleted since is published again.
"""

import hashlib
import json
import time
from dataclasses import replace

from kjob.backends import kaggle_sdk
from kjob.errors import BackendError, NotFoundError
from kjob.fsutil import atomic_write_json, read_json
from kjob.kaggle_platform import input_layouts
from kjob.polling import Backoff, kaggle_first_wait
from kjob.procs import kill_point

kaggle_sdk.light()  # before anything imports kagglesdk: its __init__ loads every service

FRAMEWORK = "other"  # MODEL_FRAMEWORK_OTHER: run outputs are no one framework's
READY_TIMEOUT = 600.0  # seconds to wait for Kaggle to show a new variation's version 1


def content_digest(record) -> str:
    """12 hex digits of the run's identity and its files' SHA-256: what a variation holds."""
    what = {"kernel": record.kernel, "backend": record.backend, "version": record.version,
            "incarnation": record.incarnation, "identity": record.identity, "files": dict(sorted(record.files.items()))}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def model_source(owner: str, record) -> str:
    """"owner/model/framework/variation/1": the model version that holds `record`'s run."""
    from kjob.build.kernel_metadata import slugify

    model = f"kjob-{slugify(record.kernel)}"[:50].rstrip("-")
    incarnation = f"-k{record.incarnation}" if record.incarnation > 1 else ""
    variation = f"{record.backend}-v{record.version}{incarnation}-{content_digest(record)}"
    return f"{owner}/{model}/{FRAMEWORK}/{variation}/1"


def placed(owner: str, inputs: tuple) -> tuple:
    """The inputs with their mounts where a Kaggle run sees them: their model versions."""
    return tuple(replace(item, record=replace(item.record, mounts=tuple(
        input_layouts("model", model_source(owner, item.record))))) for item in inputs)


def source_of(record) -> str:
    """The model source a placed input is mounted from (its mount path without `models/`)."""
    return record.mounts[0].removeprefix("models/")


class ModelsApi:
    """The models and blobs calls a publish makes, typed with kagglesdk's own classes."""

    def __init__(self, transport):
        from kagglesdk.blobs.services.blob_api_service import BlobApiClient
        from kagglesdk.models.services.model_api_service import ModelApiClient

        self.transport = transport
        self.client = ModelApiClient(transport.sdk)
        self.blobs = BlobApiClient(transport.sdk)

    def start_upload(self, name: str, size: int, modified: int):
        from kagglesdk.blobs.types import blob_api_service as blob_api

        request = blob_api.ApiStartBlobUploadRequest()
        request.type, request.name = blob_api.ApiBlobType.MODEL, name
        request.content_length, request.last_modified_epoch_seconds = size, modified
        return self.transport.call(lambda: self.blobs.start_blob_upload(request), f"the upload of {name}")

    def model_exists(self, owner: str, model: str) -> bool:
        from kagglesdk.models.types import model_api_service as api

        request = api.ApiGetModelRequest()
        request.owner_slug, request.model_slug = owner, model
        try:
            self.transport.call(lambda: self.client.get_model(request), f"model {owner}/{model}")
        except NotFoundError:
            return False
        return True

    def version_count(self, owner: str, model: str, variation: str) -> int:
        """How many versions the variation has; 0 when it (or its model) does not exist."""
        from kagglesdk.models.types import model_api_service as api
        from kagglesdk.models.types.model_enums import ModelFramework

        request = api.ApiGetModelInstanceRequest()
        request.owner_slug, request.model_slug, request.instance_slug = owner, model, variation
        request.framework = ModelFramework.MODEL_FRAMEWORK_OTHER
        try:
            found = self.transport.call(lambda: self.client.get_model_instance(request),
                                        f"model variation {owner}/{model}/{FRAMEWORK}/{variation}")
        except NotFoundError:
            return 0
        return int(found.version_number or 0)

    def create_model(self, owner: str, model: str, title: str):
        from kagglesdk.models.types import model_api_service as api

        request = api.ApiCreateModelRequest()
        request.owner_slug, request.slug, request.title, request.is_private = owner, model, title, True
        request.description = "Outputs of kjob runs, one variation per run, given to later runs (kjob push --input)."
        return self.transport.call(lambda: self.client.create_model(request), f"the creation of model {owner}/{model}",
                                   idempotent=False)

    def create_variation(self, owner: str, model: str, variation: str, tokens: list[tuple[str, str]], note: str):
        from kagglesdk.datasets.types import dataset_api_service as files_api
        from kagglesdk.models.types import model_api_service as api
        from kagglesdk.models.types.model_enums import ModelFramework

        from kjob.backends.kaggle_upload import _tree

        body = api.ApiCreateModelInstanceRequestBody()
        body.instance_slug, body.framework = variation, ModelFramework.MODEL_FRAMEWORK_OTHER
        body.overview, body.license_name = note, "unknown"
        body.files, body.directories = _tree(files_api, tokens)
        request = api.ApiCreateModelInstanceRequest()
        request.owner_slug, request.model_slug, request.body = owner, model, body
        return self.transport.call(lambda: self.client.create_model_instance(request),
                                   f"the model variation {owner}/{model}/{FRAMEWORK}/{variation}", idempotent=False)


def publish(ws, transport, inputs: tuple) -> list[str]:
    """Each placed input's model version made on Kaggle, unless it is there already; the
    sources published now (the others were reused)."""
    api, made = ModelsApi(transport), []
    book = _Published(ws.paths.published, transport)
    for item in inputs:
        source = source_of(item.record)
        owner, model, _, variation, _ = source.split("/")
        if api.version_count(owner, model, variation) >= 1:
            book.keep(item.record, source)
            continue
        tokens = _upload(ws, api, item)
        if not api.model_exists(owner, model):
            answer = api.create_model(owner, model, f"kjob outputs of {item.record.kernel}"[:50])
            if answer.error and "already exists" not in answer.error.lower():
                raise BackendError(f"Kaggle refused the model {owner}/{model} for input {item.record.label}: "
                                   f"{' '.join(answer.error.split())} (nothing was pushed)")
        kill_point("push:publishing")  # uploaded, not yet a version: a kill here leaves none
        answer = api.create_variation(owner, model, variation, tokens, f"The outputs of {item.record.label} (kjob).")
        if answer.error and "already exists" not in answer.error.lower():
            raise BackendError(f"Kaggle refused to publish input {item.record.label} as {source}: "
                               f"{' '.join(answer.error.split())} (nothing was pushed)")
        _wait_version(api, owner, model, variation, item.record.label)
        _book(ws, transport).used([token for _, token in tokens])
        book.keep(item.record, source)
        made.append(source)
    return made


def _upload(ws, api, item) -> list[tuple[str, str]]:
    """(name in the version, blob token) for each of the input's files, as the ledger lists them."""
    book, tokens = _book(ws, api.transport), []
    for name in sorted(item.record.files):
        path = item.folder / name
        stat = path.stat()
        # The SHA-256 the ledger records, taken moments ago (kjob.lifecycle.inputs): not read again.
        token, _ = book.upload(api, name.rsplit("/", 1)[-1], path, stat.st_size, int(stat.st_mtime),
                               item.record.files[name])
        tokens.append((name, token))
    return tokens


def _book(ws, transport):
    from kjob.backends.kaggle_upload_record import UploadBook

    credentials = transport.credentials
    # Model blobs apart from a dataset push's (a token is reserved for one kind of upload).
    return UploadBook(ws.paths.uploads, transport.endpoints.api, f"{credentials.username or credentials.source} models")


def _wait_version(api, owner: str, model: str, variation: str, label: str, timeout: float = READY_TIMEOUT,
                  clock=time.monotonic) -> None:
    """Until Kaggle shows the new variation's version 1 (it may process uploads a while)."""
    deadline = clock() + timeout
    delays = Backoff(start=kaggle_first_wait(2.0), factor=1.5, cap=15.0).delays()
    while api.version_count(owner, model, variation) < 1:
        left = deadline - clock()
        if left <= 0:
            raise BackendError(f"Kaggle took input {label} as {owner}/{model}/{FRAMEWORK}/{variation} but did not show "
                               f"its version within {timeout:.0f} s: push again later (it is reused then)")
        api.transport.sleep(min(next(delays), left))


class _Published:
    """`.kjob/published.json`: {key: {"source", "run", "files", "at"}}, which model version holds which run."""

    def __init__(self, path, transport):
        credentials = transport.credentials
        self.path = path
        self.scope = f"{transport.endpoints.api} {credentials.username or credentials.source}"

    def keep(self, record, source: str) -> None:
        try:
            entries = read_json(self.path, {}) or {}
        except (OSError, ValueError):  # unreadable: it is only a record for people
            entries = {}
        key = f"{self.scope} {content_digest(record)}"
        if entries.get(key, {}).get("source") == source:
            return
        entries[key] = {"source": source, "run": record.label, "files": dict(sorted(record.files.items())),
                        "at": time.time()}
        atomic_write_json(self.path, entries)
