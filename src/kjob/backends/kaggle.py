"""The Kaggle backend: pushes a built kernel with kagglesdk and follows its version.

A run is one version of a kernel, `owner/slug` vN. Each call names that version, and since
Kaggle serves the outputs and log of a kernel's latest version only, a run that is no longer
the latest is refused plainly rather than given another version's files. Before a push, every
dataset source must exist and be readable by this account; before a GPU push, the account's
remaining GPU quota and its unfinished GPU runs are checked (`--force` skips that). The SDK,
the network and the credentials are loaded on first use only, so commands that do not talk
to Kaggle stay fast.

KJOB_KAGGLE_POLL sets the first wait between status checks (default 5 s, growing to 60 s).
"""

import time
from collections.abc import Iterator
from pathlib import Path

from kjob.backends import kaggle_sdk
from kjob.backends.base import Backend, Capacity, LogEntry, RemoteFile, Submission, Submitted
from kjob.errors import (BackendError, KjobError, NoRoom, NotFoundError, NotServed,
                         PushedWithProblem, RunGone)
from kjob.runs.failures import failure_kind
from kjob.credentials import redact
from kjob.kaggle_platform import KaggleRef
from kjob.polling import Backoff, kaggle_first_wait
from kjob.runs.record import Run, RunStatus, uses_gpu

kaggle_sdk.light()  # before anything imports kagglesdk: its __init__ loads every service

# How Kaggle words the refusal of a GPU session beyond the account's limit (HTTP 200, `error`).
_SESSION_LIMIT = "Maximum batch GPU session count"
_STATUS = {
    "QUEUED": "queued", "NEW_SCRIPT": "queued", "RUNNING": "running", "CANCEL_REQUESTED": "running",
    "COMPLETE": "complete", "ERROR": "error", "CANCEL_ACKNOWLEDGED": "cancelled",
}


class KaggleBackend(Backend):
    name = "kaggle"
    poll = Backoff(start=5.0, factor=1.5, cap=60.0)
    status_is_cheap = False
    serves_latest_only = True
    mounts_inputs = True  # as private model versions, pinned (kjob.backends.kaggle_inputs)

    def __init__(self, ws):
        self.ws = ws
        self._api = None
        self._urls: dict[tuple[int, str], str] = {}
        self._deleted: set[str] = set()
        self._verified: set[int] = set()  # runs whose kernel identity was checked by this process
        self._archives: dict = {}  # run id -> kaggle_outputs.OutputArchive of an older version's outputs
        self.poll = Backoff(start=kaggle_first_wait(self.poll.start), factor=1.5, cap=60.0)

    @property
    def api(self):
        if self._api is None:
            from kjob.backends.kaggle_api import KernelsApi
            from kjob.backends.kaggle_auth import load_credentials
            from kjob.backends.kaggle_transport import Transport

            self._api = KernelsApi(Transport(load_credentials()))
        return self._api

    # -- submit -------------------------------------------------------------------------

    def preflight(self, submission: Submission) -> None:
        from kjob.backends.kaggle_push import check_limits

        self.ws.owner()  # a kernel on Kaggle is owner/slug: with none configured, one line and nothing pushed
        check_limits(submission)

    def place_inputs(self, inputs: tuple) -> tuple:
        from kjob.backends.kaggle_inputs import placed

        return placed(self.ws.owner(), inputs) if inputs else inputs

    def publish_inputs(self, submission: Submission) -> None:
        from kjob.backends.kaggle_inputs import publish

        if submission.inputs:
            publish(self.ws, self.api.transport, submission.inputs)

    def push_notes(self, submission: Submission) -> list[str]:
        names = submission.recipe.secrets
        if not names:
            return []
        ref = submission.metadata.get("id", submission.recipe.name)
        return [f"{ref} reads the secrets {', '.join(names)}: kjob sends no values to Kaggle; attach your account's "
                f"secrets of those names to the kernel in Kaggle's editor (Add-ons > Secrets)"]

    def submit(self, submission: Submission) -> Submitted:
        from kjob.backends.kaggle_datasets import DatasetsApi
        from kjob.backends.kaggle_push import (check_accelerator, check_attached, check_dataset_sources, rejection,
                                               save_request, with_inputs)

        submission = with_inputs(submission)  # inputs attached as model sources, pinned to their version
        meta = submission.metadata
        ref = KaggleRef.parse(meta["id"])
        gpu = bool(meta.get("enable_gpu"))
        check_dataset_sources(DatasetsApi(self.api.transport), meta)  # before a session is spent on nothing
        response = self.api.save(save_request(submission), f"the push of {ref}")
        problem = rejection(response)
        version = response.version_number
        identity = str(response.kernel_id) if response.kernel_id else None
        handle = {"slug": str(ref), "gpu": gpu, "url": self._web(ref), "kernel_id": identity}
        if meta.get("docker_image"):
            handle["docker_image"] = meta["docker_image"]  # the image pinned, kept with the run
        submitted = Submitted(version, submission.parameters, handle, RunStatus("queued", "QUEUED"),
                              identity) if version else None
        if problem:
            message = f"Kaggle rejected the push of {ref}: {problem}"
            if submitted:  # it runs anyway: record it so that it can be watched and stopped
                raise PushedWithProblem(f"{message} (Kaggle still made v{version}; it is recorded)", submitted)
            if _SESSION_LIMIT in problem:  # another machine's sessions, unknown to this ledger
                raise NoRoom(message)
            raise BackendError(message)
        if not version:
            raise BackendError(f"Kaggle accepted the push of {ref} but gave no version number; look at {self._web(ref)}")
        made = "/".join((response.ref or "").strip("/").split("/")[-2:])
        if made and made.lower() != str(ref).lower():  # a new kernel takes its title's slug, not the id's
            handle.update(slug=made, url=self._web(KaggleRef.parse(made)))  # where it really runs
            raise PushedWithProblem(f"Kaggle made the kernel at {made}, not at {ref} (the title's slug wins for a new "
                                    f"kernel): make the recipe's title slugify to '{ref.slug}', then delete {made}",
                                    submitted)
        try:
            made_meta = self.api.kernel(ref).metadata
            check_attached(made_meta, meta, ref, version)
            check_accelerator(made_meta, meta, ref, version)
        except BackendError as exc:
            raise PushedWithProblem(exc.message, submitted) from exc
        return submitted

    def capacity(self, recipe, offline: bool = False) -> Capacity:
        from kjob.backends.kaggle_push import GPU_SESSION_LIMIT

        if recipe.accelerator == "gpu":  # Kaggle refuses a third batch GPU session of the account
            return Capacity(GPU_SESSION_LIMIT, f"Kaggle's {GPU_SESSION_LIMIT} GPU sessions", counts=uses_gpu,
                            enforced=True, what="Kaggle GPU runs")
        limit, kind = (1, "TPU") if recipe.accelerator == "tpu" else (2, "CPU")
        return Capacity(limit, f"Kaggle runs {limit} {kind} session{'s' if limit > 1 else ''} at once", settable=True)

    def quota_left(self, recipe) -> float | None:
        from kjob.backends.kaggle_push import gpu_quota_left

        return gpu_quota_left(self) if recipe.accelerator == "gpu" else None

    def find_submission(self, kernel: str, token: str) -> Submitted | None:
        """The version whose notebook carries the push's token: the latest few are looked at."""
        import json

        from kjob.build.kernel_metadata import kernel_slug

        ref = KaggleRef(self.ws.owner(), kernel_slug(self.ws, kernel))
        try:
            latest = self.api.kernel(ref)
        except NotFoundError:
            return None
        except BackendError as exc:
            if self._own_kernel_denied(exc, ref):
                return None  # no such kernel of this account: the push never made one
            raise
        meta = latest.metadata
        current = meta.current_version_number if meta is not None else None
        if not current:
            return None
        for version in range(current, max(current - 5, 0), -1):
            answer = latest if version == current else self.api.kernel(ref, version)
            try:
                notebook = json.loads(answer.blob.source or "")
            except (AttributeError, TypeError, ValueError):
                continue
            info = notebook.get("metadata", {}).get("kjob", {}) if isinstance(notebook, dict) else {}
            if info.get("submission") == token:
                identity = str(meta.id) if meta.id else None
                gpu = bool(meta.enable_gpu) or (meta.machine_shape or "").startswith(("Nvidia", "Gpu"))
                handle = {"slug": str(ref), "gpu": gpu, "url": self._web(ref), "kernel_id": identity}
                return Submitted(version, info.get("parameters", {}), handle, RunStatus("queued", "QUEUED"), identity)
        return None

    def _own_kernel_denied(self, exc: BackendError, ref) -> bool:
        """Whether `exc` is Kaggle's 403 for a kernel of the signed-in account: Kaggle answers 403,
        not 404, for a deleted (or never made) kernel, so that names cannot be probed, and the
        owner of a kernel that exists is never denied it. Another owner's kernel stays denied."""
        if getattr(exc, "http_status", None) != 403:
            return False
        try:
            user = self.api.user()
        except KjobError:
            return False  # who is asking is unknown: the refusal stands as it is
        return bool(user) and user.lower() == ref.owner.lower()

    def _kernel_now(self, run: Run):
        """The run's kernel as Kaggle has it now; RunGone when it is deleted or another kernel."""
        ref = self._ref(run)
        if str(ref) in self._deleted:
            raise RunGone(f"the Kaggle kernel {ref} of {run.ref} was deleted (kjob cancel --delete-kernel)")
        try:
            meta = self.api.kernel(ref).metadata
        except NotFoundError as exc:
            raise RunGone(f"the Kaggle kernel {ref} of {run.ref} no longer exists: its outputs and log are gone") from exc
        except BackendError as exc:
            if not self._own_kernel_denied(exc, ref):
                raise
            raise RunGone(f"the Kaggle kernel {ref} of {run.ref} no longer exists (Kaggle answers 403 for a deleted "
                          "kernel of this account): its outputs and log are gone") from exc
        if meta is None:
            raise BackendError(f"Kaggle answered for kernel {ref} without its metadata")
        known = run.identity or run.handle.get("kernel_id")
        current = meta.current_version_number
        if (known and meta.id and str(meta.id) != str(known)) or (current is not None and current < run.version):
            raise RunGone(f"the Kaggle kernel {ref} of {run.ref} was deleted and re-created (now kernel {meta.id}, "
                          f"at v{current}): the outputs and log of {run.ref} are gone")
        self._verified.add(run.id)
        return meta

    def _web(self, ref) -> str:
        return f"{self.api.transport.endpoints.web}/code/{ref}"

    def _ref(self, run: Run):
        slug = run.handle.get("slug")
        if not slug:
            raise BackendError(f"the ledger has no Kaggle kernel for {run.ref} (its handle lacks the slug)")
        return KaggleRef.parse(slug)

    # -- status and logs ----------------------------------------------------------------

    def status(self, run: Run) -> RunStatus:
        ref = self._ref(run)
        if run.id not in self._verified or str(ref) in self._deleted:
            self._kernel_now(run)  # once per process: the same name may now be another kernel
        try:
            answer = self.api.session_status(ref, run.version)
        except NotFoundError:
            self._kernel_now(run)  # gone, or re-created: RunGone says which
            raise
        except BackendError as exc:
            if self._own_kernel_denied(exc, ref):
                self._kernel_now(run)  # a 403 for one's own kernel: gone, as GetKernel tells
            raise
        raw = answer.status.name if answer.status is not None else "QUEUED"
        status = _STATUS.get(raw)
        if status is None:
            raise BackendError(f"Kaggle reported an unknown status '{raw}' for {run.ref}")
        message = redact(answer.failure_message) if answer.failure_message else None
        if status != "error":
            return RunStatus(status, raw)
        return RunStatus("error", raw, failure_kind(message), message or "Kaggle reported an error without a message")

    def _require_current(self, run: Run) -> None:
        ref = self._ref(run)
        current = self._kernel_now(run).current_version_number
        if current is None:
            raise BackendError(f"Kaggle did not say which version of {ref} is the latest, so kjob cannot tell "
                               f"whether what it serves belongs to v{run.version}")
        if current != run.version:
            stale = f"{run.ref} is no longer the latest version of {ref} (v{current} is)"
            problem = NotServed(f"{stale}: Kaggle serves the log of the latest version only, so that of "
                                f"v{run.version} cannot be fetched any more (its outputs can: kjob fetch {run.kernel} "
                                f"--version kaggle-v{run.version} --output)")
            problem.stale = stale
            raise problem

    def log(self, run: Run) -> list[LogEntry]:
        return self.log_since(run, 0)[0]

    def log_since(self, run: Run, cursor: int = 0) -> tuple[list[LogEntry], int]:
        from kjob.backends.kaggle_logs import parse_log_since

        self._require_current(run)  # the cursor counts entries: Kaggle sends the whole log each time
        _, log = self.api.session_output(self._ref(run), run.version, first_page_only=True)
        return parse_log_since(log, cursor)

    def follow_log(self, run: Run) -> Iterator[LogEntry]:
        from kjob.backends.kaggle_logs import follow
        from kjob.backends.kaggle_transport import iter_lines

        if self.status(run).final:
            yield from self.log(run)
            return
        ref = self._ref(run)
        delays = self.poll.delays()

        def open_stream():
            self._require_current(run)
            return self.api.transport.open_stream(self.api.log_stream_url(ref), f"the live log of {run.ref}")

        yield from follow(open_stream, iter_lines, lambda: self.status(run).final, lambda: self.log(run),
                          lambda: time.sleep(min(next(delays), 5.0)))

    # -- outputs ------------------------------------------------------------------------

    def list_outputs(self, run: Run) -> list[RemoteFile]:
        ref = self._ref(run)
        try:
            self._require_current(run)
        except NotServed as exc:  # an older version: its outputs may still be served whole
            return self._older_outputs(run, exc)
        files, _ = self.api.session_output(ref, run.version)
        details = self.api.kernel_files(ref, run.version)
        self._require_current(run)  # a push meanwhile would have changed what was listed
        listing = []
        for file in files:
            size, created = details.get(file.name, (None, None))
            self._urls[(run.id, file.name)] = file.url
            listing.append(RemoteFile(file.name, size, created or None))
        return listing

    def _older_outputs(self, run: Run, not_listed: NotServed) -> list[RemoteFile]:
        """An older version's outputs, from the archive DownloadKernelOutput serves by its
        versionNumber (kagglehub's integration tests show Kaggle serving older versions so).
        Where Kaggle does not serve it, the refusal stands as it was."""
        from kjob.backends.kaggle_outputs import OutputArchive

        if run.id not in self._archives:
            ref = self._ref(run)
            try:
                location = self.api.output_location(ref, run.version)
            except (NotFoundError, BackendError) as exc:
                if not isinstance(exc, NotFoundError) and getattr(exc, "http_status", None) not in (400, 403, 404):
                    raise
                raise BackendError(f"{not_listed.stale}: Kaggle serves the outputs and log of the latest version only "
                                   f"(DownloadKernelOutput by versionNumber: {exc.message}), so those of v{run.version} "
                                   "cannot be fetched any more") from exc
            # beside the version folders: the next fetch of this kernel sweeps it up if this one is killed
            folder = self.ws.paths.download(run.kernel, run.backend, run.version, run.incarnation).folder.parent
            archive = OutputArchive.temporary(folder)
            self.api.transport.download(location, archive.path, None, f"the output archive of {run.ref}",
                                        signed_in=True)
            self._archives[run.id] = archive.opened(f"the output archive of {run.ref}")
        return self._archives[run.id].listing()

    def download(self, run: Run, file: RemoteFile, destination: Path) -> None:
        if run.id in self._archives:  # an older version's file, from its archive
            self._archives[run.id].extract(file.name, destination)
            return
        url = self._urls.get((run.id, file.name))
        if url is None:
            self.list_outputs(run)
            url = self._urls.get((run.id, file.name))
        if url is None:
            raise BackendError(f"{file.name} is no longer among the outputs of {run.ref}")
        self.api.transport.download(url, destination, file.size, file.name)

    # -- cancel -------------------------------------------------------------------------

    def cancel(self, run: Run, delete_kernel: bool = False) -> str:
        ref = self._ref(run)
        current = self.status(run)
        if current.final:
            return f"{run.ref} already ended ({current.status}); nothing to cancel"
        if not delete_kernel:
            raise BackendError(
                f"Kaggle's API cannot stop a running batch session: stop {run.ref} on {self.url(run)}, or delete "
                f"the whole kernel (every version and output) with `kjob cancel {run.kernel} --version {run.version} "
                "--delete-kernel`")
        problem = self.api.delete(ref)
        if problem:
            raise BackendError(f"Kaggle did not delete {ref}: {redact(problem)}")
        self._deleted.add(str(ref))
        return f"deleted the Kaggle kernel {ref} with all its versions; its running session stops with it"

    def url(self, run: Run) -> str | None:
        if run.handle.get("url"):
            return run.handle["url"]
        return f"https://www.kaggle.com/code/{run.handle['slug']}" if run.handle.get("slug") else None

