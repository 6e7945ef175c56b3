"""The background process of a local run: `python -m kjob.backends.local_runner RUN_FOLDER`.

Started in its own session by the local backend, it outlives the kjob command that pushed
it. It executes the run folder's notebook with nbclient, appends the cells' output to
log.jsonl as it arrives, and leaves the final status in state.json.

To cancel, the backend writes the `cancel` marker file and sends SIGTERM: nbclient's own
SIGTERM handler shuts the kernel down, and the marker tells this process why it stopped.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

from kjob import notebook as nbk
from kjob.execute import execute_notebook, kaggle_like_env
from kjob.fsutil import atomic_write_json, read_json
from kjob.paths import LocalRunPaths


def write_state(paths: LocalRunPaths, **fields) -> None:
    state = read_json(paths.state, {}) or {}
    state.update(fields)
    atomic_write_json(paths.state, state)


def run(folder: Path) -> int:
    paths = LocalRunPaths(folder)
    spec = read_json(paths.spec)

    def on_term(signum, frame):  # before the kernel starts (nbclient handles SIGTERM after)
        write_state(paths, status="cancelled", raw_status="cancelled before start", finished_at=time.time())
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    write_state(paths, status="running", raw_status="running", started_at=time.time(), runner_pid=os.getpid())
    started = time.monotonic()
    with paths.log.open("a", encoding="utf-8") as log:

        def on_output(stream: str, text: str) -> None:
            entry = {"stream_name": stream, "time": round(time.monotonic() - started, 3), "data": text}
            log.write(json.dumps(entry) + "\n")
            log.flush()

        def on_start(pid: int | None) -> None:
            write_state(paths, kernel_pid=pid)

        env = kaggle_like_env(paths.input_dir, paths.working_dir, paths.temp_dir, "Batch")
        notebook = json.loads(paths.notebook.read_text(encoding="utf-8"))
        execution = execute_notebook(
            notebook, paths.working_dir, {**env, **spec.get("env", {})}, spec["timeout"],
            paths.runner_log, on_output, on_start,
        )
    paths.executed_notebook.write_text(nbk.dumps(execution.notebook), encoding="utf-8")
    final = {"finished_at": time.time(), "seconds": round(execution.seconds, 2)}
    if paths.cancel_marker.exists():
        write_state(paths, status="cancelled", raw_status="cancelled", **final)
    elif execution.failure:
        failure = execution.failure
        write_state(paths, status="error", raw_status=failure.kind, failure_kind=failure.kind,
                    failure_message=failure.message, failure_location=failure.location, **final)
    else:
        write_state(paths, status="complete", raw_status="complete", **final)
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
