"""The interface every backend implements. The CLI and library never ask which one they hold."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kjob.credentials import redact_held
from kjob.polling import Backoff
from kjob.build.recipe import KernelRecipe
from kjob.runs.record import Run, RunStatus


@dataclass(frozen=True)
class Submission:
    """A built kernel, ready to send.

    `notebook` already holds the effective parameters (`parameters`, resolved once by
    `kjob.build.params`): a backend sends or runs it as it is and never re-parameterises it."""

    recipe: KernelRecipe
    folder: Path  # kernels/<name>
    notebook: dict
    metadata: dict  # kernel-metadata.json
    session_timeout: int  # seconds for the whole run
    parameters: dict  # the effective parameters the notebook runs with
    # A random id of this push. The backend keeps it with the run (the local sandbox's
    # run.json; on Kaggle the notebook's metadata), so a push interrupted before the ledger
    # learnt its version can be found again (`Backend.find_submission`).
    token: str
    first_version: int = 1  # the lowest version number a backend that numbers its own runs may use
    force: bool = False  # skip the backend's safety refusals (quota, concurrency)
    # Other runs' outputs the run is given, pinned to their versions (`push --input`), each a
    # kjob.backends.mounts.InputFolder: the fetched outputs and the RunInput the ledger keeps.
    inputs: tuple = ()


@dataclass(frozen=True)
class Submitted:
    version: int
    parameters: dict  # as the run will see them
    handle: dict  # the backend's own reference, stored in the ledger
    state: RunStatus
    # The identity of the remote object the version belongs to (Kaggle's kernel id): a kernel
    # deleted and re-created under the same name has another one, and numbers from 1 again.
    identity: str | None = None


@dataclass(frozen=True)
class Capacity:
    """How many runs like a recipe's a backend holds at once, and which unfinished runs already
    take a place (`counts`). `enforced`: the service refuses a run past it (Kaggle's two GPU
    sessions), so a push checks it first; `settable`: a campaign's `lanes` may replace it (a
    machine's cores, sessions with no limit of their own)."""

    limit: int | None  # None: not known now (the backend cannot say)
    why: str  # for the plan and the table: "Kaggle's 2 GPU sessions"
    counts: Callable[[Run], bool] = lambda run: False
    enforced: bool = False
    settable: bool = False
    what: str = "runs"  # what `counts` selects, for a refusal: "Kaggle GPU runs"


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" | "stderr"
    time: float  # seconds since the run started
    text: str

    def __post_init__(self):
        # Every backend's log reaches kjob's output (`kjob logs`, the lines of --wait and
        # --watch, the fetched log.txt) as LogEntry objects: a credential kjob holds that a
        # run printed is masked here, once for all of them.
        object.__setattr__(self, "text", redact_held(self.text))


@dataclass(frozen=True)
class RemoteFile:
    name: str  # relative, "/"-separated; not yet checked for safety
    size: int | None
    stamp: str | None  # changes when the file changes (mtime, creation date, ...)


class Backend(ABC):
    name: str
    # How often `status --watch` and `push --wait` ask, written down in one place per backend.
    poll: Backoff = Backoff()
    # Whether asking for a status is cheap (no network): the table of recent runs asks only then.
    status_is_cheap: bool = True
    # Whether a kernel's newer version makes the older ones' outputs and log unreachable
    # (Kaggle): a sweep then gives each lane a kernel of its own (kjob.campaigns.lanes).
    serves_latest_only: bool = False
    # Whether it gives a run other runs' outputs pinned to their versions (`push --input`):
    # a backend that cannot is refused such a push before anything is sent.
    mounts_inputs: bool = False

    def preflight(self, submission: Submission) -> None:
        """Refuse a push the backend would refuse or cut short (its platform's limits), before
        kjob records or writes anything for it. Default: nothing to check."""

    def place_inputs(self, inputs: tuple) -> tuple:
        """The inputs (kjob.backends.mounts.InputFolder) with their RunInput's `mounts` where
        this backend's run sees them, before anything is sent. Default: where Kaggle mounts a
        kernel source, as resolved."""
        return inputs

    def publish_inputs(self, submission: Submission) -> None:
        """Make on the platform what the run needs to see its inputs (Kaggle: model versions),
        after `preflight` and before the push's ledger row: a kill here leaves no row. Default: nothing."""

    def push_notes(self, submission: Submission) -> list[str]:
        """What the user must still do on the platform for the pushed run to work, one line
        each (Kaggle: attach the recipe's secrets in its editor). Default: nothing."""
        return []

    @abstractmethod
    def submit(self, submission: Submission) -> Submitted:
        """Start a run of the kernel; returns its version."""

    @abstractmethod
    def status(self, run: Run) -> RunStatus:
        """The run's current status, mapped onto kjob's ordered set."""

    @abstractmethod
    def log(self, run: Run) -> list[LogEntry]:
        """The run's output so far."""

    def log_since(self, run: Run, cursor: int = 0) -> tuple[list[LogEntry], int]:
        """The entries written after `cursor` (0: from the start), and the cursor to ask from
        next. What a cursor counts is the backend's own (a byte offset in a run sandbox's log,
        a number of entries); only one it returned is passed back. Default: the whole log read
        again, the entries past the count handed on."""
        entries = self.log(run)
        return entries[cursor:], max(cursor, len(entries))

    def follow_log(self, run: Run) -> Iterator[LogEntry]:
        """Log entries as they appear, until the run ends. Default: read what is new, and poll."""
        import time

        cursor = 0
        delays = self.poll.delays()
        while True:
            final = self.status(run).final  # before reading: no entry written before the end is missed
            entries, cursor = self.log_since(run, cursor)
            yield from entries
            if final:
                return
            time.sleep(min(next(delays), 5.0))

    @abstractmethod
    def list_outputs(self, run: Run) -> list[RemoteFile]:
        """The run's output files."""

    @abstractmethod
    def download(self, run: Run, file: RemoteFile, destination: Path) -> None:
        """Write `file`'s bytes to `destination` (a temporary name the caller renames)."""

    @abstractmethod
    def cancel(self, run: Run, delete_kernel: bool = False) -> str:
        """Stop the run if the backend can; returns what happened, in one sentence.

        `delete_kernel` is the user's explicit permission to delete the remote kernel where
        that is the only way to stop a run (Kaggle batch sessions)."""

    def capacity(self, recipe: KernelRecipe, offline: bool = False) -> Capacity | None:
        """How many runs of `recipe` this backend holds at once (campaign lanes, and a push's
        room check where it is `enforced`); None: no limit of its own. `offline`: say it without
        asking the service (a dry run)."""
        return None

    def quota_left(self, recipe: KernelRecipe) -> float | None:
        """Seconds of the account's quota for runs like `recipe` not used or reserved yet
        (Kaggle's weekly GPU hours); None: no quota, or the service does not say."""
        return None

    def find_submission(self, kernel: str, token: str) -> Submitted | None:
        """The run started by the push with `token`, if the backend has one.

        Asked for a ledger row left `submitting` by an interrupted push: None means the
        backend never received that push."""
        return None

    def url(self, run: Run) -> str | None:
        """Where a person can look at the run, if anywhere."""
        return None
