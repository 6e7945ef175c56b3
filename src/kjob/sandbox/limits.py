"""A run's machine limits on this machine, as Kaggle's session has them: its kernel's memory
(an address-space cap, where the platform has one) and its working folder's size (watched from
a thread, ended as a full disk ends it). Used by the runner (`kjob.sandbox.runner`)."""

from pathlib import Path


def limit_memory(pid: int | None, limit: int | None) -> None:
    """Cap the address space of process `pid` (a run's kernel) at `limit` bytes, where the
    platform can (Linux's prlimit); elsewhere the run goes without."""
    if not pid or not limit:
        return
    try:
        import resource

        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
    except (ImportError, AttributeError, OSError, ValueError):  # not Linux, or the kernel already gone
        pass


class WorkingCap:
    """Watches a working folder's total size from a thread; past `limit` bytes, calls `stop`
    (which ends the kernel) once and remembers the size it saw, as a full disk would end it."""

    def __init__(self, folder: Path, limit: int | None, stop, every: float = 0.2):
        import threading

        self.folder, self.limit, self.stop, self.every = folder, limit, stop, every
        self.exceeded: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True) if limit else None

    def __enter__(self) -> "WorkingCap":
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        while not self._done.wait(self.every):
            size = folder_size(self.folder)
            if size > self.limit:
                self.exceeded = size
                self.stop()
                return

    def failure(self, limit_name: str = "/kaggle/working") -> dict:
        from kjob.kaggle_platform import NO_SPACE_MESSAGE

        return {"failure_kind": "disk full", "raw_status": "disk full",
                "failure_message": f"{NO_SPACE_MESSAGE}: {limit_name} passed its limit of {self.limit:,} bytes "
                                   f"({self.exceeded:,} written)"}


def folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # removed while counted
            pass
    return total


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) if folder.is_dir() else 0
