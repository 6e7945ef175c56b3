"""What a campaign's plan is made of (kjob.campaigns.plan makes it): its members, where each
stands, its stages, and what is said of them (the runs not accounted for, the metric ranked by)."""

import json
import statistics
from dataclasses import dataclass, field

from kjob.campaigns.file import Campaign, Stage
from kjob.errors import UsageError
from kjob.runs.metrics import metric_named
from kjob.runs.record import Run


@dataclass(frozen=True)
class Member:
    stage: str
    index: int  # 1-based, within its stage: its place in the file (or the top-k ranking), for order only
    point: dict  # what sets it apart: its grid point (a top-k member: its source's)
    overrides: dict  # every -p value it is pushed with
    parameters: dict  # the effective parameters (kjob.build.params)
    signature: str
    source: str | None = None  # a top-k member: the member of the earlier stage it came from
    recipe: object = field(default=None, compare=False, repr=False)  # the KernelRecipe it is pushed as
    input_of: str | None = None  # a member of a stage with stage inputs: the member whose run it is given
    inputs: tuple[str, ...] = ()  # refs pushed as inputs (besides its recipe's): its stage's, its input run
    problem: str | None = None  # why it cannot be pushed (its input run cannot be given): failed, no run

    @property
    def key(self) -> tuple[str, str]:
        return self.stage, self.signature

    @property
    def label(self) -> str:
        """Its name, `screen[lr=0.01 width=16]`: its stage and its grid point, names sorted.

        A name made of the parameters means the same member whatever the file's order, and
        after any edit of it (a number would move when a value is added or removed); the
        grid points of a stage are unique, so are the names. A member given another's run:
        `eval of train[lr=0.01]` (`eval[split=test] of train[lr=0.01]`)."""
        label = member_label(self.stage, self.point)
        return f"{label} of {self.input_of}" if self.input_of else label


def member_label(stage: str, point: dict) -> str:
    return f"{stage}[{point_text(dict(sorted(point.items())))}]" if point else stage


@dataclass
class MemberState:
    member: Member
    runs: list[Run]  # its attempts, oldest first
    status: str  # pending, retry, waiting, gated off, submitting, queued, running, complete, failed
    note: str = ""
    adopted: bool = False  # its run is a complete run of the same signature made before (not pushed for it)

    @property
    def run(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it: complete or failed for good, and fetched."""
        return self.status in ("complete", "failed") and (self.run is None or not needs_fetch(self.run))


RETRIED = "retried once already"  # the note of a member --retry-failed does not push again


def failed_rounds(attempts: list[Run], retries: int) -> int:
    """How many times the member failed for good: a failure in its own code (or a timeout, a
    cancel), or an infrastructure failure past the campaign's `retries`. More than one means
    `--retry-failed` pushed it again once already, and it failed again."""
    rounds = infra = 0
    for run in attempts:
        if not run.state.final or run.state.status == "complete":
            continue
        if run.state.failure_kind == "infrastructure" and infra < retries:
            infra += 1  # retried by the sweep itself
            continue
        rounds, infra = rounds + 1, 0
    return rounds


def unaccounted(plan: "Plan") -> list[tuple["MemberState", str]]:
    """The members whose end is not on this machine, each with why: one that ended but was
    never fetched (a fetch killed, or failing), one whose run is gone before it was fetched, one
    left without a run. A sweep that leaves any says so, and does not report success."""
    found = []
    for stage in plan.stages:
        for state in stage.members:
            run = state.run
            if state.status in ("pending", "retry") and stage.state == "open":
                found.append((state, "no run"))
            elif state.status not in ("complete", "failed") or run is None or run.fetched_at is not None:
                continue
            elif run.gone:
                found.append((state, f"{run.ref} is gone ({run.backend} no longer has it) and was never fetched"))
            elif run.version is not None:
                found.append((state, f"{run.ref} ended but was never fetched: `kjob fetch {run.kernel} --version "
                                     f"{run.version} --output`"))
    return found


def needs_fetch(run: Run) -> bool:
    """A run that ended with something to fetch (status, log, outputs) that is not fetched yet."""
    return run.state.final and run.fetched_at is None and run.version is not None and not run.gone


@dataclass
class StagePlan:
    stage: Stage
    state: str  # open, waiting, gated off
    why: str = ""
    members: list[MemberState] = field(default_factory=list)
    feeding: bool = False  # stage inputs: the stage it takes them from has members to come

    @property
    def settled(self) -> bool:
        """Its results are all in: a later stage's gate or top-k may judge it."""
        return self.state == "gated off" or (self.state == "open" and not self.feeding
                                             and all(m.settled for m in self.members))


@dataclass
class Plan:
    campaign: Campaign
    stages: list[StagePlan]
    strays: list[Run]  # the campaign's runs that are no member now (edited out, older sources)

    @property
    def members(self) -> list[MemberState]:
        return [m for s in self.stages for m in s.members]

    @property
    def adopted(self) -> list[Run]:
        """The runs its members adopted (kjob.campaigns.inputs): fetched by the sweep as its own."""
        return [m.run for m in self.members if m.adopted]


def member_metric(plan: Plan, name: str | None) -> str | None:
    """The metric a campaign's `name` stands for among its members' runs: itself, else its
    series' best (`test_loss` -> `test_loss.best`)."""
    if not name:
        return name
    return metric_named(name, {n for m in plan.members if m.run is not None for n in m.run.metrics}) or name


def unknown_metric(plan: Plan, name: str | None) -> UsageError | None:
    """An error where complete members have metrics and none has `name` (nor its series' best):
    a leaderboard would rank nothing."""
    complete = [m.run for m in plan.members if m.status == "complete" and m.run is not None]
    names = sorted({n for r in complete for n in r.metrics})
    if not name or not names or metric_named(name, names):
        return None
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    return UsageError(f"campaign {plan.campaign.name}: no member has a metric '{name}' to rank by; "
                      f"their metrics: {shown} (set metric = one of them in {plan.campaign.rel})")


def expected_seconds(stage: StagePlan) -> float | None:
    """How long a member of the stage takes from push to end, judged by its members that
    completed (the median: one slow run does not move it); None before any has."""
    spans = [m.run.finished_at - m.run.created_at for m in stage.members
             if m.status == "complete" and m.run and m.run.finished_at]
    return statistics.median(spans) if spans else None


def point_text(point: dict) -> str:
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, (list, str, bool)) else v}" for k, v in point.items()) or "-"
