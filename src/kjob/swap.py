"""Replacing a folder by a staged one, safe against concurrent writers and crashed ones.

A writer stages `.NAME.staging-PID` beside `NAME`. Under an exclusive lock (the file
`.NAME.lock/lock`: in a folder, so that an ignore rule for the kernel folders covers it) it moves `NAME` aside to `.NAME.old-PID`, renames its staging folder to `NAME` and deletes
the old one: readers see the old folder or the new one, never a mix, and two writers never
rename over each other. What a dead writer left is swept under the same lock; an old folder
whose swap never finished is put back rather than deleted.
"""

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


def staging_folder(folder: Path) -> Path:
    """A new, empty staging folder for `folder`, owned by this process (sweeping first, so that
    even a build that fails later puts back what a crashed one left)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.staging-{os.getpid()}")
    with locked(folder):
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    return staging


@contextmanager
def locked(folder: Path):
    """Hold the exclusive lock of `folder` (across processes) and sweep dead writers' leftovers."""
    lock_folder = folder.with_name(f".{folder.name}.lock")
    lock_folder.mkdir(exist_ok=True)
    with open(lock_folder / "lock", "a+b") as handle:
        _lock(handle)
        try:
            _sweep(folder)
            yield
        finally:
            _unlock(handle)


def replace(staging: Path, folder: Path) -> None:
    """Put `staging` in place of `folder` (call it inside `locked(folder)`)."""
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(retired)
    try:
        staging.rename(folder)
    except OSError:
        if retired.exists():
            retired.rename(folder)  # the previous folder stays as it was
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _sweep(folder: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.(staging|old)-(\d+)")
    for path in sorted(folder.parent.glob(f".{folder.name}.*-*")):
        match = pattern.fullmatch(path.name)
        if not match or not path.is_dir() or _alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not folder.exists():
            path.rename(folder)  # its writer died between the two renames
        else:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _lock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        return
    import msvcrt

    handle.seek(0)
    while True:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # gives up after 10 s: try again
            return
        except OSError:
            continue


def _unlock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return
    import msvcrt

    handle.seek(0)
    msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
