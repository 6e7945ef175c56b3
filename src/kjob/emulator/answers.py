"""Answers that are not JSON: a redirect to a file, a file, a live log; and the archives they serve.

A method returns one of these instead of a dict, and the server (server.py) sends it:

    Redirect(url)          302 to `url`: Kaggle's download calls answer so (kagglesdk's HttpRedirect),
                           and the client follows it to the file
    File(path, name)       the file's bytes (Range, Last-Modified, ETag), named `name`
    LogStream(session)     text/event-stream while the session runs, its JSON log once it has ended

Archives of a whole folder (a kernel version's output, a dataset version, a model instance
version) are made once, under `<state-dir>/_archives/`, and kept: everything they hold is
never changed once made (a version's output only once its session has ended).
"""

import os
import secrets
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class File:
    path: Path
    name: str  # what the client is told the file is called (the URL's last part)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class LogStream:
    session: object  # sessions.Session


def archive(root: Path, key: str, files: list[tuple[str, Path]], kind: str = "zip") -> Path:
    """The archive `key` (a file name without suffix) of `files` ("dir/name", path): made once,
    atomically, then reused. `kind` is "zip" or "tar.gz"."""
    folder = root / "_archives"
    target = folder / f"{key}.{kind}"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{key}.{secrets.token_hex(4)}.part"
    try:
        if kind == "zip":
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zipped:
                for name, path in files:
                    zipped.write(path, name)
        else:
            with tarfile.open(partial, "w:gz") as tarred:
                for name, path in files:
                    tarred.add(path, name, recursive=False)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
