"""Uploads: StartBlobUpload reserves a blob, a PUT of its bytes to the URL it hands back fills
it, and CreateDataset / CreateDatasetVersion take the filled blobs by their tokens.

On Kaggle the `createUrl` is a signed Google Cloud Storage URL: it carries no Kaggle
credentials and takes one PUT of the whole file (or a resumable session). The emulator's is
`PUT /upload/<token>` on itself, also without credentials. What it assumes where Kaggle
documents nothing:
- a blob is used once: the dataset version naming its token takes it (and its token is gone);
- a PUT carries the whole file: its bytes go to a temporary name, renamed only once exactly
  `contentLength` bytes arrived (a short body is refused with 400, a longer one with 413 as
  soon as that is known, before its bytes are read; either leaves nothing);
- a blob is at most MAX_BLOB_BYTES, Kaggle's limit for a whole dataset (more is 413);
- a PUT with `Content-Range: bytes */N` and no body asks what arrived, as GCS's resumable
  uploads do: 200 when the blob is complete, 308 (nothing kept) otherwise;
- blobs survive a restart (two files each under `_blobs/`), and the token is their only key.
"""

import os
import re
import secrets
from pathlib import Path

from kagglesdk.blobs.types import blob_api_service as api

from kjob.emulator.model import ApiError
from kjob.fsutil import atomic_write_json, read_json, safe_relative_path

_TOKEN = re.compile(r"^[0-9a-f]{32}$")
MAX_BLOB_BYTES = 200 * 10**9  # Kaggle's documented maximum size of one dataset


def folder(store) -> Path:
    return store.root / "_blobs"


def start_blob_upload(store, body: dict, user: str | None) -> dict:
    request = api.ApiStartBlobUploadRequest.from_dict(body)
    name = request.name or ""
    if safe_relative_path(name) is None or "/" in name:
        raise ApiError(400, f"a blob's name must be a plain file name, not {name!r}")
    if request.content_length < 0:
        raise ApiError(400, "contentLength must not be negative")
    if request.content_length > MAX_BLOB_BYTES:
        raise ApiError(413, f"contentLength {request.content_length} is over {MAX_BLOB_BYTES} bytes, "
                            "Kaggle's limit for a dataset")
    token = secrets.token_hex(16)
    atomic_write_json(folder(store) / f"{token}.json", {"name": name, "length": request.content_length,
                                                        "type": request.type.name, "user": user})
    response = api.ApiStartBlobUploadResponse()
    response.token, response.create_url = token, f"{store.base_url}/upload/{token}"
    return response.to_dict()


def _reserved(store, token: str) -> dict | None:
    return read_json(folder(store) / f"{token}.json") if _TOKEN.match(token) else None


def reserved_length(store, token: str) -> int | None:
    """How many bytes the upload `token` was started for; None for an unknown token."""
    info = _reserved(store, token)
    return None if info is None else int(info["length"])


def complete(store, token: str) -> bool:
    info = _reserved(store, token)
    data = folder(store) / token
    return info is not None and data.is_file() and data.stat().st_size == info["length"]


def receive(store, token: str, chunks) -> tuple[int, str]:
    """Store the bytes of a PUT (an iterable of chunks): (HTTP status, message)."""
    info = _reserved(store, token)
    if info is None:
        for _ in chunks:  # read the body anyway, so the connection stays usable
            pass
        return 404, "no such upload (its token is unknown or was already used)"
    temporary = folder(store) / f".{token}.{secrets.token_hex(4)}.part"
    got = 0
    try:
        with temporary.open("wb") as out:
            for chunk in chunks:
                got += len(chunk)
                out.write(chunk)
        if got != info["length"]:
            return 400, f"got {got} bytes, but the upload was started for {info['length']}"
        os.replace(temporary, folder(store) / token)
        return 200, "uploaded"
    finally:
        temporary.unlink(missing_ok=True)


def take(store, token: str) -> tuple[str, Path]:
    """The (name, file) of a complete blob, for a dataset version to move into place."""
    info = _reserved(store, token or "")
    if info is None:
        raise ApiError(400, f"unknown file token {token!r}: start every upload with StartBlobUpload")
    if not complete(store, token):
        raise ApiError(400, f"the upload of {info['name']} is not complete: PUT its bytes to its createUrl first")
    return info["name"], folder(store) / token


def forget(store, token: str) -> None:
    (folder(store) / f"{token}.json").unlink(missing_ok=True)
    (folder(store) / token).unlink(missing_ok=True)


METHODS = {"StartBlobUpload": start_blob_upload}
