"""The runner of a run sandbox: `python -m kjob.sandbox.runner RUN_FOLDER [--kaggle-paths]`.

Started by `kjob.sandbox.folder` (under its keeper, inside bwrap when the isolation is bubblewrap),
it executes the run folder's notebook with nbclient (or, for a script run, its script with
`kjob.sandbox.execute_script`), appends the output to log.jsonl as it arrives, records its progress in
state.json and its outcome in final.json. With
`--kaggle-paths` it runs in bwrap's view, where /kaggle/input, /kaggle/working and /kaggle/temp
are the run folder's own and the pids it records are those of the view's own pid namespace;
without, the kernel finds those folders through KAGGLE_*_DIR variables.

To cancel, the sandbox writes the `cancel` marker and sends SIGTERM: before the kernel starts
this process records the cancel itself; after, nbclient's own SIGTERM handler shuts the kernel
down (for a script, `execute_script`'s handler stops the script) and the marker tells this
process why it stopped.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

from kjob.paths import LocalRunPaths
from kjob.procs import kill_group, start_time
from kjob.sandbox.folder import record_final, record_progress
from kjob.sandbox.limits import WorkingCap, limit_memory

KAGGLE = Path("/kaggle")


def run(folder: Path, kaggle_paths: bool = False) -> int:
    paths = LocalRunPaths(folder)
    _record_cancel_before_start(paths)

    from kjob.fsutil import read_json
    from kjob.sandbox.secrets import SecretsEndpoint, take_run_secrets

    names, values = take_run_secrets(paths.secrets)  # off the disk before any code of the run starts

    spec = read_json(paths.spec)
    pid = os.getpid()
    record_progress(paths, status="running", raw_status="running", started_at=time.time(),
                    runner_pid=pid, runner_start=start_time(pid), pid_namespace=kaggle_paths)
    working_dir, env = _kernel_environment(paths, spec, kaggle_paths)
    with SecretsEndpoint(names, values) as secrets:  # Kaggle's user-secrets service, for this run alone
        served = secrets.variables()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [served.pop("PYTHONPATH"), env.get("PYTHONPATH")]))
        env.update(served)
        execution, cap = _execute(paths, spec, working_dir, env, secrets.hide)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish writing: a cancel now waits for it
        record_final(paths, _outcome(paths, spec, execution, cap, secrets.hide))
    return 0


def _record_cancel_before_start(paths: LocalRunPaths) -> None:
    """Until the kernel starts, SIGTERM (a cancel) is recorded here and ends this process
    (nbclient, or `execute_script`, handles it after)."""

    def on_term(signum, frame):
        record_final(paths, {"status": "cancelled", "raw_status": "cancelled before start", "recorded_by": "runner"})
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    if hasattr(signal, "SIGBREAK"):
        signal.signal(signal.SIGBREAK, on_term)
    if paths.cancel_marker.exists():  # a SIGTERM sent before the handler was in place was ignored
        on_term(signal.SIGTERM, None)


def _kernel_environment(paths: LocalRunPaths, spec: dict, kaggle_paths: bool) -> tuple[Path, dict]:
    """The kernel's working folder and environment: Kaggle's variables, its own HOME and what
    the spec adds."""
    from kjob.sandbox.isolation import kaggle_variables

    if kaggle_paths:
        input_dir, working_dir, temp_dir = KAGGLE / "input", KAGGLE / "working", KAGGLE / "temp"
    else:
        input_dir, working_dir, temp_dir = paths.input_dir, paths.working_dir, paths.temp_dir
    env = {
        **kaggle_variables(input_dir, working_dir, temp_dir, spec.get("run_type", "Batch")),
        "HOME": str(paths.home_dir.resolve()),
        "PYTHONUNBUFFERED": "1",
        **spec.get("env", {}),
    }
    if os.name == "nt":
        env["USERPROFILE"] = env["HOME"]
    return working_dir, env


def _execute(paths: LocalRunPaths, spec: dict, working_dir: Path, env: dict, hide=str):
    """Run the notebook (or script) with its limits, appending its output to log.jsonl as it
    arrives, masked by `hide` (the run's secret values); (the execution, the working folder's
    cap). A run that could not start is recorded as broken before the exception goes on."""
    from kjob.sandbox.execute_notebook import execute_notebook
    from kjob.sandbox.execute_script import execute_script

    started = time.monotonic()
    with paths.log.open("a", encoding="utf-8") as log:

        def on_output(stream: str, text: str) -> None:
            entry = {"stream_name": stream, "time": round(time.monotonic() - started, 3), "data": hide(text)}
            log.write(json.dumps(entry) + "\n")
            log.flush()

        limits = spec.get("limits") or {}
        kernel_pid: list[int] = []

        def on_start(kernel: int | None) -> None:
            limit_memory(kernel, limits.get("memory"))  # the machine's memory, for the kernel alone
            if kernel:
                kernel_pid.append(kernel)
            record_progress(paths, kernel_pid=kernel, kernel_start=start_time(kernel) if kernel else None)

        def stop_kernel() -> None:  # the working folder is full: the kernel ends, as on a full disk
            if kernel_pid:
                kill_group(kernel_pid[0])

        script = spec.get("kind") == "script"
        notebook = None if script else json.loads(paths.notebook.read_text(encoding="utf-8"))
        try:
            with WorkingCap(paths.working_dir, limits.get("working"), stop_kernel) as cap:
                if script:
                    execution = execute_script(paths.script, working_dir, env, spec["timeout"], on_output, on_start)
                else:
                    execution = execute_notebook(notebook, working_dir, env, spec["timeout"], paths.runner_log,
                                                 on_output, on_start)
        except BaseException as exc:  # e.g. a cancel while the kernel was starting
            record_final(paths, _broken(paths, exc, "script" if script else "notebook"))
            raise
    return execution, cap


def _outcome(paths: LocalRunPaths, spec: dict, execution, cap: WorkingCap, hide=str) -> dict:
    """final.json: how the run ended (an executed notebook is kept beside it); `hide` masks the
    run's secret values in both."""
    from kjob import notebook as nbk

    outcome = {"seconds": round(execution.seconds, 2), "recorded_by": "runner"}
    if spec.get("kind") == "script":
        outcome["exit_code"] = execution.exit_code
    else:
        paths.executed_notebook.write_text(hide(nbk.dumps(execution.notebook)), encoding="utf-8")
    failure = execution.failure
    if failure is None:
        outcome.update(status="complete", raw_status="complete")
    elif paths.cancel_marker.exists():
        outcome.update(status="cancelled", raw_status="cancelled")
    elif cap.exceeded is not None:
        outcome.update(status="error", failure_cell=failure.cell_index, **cap.failure())
    else:
        outcome.update(status="error", raw_status=failure.kind, failure_kind=failure.kind,
                       failure_message=hide(failure.message), failure_location=failure.location,
                       failure_cell=failure.cell_index)
    return outcome


def _broken(paths: LocalRunPaths, exc: BaseException, what: str) -> dict:
    if paths.cancel_marker.exists():
        return {"status": "cancelled", "raw_status": "cancelled", "recorded_by": "runner"}
    said = (str(exc).strip().splitlines() or [""])[0]
    return {"status": "error", "raw_status": "kernel died", "failure_kind": "kernel died",
            "failure_message": f"the kernel could not run the {what}: {type(exc).__name__}{': ' + said if said else ''}",
            "recorded_by": "runner"}


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), "--kaggle-paths" in sys.argv[2:]))
