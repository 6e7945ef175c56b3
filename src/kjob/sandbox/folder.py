"""One run sandbox: a folder laid out like Kaggle's, the processes that execute its kernel, what they leave.

Every backend that runs kernels on this machine uses it (the local backend, the Kaggle
emulator's sessions, `kjob build --smoke`); nothing here knows which backend asks.

    sandbox = Sandbox.create(folder, notebook_text, mounts, RunSpec(timeout=600))
    sandbox = Sandbox.create(folder, script_text, mounts, RunSpec(timeout=600, kind="script"))
    sandbox.start()      # in the background: returns at once; the run outlives the caller
    sandbox.run()        # or in the foreground: returns the final state
    sandbox.state()      # progress merged with the final record; notices a run that died
    sandbox.log_entries(), sandbox.outputs(), sandbox.cancel()

The folder (every name in `kjob.paths.LocalRunPaths`): notebook.ipynb, or script.py for a
script kernel (`kernel_type: script`, run as `python script.py`, its stdout and stderr logged
as a notebook's streams are); run.json (the spec: kind, time limit, run type, extra variables,
mounts, the push's token); input/ with each mount (a path relative to Kaggle's /kaggle/input)
linked to its host folder; working/ (the outputs); temp/; home/ (the kernel's HOME). The run
then adds state.json (progress), log.jsonl (the output), runner.log, executed.ipynb (notebooks
only), pid.json, final.json and, once asked, `cancel`.

Processes: a keeper (`python -m kjob.sandbox.folder FOLDER -- COMMAND`) leads the run's process group
in a session of its own and waits for the runner (`python -m kjob.sandbox.runner`),
wrapped by bwrap when the isolation is bubblewrap (`kjob.sandbox.isolation`; KJOB_SANDBOX=env forces
the environment-only fallback). The keeper ignores SIGTERM, so SIGTERM to the group reaches
the runner alone, which stops its kernel and records why; SIGKILL to the group ends them all
(under bubblewrap the view's pid namespace takes the kernel with it; otherwise the kernel's
own group, which a script leads as well, is killed after it). A runner that ends without a
final status gets one from its keeper (which kills what the runner left), and a run whose
processes are all gone gets one from whoever looks.

A process can leave a group or a session (setsid, a double fork), so on Linux the keeper is a
child subreaper (`kjob.procs.become_subreaper`): every orphan of the run is re-parented to it,
and when the runner ends (completed, failed or cancelled) the keeper kills whatever is left
below it. A cancel whose runner does not stop in time kills the runner and its kernel but not
the keeper, which then ends the rest. Under bubblewrap the pid namespace does the same. On
macOS and Windows, under the environment-only fallback, detached processes may outlive the
run, and the run's isolation note says so.

Final statuses (complete, error, cancelled) are written once: final.json appears atomically
(a hard link to a complete temporary file, which fails when one exists), so the runner, a
cancel and the detection of a dead process never overwrite each other; the first one wins.

A log line without its trailing newline is still being written: it is not read until it has one.
"""

import json
import os
import signal
import subprocess
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kjob.fsutil import atomic_write_json, atomic_write_text, read_json, safe_relative_path
from kjob.sandbox.isolation import Isolation, allowed_environment, bwrap_command, choose
from kjob.sandbox.limits import count_files
from kjob.sandbox.secrets import write_run_secrets
from kjob.paths import LocalRunPaths
from kjob.procs import (alive, become_subreaper, can_adopt_orphans, detached, end_descendants, kill_group,
                        start_time, terminate_group, wait_gone, wait_reaping)
from kjob.runs.record import RunStatus

FINAL = ("complete", "error", "cancelled")
KINDS = ("notebook", "script")  # what a run executes: notebook.ipynb with nbclient, or `python script.py`
RUNNER_MODULE = "kjob.sandbox.runner"
# pid.json is written right after the keeper is spawned; a launch without one this long after is dead.
_LAUNCH_GRACE_SECONDS = 30
NO_OUTPUTS = "the run wrote no files to its working folder (/kaggle/working)"


@dataclass(frozen=True)
class RunSpec:
    """What a run is given besides its notebook (or script) and mounts."""

    timeout: float  # seconds for the whole run
    run_type: str = "Batch"  # KAGGLE_KERNEL_RUN_TYPE: "Batch" as pushed, "Interactive" as in the editor
    env: Mapping[str, str] = field(default_factory=dict)  # extra kernel variables (CUDA_VISIBLE_DEVICES="")
    token: str | None = None  # the push that made the run (`Backend.find_submission`)
    hide: tuple[Path, ...] = ()  # host folders the run must not see (the workspace)
    meta: Mapping = field(default_factory=dict)  # the backend's own notes about the run
    kind: str = "notebook"  # one of KINDS: the text given to `Sandbox.create` is a notebook or a script
    # A machine's limits, in bytes (None: this machine's own): `memory` is the kernel process's
    # address space (RLIMIT_AS: past it an allocation fails, in Python a MemoryError), `working`
    # the working folder's total size (past it the kernel is stopped: "disk full").
    memory_limit: int | None = None
    working_limit: int | None = None
    # The secrets the kernel may read with kaggle_secrets (a recipe's `secrets`): names only;
    # their values go to the run's own file (`kjob.sandbox.secrets`), never to run.json.
    secrets: tuple[str, ...] = ()


class Sandbox:
    def __init__(self, folder: Path, start_grace: float | None = None):
        """`start_grace`: a run never started this many seconds after it was made counts as dead
        (None: an unstarted run is simply queued, as the emulator's held sessions are)."""
        self.paths = LocalRunPaths(Path(folder))
        self.start_grace = start_grace
        self.process: subprocess.Popen | None = None  # the keeper, when this object started it

    # -- making one ---------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, text: str, mounts: Mapping[str, Path], spec: RunSpec,
               start_grace: float | None = None, secret_values: Mapping[str, str] | None = None) -> "Sandbox":
        """Lay out a run in `folder` (made if missing; an empty one claimed by the caller is fine).

        `text` is the notebook's JSON, or the script's source when `spec.kind` is "script".
        The values of `spec.secrets` come from `secret_values`, else from the user's store."""
        if spec.kind not in KINDS:
            raise ValueError(f"a run's kind must be one of {', '.join(KINDS)}, not {spec.kind!r}")
        sandbox = cls(folder, start_grace)
        paths = sandbox.paths
        paths.folder.mkdir(parents=True, exist_ok=True)
        for sub in (paths.input_dir, paths.working_dir, paths.temp_dir, paths.home_dir):
            sub.mkdir(exist_ok=True)
        layout = {}
        for relative, target in mounts.items():
            safe = safe_relative_path(relative)
            if safe is None:
                raise ValueError(f"a mount must be a relative path inside /kaggle/input, not {relative!r}")
            target = Path(target).resolve()
            layout[safe.as_posix()] = str(target)
            _link(paths.input_dir / safe, target)
        (paths.script if spec.kind == "script" else paths.notebook).write_text(text, encoding="utf-8")
        atomic_write_json(paths.spec, {
            "kind": spec.kind, "timeout": spec.timeout, "run_type": spec.run_type, "env": dict(spec.env),
            "token": spec.token, "mounts": layout, "hide": [str(Path(p).resolve()) for p in spec.hide], "meta": dict(spec.meta),
            "limits": {"memory": spec.memory_limit, "working": spec.working_limit}, "secrets": list(spec.secrets),
        })
        write_run_secrets(paths.secrets, spec.secrets, secret_values)
        atomic_write_json(paths.state, {"status": "queued", "raw_status": "queued", "queued_at": time.time()})
        return sandbox

    @property
    def spec(self) -> dict:
        return read_json(self.paths.spec, {}) or {}

    # -- running it ---------------------------------------------------------------------

    def start(self, isolation: Isolation | None = None, detach: bool = True) -> Isolation | None:
        """Start the run in the background; None when it was already started, cancelled or ended.

        `detach=False` keeps the keeper in the caller's process group and session, for a caller
        that is itself managed as a process tree (a Ray job): whoever stops or kills the caller's
        group (Ray's job supervisor) stops the run with it."""
        paths = self.paths
        if self.process is not None or paths.runner_pid.exists() or paths.cancel_marker.exists() or self.final_record():
            return None
        isolation = isolation or choose()
        spec = self.spec
        runner = [sys.executable, "-m", RUNNER_MODULE, str(paths.folder.resolve())]  # as bound in bwrap's view
        if isolation.kaggle_paths:
            mounts = {relative: Path(target) for relative, target in spec.get("mounts", {}).items()}
            runner = bwrap_command([*runner, "--kaggle-paths"], paths.folder, mounts, map(Path, spec.get("hide", [])))
        state = read_json(paths.state, {}) or {}
        state.update(isolation=isolation.name, launched_at=time.time())
        if isolation.note:
            state["isolation_note"] = isolation.note
        atomic_write_json(paths.state, state)
        with paths.runner_log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kjob.sandbox.folder", str(paths.folder), "--", *runner],
                cwd=paths.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self._environment(), close_fds=True, **(detached() if detach else {}),
            )
        atomic_write_json(paths.runner_pid, {"pid": self.process.pid, "start": start_time(self.process.pid)})
        return isolation

    def run(self, isolation: Isolation | None = None, grace: float = 120.0, detach: bool = True) -> dict:
        """Run in the foreground: start, wait for the end, return the final state.

        The runner enforces the time limit; `grace` seconds past it the run is cancelled. An
        interrupt (Ctrl-C, or SIGTERM turned into one: `kjob.procs.terminate_as_interrupt`)
        cancels the run before it propagates, even one that arrives while the run starts."""
        try:
            self.start(isolation, detach)
            if self.process is not None:
                self.process.wait(float(self.spec.get("timeout", 0)) + grace)
        except subprocess.TimeoutExpired:
            self.cancel(wait=5)
        except KeyboardInterrupt:
            self.cancel(wait=5)
            raise
        return self.state()

    def _environment(self) -> dict[str, str]:
        """The keeper's and runner's environment: the allow-list, HOME in the sandbox."""
        env = allowed_environment(os.environ)
        env["HOME"] = str(self.paths.home_dir.resolve())
        if os.name == "nt":
            env["USERPROFILE"] = env["HOME"]
        if os.environ.get("PYTHONPATH"):  # how this process found kjob, perhaps; the kernel never gets it
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- reading it ---------------------------------------------------------------------

    def final_record(self) -> dict | None:
        return read_json(self.paths.final)

    def state(self) -> dict:
        """state.json's progress with final.json over it. A run whose processes are all gone
        without a final status gets one here ("kernel died")."""
        if self.process is not None:
            self.process.poll()  # reap our own child, so that it does not linger as a zombie
        progress = read_json(self.paths.state, {}) or {}
        final = self.final_record()
        if final is None and not self._may_still_run(progress):
            final = self.final_record()  # it may have ended just now
            if final is None:
                record_final(self.paths, died_record(self.paths, read_json(self.paths.state, {}) or progress, by="status"))
                final = self.final_record()
        return {**progress, **final} if final else progress

    def recorded_state(self) -> dict:
        """What the run's files say (progress, final status over it), without looking for its
        processes: for a reader on another machine (a Ray client on shared storage), where the
        recorded pids mean nothing."""
        progress = read_json(self.paths.state, {}) or {}
        final = self.final_record()
        return {**progress, **final} if final else progress

    def status(self) -> RunStatus:
        state = self.state()
        return RunStatus(
            state.get("status", "queued"), state.get("raw_status"), state.get("failure_kind"),
            state.get("failure_message"), state.get("failure_location"),
            state.get("started_at"), state.get("finished_at"),
        )

    def _may_still_run(self, progress: dict) -> bool:
        keeper = read_json(self.paths.runner_pid, {}) or {}
        if keeper:
            return alive(keeper.get("pid"), keeper.get("start")) or (
                not progress.get("pid_namespace") and alive(progress.get("runner_pid"), progress.get("runner_start")))
        if progress.get("launched_at") is not None:
            return time.time() - progress["launched_at"] < _LAUNCH_GRACE_SECONDS
        if self.start_grace is None:
            return True  # never started: queued, until someone starts or cancels it
        return time.time() - progress.get("queued_at", self.paths.folder.stat().st_mtime) < self.start_grace

    def log_entries(self) -> list[dict]:
        """The cells' (or the script's) output so far, as {stream_name, time, data}; a last line still being written is left for later."""
        return self.log_since(0)[0]

    def log_since(self, offset: int = 0) -> tuple[list[dict], int]:
        """The entries written from byte `offset` of log.jsonl on, and the offset to read from
        next (past the last whole line): a follower reads each byte once."""
        try:
            with self.paths.log.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        whole = data.rfind(b"\n") + 1
        entries = []
        for line in data[:whole].split(b"\n")[:-1]:
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a damaged line: complete lines are never being written
            if isinstance(item, dict):
                entries.append(item)
        return entries, offset + whole

    def outputs(self) -> list[tuple[str, Path]]:
        """The files in working/ (not symlinks), as (relative name, path)."""
        working = self.paths.working_dir
        return [(p.relative_to(working).as_posix(), p) for p in sorted(working.rglob("*"))
                if p.is_file() and not p.is_symlink()]

    # -- stopping it --------------------------------------------------------------------

    def cancel(self, wait: float = 15.0) -> bool:
        """Stop the run: the `cancel` marker, SIGTERM to its group (the runner stops its kernel
        and records it), SIGKILL after `wait` seconds, then the kernel's group. Returns False
        when the run had already ended; the final status is whoever's came first."""
        paths = self.paths
        if self.final_record() is not None:
            return False
        paths.cancel_marker.touch()
        keeper = read_json(paths.runner_pid, {}) or {}
        pid, started = keeper.get("pid"), keeper.get("start")
        if alive(pid, started):
            terminate_group(pid)
            if not self._wait_gone(pid, started, wait) and not self._end_below_keeper(pid, started):
                kill_group(pid)
                self._wait_gone(pid, started, 5)
        progress = read_json(paths.state, {}) or {}
        _kill_leftovers(progress)  # the runner could not stop its kernel, or was killed first
        raw = "cancelled" if progress.get("started_at") else "cancelled before start"
        record_final(paths, {"status": "cancelled", "raw_status": raw, "recorded_by": "cancel"})
        return True

    def _end_below_keeper(self, pid: int, started: int | None) -> bool:
        """Kill the runner and its kernel but not their keeper, which then ends every process
        the run left (detached ones too: it adopts them) and records the cancel. Only where the
        keeper adopts orphans and the pids are this machine's (not bwrap's pid namespace)."""
        progress = read_json(self.paths.state, {}) or {}
        if progress.get("pid_namespace") or not can_adopt_orphans() or not progress.get("runner_pid"):
            return False
        _kill_leftovers(progress)
        return self._wait_gone(pid, started, 10)

    def _wait_gone(self, pid: int, started: int | None, seconds: float) -> bool:
        if self.process is not None and self.process.pid == pid:
            try:
                self.process.wait(seconds)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_gone(pid, started, seconds)


# -- records shared with the runner and the keeper -----------------------------------------

def record_progress(paths: LocalRunPaths, **fields) -> None:
    """Update state.json (only the runner writes it once the run has started)."""
    state = read_json(paths.state, {}) or {}
    state.update(fields)
    atomic_write_json(paths.state, state)


def record_final(paths: LocalRunPaths, record: dict) -> bool:
    """Create final.json with `record` unless a final status exists; True if this one is it."""
    if record.get("status") not in FINAL:
        raise ValueError(f"not a final status: {record.get('status')!r}")
    record = {"finished_at": time.time(), "outputs": count_files(paths.working_dir), **record}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    tmp = paths.folder / f".final.{os.getpid()}.{secrets.token_hex(4)}.part"
    atomic_write_text(tmp, text)  # complete before it can become final.json
    try:
        os.link(tmp, paths.final)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links
        return _create_exclusive(paths.final, text)
    finally:
        tmp.unlink(missing_ok=True)
        paths.secrets.unlink(missing_ok=True)  # a run that never started: its secrets go with it


def _create_exclusive(path: Path, text: str) -> bool:
    """Second best to a link: an exclusive create (a reader may see it half-written, and wait)."""
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
        return True
    except FileExistsError:
        return False


def _kill_leftovers(progress: dict) -> None:
    """Kill the runner's and the kernel's (or script's) groups where they outlived the keeper's.

    In bwrap's own pid namespace they all died with it (and their pids mean nothing here)."""
    if progress.get("pid_namespace"):
        return
    for leader, leader_start in ((progress.get("runner_pid"), progress.get("runner_start")),
                                 (progress.get("kernel_pid"), progress.get("kernel_start"))):
        if alive(leader, leader_start):
            kill_group(leader)


def died_record(paths: LocalRunPaths, progress: dict, exit_code: int | None = None, by: str = "keeper") -> dict:
    """The final status of a run whose processes ended without writing one."""
    if paths.cancel_marker.exists():
        return {"status": "cancelled", "raw_status": "cancelled", "recorded_by": by}
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    if not progress.get("started_at"):
        said = _last_line(paths.runner_log)
        return {"status": "error", "raw_status": "did not start", "failure_kind": "infrastructure",
                "failure_message": f"the run's sandbox did not start{code}" + (f": {said}" if said else ""),
                "recorded_by": by}
    return {"status": "error", "raw_status": "process died", "failure_kind": "kernel died",
            "failure_message": f"the run's process ended without recording a final status{code}",
            "recorded_by": by}


def _last_line(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError:
        return None
    return lines[-1][:300] if lines else None


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        link.symlink_to(target, target_is_directory=target.is_dir())
    except OSError:
        if os.name != "nt":
            raise
        if target.is_file():  # Windows without the symlink privilege: a file (kjob-inputs.json) is copied
            shutil.copy2(target, link)
            return
        import _winapi  # ... and a directory is a junction, which does the same as a link

        _winapi.CreateJunction(str(target), str(link))


# -- the keeper ---------------------------------------------------------------------------

def _keep(folder: Path, command: list[str]) -> int:
    """Run `command` (the runner, perhaps inside bwrap) in this process group and wait for it.

    On Linux the keeper is a child subreaper: whatever the run detached (setsid, a double fork)
    is re-parented to it, and once the runner has ended it kills every process left below it.
    Under bubblewrap the view's pid namespace has already taken them all."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # meant for the runner; inherited by bwrap and the runner
    if hasattr(signal, "SIGBREAK"):
        signal.signal(signal.SIGBREAK, signal.SIG_IGN)
    paths = LocalRunPaths(folder)
    adopting = become_subreaper()
    try:
        runner = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL)
        code = wait_reaping(runner) if adopting else runner.wait()
    except OSError as exc:
        print(f"kjob sandbox: cannot start the runner: {exc}", file=sys.stderr, flush=True)
        code = 127
    if adopting:
        end_descendants()  # what the run left behind, detached or not: a run's processes end with it
    if read_json(paths.final) is None:
        progress = read_json(paths.state, {}) or {}
        _kill_leftovers(progress)  # a runner killed alone leaves its kernel or script running
        record_final(paths, died_record(paths, progress, code))
    return code


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: python -m kjob.sandbox.folder FOLDER -- COMMAND...")
    sys.exit(_keep(Path(sys.argv[1]), sys.argv[3:]))
