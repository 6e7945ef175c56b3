"""Lanes: how many members of a campaign may be in flight at once on a backend, and, on a
backend that serves only a kernel's latest version (Kaggle), the kernel each lane pushes to.

On Kaggle a kernel's new version makes the previous version's outputs and log unreachable, so
a sweep pushing every member to one kernel would lose each member's outputs as soon as the
next one went out, and "fetch before the next push" would leave one lane for the two GPU
sessions. So each lane has a kernel of its own: `RECIPE@CAMPAIGN-N` in the ledger, titled
"<recipe's title> <campaign> <N>" with that title's slug as its id (Kaggle makes a new kernel
at its title's slug: the two must agree), and a lane takes its next member only once the
previous member's outputs are fetched.

How many lanes (the campaign's `lanes` lowers it; on local it sets it):
  local   half the cores, at least 1: two notebooks on two cores each take twice as long
  kaggle  GPU recipes: the account's two GPU sessions minus the ledger's unfinished GPU runs
          outside the campaign (a session it does not know of is refused by Kaggle, and the
          sweep waits); TPU recipes 1; others 2
  ray     the runs of the recipe's request that the cluster's nodes hold, minus the ledger's
          unfinished Ray runs outside the campaign; a backend may say instead (`capacity`)
  other   the backend's `capacity(recipe)` if it has one, else 1
"""

import os
from dataclasses import dataclass

from kjob.runs.record import uses_gpu

KAGGLE_GPU_SESSIONS = 2
_KAGGLE_OTHER = {"tpu": 1, "none": 2}


@dataclass(frozen=True)
class Lanes:
    limit: int  # members in flight at once (0: none now)
    why: str  # one line for the plan and the table


def local_cores() -> int:
    return os.cpu_count() or 1


def backend_lanes(backend, recipe, campaign: str, wanted: int | None, offline: bool = False) -> Lanes:
    """The lanes the campaign gets on `backend` now. `offline`: judge by the ledger as last
    recorded, asking the backend nothing (a dry run)."""
    if backend.name == "local":
        if wanted:
            return Lanes(wanted, f"{wanted} (the campaign's lanes)")
        limit = max(1, local_cores() // 2)
        return Lanes(limit, f"{limit} ({local_cores()} cores: one run per two)")
    if backend.name == "kaggle":
        return _kaggle(backend, recipe, campaign, wanted, offline)
    if backend.name == "ray":
        return _ray(backend, recipe, campaign, wanted, offline)
    capacity = getattr(backend, "capacity", None)
    limit = capacity(recipe) if callable(capacity) and not offline else None
    limit = min(x for x in (limit, wanted) if x) if (limit or wanted) else 1
    return Lanes(limit, f"{limit}")


def _capped(limit: int, wanted: int | None, why: str) -> Lanes:
    if wanted and wanted < limit:
        return Lanes(wanted, f"{wanted} (the campaign's lanes; {why})")
    return Lanes(max(0, limit), why)


def _outside(backend, campaign: str, offline: bool, gpu_only: bool) -> list:
    """The ledger's unfinished runs on `backend` that are not the campaign's (asked afresh unless offline)."""
    from kjob.lifecycle.watch import unfinished_runs

    return unfinished_runs(backend, lambda run: run.campaign != campaign and (uses_gpu(run) or not gpu_only), offline)


def _kaggle(backend, recipe, campaign, wanted, offline) -> Lanes:
    if recipe.accelerator != "gpu":
        limit = _KAGGLE_OTHER[recipe.accelerator]
        return _capped(wanted or limit, None, f"{wanted or limit} (Kaggle, {recipe.accelerator} sessions)")
    busy = _outside(backend, campaign, offline, gpu_only=True)
    limit = KAGGLE_GPU_SESSIONS - len(busy)
    why = f"{max(limit, 0)} (Kaggle's {KAGGLE_GPU_SESSIONS} GPU sessions"
    why += f", {len(busy)} taken by {', '.join(r.ref for r in busy)})" if busy else ")"
    return _capped(limit, wanted, why)


def _ray(backend, recipe, campaign, wanted, offline) -> Lanes:
    if offline:
        return Lanes(wanted or 1, f"{wanted or 1} (the cluster is not asked in a dry run)")
    capacity = getattr(backend, "capacity", None)
    if callable(capacity):  # the hook a backend may offer: runs of `recipe` it can hold now
        total = capacity(recipe)
    else:
        settings = backend.settings
        total = fitting(backend._cluster(settings.address).connect().nodes(),
                        settings.request(recipe.accelerator).needs())
    if total is None:
        return Lanes(wanted or 1, f"{wanted or 1} (the cluster does not list its nodes' resources)")
    busy = _outside(backend, campaign, offline, gpu_only=False)
    return _capped(total - len(busy), wanted, f"{max(total - len(busy), 0)} (the cluster holds {total} such runs"
                                              f"{f', {len(busy)} running outside the campaign' if busy else ''})")


def fitting(nodes: list[dict] | None, needs: dict[str, float]) -> int | None:
    """How many runs asking for `needs` (Ray's resource names) the nodes hold together."""
    if not nodes:
        return None
    if not needs:
        return len(nodes)
    return sum(int(min(node.get(name, 0) // amount for name, amount in needs.items())) for node in nodes)


def gpu_seconds_left(backend) -> float | None:
    """The GPU quota the account has left this week, for backends with one (Kaggle); None: no limit known."""
    if backend.name != "kaggle":
        return None
    from kjob.backends.kaggle_push import gpu_quota_left

    return gpu_quota_left(backend)
