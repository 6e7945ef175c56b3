"""The Ray backend: runs a built kernel as a Ray job, on a cluster the user already has.

A run is one Ray job. Its version comes from the ledger and is claimed on shared storage
(`<storage>/<kernel>/v<N>/`, an atomic mkdir, as local runs claim theirs); the client writes
`submitted.json` there (the job's random token, its submission id and the cluster), packs the
notebook, the job's spec and a copy of this kjob package into the job's runtime_env
working_dir, and submits `python -m kjob.backends.ray_job` with the recipe's resources
(`kjob.backends.ray_settings`). On a node, that entrypoint lays the run sandbox out in the
claimed folder and runs it with kjob's own keeper and runner (`kjob.sandbox.folder`), so state,
log, final status and outputs land on the storage, where this client reads them: Ray itself
returns no files.

Status comes from Ray first: PENDING is queued, RUNNING running, STOPPED cancelled whatever
the runner recorded; the runner's final record (on storage) says complete or error, with the
failure kind and src line, once the job ended (or as soon as the notebook completed, raised
or timed out: nothing a stop could have caused). A job the head does not know (404),
or one whose metadata carries another token (the head restarted and the id was reused), is
lost (RunGone): never read as this run. So is a run whose head has not answered at all for
LOST_AFTER_SECONDS (10 minutes; KJOB_RAY_LOST_AFTER changes it), counted from the first
status request it did not answer (a head restarted at another address never will), unless
its runner recorded a final status on the storage before the head went. Nothing secret travels in the job (no runtime_env
variables at all: the thread limits go to the kernel through the spec file).
"""

import os
import re
import secrets
import shlex
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

import kjob
from kjob import notebook as nbk
from kjob.backends.base import Backend, Capacity, LogEntry, RemoteFile, Submission, Submitted
from kjob.backends.local import claim_version, copy_output, sandbox_log, sandbox_log_since, sandbox_outputs
from kjob.backends.mounts import dataset_mounts, input_mounts, shared_copy
from kjob.errors import BackendError, ConfigError, LocalFileError, NotFoundError, RunGone
from kjob.fsutil import atomic_write_json, atomic_write_text, read_json
from kjob.paths import RayPackagePaths, RayRunPaths, ray_input, ray_run, ray_runs, version_label
from kjob.sandbox.secrets import write_run_secrets
from kjob.polling import Backoff
from kjob.runs.record import FINAL, Run, RunStatus
from kjob.sandbox.folder import Sandbox
from kjob.procs import kill_point

ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
# Ray answers HTTP 500 and leaves a phantom job for ids with other characters or over ~200.
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_ID_LENGTH = 120
_CANCEL_WAIT_SECONDS = 15.0
# A run whose head has not answered for this long is lost, as one the head no longer knows is:
# a head that moved to another address (or is gone for good) never answers for it again.
# KJOB_RAY_LOST_AFTER (seconds) changes it.
LOST_AFTER_SECONDS = 600.0


def submission_id(kernel: str, version: int, token: str) -> str:
    """`kjob-<kernel>-v<N>-<token>`, only [A-Za-z0-9_.-], well under Ray's limit; the token
    part keeps it unique even where a head reuses ids after a restart."""
    tail = f"-v{version}-{token[:12]}"
    name = _ID_CHARS.sub("-", kernel).strip("-.") or "kernel"
    return f"kjob-{name[:MAX_ID_LENGTH - len(tail) - 5]}{tail}"


class RayBackend(Backend):
    name = "ray"
    mounts_inputs = True
    poll = Backoff(start=1.0, factor=1.5, cap=30.0)
    status_is_cheap = False

    def __init__(self, ws):
        self.ws = ws
        self._settings = None
        self._clusters = {}
        self._unsent: set[str] = set()  # pushes this process refused before asking the cluster to run them

    @property
    def settings(self):
        if self._settings is None:
            from kjob.backends.ray_settings import load_settings

            self._settings = load_settings(self.ws)
        return self._settings

    def _cluster(self, address: str):
        if address not in self._clusters:
            from kjob.backends.ray_client import RayJobs

            self._clusters[address] = RayJobs(address)
        return self._clusters[address]

    def capacity(self, recipe, offline: bool = False) -> Capacity:
        """The runs of `recipe`'s resource request the cluster's nodes hold together; every
        unfinished Ray run takes a place."""
        if offline:
            return Capacity(None, "the cluster is not asked in a dry run")
        settings = self.settings
        total = fitting(self._cluster(settings.address).connect().nodes(), settings.request(recipe.accelerator).needs())
        if total is None:
            return Capacity(None, "the cluster does not list its nodes' resources")
        return Capacity(total, f"the cluster holds {total} such runs", counts=lambda run: True)

    # -- submit -------------------------------------------------------------------------

    def submit(self, submission: Submission) -> Submitted:
        self._unsent.add(submission.token)
        settings = self.settings
        recipe = submission.recipe
        request = settings.request(recipe.accelerator)
        mounts = self._mounts(submission, settings)
        if not settings.storage.is_dir():
            raise ConfigError(f"the Ray storage {settings.storage} is not a folder here ([tool.kjob.ray] storage)")
        cluster = self._cluster(settings.address).connect()  # Ray installed, cluster reachable, token taken
        if not submission.force:
            self._check_fits(cluster, request, recipe.accelerator)
        try:
            version = claim_version(ray_runs(settings.storage, recipe.name), submission.first_version,
                                    lambda number: ray_run(settings.storage, recipe.name, number).folder)
        except OSError as exc:  # a refusal, not a backend failure: the push leaves no run behind
            where = f" ({exc.filename})" if exc.filename else ""
            raise LocalFileError(f"the Ray storage {settings.storage} is not writable here: {exc.strerror or exc}"
                                 f"{where}; nothing was submitted ([tool.kjob.ray] storage)") from exc
        paths = ray_run(settings.storage, recipe.name, version)
        kill_point("ray:claimed")
        mounts.update(self._input_mounts(submission, settings, paths, version))
        token = secrets.token_hex(16)
        job_id = submission_id(recipe.name, version, token)
        handle = _handle(settings.address, job_id, token, paths.folder)
        atomic_write_json(paths.claim, {**handle, "version": version, "push": submission.token,
                                        "parameters": submission.parameters})
        job = {"folder": str(PurePosixPath(settings.cluster_storage, recipe.name, f"v{version}")), "token": token,
               "timeout": submission.session_timeout, "run_type": "Batch", "env": _kernel_env(request), "mounts": mounts,
               "meta": {"parameters": submission.parameters, "push": submission.token, "submission_id": job_id},
               "secrets": list(recipe.secrets)}
        metadata = {"kjob_token": token, "kjob_push": submission.token, "kjob_kernel": recipe.name,
                    "kjob_version": str(version)}
        # The secrets' values wait on the storage (mode 0600), never in the job's runtime_env,
        # which anyone who can read the Jobs API reads; the runner takes them before the kernel starts.
        write_run_secrets(paths.secrets, recipe.secrets)
        with tempfile.TemporaryDirectory(prefix="kjob-ray-") as folder:
            package = RayPackagePaths(Path(folder))
            _pack(package, submission.notebook, job)
            self._unsent.discard(submission.token)
            try:
                cluster.submit(
                    entrypoint=shlex.join([*settings.python, "-m", "kjob.backends.ray_job", package.spec.name]),
                    submission_id=job_id, runtime_env={"working_dir": str(package.folder)}, metadata=metadata,
                    entrypoint_num_cpus=request.cpus, entrypoint_num_gpus=request.gpus or None,
                    entrypoint_memory=request.memory, entrypoint_resources=request.custom or None,
                )
            except BaseException:
                paths.secrets.unlink(missing_ok=True)
                raise
        return Submitted(version, dict(submission.parameters), handle, RunStatus("queued", "PENDING"))

    def _mounts(self, submission: Submission, settings) -> dict[str, str]:
        def folder_of(key: str) -> str:
            if key not in settings.datasets:
                raise ConfigError(f"dataset source {key} has no folder on the Ray cluster: map it under "
                                  f'[tool.kjob.ray.datasets], e.g. "{key}" = "/shared/data/..."')
            return settings.datasets[key]

        return dataset_mounts(submission.recipe, self.name, folder_of)

    def _input_mounts(self, submission: Submission, settings, paths, version: int) -> dict[str, str]:
        """Each input's outputs put on the storage once (kjob.paths.ray_input), seen by the
        nodes under cluster_storage, and the run's kjob-inputs.json in its own folder."""
        def folder_of(item) -> str:
            label = version_label(item.record.backend, item.record.version, item.record.incarnation)
            shared_copy(item.folder, ray_input(settings.storage, item.record.kernel, label))
            return str(PurePosixPath(settings.cluster_storage, ".inputs", item.record.kernel, label))

        in_cluster = PurePosixPath(settings.cluster_storage, submission.recipe.name, f"v{version}",
                                   paths.inputs_manifest.name)
        return {key: str(value) for key, value in input_mounts(submission.inputs, paths.inputs_manifest, folder_of,
                                                               in_cluster).items()}

    def _check_fits(self, cluster, request, accelerator: str) -> None:
        """Refuse a request that no node of the cluster could ever meet: Ray would keep it
        pending for up to 15 minutes with a generic message, and could not stop it promptly."""
        nodes = cluster.nodes()
        needs = request.needs()
        # No answer, or no node yet (a head that has just started lists none): nothing to judge by.
        if not nodes or any(all(node.get(k, 0) >= v for k, v in needs.items()) for node in nodes):
            return
        biggest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)))
        raise BackendError(f"no node of the Ray cluster at {cluster.address} can run a '{accelerator}' recipe "
                           f"asking for {request.describe()} ({len(nodes)} node(s); the largest has "
                           f"{biggest.get('CPU', 0):g} CPU and {biggest.get('GPU', 0):g} GPU); change "
                           f"[tool.kjob.ray.resources.{accelerator}], or push --force if an autoscaler adds such nodes")

    def find_submission(self, kernel: str, token: str) -> Submitted | None:
        if token in self._unsent:  # refused here (unreachable cluster, rejected token, no fitting node)
            return None
        settings = self.settings
        for job in self._cluster(settings.address).jobs():
            meta = job.metadata
            if meta.get("kjob_push") == token and meta.get("kjob_kernel") == kernel:
                version = int(meta["kjob_version"])
                paths = ray_run(settings.storage, kernel, version)
                claim = read_json(paths.claim, {}) or {}
                handle = _handle(settings.address, job.submission_id, meta["kjob_token"], paths.folder)
                return Submitted(version, dict(claim.get("parameters", {})), handle, _status(job, {}, False))
        return None

    # -- status and logs ----------------------------------------------------------------

    def _job(self, run: Run):
        """The run's job as its head knows it now; RunGone when the head lost it."""
        handle = run.handle
        cluster = self._cluster(handle["address"])
        try:
            job = cluster.info(handle["submission_id"])
        except NotFoundError as exc:
            raise RunGone(f"the Ray cluster at {cluster.address} no longer knows job {handle['submission_id']} "
                          f"(its head restarted, or the job was deleted): {run.ref} is lost") from exc
        except BackendError as exc:
            if not _unanswered(exc):
                raise
            silent, limit = self._silent_for(handle["address"]), lost_after()
            if silent < limit:
                raise BackendError(f"{exc.message}; {run.ref} is lost if its head stays silent for "
                                   f"{_duration(limit)} (silent for {_duration(silent)} so far)") from exc
            raise _HeadSilent(f"the Ray cluster at {cluster.address} has not answered for {_duration(silent)}: "
                              f"its head stopped or moved, and {run.ref} is lost") from exc
        self._answered(handle["address"])
        if job.metadata.get("kjob_token") != handle["token"]:
            raise RunGone(f"job {handle['submission_id']} on the Ray cluster at {cluster.address} is another job "
                          f"now (the head restarted and its id was reused): {run.ref} is lost")
        return job

    def _storage(self, run: Run) -> Sandbox:
        """The run's folder on the shared storage, once it is certain to be this run's."""
        paths = RayRunPaths(Path(run.handle["folder"]))
        claim = read_json(paths.claim)
        if claim is None:
            raise BackendError(f"the storage folder of {run.ref} ({paths.folder}) is gone or not mounted here")
        if claim.get("token") != run.handle["token"]:
            raise BackendError(f"{paths.folder} holds another run than {run.ref}; kjob does not mix them")
        return Sandbox(paths.folder)

    def _silent_for(self, address: str) -> float:
        """Seconds since this head was first found not answering (0 now, remembered from now on)."""
        path = self.ws.paths.silent_ray_heads
        silent = read_json(path, {}) or {}
        now = time.time()
        if not isinstance(silent.get(address), (int, float)):
            silent[address] = now
            atomic_write_json(path, silent)
        return max(0.0, now - silent[address])

    def _answered(self, address: str) -> None:
        path = self.ws.paths.silent_ray_heads
        silent = read_json(path, {}) if path.exists() else {}
        if isinstance(silent, dict) and address in silent:
            del silent[address]
            atomic_write_json(path, silent)

    def status(self, run: Run) -> RunStatus:
        try:
            job = self._job(run)
        except _HeadSilent:  # a runner that recorded its end before the head went is not lost
            try:
                ended = self._storage(run).final_record()
            except BackendError:  # the storage is gone too, or holds another run
                ended = None
            if not ended:
                raise
            return RunStatus(ended["status"], f"{ended['status']} (head silent)", ended.get("failure_kind"),
                             ended.get("failure_message"), ended.get("failure_location"),
                             ended.get("started_at"), ended.get("finished_at"))
        sandbox = self._storage(run)
        return _status(job, sandbox.recorded_state(), sandbox.paths.cancel_marker.exists())

    def log(self, run: Run) -> list[LogEntry]:
        return sandbox_log(self._storage(run))

    def log_since(self, run: Run, cursor: int = 0) -> tuple[list[LogEntry], int]:
        # The run's own log.jsonl on the storage, read from the offset (Ray's job logs hold the
        # runner's words, not the run's output, and its SDK serves them whole or as a stream)
        return sandbox_log_since(self._storage(run), cursor)

    # -- outputs ------------------------------------------------------------------------

    def list_outputs(self, run: Run) -> list[RemoteFile]:
        return sandbox_outputs(self._storage(run))

    def download(self, run: Run, file: RemoteFile, destination: Path) -> None:
        copy_output(self._storage(run), run, file, destination)

    # -- cancel -------------------------------------------------------------------------

    def cancel(self, run: Run, delete_kernel: bool = False) -> str:
        try:
            job = self._job(run)
        except RunGone as exc:
            return f"{exc.message}; nothing to cancel"
        if job.status in ENDED:
            return f"{run.ref} already ended ({job.status}); nothing to cancel"
        # On storage first: the runner then records "cancelled", and a job Ray keeps pending
        # after the stop exits as soon as it starts.
        self._storage(run).paths.cancel_marker.touch()
        cluster = self._cluster(run.handle["address"])
        cluster.stop(job.submission_id)
        if job.status == "PENDING":
            return (f"cancelled {run.ref} while it waited for resources: Ray lists the job as PENDING until "
                    "resources free up (at most 15 minutes), then stops it; the notebook never runs")
        deadline = time.monotonic() + _CANCEL_WAIT_SECONDS
        while job.status not in ENDED and time.monotonic() < deadline:
            time.sleep(0.25)
            job = cluster.info(job.submission_id)
        if job.status == "STOPPED":
            return f"cancelled {run.ref}"
        if job.status in ENDED:
            return f"{run.ref} ended ({job.status}) before the cancel reached it"
        return f"asked Ray to stop {run.ref}; it is still {job.status} after {_CANCEL_WAIT_SECONDS:g} s ({self.url(run)})"

    def url(self, run: Run) -> str | None:
        handle = run.handle
        if "address" not in handle:
            return None
        from kjob.backends.ray_settings import browser_address

        return f"{browser_address(handle['address'])}/#/jobs/{handle['submission_id']}"


class _HeadSilent(RunGone):
    """The run's head has not answered for `lost_after()` seconds."""


def lost_after() -> float:
    """Seconds of silence from a run's head after which the run is lost (KJOB_RAY_LOST_AFTER)."""
    text = (os.environ.get("KJOB_RAY_LOST_AFTER") or "").strip()
    if not text:
        return LOST_AFTER_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise ConfigError(f"KJOB_RAY_LOST_AFTER must be a number of seconds, not {text!r}")
    return seconds


def _unanswered(exc: BackendError) -> bool:
    """Whether the head did not answer at all (no connection, or no answer in time), as opposed
    to answering with an error."""
    import requests

    return isinstance(exc.__cause__, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError))


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _kernel_env(request) -> dict[str, str]:
    """What the kernel is told of its share of the node: its CPUs as thread limits, no GPU
    unless it reserved one (Ray sets CUDA_VISIBLE_DEVICES for those)."""
    threads = str(request.threads)
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    if not request.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _handle(address: str, job_id: str, token: str, folder: Path) -> dict:
    return {"address": address, "submission_id": job_id, "token": token, "folder": str(folder)}


def _pack(package: RayPackagePaths, notebook: dict, job: dict) -> None:
    """The job's working_dir: the notebook, its spec, and the kjob package that will run them."""
    atomic_write_text(package.notebook, nbk.dumps(notebook))
    atomic_write_json(package.spec, job)
    shutil.copytree(Path(kjob.__file__).parent, package.package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "emulator"))


def _status(job, recorded: dict, cancel_asked: bool) -> RunStatus:
    """Ray's status first; the runner's final record (on storage) once the job has ended, or
    as soon as it settles the outcome by itself."""
    started = recorded.get("started_at") or job.start_time
    finished = recorded.get("finished_at") or job.end_time
    if job.status == "STOPPED":
        return RunStatus("cancelled", "STOPPED", started_at=started, finished_at=job.end_time or finished)
    if job.status == "PENDING":
        if cancel_asked:
            return RunStatus("cancelled", "PENDING", failure_message="stopped while it waited for resources")
        return RunStatus("queued", "PENDING")
    # A notebook that completed, raised or ran out of time is over once its runner says so (the
    # job only has its processes left to end); any other record may be a stop's doing: Ray decides.
    settled = recorded.get("status") == "complete" or recorded.get("failure_kind") in ("user code", "timeout")
    if job.status not in ENDED and not settled:
        return RunStatus("running", job.status, started_at=started)
    if recorded.get("status") in FINAL:
        raw = job.status if job.status in ENDED else f"{job.status} (runner done)"
        return RunStatus(recorded["status"], raw, recorded.get("failure_kind"),
                         recorded.get("failure_message"), recorded.get("failure_location"), started, finished)
    if job.status == "SUCCEEDED":
        said = "the job ended without a final status on storage: does the cluster write to the same storage?"
    else:
        said = f"the Ray job failed before the notebook ran: {_last_line(job.message)}"
    return RunStatus("error", job.status, "infrastructure", said, started_at=started, finished_at=finished)


def _last_line(message: str) -> str:
    """What Ray's failure message says last (its log tail ends with the entrypoint's own words)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def fitting(nodes: list[dict] | None, needs: dict[str, float]) -> int | None:
    """How many runs asking for `needs` (Ray's resource names) the nodes hold together."""
    if not nodes:
        return None
    if not needs:
        return len(nodes)
    return sum(int(min(node.get(name, 0) // amount for name, amount in needs.items())) for node in nodes)
