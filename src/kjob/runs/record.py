"""What a run is: its identity, its status (from one ordered set) and how it failed."""

import re
import time
from dataclasses import dataclass, field

from kjob.errors import UsageError
from kjob.credentials import redact_held

# The ordered set every backend maps its own statuses onto. A status never moves backwards:
# submitting -> queued -> running -> one of the final three, which never change.
# `submitting` is kjob's own: the ledger row exists, the backend has not yet confirmed it.
STATUSES = ("submitting", "queued", "running", "complete", "error", "cancelled")
FINAL = frozenset({"complete", "error", "cancelled"})
UNFINISHED = ("submitting", "queued", "running")
_RANK = {"submitting": -1, "queued": 0, "running": 1, "complete": 2, "error": 2, "cancelled": 2}

FAILURE_KINDS = ("user code", "timeout", "kernel died", "out of memory", "disk full", "infrastructure")  # kjob.runs.failures


def can_move(old: str, new: str) -> bool:
    return old not in FINAL and _RANK[new] >= _RANK[old]


@dataclass(frozen=True)
class RunStatus:
    """A backend's answer to "how is this run doing?"."""

    status: str
    raw_status: str | None = None
    failure_kind: str | None = None
    failure_message: str | None = None
    failure_location: str | None = None  # "src/pkg/mod.py:12" for user-code failures
    # When the backend says the run started/ended (epoch seconds); None if it does not say.
    started_at: float | None = None
    finished_at: float | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown run status {self.status!r}")
        if self.failure_message:  # a run's own error text: a credential kjob holds is masked
            object.__setattr__(self, "failure_message", redact_held(self.failure_message))

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def describe_failure(self) -> str:
        where = f" at {self.failure_location}" if self.failure_location else ""
        kind = f" ({self.failure_kind})" if self.failure_kind else ""
        return f"{self.failure_message or 'failed'}{where}{kind}"


_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+/-]{0,63}$")


@dataclass(frozen=True)
class RunNotes:
    """What a person says about a push: why it was made (`push -m`) and its tags (`--tag`)."""

    message: str | None = None
    tags: tuple[str, ...] = ()  # each checked by `check_tag` where a person typed it


@dataclass(frozen=True)
class PushRecord:
    """What a push sent, and who sent it and why, recorded as its ledger row (`Ledger.begin`)
    before the backend is asked; the backend's answer completes the row."""

    kernel: str
    backend: str
    notebook_sha256: str
    parameters: dict  # every parameter as the run will see it
    git_commit: str | None
    git_dirty: bool | None
    token: str  # the push's random id (finds an interrupted push again)
    overrides: dict | None = None  # the ones set with -p
    submitter: dict | None = None  # {pid, start} of the pushing process
    handle: dict | None = None  # what the push asks for (e.g. its accelerator) until the backend's replaces it
    notes: RunNotes | None = None
    signature: str | None = None  # a hash of what it computes (kjob.build.provenance)
    campaign: str | None = None  # a campaign member's campaign and stage (`kjob sweep`)
    stage: str | None = None
    inputs: tuple = ()  # each input's kjob.runs.lineage.RunInput.as_dict()


def check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise UsageError(f"tag {tag!r}: use up to 64 letters, digits and _ . : + / - (no spaces or commas)")
    return tag


@dataclass(frozen=True)
class Run:
    """One row of the ledger."""

    id: int
    kernel: str
    backend: str
    version: int | None  # None until the backend has confirmed the push
    state: RunStatus
    notebook_sha256: str
    parameters: dict  # every parameter as the run saw it
    overrides: dict  # the ones set with -p
    git_commit: str | None
    git_dirty: bool | None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    handle: dict = field(default_factory=dict)  # the backend's own reference to the run
    # Every metric recorded for the run, one flat view (`kjob.runs.metrics`: the run's own keys
    # first), and the same by source ({"metadata": {...}, "history": {...}, ...}).
    metrics: dict = field(default_factory=dict)
    token: str | None = None  # the push's random id (finds an interrupted push again)
    # The remote object the version belongs to (Kaggle's kernel id) and how many times kjob
    # has seen the kernel re-created under this name (1 = the first): versions restart then.
    identity: str | None = None
    incarnation: int = 1
    gone_at: float | None = None  # when kjob learnt that the remote kernel no longer exists
    submitter: dict = field(default_factory=dict)  # {pid, start} of the pushing process
    notes: RunNotes = field(default_factory=RunNotes)
    note: str | None = None  # added later (`kjob runs note`)
    archived_at: float | None = None  # when its download folder was packed (`kjob runs archive`)
    metric_sources: dict = field(default_factory=dict)
    metric_specs: dict = field(default_factory=dict)  # source -> kjob.runs.metrics.MetricSpec it declared
    # A campaign member (`kjob sweep`): its campaign and stage, and the run's signature (a
    # hash of what it computes: sources, effective parameters, backend; kjob.build.provenance).
    campaign: str | None = None
    stage: str | None = None
    signature: str | None = None
    fetched_at: float | None = None  # when its outputs (or, for a failed run, its log) were fetched
    inputs: tuple = ()  # the runs whose outputs it was given (kjob.runs.lineage.RunInput.as_dict())

    @property
    def ref(self) -> str:
        return run_label(self.kernel, self.version, self.backend, self.incarnation)

    @property
    def gone(self) -> bool:
        return self.gone_at is not None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


def run_record(run: Run) -> dict:
    """A run as plain data: what `status --json`, `runs --export json` and status.json show."""
    state = run.state
    return {
        "kernel": run.kernel, "version": run.version, "backend": run.backend,
        "status": state.status, "raw_status": state.raw_status, "failure_kind": state.failure_kind,
        "failure_message": state.failure_message, "failure_location": state.failure_location,
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "duration": run_duration(run), "parameters": run.parameters, "overrides": run.overrides,
        "notebook_sha256": run.notebook_sha256, "git_commit": run.git_commit,
        "git_dirty": run.git_dirty, "metrics": run.metrics, "identity": run.identity,
        "incarnation": run.incarnation, "gone": run.gone, "message": run.notes.message, "note": run.note,
        "tags": list(run.notes.tags), "archived": run.archived, "campaign": run.campaign, "stage": run.stage,
        "signature": run.signature,
    }


def run_duration(run: Run, now: float | None = None) -> float | None:
    """Seconds from start to end (to now, while it runs); None before it starts."""
    if run.started_at is None:
        return None
    return (run.finished_at or now or time.time()) - run.started_at


def run_label(kernel: str, version: int | None, backend: str, incarnation: int = 1) -> str:
    """`r3-dpt v3`, `r3-dpt v3 (local)`; a re-created kernel's runs: `r3-dpt v1 (kernel #2)`."""
    notes = [] if backend == "kaggle" else [backend]
    if incarnation > 1:
        notes.append(f"kernel #{incarnation}")
    number = f"v{version}" if version is not None else "(no version yet)"
    return f"{kernel} {number}" + (f" ({', '.join(notes)})" if notes else "")


# `@` appears in a campaign lane's kernel (`r3-dpt@kd-1`, kjob.campaigns.lanes).
_SPEC = re.compile(r"^(?P<kernel>[A-Za-z0-9_.@-]+)(?::v?(?P<version>\d+))?$")


def parse_run_spec(spec: str) -> tuple[str, int | None]:
    """`NAME`, `NAME:3` or `NAME:v3` -> (NAME, version or None)."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise UsageError(f"'{spec}' is not a run reference like NAME or NAME:v3")
    version = match.group("version")
    return match.group("kernel"), int(version) if version else None


# A campaign lane's kernel (kjob.campaigns.lanes): `RECIPE@CAMPAIGN-N` in the ledger.
_LANE = re.compile(r"^(?P<recipe>[A-Za-z0-9][A-Za-z0-9_.-]*)@(?P<campaign>[A-Za-z0-9][A-Za-z0-9_-]*)-(?P<n>\d+)$")


def parse_lane(kernel: str) -> tuple[str, str, int] | None:
    """(recipe, campaign, lane number) of a lane kernel's name; None for a recipe's own kernel."""
    match = _LANE.match(kernel)
    return (match["recipe"], match["campaign"], int(match["n"])) if match else None


def recipe_name(kernel: str) -> str:
    """The recipe a ledger kernel was built from: itself, or a lane kernel's recipe."""
    lane = parse_lane(kernel)
    return lane[0] if lane else kernel


def uses_gpu(run: "Run") -> bool:
    """Whether the run asked for (or got) a GPU: what Kaggle's two GPU sessions count."""
    return bool(run.handle.get("gpu") or run.handle.get("accelerator") == "gpu")
