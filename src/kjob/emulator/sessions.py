"""One kernel version's session: a run sandbox (`kjob.sandbox`), answered in Kaggle's terms.

The folder is a run sandbox like a local run's (`kjob.paths.LocalRunPaths`): the pushed
notebook, `input/` with each attached source under Kaggle's layouts, `working/` (the outputs),
`temp/`, `home/`. The sandbox's runner executes it in the background, with the same isolation
as every run on this machine, and leaves its progress and log in the folder, which the
emulator reads to answer.
"""

import time
from pathlib import Path

from kjob.sandbox import FINAL, RunSpec, Sandbox

_KAGGLE_STATUS = {"queued": "QUEUED", "running": "RUNNING", "complete": "COMPLETE", "error": "ERROR",
                  "cancelled": "CANCEL_ACKNOWLEDGED"}


class Session:
    def __init__(self, folder: Path, notebook_text: str, mounts: dict[str, Path], timeout: int, gpu: bool):
        folder.mkdir(parents=True)  # a version's folder is new, never reused
        # Never started (the emulator's `hold`) means queued, however long it waits.
        self.sandbox = Sandbox.create(folder, notebook_text, mounts, RunSpec(timeout=timeout, run_type="Batch"))
        self.paths = self.sandbox.paths
        self.gpu = gpu

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
        where = f"{state['failure_location']}: " if state.get("failure_location") else ""
        return "ERROR", f"{where}{state.get('failure_message') or 'the notebook failed'}"

    @property
    def final(self) -> bool:
        return self.state().get("status") in FINAL

    def gpu_seconds(self) -> float:
        state = self.state()
        started = state.get("started_at")
        return 0.0 if not (self.gpu and started) else (state.get("finished_at") or time.time()) - started

    def log_entries(self) -> list[dict]:
        return self.sandbox.log_entries()

    def outputs(self) -> list[tuple[str, Path]]:
        return self.sandbox.outputs()

    def cancel(self, wait: float = 10.0) -> None:
        """Stop the session the way every run sandbox stops: marker, SIGTERM, then SIGKILL."""
        self.sandbox.cancel(wait)
