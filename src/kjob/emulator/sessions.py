"""One kernel version's session: a run sandbox (`kjob.sandbox.folder`), answered in Kaggle's terms.

The folder is a run sandbox like a local run's (`kjob.paths.LocalRunPaths`): the pushed
notebook, `input/` with each attached source under Kaggle's layouts, `working/` (the outputs),
`temp/`, `home/`. The sandbox's runner executes it in the background, with the same isolation
as every run on this machine, and leaves its progress and log in the folder, which the
emulator reads to answer.

A session can be given a machine's limits (`limits`: "memory" and "working", in bytes; the
emulator's `session_memory` and `session_disk` switches, faults.py): the kernel's address space
(RLIMIT_AS) and the working folder's size (`kjob.sandbox.folder.RunSpec`). Its failures are then told
in Kaggle's words: an out-of-memory session says "Your notebook tried to allocate more memory
than is available. It has restarted." (issue 22), a full working folder "No space left on device".
"""

import time
from pathlib import Path

from kjob.kaggle_platform import OUT_OF_MEMORY_MESSAGE
from kjob.paths import LocalRunPaths
from kjob.sandbox.folder import FINAL, RunSpec, Sandbox

_KAGGLE_STATUS = {"queued": "QUEUED", "running": "RUNNING", "complete": "COMPLETE", "error": "ERROR",
                  "cancelled": "CANCEL_ACKNOWLEDGED"}


def _attached_secrets(text: str, kind: str) -> tuple[str, ...]:
    """The secrets a pushed notebook's build lists (metadata.kjob.secrets): the emulator's
    stand-in for those attached in Kaggle's editor, served from this machine's `kjob secrets`."""
    import json

    from kjob.sandbox.secrets import NAME_RE

    if kind != "notebook":
        return ()
    try:
        names = json.loads(text).get("metadata", {}).get("kjob", {}).get("secrets", [])
    except (ValueError, AttributeError):
        return ()
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names if isinstance(n, str) and NAME_RE.fullmatch(n))


class Session:
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.paths = sandbox.paths

    @classmethod
    def create(cls, folder: Path, text: str, mounts: dict[str, Path], timeout: int,
               kind: str = "notebook", limits: dict | None = None) -> "Session":
        """A new version's session; `kind` is the kernel type ("notebook" or "script"); `limits`
        the machine's ("memory", "working": bytes, absent or 0 for none)."""
        folder.mkdir(parents=True)  # a version's folder is new, never reused
        limits = limits or {}
        spec = RunSpec(timeout=timeout, run_type="Batch", kind=kind, memory_limit=limits.get("memory") or None,
                       working_limit=limits.get("working") or None, secrets=_attached_secrets(text, kind))
        # Never started (the emulator's `hold`) means queued, however long it waits.
        return cls(Sandbox.create(folder, text, mounts, spec))

    @classmethod
    def open(cls, folder: Path) -> "Session":
        """The session kept in `folder` by an earlier run of the emulator."""
        if not LocalRunPaths(folder).spec.is_file():
            raise ValueError(f"{folder} holds no session (its run.json is missing)")
        return cls(Sandbox(folder))

    @property
    def text(self) -> str:
        """The pushed notebook or script, as it was received."""
        path = self.paths.script if self.sandbox.spec.get("kind") == "script" else self.paths.notebook
        return path.read_text(encoding="utf-8")

    def start(self) -> None:
        self.sandbox.start()  # does nothing once started, cancelled or ended

    def state(self) -> dict:
        return self.sandbox.state()

    def kaggle_status(self) -> tuple[str, str | None]:
        """(Kaggle's status name, failure message)."""
        state = self.state()
        status = state.get("status", "queued")
        if status not in FINAL and self.paths.cancel_marker.exists():
            return "CANCEL_REQUESTED", None
        if status != "error":
            return _KAGGLE_STATUS.get(status, "RUNNING"), None
        if state.get("failure_kind") == "out of memory":
            return "ERROR", OUT_OF_MEMORY_MESSAGE  # Kaggle's words: the exception itself is in the log
        where = f"{state['failure_location']}: " if state.get("failure_location") else ""
        return "ERROR", f"{where}{state.get('failure_message') or 'the notebook failed'}"

    @property
    def final(self) -> bool:
        return self.state().get("status") in FINAL

    def run_interval(self) -> tuple[float, float] | None:
        """(started, ended or now) once the session has started: what a quota counts."""
        state = self.state()
        started = state.get("started_at")
        return None if not started else (started, state.get("finished_at") or time.time())

    def log_entries(self) -> list[dict]:
        return self.sandbox.log_entries()

    def log_since(self, offset: int = 0) -> tuple[list[dict], int]:
        """The entries from byte `offset` of the log on, and the offset to read from next (the
        live stream sends each entry once, reading only what is new)."""
        return self.sandbox.log_since(offset)

    def outputs(self) -> list[tuple[str, Path]]:
        return self.sandbox.outputs()

    def cancel(self, wait: float = 10.0) -> None:
        """Stop the session the way every run sandbox stops: marker, SIGTERM, then SIGKILL."""
        self.sandbox.cancel(wait)
