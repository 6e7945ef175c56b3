"""A campaign's runs made from runs: a stage's inputs, and members that adopt a run already made.

**Stage inputs.** `inputs = ["stage:train"]` in a stage's table gives each of its members one
member of stage `train`'s run as an input: the stage has a member per member of `train` that
completed and whose outputs are fetched (crossed with its own grid points, if it has any),
in `train`'s order, and each is pushed as soon as its train member is fetched (it does not
wait for the rest of `train`). A train member that failed has no eval member; a gated-off
`train` turns the stage off. The stage's other items are run refs (KERNEL[:vN][@BACKEND],
kjob.lifecycle.inputs) that every member of it gets. A member's signature includes its
inputs, each the concrete run and the SHA-256 of every file it gave, so a resumed sweep
finds it again, and a train member run anew makes its eval member anew.

**Adoption.** A member with no run of its own yet whose signature is the signature of a
complete run of its recipe in the ledger (another campaign's member, a plain push, a run of
a stage since dropped from the file) adopts that run instead of pushing: the same sources,
parameters, backend and inputs are the same run (`kjob push --reuse` matches the same way).
Not adopted: a run of another stage of the same campaign (a stage that runs a member again,
a top-k stage without parameters of its own, says so in the file). Nothing is written: the
plan finds it again each time from the ledger. `kjob sweep NAME --fresh` adopts nothing.
"""

from kjob.backends import BACKENDS
from kjob.build.schema import Where
from kjob.errors import UsageError
from kjob.runs.lineage import RunName
from kjob.runs.record import Run, parse_lane

STAGE_PREFIX = "stage:"


def stage_inputs(w: Where, table: dict, earlier: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """(the stage named by `stage:NAME`, or None; the other refs) of a stage's `inputs`."""
    value = table.get("inputs", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise w.fail("inputs", 'expected a list like ["stage:train"] or ["KERNEL[:vN][@BACKEND]"]', value)
    source, refs = None, []
    for item in value:
        if item.startswith(STAGE_PREFIX):
            name = item[len(STAGE_PREFIX):]
            if name not in earlier:
                raise w.fail("inputs", f"expected stage:<an earlier stage> ({', '.join(earlier) or 'there is none'})",
                              item)
            if source is not None and source != name:
                raise w.problem(f"inputs: one stage:NAME at most (a member per member of it), not {source} and {name}")
            source = name
            continue
        try:
            RunName.parse(item, BACKENDS)
        except UsageError as exc:
            raise w.fail("inputs", f"expected KERNEL[:vN][@BACKEND] ({exc.message})", item) from exc
        refs.append(item)
    return source, tuple(dict.fromkeys(refs))


def run_ref(run: Run) -> str:
    """A ref that names exactly `run` (kjob.lifecycle.inputs reads it): `lab@local:v3`,
    `lab@camp-1@kaggle:k2-v1`."""
    incarnation = f"k{run.incarnation}-" if run.incarnation > 1 else ""
    return f"{run.kernel}@{run.backend}:{incarnation}v{run.version}"


class Adopter:
    """Which complete run each member may adopt: each signature is asked of the ledger once in
    a sweep (a run made elsewhere while it runs is adopted by the next sweep); the runs found
    are read again each time (fetched since, gone, archived). `campaign`, `stages`: its runs
    of these stages are never adopted by another of them."""

    def __init__(self, campaign: str, stages):
        self.campaign, self.stages = campaign, set(stages)
        self.known: dict[str, int | None] = {}  # signature -> the run it may adopt

    def __call__(self, ledger, wanted: dict[str, str]) -> dict[str, Run]:
        """{signature: run} for `wanted` ({signature: recipe name}) where there is one."""
        new = {s: recipe for s, recipe in wanted.items() if s not in self.known}
        if new:
            self.known.update(dict.fromkeys(new))
            self.known.update(_adoptable(ledger, new, self.campaign, self.stages))
        ids = {s: self.known[s] for s in wanted if self.known.get(s) is not None}
        runs = {run.id: run for run in ledger.runs_with_ids(list(set(ids.values())))} if ids else {}
        return {s: runs[i] for s, i in ids.items() if i in runs and runs[i].state.status == "complete"
                and not runs[i].gone and not runs[i].archived}


def _adoptable(ledger, wanted: dict[str, str], campaign: str, stages) -> dict[str, int]:
    """{signature: the id of the newest complete run with it, still there (not gone, not
    archived)} for `wanted` ({signature: recipe name}), a run of that recipe's own kernel or of
    a lane's, and not of one of `stages` of `campaign`; one query for them all
    (kjob.runs.lineage.complete_run_with asks about one)."""
    found: dict[str, int] = {}
    signatures = list(wanted)
    for start in range(0, len(signatures), 500):  # SQLite's limit on a statement's parameters
        chunk = signatures[start:start + 500]
        rows = ledger.read(f"SELECT id, kernel, signature, campaign, stage FROM runs WHERE signature IN "
                           f"({','.join('?' * len(chunk))})"
                           " AND status='complete' AND version IS NOT NULL AND gone_at IS NULL AND archived_at IS NULL"
                           " ORDER BY created_at DESC, id DESC", tuple(chunk))
        for row in rows:
            recipe = wanted[row["signature"]]
            if row["campaign"] == campaign and row["stage"] in stages:
                continue
            if row["signature"] not in found and (row["kernel"] == recipe or
                                                 (parse_lane(row["kernel"]) or ("",))[0] == recipe):
                found[row["signature"]] = row["id"]
    return found
