"""`kjob dataset push FOLDER --as OWNER/SLUG`: a local folder becomes a Kaggle dataset, or its next version.

What goes up: every file under FOLDER, sub-folders included, except hidden entries (a name
starting with ".") and the official CLI's metadata files (dataset-metadata.json,
datapackage.json), which describe a dataset rather than belong to it. Each file is uploaded on
its own (StartBlobUpload, then one streamed PUT of its bytes), and sub-folders keep their
structure through the create call's `directories`: nothing is zipped, so FOLDER/a/b.csv is
/kaggle/input/datasets/OWNER/SLUG/a/b.csv in a kernel. Then CreateDataset (a new dataset,
private unless `public`) or CreateDatasetVersion (notes from `message`), as GetDataset says,
and kjob waits, for at most `timeout` seconds, until GetDatasetStatus says READY and the
dataset's current version is the new one. A re-run of a killed push sends only the files not
uploaded yet (kjob.backends.kaggle_upload_record); a create answered "already exists" (the killed push made the
dataset) becomes its next version.

Refused before anything is uploaded:
- UsageError (exit 2): a target not OWNER/SLUG (a new dataset's slug has 6 to 50 characters,
  as Kaggle requires); a folder with no files; a symlink that leads out of the folder, or to a
  folder; a name that Kaggle or another system could not keep (not UTF-8, a backslash, colon or
  control character, a part over 255 bytes, two names equal but for case); more than MAX_BYTES
  in all (Kaggle's limit for one dataset);
- UsageError (exit 2), unless `include_secrets`: files that hold credentials (kaggle.json,
  access_token, credentials, an SSH key such as id_rsa, *.pem, *.env, a file that
  starts a private key), named;
- BackendError (exit 7): username credentials of an account other than OWNER (Kaggle would
  refuse the create only after every byte was uploaded); and anything Kaggle itself refuses.
"""

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kjob.backends import kaggle_sdk
from kjob.errors import BackendError, ConfigError, NotFoundError, UsageError
from kjob.fsutil import safe_relative_path
from kjob.kaggle_platform import KaggleRef
from kjob.credentials import redact
from kjob.polling import Backoff, kaggle_first_wait
from kjob.workspace import OWNER_RE

kaggle_sdk.light()  # before anything imports kagglesdk: its __init__ loads every service

MAX_BYTES = 200 * 10**9  # Kaggle's documented maximum size of one dataset
SKIPPED = frozenset({"dataset-metadata.json", "datapackage.json"})  # at the folder's top only
LICENSE = "unknown"  # kjob grants no licence on anyone's behalf: choose one on the dataset's page
_SLUG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# Files that hold credentials, refused unless --include-secrets: Kaggle's own, a cloud's or
# a shell's (hidden names such as .env and .netrc are never uploaded at all).
CREDENTIAL_NAMES = frozenset({"kaggle.json", "access_token", "access_token.txt", "credentials",
                              "credentials.json", "_netrc", "htpasswd", "id_rsa", "id_dsa", "id_ecdsa",
                              "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"})
CREDENTIAL_SUFFIXES = (".env", ".pem", ".p12", ".pfx", ".jks", ".keystore", ".ppk")
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


@dataclass(frozen=True)
class LocalFile:
    name: str  # "a/b.csv": its path in the dataset
    path: Path
    size: int
    modified: int  # seconds since the epoch


@dataclass(frozen=True)
class DatasetPush:
    ref: str  # owner/slug
    files: tuple[LocalFile, ...]
    created: bool  # a new dataset; else a new version of an existing one
    version: int | None  # None while Kaggle is still processing it (`status` says how far it got)
    status: str
    url: str

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def parse_target(text: str):
    ref = KaggleRef.read(text.strip(), versioned=False)
    if not (ref and OWNER_RE.fullmatch(ref.owner) and _SLUG.fullmatch(ref.slug) and len(ref.slug) <= 50):
        raise UsageError(f"--as must be OWNER/SLUG (a Kaggle user name, then letters, digits and '-'), "
                         f"not {text[:80]!r}")
    return ref


def collect_files(folder: Path) -> list[LocalFile]:
    """The files to upload, in name order; UsageError naming each one that cannot be."""
    root = folder.resolve()
    if not root.is_dir():
        raise UsageError(f"{folder} is not a folder")
    found, problems = [], []
    for here, dirs, names in os.walk(root):  # symlinked folders are listed, never entered
        base = Path(here)
        for name in list(dirs):
            if name.startswith(".") or (base / name).is_symlink():
                dirs.remove(name)
                if not name.startswith("."):
                    problems.append(f"{_shown((base / name).relative_to(root).as_posix())}: "
                                    f"{_folder_link_problem(base / name, base)}")
        dirs.sort()
        for name in sorted(names):
            if name.startswith(".") or (base == root and name in SKIPPED):
                continue
            path = base / name
            relative = path.relative_to(root).as_posix()
            problem = _problem(path, relative, root)
            if problem:
                problems.append(f"{_shown(relative)}: {problem}")
                continue
            stat = path.stat()
            found.append(LocalFile(relative, path, stat.st_size, int(stat.st_mtime)))
    seen: dict[str, str] = {}
    for file in found:
        other = seen.setdefault(file.name.casefold(), file.name)
        if other != file.name:
            problems.append(f"{file.name}: differs from {other} only in case (one would replace the other "
                            "on macOS and Windows)")
    if problems:
        raise UsageError(f"{len(problems)} file name(s) under {folder} cannot be uploaded; rename or remove "
                         "them", details=problems)
    if not found:
        raise UsageError(f"{folder} holds no files to upload (hidden ones and {', '.join(sorted(SKIPPED))} "
                         "are left out)")
    total = sum(f.size for f in found)
    if total > MAX_BYTES:
        raise UsageError(f"{folder} holds {total / 1e9:.1f} GB, over Kaggle's limit of {MAX_BYTES / 1e9:.0f} GB "
                         "for one dataset: split it into several datasets")
    return found


def _shown(name: str) -> str:
    """A name safe to print: undecodable bytes as escapes, control characters quoted."""
    text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if text.isprintable() else repr(text)


def _problem(path: Path, relative: str, root: Path) -> str | None:
    try:
        parts = [part.encode("utf-8") for part in relative.split("/")]
    except UnicodeEncodeError:
        return "its name is not UTF-8"
    if safe_relative_path(relative) is None:
        return "its name has a backslash, colon or control character, which Kaggle or Windows cannot keep"
    if any(len(part) > 255 for part in parts):
        return "a part of its name is over 255 bytes"
    if path.is_symlink():
        try:
            target = path.resolve()
        except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13
            return "a symlink loop (it leads back to itself); remove it"
        if not target.is_relative_to(root):
            return "a symlink that leads out of the folder"
    if not path.is_file():
        return "not a regular file (a broken link, a device, a pipe)"
    return None


def _folder_link_problem(link: Path, base: Path) -> str:
    try:
        target = link.resolve()
    except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13
        target = base
    if base.resolve().is_relative_to(target):
        return "a symlink loop (it leads back to a folder that holds it); remove it"
    return "a symlink to a folder (link its files, or copy them in)"


def credential_files(files: list[LocalFile]) -> list[str]:
    """The names of `files` that hold credentials: by name (kaggle.json, access_token, an SSH
    key, a .pem ...), or a private key by its first line."""
    found = []
    for file in files:
        base = file.name.rsplit("/", 1)[-1]
        lower = base.lower()
        if lower in CREDENTIAL_NAMES or lower.endswith(CREDENTIAL_SUFFIXES) or _private_key(file):
            found.append(file.name)
    return found


def _private_key(file: LocalFile) -> bool:
    if file.size > 64 * 1024:  # keys are small: a big file is data, and is never opened here
        return False
    try:
        with file.path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return _PRIVATE_KEY.search(head) is not None


def push_dataset(folder: Path, target: str, message: str | None = None, public: bool = False,
                 timeout: float = 600.0, uploaded: Callable[[LocalFile], None] | None = None,
                 include_secrets: bool = False) -> DatasetPush:
    """Upload `folder` as the dataset `target` (owner/slug), new or as its next version."""
    ref = parse_target(target)
    files = collect_files(folder)
    refused = [] if include_secrets else credential_files(files)
    if refused:
        shown = ", ".join(_shown(name) for name in refused[:10]) + (f" and {len(refused) - 10} more"
                                                                    if len(refused) > 10 else "")
        raise UsageError(f"{folder} holds credential files, which a dataset would give to everyone who can "
                         f"read it: {shown}; move them out, or pass --include-secrets to upload them anyway")
    api = _api()
    credentials = api.transport.credentials
    if not credentials.is_token and credentials.username.lower() != ref.owner.lower():
        raise BackendError(f"the credentials from {credentials.source} sign in as {credentials.username}, who cannot "
                           f"push datasets of {ref.owner}: push as {credentials.username}/{ref.slug}, or sign in "
                           f"as {ref.owner}")
    try:
        before = api.get(ref).current_version_number or 0
    except NotFoundError:
        before = None
    if before is None and len(ref.slug) < 6:
        raise UsageError(f"a new dataset's slug needs 6 to 50 characters (Kaggle's rule), not '{ref.slug}'")
    book, tokens = _upload_book(api), []
    for file in files:  # a file a killed push uploaded already is not sent again (kjob.backends.kaggle_upload_record)
        token, _ = book.upload(api, file.name.rsplit("/", 1)[-1], file.path, file.size, file.modified)
        tokens.append((file.name, token))
        if uploaded:
            uploaded(file)
    response = _create(api, ref, tokens, before, message, public)
    if before is None and "already exists" in (response.error or "").lower():
        # A push killed after Kaggle took its create made the dataset (which Kaggle may show
        # only once processed): this push is its next version.
        try:
            before = api.get(ref).current_version_number or 0
        except NotFoundError as exc:
            raise BackendError(f"Kaggle says {ref} already exists but does not show it yet (an earlier push "
                               f"may have made it): look at {api.transport.endpoints.web}/datasets/{ref}, "
                               "or push again in a minute") from exc
        response = _create(api, ref, tokens, before, message, public)
    if (response.status or "").lower() != "ok":
        what = f"the new version of {ref}" if before is not None else f"the creation of {ref}"
        reason = " ".join(redact(response.error or "no reason given").split())
        raise BackendError(f"Kaggle refused {what}: {reason}")
    book.used([token for _, token in tokens])
    version, status = _wait_ready(api, ref, before, timeout)
    url = f"{api.transport.endpoints.web}/datasets/{ref}"
    return DatasetPush(str(ref), tuple(files), before is None, version, status, url)


def _upload_book(api):
    from kjob.backends.kaggle_upload_record import UploadBook
    from kjob.workspace import find_workspace

    try:
        record = find_workspace().paths.uploads
    except ConfigError:  # outside a workspace: nothing is kept for a re-run
        record = None
    credentials = api.transport.credentials
    return UploadBook(record, api.transport.endpoints.api, credentials.username or credentials.source)


def _api():
    from kjob.backends.kaggle_auth import load_credentials
    from kjob.backends.kaggle_datasets import DatasetsApi
    from kjob.backends.kaggle_transport import Transport

    return DatasetsApi(Transport(load_credentials()))


def _create(api, ref, tokens: list[tuple[str, str]], before: int | None, message: str | None, public: bool):
    from kagglesdk.datasets.types import dataset_api_service as sdk

    files, directories = _tree(sdk, tokens)
    if before is None:
        request = sdk.ApiCreateDatasetRequest()
        request.owner_slug, request.slug = ref.owner, ref.slug
        request.title = ref.slug.replace("-", " ").title()  # Kaggle wants 6-50 characters, as the slug has
        request.license_name, request.is_private = LICENSE, not public
        request.files, request.directories = files, directories
        return api.create(request)
    body = sdk.ApiCreateDatasetVersionRequestBody()
    body.version_notes = message or "kjob dataset push"
    body.files, body.directories = files, directories
    request = sdk.ApiCreateDatasetVersionRequest()
    request.owner_slug, request.dataset_slug, request.body = ref.owner, ref.slug, body
    return api.create_version(request)


def _tree(sdk, tokens: list[tuple[str, str]]):
    """The uploads as the create call nests them: (files at the top, directories)."""
    top: dict = {"files": [], "dirs": {}}
    for name, token in tokens:
        *folders, _ = name.split("/")
        node = top
        for part in folders:
            node = node["dirs"].setdefault(part, {"files": [], "dirs": {}})
        new = sdk.ApiDatasetNewFile()
        new.token = token
        node["files"].append(new)

    def directories(node) -> list:
        made = []
        for part, child in node["dirs"].items():
            info = sdk.ApiUploadDirectoryInfo()
            info.name, info.files, info.directories = part, child["files"], directories(child)
            made.append(info)
        return made

    return top["files"], directories(top)


def _wait_ready(api, ref, before: int | None, timeout: float,
                clock: Callable[[], float] = time.monotonic) -> tuple[int | None, str]:
    """(the new version, "READY") once Kaggle has processed it; (None, its status) at the deadline."""
    from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus as Status

    deadline = clock() + timeout
    delays = Backoff(start=kaggle_first_wait(2.0), factor=1.5, cap=15.0).delays()
    while True:
        status = api.status(ref)
        if status in (Status.FAILED, Status.DELETED):
            raise BackendError(f"Kaggle could not process the upload of {ref} (status {status.name}); "
                               "look at the dataset's page, then push again")
        if status == Status.READY:
            current = api.get(ref).current_version_number or 0
            if current > (before or 0):  # right after a new version, READY may still be the old one's
                return current, status.name
        left = deadline - clock()
        if left <= 0:
            return None, status.name
        api.transport.sleep(min(next(delays), left))
