"""Dataset files already uploaded, which a re-run of `kjob dataset push` reuses instead of
sending them again (a push killed after uploading 1 GiB of a folder re-sends only the rest).

Each upload is recorded in the workspace's `.kjob/uploads.json` once Kaggle has reserved it,
before its bytes go: the blob's token and upload URL, under a key of the endpoint, the account,
the file's name, size and SHA-256 (its content, not its path or date). A re-run asks that URL
what arrived (an empty PUT with `Content-Range: bytes */N`, as Google Cloud Storage's resumable
uploads answer it and the official CLI resumes): a complete blob is reused; a partial, unknown
or already used one is reserved and sent again. A dataset version that took a file's token
removes its entry; entries older than a week are dropped (Kaggle's reservations expire).
Outside a workspace nothing is recorded, and every push sends every file.

The record holds signed upload URLs: it lives in `.kjob/`, which kjob keeps out of git.
"""

import time
from pathlib import Path

from kjob.fsutil import atomic_write_json, read_json, sha256_file

_KEEP_SECONDS = 7 * 24 * 3600


class UploadBook:
    """The uploads of one account on one endpoint that a later push may reuse."""

    def __init__(self, record: Path | None, endpoint: str, account: str):
        self.record, self.scope = record, f"{endpoint} {account}"
        self._given: set[str] = set()  # tokens of this push: two equal files still need two blobs

    def _key(self, name: str, size: int, digest: str) -> str:
        return f"{self.scope} {name} {size} {digest}"

    def _read(self) -> dict:
        try:
            entries = read_json(self.record, {}) if self.record else {}
        except (OSError, ValueError):  # unreadable: it only costs sending the files again
            return {}
        if not isinstance(entries, dict):
            return {}
        now = time.time()
        return {key: value for key, value in entries.items() if isinstance(value, dict)
                and isinstance(value.get("at"), (int, float)) and now - value["at"] < _KEEP_SECONDS}

    def _write(self, entries: dict) -> None:
        if self.record:
            atomic_write_json(self.record, entries)

    def upload(self, api, name: str, path: Path, size: int, modified: int, digest: str | None = None) -> tuple[str, bool]:
        """The token of `path`'s bytes uploaded as the blob `name`, and whether an earlier
        upload was reused. `digest`: the file's SHA-256 when the caller knows it already."""
        digest = digest or (sha256_file(path) if self.record else "")
        key = self._key(name, size, digest)
        earlier = self._read().get(key)
        reusable = earlier and earlier.get("token") not in self._given
        if reusable and _complete(api.transport, str(earlier.get("url", "")), size):
            self._given.add(str(earlier["token"]))
            return str(earlier["token"]), True
        reserved = api.start_upload(name, size, modified)
        self._given.add(reserved.token)
        if self.record:
            entries = self._read()
            entries[key] = {"token": reserved.token, "url": reserved.create_url, "at": time.time()}
            self._write(entries)
        api.transport.upload(reserved.create_url, path, size, name)
        return reserved.token, False

    def used(self, tokens: list[str]) -> None:
        """A dataset version took these tokens: they cannot be used again."""
        if self.record and self.record.exists():
            gone = set(tokens)
            self._write({key: value for key, value in self._read().items() if value.get("token") not in gone})


def _complete(transport, url: str, size: int) -> bool:
    """Whether the upload URL holds the whole blob (HTTP 200 or 201 to GCS's status query)."""
    import requests

    if not url.startswith(("http://", "https://")):
        return False
    try:
        response = transport.files.put(url, data=b"", headers={"Content-Length": "0",
                                                               "Content-Range": f"bytes */{size}"})
    except requests.RequestException:  # any failure only means: send it again
        return False
    return response.status_code in (200, 201)
