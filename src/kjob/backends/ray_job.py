"""A Ray job's entrypoint on the cluster: `python -m kjob.backends.ray_job kjob-job.json`.

It runs in the job's working_dir (what `kjob.backends.ray` packaged: the notebook, this spec
and a copy of the client's kjob package, so the node needs no kjob of its own), lays out the
run sandbox in the run's folder on shared storage (Kaggle's input layouts pointing at the
node's dataset folders, working/, temp/, home/) and runs it in the foreground with the same
keeper and runner as a local run (`kjob.sandbox.folder`). Everything the client reads back, state,
log, final status and outputs, is written there.

The sandbox stays in this process's group (not detached): Ray's stop sends SIGTERM to this
process and all its descendants and SIGKILL after RAY_JOB_STOP_WAIT_TIME_S, and the Ray
supervisor's watcher kills the group if the supervisor dies, so the run never outlives its
job. On SIGTERM this process writes the sandbox's cancel marker, so that the runner records
"cancelled" rather than the kernel's death; the client treats Ray's STOPPED as cancelled
whatever was recorded.

Exit code 0 when the notebook completed, 1 when it failed or was cancelled, 3 when the run's
folder is not the one the client claimed (storage not shared, or another run's).
"""

import json
import signal
import sys
from pathlib import Path

from kjob.fsutil import read_json
from kjob.paths import RayPackagePaths, RayRunPaths
from kjob.sandbox.folder import RunSpec, Sandbox, record_final
from kjob.sandbox.secrets import take_run_secrets


def main(spec_file: Path) -> int:
    package = RayPackagePaths(spec_file.resolve().parent)
    job = json.loads(spec_file.read_text(encoding="utf-8"))
    paths = RayRunPaths(Path(job["folder"]))
    claim = read_json(paths.claim) if paths.folder.is_dir() else None
    if not claim or claim.get("token") != job["token"]:
        print(f"kjob: {paths.folder} is not the folder the client claimed for this job ("
              f"{'it does not exist here' if claim is None else 'it belongs to another run'}): storage must be "
              "shared by the client and every node; set [tool.kjob.ray] cluster_storage to its path on the nodes",
              file=sys.stderr, flush=True)
        return 3
    spec = RunSpec(timeout=job["timeout"], run_type=job.get("run_type", "Batch"), env=job.get("env", {}),
                   token=job["token"], meta=job.get("meta", {}), secrets=tuple(job.get("secrets", ())))
    mounts = job.get("mounts", {})
    missing = sorted({target for target in mounts.values() if not Path(target).exists()})
    _, values = take_run_secrets(paths.secrets)  # the client's, on the storage: this node has no store
    sandbox = Sandbox.create(paths.folder, package.notebook.read_text(encoding="utf-8"),
                             {} if missing else mounts, spec, secret_values=values)
    if missing:
        record_final(paths, {"status": "error", "raw_status": "dataset missing", "failure_kind": "infrastructure",
                             "failure_message": f"not a folder on this node: {', '.join(missing)} (set "
                                                "[tool.kjob.ray.datasets] to paths every node has)",
                             "recorded_by": "ray job"})
        return 1
    if paths.cancel_marker.exists():  # cancelled while Ray kept the job pending
        record_final(paths, {"status": "cancelled", "raw_status": "cancelled before start", "recorded_by": "ray job"})
        return 1
    signal.signal(signal.SIGTERM, lambda signum, frame: paths.cancel_marker.touch())
    state = sandbox.run(detach=False)
    return 0 if state.get("status") == "complete" else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m kjob.backends.ray_job kjob-job.json")
    sys.exit(main(Path(sys.argv[1])))
