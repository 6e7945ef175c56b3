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

A stage given an earlier stage's members as inputs (`inputs = ["stage:train"]`) has a member
per member of it that completed and is fetched, each given that member's run; and a member
with no run of its own whose signature is a complete run's in the ledger adopts that run
(kjob.campaigns.inputs).

A stage waits until every stage it names has settled (each member complete, or failed for
good, and fetched); then its gates are judged and a top-k stage picks its members. A member
that ended but was never fetched, or whose run is gone unfetched, is not accounted for
(`unaccounted`): the sweep names it and does not report the campaign complete.
"""

from contextlib import nullcontext

from kjob.campaigns.file import Campaign, Gate, Stage
# what a plan is made of, re-exported: the CLI, the board and the tests import it from here
from kjob.campaigns.members import (RETRIED, Member, MemberState, Plan, StagePlan,  # noqa: F401
                                    expected_seconds, failed_rounds, member_label, member_metric,
                                    needs_fetch, point_text, unaccounted, unknown_metric)
from kjob.campaigns.inputs import Adopter, run_ref
from kjob.errors import KjobError, UsageError
from kjob.runs.metrics import MetricSpec, ModeBook, is_number, metric_named
from kjob.build.provenance import run_signature
from kjob.lifecycle.inputs import resolve_inputs
from kjob.runs.ledger import Ledger
from kjob.runs.record import Run

_COMPARE = {"at_least": lambda a, b: a >= b, "above": lambda a, b: a > b,
            "at_most": lambda a, b: a <= b, "below": lambda a, b: a < b}


def source_digest(ws, recipe) -> list[dict]:
    """The recipe's src modules as build.json records them (path, sha256), read once per sweep."""
    from kjob.build.plan import read_modules

    return [{"path": m.path, "sha256": m.sha256} for m in read_modules(ws, recipe)]


def campaign_modes(campaign: Campaign) -> ModeBook:
    own = MetricSpec(campaign.metric, (), {campaign.metric: campaign.mode} if campaign.mode else {})
    return ModeBook([own, campaign.recipe.metrics])


class Planner:
    """Members and their states for one campaign, its sources read once (`digest`: the
    campaign's recipe's; a stage's own recipe's are read when first needed). `fresh`: members
    adopt no run (kjob.campaigns.inputs)."""

    def __init__(self, ws, campaign: Campaign, digest: list[dict], fresh: bool = False):
        self.ws, self.campaign, self.digest, self.fresh = ws, campaign, digest, fresh
        self.modes = campaign_modes(campaign)
        self._digests = {campaign.recipe.name: digest}
        self._inputs: dict[tuple, tuple] = {}  # (stage, its input run's ref or None) -> RunInputs
        self._adopter = Adopter(campaign.name, [s.name for s in campaign.stages])
        with Ledger(ws.paths.ledger) as ledger:
            self._grid_members = {s.name: [self.member(s, i, p, {**s.parameters, **p}, ledger=ledger)
                                           for i, p in enumerate(s.points, 1)]
                                  for s in campaign.stages if not s.top and not s.inputs_from}

    def member(self, stage: Stage, index: int, point: dict, overrides: dict, source: str | None = None,
               fed: MemberState | None = None, ledger=None) -> Member:
        """`fed`: the member of the stage's `stage:NAME` whose run it is given."""
        from kjob.build.params import resolve_parameters

        recipe, backend = self.campaign.recipe_of(stage), self.campaign.backend
        if recipe.name not in self._digests:
            self._digests[recipe.name] = source_digest(self.ws, recipe)
        parameters = resolve_parameters(self.ws, recipe, backend, overrides)
        ref = run_ref(fed.run) if fed is not None else None
        inputs = self._given(stage, ref, ledger)
        signature = run_signature(recipe, self._digests[recipe.name], parameters, backend, inputs)
        return Member(stage.name, index, point, overrides, parameters, signature, source, recipe,
                      fed.member.label if fed is not None else None, stage.inputs + ((ref,) if ref else ()))

    def _given(self, stage: Stage, ref: str | None, ledger) -> tuple:
        """The inputs a member of `stage` is pushed with, as its push resolves them (the
        recipe's, the stage's, its input run): a member's signature includes them."""
        key = (stage.name, ref)
        if key not in self._inputs:
            refs = [*self.campaign.recipe_of(stage).inputs, *stage.inputs, *([ref] if ref else [])]
            self._inputs[key] = tuple(item.record for item in resolve_inputs(
                self.ws, ledger, refs, self.campaign.backend)) if refs else ()
        return self._inputs[key]

    def plan(self, runs: list[Run], push_failures: dict | None = None, since: float = 0.0, ledger=None) -> Plan:
        """Where each member stands, given the campaign's runs in the ledger.

        `push_failures`: member key -> pushes this process saw fail before the backend kept
        anything (no row); `since`: infrastructure failures before it are not counted (a
        sweep with --retry-failed starts every failed member afresh); `ledger`: the open
        ledger (else one is opened) where adoptable runs and input runs are looked up."""
        with nullcontext(ledger) if ledger is not None else Ledger(self.ws.paths.ledger) as ledger:
            return self._plan(ledger, runs, push_failures or {}, since)

    def _plan(self, ledger, runs: list[Run], push_failures: dict, since: float) -> Plan:
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
            elif stage.inputs_from:
                members = [] if waiting else self._fed(stage, stages[stage.inputs_from], plan, ledger)
            else:
                members = self._grid_members[stage.name]
            if waiting:
                plan.state, plan.why = "waiting", f"waits for {', '.join(waiting)}"
            elif plan.state == "open":
                for gate in stage.gates:
                    held, why = self._gate(gate, stages[gate.stage])
                    plan.why = f"{plan.why}; {why}" if plan.why else why
                    if not held:
                        plan.state = "gated off"
                        break
            found = {} if self.fresh or plan.state != "open" else self._adopter(
                ledger, {m.signature: m.recipe.name for m in members if m.key not in by_key and m.signature})
            for member in members:
                if member.problem:
                    plan.members.append(MemberState(member, [], "failed", member.problem))
                    continue
                attempts = by_key.get(member.key, [])
                claimed.add(member.key)
                state = self._state(member, attempts, plan, push_failures.get(member.key, 0), since)
                run = found.get(member.signature)
                if run is not None and state.status in ("pending", "retry"):
                    state = MemberState(member, [*attempts, run], "complete", f"adopted {run.ref}", adopted=True)
                plan.members.append(state)
            stages[stage.name] = plan
        strays = [r for key, rs in by_key.items() if key not in claimed for r in rs]
        return Plan(self.campaign, list(stages.values()), strays)

    def _fed(self, stage: Stage, source: StagePlan, plan: StagePlan, ledger) -> list[Member]:
        """A member per member of `source` that completed and is fetched (times the stage's grid
        points), each given its run; more come while `source` has members to settle."""
        if source.state == "gated off":
            plan.state, plan.why = "gated off", f"its inputs' stage {source.stage.name} is gated off"
            return []
        done = [m for m in source.members if m.status == "complete" and m.run is not None and not needs_fetch(m.run)]
        plan.feeding = not source.settled
        if not done and plan.feeding:
            plan.state, plan.why = "waiting", f"waits for a member of {source.stage.name} to complete"
        members, index = [], 0
        for fed in done:
            for point in stage.points:
                index += 1
                overrides = {**stage.parameters, **point}
                try:
                    members.append(self.member(stage, index, point, overrides, fed=fed, ledger=ledger))
                except KjobError as exc:  # its input cannot be given (gone, not fetchable): failed, said why
                    members.append(Member(stage.name, index, point, overrides, {}, "", None, self.campaign.recipe_of(
                        stage), fed.member.label, problem=exc.message))
        return members

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
        return [self.member(stage, i, m.point, {**m.overrides, **own}, m.label)
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
