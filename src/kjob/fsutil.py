"""Writing files so that a reader never sees half of one, and checking names from elsewhere.

A file being written goes under a temporary name in its final folder, `.kjob-<pid>-<random>.part`
(a folder being filled: `.restore`), renamed into place only when whole. The name is short
whatever the final name (a final name of 255 bytes, the most one path component may have,
still gets one), and it names its writer: `sweep_temporaries` removes those whose writer is
gone (killed), or that nobody touched for a day, never one still being written.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path, PurePosixPath


# kjob's temporary names; and the older ones (the final name, then the writer's pid), still swept.
_TEMPORARY = re.compile(r"\.kjob-(\d+)-[0-9a-f]{8}\.(?:part|restore)")
_OLD_TEMPORARY = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.part|\..+\.restore-(\d+)-[0-9a-f]{8}")
_ABANDONED_SECONDS = 24 * 3600  # a writer streams at least every few minutes, even while retrying


def temporary_path(folder: Path, kind: str = "part") -> Path:
    """A new temporary name in `folder` for this process: `.kjob-<pid>-<random>.part`."""
    return folder / f".kjob-{os.getpid()}-{secrets.token_hex(4)}.{kind}"


def is_temporary_name(name: str) -> bool:
    """Whether `name` has the form of kjob's temporary files (which `sweep_temporaries` removes)."""
    return bool(_TEMPORARY.fullmatch(name) or _OLD_TEMPORARY.fullmatch(name))


def sweep_temporaries(folder: Path, recursive: bool = False) -> list[Path]:
    """Remove the temporary files (and restore folders) in `folder` left by a writer that is gone
    (killed before it could clean up), or untouched for a day; those of a live process stay.
    The paths removed."""
    from kjob.procs import start_time

    if not folder.is_dir():
        return []
    removed = []
    candidates = folder.rglob(".*") if recursive else folder.glob(".*")
    for path in sorted(candidates):
        match = _TEMPORARY.fullmatch(path.name) or _OLD_TEMPORARY.fullmatch(path.name)
        if not match or path.is_symlink():
            continue
        pid = int(next(group for group in match.groups() if group))
        if pid == os.getpid() or (start_time(pid) is not None and not _abandoned(path)):
            continue  # still being written (a fetch running beside this one)
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _abandoned(path: Path) -> bool:
    """A temporary file untouched for a day: its pid now names another process."""
    try:
        return path.is_file() and time.time() - path.stat().st_mtime > _ABANDONED_SECONDS
    except OSError:
        return False


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path.parent)
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def safe_relative_path(name: str) -> PurePosixPath | None:
    """`name` as a path that stays inside the folder it is joined to, or None.

    Refuses absolute paths, drive letters, backslashes, `..`, empty parts and control
    characters: a server's file name must never choose where a file lands."""
    if not name or "\\" in name or any(ord(c) < 32 for c in name) or ":" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    return path


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a MiB at a time (memory stays flat for any size)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
