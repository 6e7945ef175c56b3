"""A campaign's members and where each one stands, decided from the ledger alone.

A member is a stage and the -p values it runs with; its signature (kjob.build.provenance) hashes the
src modules, the recipe's keys that reach the run, the effective parameters and the backend.
Its runs are the ledger's rows tagged with the campaign and the stage that carry its
signature, oldest first: so a member that completed is never run again (whatever files
exist), an unfinished one is followed where it is, and a second machine with the same ledger
sees the same campaign. A change to the sources makes new signatures: those members run
again, and the old runs stay in the ledger, no longer members.

A member is named by its stage and its grid point, `screen[lr=0.01 width=16]` (a top-k
member: its source's point), never by a number: a name keeps its meaning through any edit of
the file, and the runs of earlier sweeps are found by their signature whatever the file says.

A stage waits until every stage it names has settled (each member complete, or failed for
good, and fetched); then its gates are judged and a top-k stage picks its members. A member
that ended but was never fetched, or whose run is gone unfetched, is not accounted for
(`unaccounted`): the sweep names it and does not report the campaign complete.
"""

import json
import statistics
from dataclasses import dataclass, field

from kjob.campaigns.file import Campaign, Gate, Stage
from kjob.errors import UsageError
from kjob.runs.metrics import MetricSpec, ModeBook, is_number, metric_named
from kjob.build.provenance import run_signature
from kjob.lifecycle.inputs import resolve_inputs
from kjob.runs.ledger import Ledger
from kjob.runs.record import Run

_COMPARE = {"at_least": lambda a, b: a >= b, "above": lambda a, b: a > b,
            "at_most": lambda a, b: a <= b, "below": lambda a, b: a < b}


@dataclass(frozen=True)
class Member:
    stage: str
    index: int  # 1-based, within its stage: its place in the file (or the top-k ranking), for order only
    point: dict  # what sets it apart: its grid point (a top-k member: its source's)
    overrides: dict  # every -p value it is pushed with
    parameters: dict  # the effective parameters (kjob.build.params)
    signature: str
    source: str | None = None  # a top-k member: the member of the earlier stage it came from

    @property
    def key(self) -> tuple[str, str]:
        return self.stage, self.signature

    @property
    def label(self) -> str:
        """Its name, `screen[lr=0.01 width=16]`: its stage and its grid point, names sorted.

        A name made of the parameters means the same member whatever the file's order, and
        after any edit of it (a number would move when a value is added or removed); the
        grid points of a stage are unique, so are the names."""
        return member_label(self.stage, self.point)


def member_label(stage: str, point: dict) -> str:
    return f"{stage}[{point_text(dict(sorted(point.items())))}]" if point else stage


@dataclass
class MemberState:
    member: Member
    runs: list[Run]  # its attempts, oldest first
    status: str  # pending, retry, waiting, gated off, submitting, queued, running, complete, failed
    note: str = ""

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

    @property
    def settled(self) -> bool:
        """Its results are all in: a later stage's gate or top-k may judge it."""
        return self.state == "gated off" or (self.state == "open" and all(m.settled for m in self.members))


@dataclass
class Plan:
    campaign: Campaign
    stages: list[StagePlan]
    strays: list[Run]  # the campaign's runs that are no member now (edited out, older sources)

    @property
    def members(self) -> list[MemberState]:
        return [m for s in self.stages for m in s.members]


def source_digest(ws, recipe) -> list[dict]:
    """The recipe's src modules as build.json records them (path, sha256), read once per sweep."""
    from kjob.build.plan import read_modules

    return [{"path": m.path, "sha256": m.sha256} for m in read_modules(ws, recipe)]


def campaign_modes(campaign: Campaign) -> ModeBook:
    own = MetricSpec(campaign.metric, (), {campaign.metric: campaign.mode} if campaign.mode else {})
    return ModeBook([own, campaign.recipe.metrics])


def _recipe_inputs(ws, campaign: Campaign) -> list:
    """The recipe's inputs as its pushes will get them (a member's signature includes them:
    the same code given another checkpoint is another run); none without `inputs`."""
    if not campaign.recipe.inputs:
        return []
    with Ledger(ws.paths.ledger) as ledger:
        return [item.record for item in resolve_inputs(ws, ledger, campaign.recipe.inputs, campaign.backend)]


class Planner:
    """Members and their states for one campaign, its sources read once (`digest`)."""

    def __init__(self, ws, campaign: Campaign, digest: list[dict]):
        self.ws, self.campaign, self.digest = ws, campaign, digest
        self.modes = campaign_modes(campaign)
        self.inputs = _recipe_inputs(ws, campaign)
        self._grid_members = {s.name: [self.member(s.name, i, p, {**s.parameters, **p})
                                       for i, p in enumerate(s.points, 1)] for s in campaign.stages if not s.top}

    def member(self, stage: str, index: int, point: dict, overrides: dict, source: str | None = None) -> Member:
        from kjob.build.params import resolve_parameters

        recipe, backend = self.campaign.recipe, self.campaign.backend
        parameters = resolve_parameters(self.ws, recipe, backend, overrides)
        return Member(stage, index, point, overrides, parameters,
                      run_signature(recipe, self.digest, parameters, backend, self.inputs), source)

    def plan(self, runs: list[Run], push_failures: dict | None = None, since: float = 0.0) -> Plan:
        """Where each member stands, given the campaign's runs in the ledger.

        `push_failures`: member key -> pushes this process saw fail before the backend kept
        anything (no row); `since`: infrastructure failures before it are not counted (a
        sweep with --retry-failed starts every failed member afresh)."""
        by_key: dict[tuple, list[Run]] = {}
        for run in sorted(runs, key=lambda r: (r.created_at, r.id)):
            by_key.setdefault((run.stage, run.signature), []).append(run)
        stages: dict[str, StagePlan] = {}
        claimed: set[tuple] = set()
        for stage in self.campaign.stages:
            plan = StagePlan(stage, "open")
            waiting = [n for n in stage.after if not stages[n].settled]
            if stage.top:
                members = [] if waiting else self._top(stage, stages[stage.top.source], plan)
            else:
                members = self._grid_members[stage.name]
            if waiting:
                plan.state, plan.why = "waiting", f"waits for {', '.join(waiting)}"
            else:
                for gate in stage.gates:
                    held, why = self._gate(gate, stages[gate.stage])
                    plan.why = f"{plan.why}; {why}" if plan.why else why
                    if not held:
                        plan.state = "gated off"
                        break
            for member in members:
                attempts = by_key.get(member.key, [])
                claimed.add(member.key)
                plan.members.append(self._state(member, attempts, plan, (push_failures or {}).get(member.key, 0),
                                                since))
            stages[stage.name] = plan
        strays = [r for key, rs in by_key.items() if key not in claimed for r in rs]
        return Plan(self.campaign, list(stages.values()), strays)

    def _state(self, member: Member, attempts: list[Run], stage: StagePlan, push_failures: int,
               since: float) -> MemberState:
        run = attempts[-1] if attempts else None
        if run is not None and not run.state.final:
            return MemberState(member, attempts, run.state.status)  # followed even in a closed stage
        if run is not None and run.state.status == "complete":
            return MemberState(member, attempts, "complete")
        if stage.state != "open":
            return MemberState(member, attempts, stage.state if run is None else "failed")
        if run is None:
            if push_failures > self.campaign.retries:
                return MemberState(member, attempts, "failed", f"{push_failures} pushes failed")
            return MemberState(member, attempts, "retry" if push_failures else "pending")
        infra = push_failures + sum(1 for r in attempts if r.state.failure_kind == "infrastructure"
                                    and r.created_at >= since)
        if run.created_at < since:  # failed before this sweep, which was asked to retry failures
            if failed_rounds(attempts, self.campaign.retries) > 1:
                return MemberState(member, attempts, "failed", RETRIED)  # --retry-failed retries once
            return MemberState(member, attempts, "retry", "--retry-failed")
        if run.state.failure_kind == "infrastructure" and infra <= self.campaign.retries:
            return MemberState(member, attempts, "retry", f"infrastructure failure {infra} of at most "
                                                          f"{self.campaign.retries + 1} attempts")
        return MemberState(member, attempts, "failed")

    # -- results of earlier stages ------------------------------------------------------

    def _results(self, stage: StagePlan, metric: str, where: tuple[str, ...] = ()) -> list[tuple[Member, Run]]:
        """The stage's complete members that have `metric` (a base name: its series' best), and
        for which `where` holds, best first."""
        from kjob.runs.query import filter_runs, parse_condition, sort_runs

        done = {m.run.id: m.member for m in stage.members if m.status == "complete" and m.run is not None}
        complete = [m.run for m in stage.members if m.run is not None and m.run.id in done]
        metric = metric_named(metric, {n for r in complete for n in r.metrics}) or metric
        runs = [r for r in complete if is_number(r.metrics.get(metric))]
        if not runs:
            return []
        runs = filter_runs(runs, [parse_condition(c) for c in where])  # UsageError: a name no run has
        return [(done[r.id], r) for r in sort_runs(runs, metric, self.modes)] if runs else []

    @staticmethod
    def _known(stage: StagePlan) -> str:
        names = sorted({n for m in stage.members if m.status == "complete" and m.run for n in m.run.metrics})
        return f" (its metrics: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''})" if names else ""

    def _top(self, stage: Stage, source: StagePlan, plan: StagePlan) -> list[Member]:
        top = stage.top
        try:
            ranked = self._results(source, top.metric, top.where)[: top.k]
        except UsageError as exc:
            ranked, plan.why = [], f"no member chosen: {exc.message}"
        if not ranked and not plan.why:
            plan.why = f"no complete member of {top.source} has {top.metric}{self._known(source)}"
        elif ranked:
            plan.why = f"the {len(ranked)} best of {top.source} by {top.metric}" + (
                f" (of {top.k} asked)" if len(ranked) < top.k else "")
        own = {k: v for k, v in stage.parameters.items()}
        return [self.member(stage.name, i, m.point, {**m.overrides, **own}, m.label)
                for i, (m, _) in enumerate(ranked, 1)]

    def _gate(self, gate: Gate, stage: StagePlan) -> tuple[bool, str]:
        try:
            first = self._results(stage, gate.metric, gate.member)
            second = self._results(stage, gate.metric, gate.minus) if gate.minus is not None else None
        except UsageError as exc:
            return False, f"gate {gate.describe()} cannot be judged: {exc.message}"
        if not first or (second is not None and not second):
            return False, (f"gate {gate.describe()} cannot be judged: no complete member has {gate.metric}"
                           f"{self._known(stage)}")
        metric = metric_named(gate.metric, first[0][1].metrics) or gate.metric
        value = first[0][1].metrics[metric]
        text = f"{value:.4g}"
        if second is not None:
            other = second[0][1].metrics[metric_named(gate.metric, second[0][1].metrics) or gate.metric]
            value -= other
            text = f"{first[0][1].metrics[metric]:.4g} - {other:.4g} = {value:.4g}"
        held = _COMPARE[gate.op](value, gate.value)
        return held, f"gate {gate.describe()} {'holds' if held else 'does not hold'}: {text}"


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
