"""The local backend: runs a kernel on this machine, in a Kaggle-like sandbox per version.

Each push gets `.kjob/local/<kernel>/v<N>/` (N taken by an atomic mkdir, so two pushes never
share a number) with the parameterised notebook, `input/` (each dataset source linked under
both Kaggle layouts, `<slug>` and `datasets/<owner>/<slug>`), `working/` (the outputs) and
`temp/`. A background process (`local_runner`) executes it and outlives the CLI.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from kjob import notebook as nbk
from kjob.backends.base import Backend, LogEntry, RemoteFile, Submission, Submitted
from kjob.errors import BackendError, ConfigError
from kjob.fsutil import atomic_write_json, read_json
from kjob.paths import LocalRunPaths
from kjob.polling import Backoff
from kjob.procs import alive, kill_group, start_time, wait_gone
from kjob.runs import Run, RunStatus

# A runner that has not recorded its pid this long after the push never started.
_START_GRACE_SECONDS = 30


class LocalBackend(Backend):
    name = "local"
    poll = Backoff(start=2.0, factor=1.5, cap=30.0)

    def __init__(self, ws):
        self.ws = ws

    # -- submit -------------------------------------------------------------------------

    def _dataset_folders(self, submission: Submission) -> dict[str, Path]:
        recipe = submission.recipe
        unsupported = [*recipe.kernel_sources, *recipe.model_sources, *recipe.competition_sources]
        if unsupported:
            raise ConfigError(f"the local backend can only mount dataset sources, not {', '.join(unsupported)}")
        folders = {}
        for source in submission.recipe.dataset_sources:
            key = "/".join(source.split("/")[:2])
            mapped = self.ws.config.datasets.get(key)
            if mapped is None:
                raise ConfigError(
                    f"dataset source {key} has no local folder: map it under [tool.kjob.datasets] "
                    f'in pyproject.toml, e.g. "{key}" = "data/..."'
                )
            folder = (self.ws.root / mapped).resolve()
            if not folder.is_dir():
                raise ConfigError(f"dataset source {key} maps to {mapped}, which is not a folder")
            folders[key] = folder
        return folders

    def _new_run_folder(self, kernel: str) -> tuple[int, LocalRunPaths]:
        runs = self.ws.paths.local_runs(kernel)
        runs.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name[1:]) for p in runs.glob("v*") if p.name[1:].isdigit()]
        version = max(taken, default=0) + 1
        while True:
            paths = self.ws.paths.local_run(kernel, version)
            try:
                paths.folder.mkdir()
                return version, paths
            except FileExistsError:
                version += 1

    def submit(self, submission: Submission) -> Submitted:
        datasets = self._dataset_folders(submission)
        local = {k: v for k, v in self.ws.config.local_parameters.items() if k in submission.recipe.parameters}
        notebook = nbk.parameterize(submission.notebook, local) if local else submission.notebook
        parameters = notebook["metadata"]["kjob"]["parameters"]
        version, paths = self._new_run_folder(submission.recipe.name)
        for folder in (paths.input_dir, paths.working_dir, paths.temp_dir):
            folder.mkdir()
        for key, target in datasets.items():
            owner, slug = key.split("/")
            for link in (paths.input_dir / slug, paths.input_dir / "datasets" / owner / slug):
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target, target_is_directory=True)
        paths.notebook.write_text(nbk.dumps(notebook), encoding="utf-8")
        atomic_write_json(paths.spec, {"timeout": submission.session_timeout, "env": {}})
        atomic_write_json(paths.state, {"status": "queued", "raw_status": "queued", "queued_at": time.time()})
        with paths.runner_log.open("ab") as runner_log:
            process = subprocess.Popen(
                [sys.executable, "-m", "kjob.backends.local_runner", str(paths.folder)],
                cwd=paths.folder, stdin=subprocess.DEVNULL, stdout=runner_log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        atomic_write_json(paths.runner_pid, {"pid": process.pid, "start": start_time(process.pid)})
        handle = {"folder": self.ws.paths.relative(paths.folder)}
        return Submitted(version, parameters, handle, RunStatus("queued", "queued"))

    # -- status and logs ----------------------------------------------------------------

    def _paths(self, run: Run) -> LocalRunPaths:
        paths = self.ws.paths.local_run(run.kernel, run.version)
        if not paths.folder.is_dir():
            raise BackendError(f"the local run folder of {run.ref} is gone ({self.ws.paths.relative(paths.folder)})")
        return paths

    def status(self, run: Run) -> RunStatus:
        paths = self._paths(run)
        state = read_json(paths.state, {}) or {}
        if state.get("status") in ("complete", "error", "cancelled"):
            return _as_status(state)
        pid = read_json(paths.runner_pid, {}) or {}
        if pid:
            running = alive(pid.get("pid"), pid.get("start"))
        else:
            running = time.time() - paths.folder.stat().st_mtime < _START_GRACE_SECONDS
        if running:
            return _as_status(state) if state else RunStatus("queued", "queued")
        state = read_json(paths.state, {}) or {}  # it may have finished just now
        if state.get("status") in ("complete", "error", "cancelled"):
            return _as_status(state)
        return RunStatus("error", "process died", "kernel died",
                         "the run's process ended without recording a final status")

    def log(self, run: Run) -> list[LogEntry]:
        entries = []
        try:
            lines = self._paths(run).log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            entries.append(LogEntry(item.get("stream_name", "stdout"), float(item.get("time", 0)), item.get("data", "")))
        return entries

    # -- outputs ------------------------------------------------------------------------

    def list_outputs(self, run: Run) -> list[RemoteFile]:
        working = self._paths(run).working_dir
        files = []
        for path in sorted(working.rglob("*")):
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                files.append(RemoteFile(path.relative_to(working).as_posix(), stat.st_size, str(stat.st_mtime_ns)))
        return files

    def download(self, run: Run, file: RemoteFile, destination: Path) -> None:
        source = self._paths(run).working_dir / file.name
        try:
            with source.open("rb") as src, destination.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except FileNotFoundError:
            raise BackendError(f"{file.name} disappeared from {run.ref} while downloading") from None

    # -- cancel -------------------------------------------------------------------------

    def cancel(self, run: Run, delete_kernel: bool = False) -> str:
        paths = self._paths(run)
        current = self.status(run)
        if current.final:
            return f"{run.ref} already ended ({current.status}); nothing to cancel"
        pid = read_json(paths.runner_pid, {}) or {}
        runner, started = pid.get("pid"), pid.get("start")
        paths.cancel_marker.touch()
        if alive(runner, started):
            kill_group(runner, signal.SIGTERM)  # the runner stops its kernel and records it
            if not wait_gone(runner, started, 15):
                kill_group(runner)
        state = read_json(paths.state, {}) or {}
        kill_group(state.get("kernel_pid"))  # in case the runner could not
        if state.get("status") not in ("complete", "error", "cancelled"):
            state.update(status="cancelled", raw_status="cancelled", finished_at=time.time())
            atomic_write_json(paths.state, state)
        return f"cancelled {run.ref}"

    def url(self, run: Run) -> str | None:
        return self.ws.paths.relative(self.ws.paths.local_run(run.kernel, run.version).folder)


def _as_status(state: dict) -> RunStatus:
    return RunStatus(
        state.get("status", "queued"), state.get("raw_status"), state.get("failure_kind"),
        state.get("failure_message"), state.get("failure_location"),
        state.get("started_at"), state.get("finished_at"),
    )
