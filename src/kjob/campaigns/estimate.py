"""`kjob sweep NAME --dry-run`: the plan of a campaign, and what it would cost, spending nothing.

It reads the ledger as last recorded (no backend is asked about a run, nothing is pushed or
fetched), builds the first member that would be pushed (so a build problem shows now, and
kernels/ is not written), and estimates the hours of the members left to run from what runs
of the recipe actually took: each stage's median time per member where some completed, else
the median of the recipe's earlier complete runs on the backend (the ledger's). Session
timeouts bound GPU hours only (Kaggle stops a session there, and the quota counts them): a
CPU recipe's estimate never reads "at most 48 hours" for runs of seconds.
"""

import statistics
from dataclasses import dataclass

from kjob.campaigns.file import Campaign
from kjob.campaigns.plan import Plan, Planner, expected_seconds, needs_fetch, source_digest
from kjob.campaigns.lanes import Lanes, backend_lanes
from kjob.build.kernel_metadata import LaneKernel, lane_kernel


@dataclass(frozen=True)
class Estimate:
    to_run: int  # members left to run (a top-k stage not chosen yet: its k)
    at_most: float  # seconds, by session timeouts
    about: float | None  # seconds, by what runs of the recipe took (None: none completed)
    gpu: bool  # the recipe asks for a GPU on a backend that has accelerators to spend
    basis: str = ""  # what `about` is judged by, in words
    lanes: int = 1  # members at once: about / lanes is how long the rest takes

    def line(self) -> str:
        """The dry run's words for it."""
        count = f"to run: {self.to_run} member(s)"
        about = f"about {self.about / 3600:.2f} {self.basis}" if self.about is not None else ""
        if self.gpu:
            text = f"{count}; GPU hours: at most {self.at_most / 3600:.2f} (session timeouts)" + (
                f", {about}" if about else "")
        elif about:
            text = f"{count}; hours (no GPU quota spent): {about}"
        else:
            return f"{count}; hours (no GPU quota spent): not known until a run of the recipe completes here"
        if self.about is not None and self.to_run:
            lanes = max(1, min(self.lanes, self.to_run))
            text += f"; about {_span(self.about / lanes)} from start to end with {lanes} lane(s)"
        return text


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class DryRun:
    plan: Plan
    lanes: Lanes
    lane_kernels: list[LaneKernel]  # Kaggle: the kernel each lane pushes to
    estimate: Estimate


def dry_run(ws, campaign: Campaign, fresh: bool = False) -> DryRun:
    """`fresh`: as `kjob sweep --fresh` would plan it (no member adopts a run)."""
    from kjob.backends import get_backend
    from kjob.build.plan import plan_build
    from kjob.runs.ledger import Ledger

    backend = get_backend(ws, campaign.backend)
    planner = Planner(ws, campaign, source_digest(ws, campaign.recipe), fresh=fresh)
    with Ledger(ws.paths.ledger) as ledger:
        plan = planner.plan(ledger.runs(campaign=campaign.name), ledger=ledger)
        earlier = _earlier_spans(ledger.runs(), campaign)
    first = {}  # the first member of each recipe that would be pushed
    for state in plan.members:
        if state.status in ("pending", "retry", "waiting") and not state.member.problem:
            first.setdefault(state.member.recipe.name, state.member)
    for recipe, member in first.items():
        plan_build(ws, recipe, member.overrides)  # checks it builds; writes nothing
    lanes = backend_lanes(backend, campaign.recipe, campaign.name, campaign.lanes, offline=True)
    kernels = [lane_kernel(campaign.recipe, campaign.name, n) for n in range(1, lanes.limit + 1)] \
        if backend.serves_latest_only else []
    return DryRun(plan, lanes, kernels, _estimate(campaign, plan, backend.name, earlier, lanes.limit))


def _earlier_spans(runs, campaign: Campaign) -> list[float]:
    """Push-to-end seconds of the recipe's complete runs on the campaign's backend."""
    from kjob.runs.record import recipe_name

    return [r.finished_at - r.created_at for r in runs
            if r.backend == campaign.backend and recipe_name(r.kernel) == campaign.recipe.name
            and r.state.status == "complete" and r.finished_at]


def _estimate(campaign: Campaign, plan: Plan, backend: str, earlier: list[float] | None = None,
              lanes: int = 1) -> Estimate:
    medians = {s.stage.name: expected_seconds(s) for s in plan.stages}
    known = [m for m in medians.values() if m is not None]
    basis = "by the members that completed"
    if not known and earlier:
        known = [statistics.median(earlier)]
        basis = f"by the recipe's {len(earlier)} earlier run(s) here ({_span(known[0])} each)"
    count, about, at_most, gpu = 0, 0.0, 0.0, False
    lefts: dict[str, int] = {}
    for stage in plan.stages:
        recipe = campaign.recipe_of(stage.stage)
        timeout = campaign.timeout or recipe.session_timeout
        left = sum(1 for m in stage.members if m.status in ("pending", "retry", "waiting"))
        if stage.stage.top and stage.state == "waiting":
            left = stage.stage.top.k
        if stage.stage.inputs_from and stage.state != "gated off":  # a member for each of its source's to come
            source = next(s for s in plan.stages if s.stage.name == stage.stage.inputs_from)
            to_come = lefts[source.stage.name] + sum(1 for m in source.members if m.status not in (
                "pending", "retry", "waiting", "failed") and (m.status != "complete" or needs_fetch(m.run)))
            left += to_come * len(stage.stage.points)
        if stage.state == "gated off":
            left = 0
        lefts[stage.stage.name] = left
        count += left
        at_most += left * timeout
        gpu = gpu or (left and recipe.accelerator == "gpu")
        about += left * (medians[stage.stage.name] or (sorted(known)[len(known) // 2] if known else timeout))
    gpu = bool(gpu or (not count and campaign.recipe.accelerator == "gpu")) and backend != "local"
    return Estimate(count, at_most, about if known else None, gpu, basis, max(1, lanes))
