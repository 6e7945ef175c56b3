"""Lanes: how many members of a campaign may be in flight at once on a backend, and, on a
backend that serves only a kernel's latest version (Kaggle), the kernel each lane pushes to.

On Kaggle a kernel's new version makes the previous version's outputs and log unreachable, so
a sweep pushing every member to one kernel would lose each member's outputs as soon as the
next one went out, and "fetch before the next push" would leave one lane for the two GPU
sessions. So each lane has a kernel of its own: `RECIPE@CAMPAIGN-N` in the ledger, titled
"<recipe's title> <campaign> <N>" with that title's slug as its id (Kaggle makes a new kernel
at its title's slug: the two must agree), and a lane takes its next member only once the
previous member's outputs are fetched.

How many lanes: the backend's `capacity(recipe)` (kjob.backends.base.Capacity), minus the
ledger's unfinished runs outside the campaign that take a place in it; the campaign's `lanes`
lowers it, or sets it where the capacity is `settable`. Today:
  local   half the cores, at least 1 (settable)
  kaggle  GPU recipes: the account's two GPU sessions minus the unfinished GPU runs outside the
          campaign (a session it does not know of is refused by Kaggle, and the sweep waits);
          TPU recipes 1; others 2 (settable)
  ray     the runs of the recipe's request that the cluster's nodes hold, minus the unfinished
          Ray runs outside the campaign
  other   1, unless the campaign says
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Lanes:
    limit: int  # members in flight at once (0: none now)
    why: str  # one line for the plan and the table


def backend_lanes(backend, recipe, campaign: str, wanted: int | None, offline: bool = False) -> Lanes:
    """The lanes the campaign gets on `backend` now. `offline`: judge by the ledger as last
    recorded, asking the backend nothing (a dry run)."""
    capacity = backend.capacity(recipe, offline)
    if capacity is None or capacity.limit is None:
        limit = wanted or 1
        return Lanes(limit, f"{limit} ({capacity.why})" if capacity else f"{limit}")
    if capacity.settable:
        if wanted:
            return Lanes(wanted, f"{wanted} (the campaign's lanes)")
        return Lanes(capacity.limit, f"{capacity.limit} ({capacity.why})")
    busy = _outside(backend, campaign, offline, capacity.counts)
    limit = capacity.limit - len(busy)
    why = f"{max(limit, 0)} ({capacity.why}"
    why += f", {len(busy)} taken by {', '.join(r.ref for r in busy)})" if busy else ")"
    return _capped(limit, wanted, why)


def _capped(limit: int, wanted: int | None, why: str) -> Lanes:
    if wanted and wanted < limit:
        return Lanes(wanted, f"{wanted} (the campaign's lanes; {why})")
    return Lanes(max(0, limit), why)


def _outside(backend, campaign: str, offline: bool, counts) -> list:
    """The ledger's unfinished runs on `backend` that are not the campaign's and take a place
    (asked afresh unless offline)."""
    from kjob.lifecycle.watch import unfinished_runs

    return unfinished_runs(backend, lambda run: run.campaign != campaign and counts(run), offline)
