"""The local backend: runs a kernel on this machine, in a Kaggle-like run sandbox per version.

Each push gets `.kjob/local/<kernel>/v<N>/` (N taken by an atomic mkdir, so two pushes never
share a number, and never below the ledger's `first_version`), laid out and run by
`kjob.sandbox.folder`: the notebook as submitted, `input/` (each dataset source under both Kaggle
layouts, `<slug>` and `datasets/<owner>/<slug>`), `working/` (the outputs), `temp/` and
`home/`. Its runner works in the background and outlives the CLI; the workspace itself is
hidden from it where bubblewrap isolates runs (`kjob.sandbox.isolation`).
"""

import os
import shutil
from pathlib import Path

from kjob import notebook as nbk
from kjob.backends.base import Backend, Capacity, LogEntry, RemoteFile, Submission, Submitted
from kjob.backends.mounts import dataset_mounts, input_mounts
from kjob.errors import BackendError, ConfigError
from kjob.fsutil import read_json
from kjob.paths import LocalRunPaths
from kjob.polling import Backoff
from kjob.runs.record import Run, RunStatus
from kjob.sandbox.folder import RunSpec, Sandbox
from kjob.procs import kill_point

# A run folder whose runner was not started this long after it was made never will be.
_START_GRACE_SECONDS = 30


class LocalBackend(Backend):
    name = "local"
    mounts_inputs = True
    # A status is a file read here: ask soon and back off gently, so that a run is seen to end
    # within a quarter of its length (a sweep's lane waits for that), still <= 40 times in 10 min.
    poll = Backoff(start=0.5, factor=1.25, cap=30.0)

    def __init__(self, ws):
        self.ws = ws

    # -- submit -------------------------------------------------------------------------

    def _mounts(self, submission: Submission) -> dict[str, Path]:
        """Each dataset source's local folder under both of Kaggle's layouts in /kaggle/input."""
        def folder_of(key: str) -> Path:
            mapped = self.ws.config.datasets.get(key)
            if mapped is None:
                raise ConfigError(
                    f"dataset source {key} has no local folder: map it under [tool.kjob.datasets] "
                    f'in pyproject.toml, e.g. "{key}" = "data/..."'
                )
            folder = (self.ws.root / mapped).resolve()
            if not folder.is_dir():
                raise ConfigError(f"dataset source {key} maps to {mapped}, which is not a folder")
            return folder

        return dataset_mounts(submission.recipe, self.name, folder_of)

    def _new_run_folder(self, kernel: str, first_version: int) -> tuple[int, LocalRunPaths]:
        version = claim_version(self.ws.paths.local_runs(kernel), first_version,
                                lambda number: self.ws.paths.local_run(kernel, number).folder)
        return version, self.ws.paths.local_run(kernel, version)

    def submit(self, submission: Submission) -> Submitted:
        mounts = self._mounts(submission)
        version, paths = self._new_run_folder(submission.recipe.name, submission.first_version)
        kill_point("local:claimed")
        # Inputs are their fetched folders, linked (bubblewrap binds them read-only).
        mounts.update(input_mounts(submission.inputs, paths.inputs_manifest))
        spec = RunSpec(timeout=submission.session_timeout, run_type="Batch", token=submission.token,
                       hide=(self.ws.root,), meta={"parameters": submission.parameters},
                       secrets=submission.recipe.secrets)
        sandbox = Sandbox.create(paths.folder, nbk.dumps(submission.notebook), mounts, spec, _START_GRACE_SECONDS)
        kill_point("local:laid-out")
        isolation = sandbox.start()
        handle = {"folder": self.ws.paths.relative(paths.folder), "isolation": isolation.name}
        return Submitted(version, dict(submission.parameters), handle, RunStatus("queued", "queued"))

    def capacity(self, recipe, offline: bool = False) -> Capacity:
        # Two notebooks on two cores each take twice as long: one run per two cores.
        cores = os.cpu_count() or 1
        return Capacity(max(1, cores // 2), f"{cores} cores: one run per two", settable=True)

    def find_submission(self, kernel: str, token: str) -> Submitted | None:
        for version in sorted(_taken(self.ws.paths.local_runs(kernel)), reverse=True):
            paths = self.ws.paths.local_run(kernel, version)
            spec = read_json(paths.spec, {}) or {}
            if token and spec.get("token") == token:
                sandbox = Sandbox(paths.folder, _START_GRACE_SECONDS)
                state = sandbox.state()
                handle = {"folder": self.ws.paths.relative(paths.folder), "isolation": state.get("isolation")}
                return Submitted(version, dict(spec.get("meta", {}).get("parameters", {})), handle, sandbox.status())
        return None

    # -- status and logs ----------------------------------------------------------------

    def _sandbox(self, run: Run) -> Sandbox:
        paths = self.ws.paths.local_run(run.kernel, run.version)
        if not paths.folder.is_dir():
            raise BackendError(f"the local run folder of {run.ref} is gone ({self.ws.paths.relative(paths.folder)})")
        return Sandbox(paths.folder, _START_GRACE_SECONDS)

    def status(self, run: Run) -> RunStatus:
        return self._sandbox(run).status()

    def log(self, run: Run) -> list[LogEntry]:
        return sandbox_log(self._sandbox(run))

    def log_since(self, run: Run, cursor: int = 0) -> tuple[list[LogEntry], int]:
        return sandbox_log_since(self._sandbox(run), cursor)

    # -- outputs ------------------------------------------------------------------------

    def list_outputs(self, run: Run) -> list[RemoteFile]:
        return sandbox_outputs(self._sandbox(run))

    def download(self, run: Run, file: RemoteFile, destination: Path) -> None:
        copy_output(self._sandbox(run), run, file, destination)

    # -- cancel -------------------------------------------------------------------------

    def cancel(self, run: Run, delete_kernel: bool = False) -> str:
        sandbox = self._sandbox(run)
        current = sandbox.status()
        if current.final or not sandbox.cancel():
            return f"{run.ref} already ended ({sandbox.status().status}); nothing to cancel"
        ended = sandbox.status()
        if ended.status != "cancelled":
            return f"{run.ref} ended ({ended.status}) before the cancel reached it"
        return f"cancelled {run.ref}"

    def url(self, run: Run) -> str | None:
        return self.ws.paths.relative(self.ws.paths.local_run(run.kernel, run.version).folder)


def claim_version(runs: Path, first_version: int, folder_of) -> int:
    """The version a new run takes: from `first_version` on, above every `v<N>` in `runs`,
    claimed by an atomic mkdir of `folder_of(N)`, so that two pushes never share a number."""
    runs.mkdir(parents=True, exist_ok=True)
    version = max(first_version, max(_taken(runs), default=0) + 1)
    while True:
        try:
            folder_of(version).mkdir()
            return version
        except FileExistsError:
            version += 1


def sandbox_log(sandbox: Sandbox) -> list[LogEntry]:
    """A run sandbox's log as the backend interface gives it (every backend that runs one)."""
    return sandbox_log_since(sandbox, 0)[0]


def sandbox_log_since(sandbox: Sandbox, offset: int) -> tuple[list[LogEntry], int]:
    """`Backend.log_since` for a run sandbox: its cursor is a byte offset in log.jsonl."""
    items, offset = sandbox.log_since(offset)
    return [LogEntry(item.get("stream_name", "stdout"), float(item.get("time", 0)), item.get("data", ""))
            for item in items], offset


def sandbox_outputs(sandbox: Sandbox) -> list[RemoteFile]:
    """A run sandbox's output files, stamped by modification time (for backends that read one directly)."""
    files = []
    for name, path in sandbox.outputs():
        stat = path.stat()
        files.append(RemoteFile(name, stat.st_size, str(stat.st_mtime_ns)))
    return files


def copy_output(sandbox: Sandbox, run: Run, file: RemoteFile, destination: Path) -> None:
    source = sandbox.paths.working_dir / file.name
    try:
        with source.open("rb") as src, destination.open("r+b" if destination.is_file() else "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except FileNotFoundError:
        raise BackendError(f"{file.name} disappeared from {run.ref} while downloading") from None


def _taken(runs: Path) -> list[int]:
    return [int(p.name[1:]) for p in runs.glob("v*") if p.name[1:].isdigit()] if runs.is_dir() else []
