"""`kjob sweep NAME --dry-run`: the plan of a campaign, and what it would cost, spending nothing.

It reads the ledger as last recorded (no backend is asked about a run, nothing is pushed or
fetched), builds the first member that would be pushed (so a build problem shows now, and
kernels/ is not written), and estimates the GPU hours of the members left to run: each
stage's median time per member where some completed, else the session timeout (an upper
bound, since Kaggle stops a session there).
"""

from dataclasses import dataclass

from kjob.campaigns.file import Campaign
from kjob.campaigns.plan import Plan, Planner, expected_seconds, source_digest
from kjob.campaigns.lanes import Lanes, backend_lanes
from kjob.build.kernel_metadata import LaneKernel, lane_kernel


@dataclass(frozen=True)
class Estimate:
    to_run: int  # members left to run (a top-k stage not chosen yet: its k)
    at_most: float  # seconds, by session timeouts
    about: float | None  # seconds, by the medians of the members that completed (None: none has)
    gpu: bool  # the recipe asks for a GPU on a backend that has accelerators to spend


@dataclass(frozen=True)
class DryRun:
    plan: Plan
    lanes: Lanes
    lane_kernels: list[LaneKernel]  # Kaggle: the kernel each lane pushes to
    estimate: Estimate


def dry_run(ws, campaign: Campaign) -> DryRun:
    from kjob.backends import get_backend
    from kjob.build.plan import plan_build
    from kjob.runs.ledger import Ledger

    backend = get_backend(ws, campaign.backend)
    planner = Planner(ws, campaign, source_digest(ws, campaign.recipe))
    with Ledger(ws.paths.ledger) as ledger:
        plan = planner.plan(ledger.runs(campaign=campaign.name))
    pending = [m for m in plan.members if m.status in ("pending", "retry", "waiting")]
    if pending:
        plan_build(ws, campaign.recipe.name, pending[0].member.overrides)  # checks it builds; writes nothing
    lanes = backend_lanes(backend, campaign.recipe, campaign.name, campaign.lanes, offline=True)
    kernels = [lane_kernel(campaign.recipe, campaign.name, n) for n in range(1, lanes.limit + 1)] \
        if backend.serves_latest_only else []
    return DryRun(plan, lanes, kernels, _estimate(campaign, plan, backend.name))


def _estimate(campaign: Campaign, plan: Plan, backend: str) -> Estimate:
    timeout = campaign.timeout or campaign.recipe.session_timeout
    medians = {s.stage.name: expected_seconds(s) for s in plan.stages}
    known = [m for m in medians.values() if m is not None]
    count, about = 0, 0.0
    for stage in plan.stages:
        left = sum(1 for m in stage.members if m.status in ("pending", "retry", "waiting"))
        if stage.stage.top and stage.state == "waiting":
            left = stage.stage.top.k
        if stage.state == "gated off":
            left = 0
        count += left
        about += left * (medians[stage.stage.name] or (sorted(known)[len(known) // 2] if known else timeout))
    gpu = campaign.recipe.accelerator == "gpu" and backend != "local"
    return Estimate(count, count * timeout, about if known else None, gpu)
