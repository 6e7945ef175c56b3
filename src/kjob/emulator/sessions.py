"""One kernel version's session: a Kaggle-like run folder executed by kjob's local runner.

The folder has the layout of a local run (`kjob.paths.LocalRunPaths`): the pushed notebook,
`input/` with each attached source linked under Kaggle's layouts, `working/` (the outputs),
`temp/`; `python -m kjob.backends.local_runner FOLDER` executes it in the background and
leaves its progress in state.json and log.jsonl, which the emulator reads to answer.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from kjob.fsutil import atomic_write_json, read_json
from kjob.paths import LocalRunPaths
from kjob.procs import kill_group

FINAL = ("complete", "error", "cancelled")
_KAGGLE_STATUS = {"queued": "QUEUED", "running": "RUNNING", "complete": "COMPLETE", "error": "ERROR",
                  "cancelled": "CANCEL_ACKNOWLEDGED"}


class Session:
    def __init__(self, folder: Path, notebook_text: str, mounts: dict[str, Path], timeout: int, gpu: bool):
        self.paths = LocalRunPaths(folder)
        self.gpu = gpu
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True)
        for sub in (self.paths.input_dir, self.paths.working_dir, self.paths.temp_dir):
            sub.mkdir()
        for relative, target in mounts.items():
            link = self.paths.input_dir / relative
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target, target_is_directory=True)
        self.paths.notebook.write_text(notebook_text, encoding="utf-8")
        atomic_write_json(self.paths.spec, {"timeout": timeout, "env": {}})
        atomic_write_json(self.paths.state, {"status": "queued", "raw_status": "queued", "queued_at": time.time()})

    def start(self) -> None:
        if self.process is not None or self.paths.cancel_marker.exists():
            return
        with self.paths.runner_log.open("ab") as runner_log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kjob.backends.local_runner", str(self.paths.folder)],
                cwd=self.paths.folder, stdin=subprocess.DEVNULL, stdout=runner_log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )

    def state(self) -> dict:
        state = read_json(self.paths.state, {}) or {}
        if state.get("status") in FINAL or self.process is None or self.process.poll() is None:
            return state
        state = read_json(self.paths.state, {}) or {}  # it may have ended just now
        if state.get("status") in FINAL:
            return state
        return {**state, "status": "error", "failure_message": "the kernel died without a final status"}

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
        try:
            lines = self.paths.log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line being written right now
        return entries

    def outputs(self) -> list[tuple[str, Path]]:
        working = self.paths.working_dir
        return [(p.relative_to(working).as_posix(), p) for p in sorted(working.rglob("*"))
                if p.is_file() and not p.is_symlink()]

    def cancel(self, wait: float = 10.0) -> None:
        """Stop the session the way the local backend does: marker, SIGTERM, then SIGKILL."""
        if self.final:
            return
        self.paths.cancel_marker.touch()
        if self.process is not None and self.process.poll() is None:
            kill_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid)
                self.process.wait()
        state = read_json(self.paths.state, {}) or {}
        kill_group(state.get("kernel_pid"))
        if state.get("status") not in FINAL:
            state.update(status="cancelled", raw_status="cancelled", finished_at=time.time())
            atomic_write_json(self.paths.state, state)
