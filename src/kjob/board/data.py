"""What the board shows, as plain data: each run's row, the campaigns and the columns
(`collect`), and one run's detail (`run_detail`: its curves, log tail, outputs, reports).

The runs are chosen by kjob's own query code (`kjob runs`' --kernel, --campaign and --where,
kjob.runs.query.select_runs); campaigns are planned by kjob.campaigns.plan as `kjob sweep` plans
them; the curves come from kjob.runs.metrics.read_series, whatever per-step sources it reads.
Nothing here writes a file.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from kjob.errors import KjobError
from kjob.runs.metrics import is_number, read_series, recipe_spec
from kjob.runs.lineage import input_names, inputs_of
from kjob.paths import REPORT_PAGE, REPORT_SUMMARY
from kjob.runs.record import Run, recipe_name, run_duration

MAX_PARAM_COLUMNS = 12
MAX_POINTS = 2000  # per series: a longer one is thinned (its last point always kept)
LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 64 * 1024
MAX_OUTPUTS = 500


@dataclass(frozen=True)
class BoardQuery:
    """Which runs the board shows: `kjob runs`' --kernel, --campaign and --where."""

    kernel: str | None = None
    campaign: str | None = None
    where: tuple[str, ...] = ()


@dataclass
class BoardData:
    summary: dict  # what data.js holds
    runs: list[Run]  # the runs shown, newest first
    details: dict  # run id -> its folder's facts (files, links), for run_detail


def collect(ws, query: BoardQuery, board_folder: Path) -> BoardData:
    """The board's data for the runs `query` selects; links are relative to `board_folder`."""
    from kjob.runs.query import RunQuery, default_columns, select_runs

    selection = select_runs(ws, RunQuery(kernel=query.kernel, campaign=query.campaign, where=tuple(query.where),
                                         archived=True))
    runs = sorted(selection.runs, key=lambda r: (-r.created_at, -r.id))
    reports = _reports(ws, board_folder)
    links = _lineage(ws, runs)
    rows, details = [], {}
    for run in runs:
        files = _files(ws, run, board_folder)
        details[run.id] = files
        rows.append(_row(run, files, reports.get((run.kernel, run.version, run.backend), []),
                         links.get(run.id, {})))
    metrics = default_columns(runs, selection.recipe_specs)
    names = sorted({m for r in runs for m in r.metrics})
    modes = {name: selection.modes.mode(name) for name in names}
    campaigns = [_campaign(ws, name) for name in dict.fromkeys(r.campaign for r in runs if r.campaign)]
    primary = _primary(runs, metrics, selection.recipe_specs, campaigns)
    summary = {
        "workspace": ws.root.name,
        "as_of": max((t for r in runs for t in (r.created_at, r.started_at, r.finished_at) if t), default=None),
        "query": {"kernel": query.kernel, "campaign": query.campaign, "where": list(query.where)},
        "columns": {"params": _param_columns(runs), "metrics": metrics},
        "primary": primary,
        "modes": modes,
        "runs": rows,
        "campaigns": campaigns,
    }
    return BoardData(summary, runs, details)


# -- one run -------------------------------------------------------------------------------


def _row(run: Run, files: dict, reports: list, links: dict) -> dict:
    state = run.state
    return {
        "id": run.id,
        "ref": run.ref,
        "kernel": run.kernel,
        "version": run.version,
        "backend": run.backend,
        "status": state.status,
        "failure": state.describe_failure() if state.status == "error" else None,
        "created": run.created_at,
        "started": run.started_at,
        "finished": run.finished_at,
        "duration": run_duration(run),
        "message": run.notes.message,
        "note": run.note,
        "tags": list(run.notes.tags),
        "params": run.parameters,
        "overrides": run.overrides,
        "metrics": {k: v for k, v in run.metrics.items() if is_number(v)},
        "campaign": run.campaign,
        "stage": run.stage,
        "commit": run.git_commit,
        "dirty": run.git_dirty,
        "notebook": run.notebook_sha256,
        "files": files["state"],
        "folder": files.get("href"),
        "detail": files["state"] in ("ok", "archived") and files.get("folder") is not None,
        "reports": reports,
        # lineage, only where there is some (10,000 rows of empty lists would weigh)
        **({"inputs": links["inputs"], "input_names": input_names(run)} if links.get("inputs") else {}),
        **({"made_into": links["made_into"]} if links.get("made_into") else {}),
    }


def _files(ws, run: Run, board_folder: Path) -> dict:
    """Where the run's fetched files stand: ok, archived, missing (fetched, then deleted),
    gone (its kernel is gone and nothing was fetched), live (a local run in flight: its
    sandbox's working folder, read as it grows) or none (not fetched yet)."""
    if run.version is None:
        return {"state": "none"}
    paths = ws.paths.download(run.kernel, run.backend, run.version, run.incarnation)
    href = _href(paths.folder, board_folder)
    if run.archived:
        there = paths.archive.is_file()
        return {"state": "archived" if there else "missing", "href": _href(paths.archive, board_folder) if there
                else None}
    if paths.folder.is_dir():
        return {"state": "ok", "href": href, "folder": paths}
    if run.fetched_at is not None:
        return {"state": "missing"}
    if not run.state.final and run.backend == "local":
        sandbox = ws.paths.local_run(run.kernel, run.version)
        if sandbox.working_dir.is_dir():
            return {"state": "live", "sandbox": sandbox}
    return {"state": "gone" if run.gone else "none"}


def _href(path: Path, board_folder: Path) -> str:
    """A link from the board's folder to `path` (relative: the workspace moves as one)."""
    return Path(os.path.relpath(path, board_folder)).as_posix()


def run_detail(ws, run: Run, files: dict, board_folder: Path) -> dict | None:
    """One run's curves, log tail, outputs, notebook and sources (what `runs/<id>.js` holds);
    None when nothing of it is on this machine."""
    from kjob.build.provenance import kept_notebook, module_sources

    paths, sandbox = files.get("folder"), files.get("sandbox")
    detail: dict = {"series": {}, "log": None, "outputs": [], "sources": [], "notebook": None,
                    # each input's files and their SHA-256, as the push recorded them
                    "inputs": [{"label": i.label, "files": dict(sorted(i.files.items()))} for i in inputs_of(run)]}
    if paths is not None:
        spec = recipe_spec(ws, run.kernel)  # its `[metrics] log` patterns draw the printed lines' curves
        series = read_series(paths.output_dir, paths.log, spec.log if spec else ())
        detail["series"] = {name: _thin(points) for name, points in series.items()}
        detail["log"] = _tail(paths.log)
        detail["outputs"] = _outputs(paths.output_dir, board_folder)
    elif sandbox is not None:  # in flight: what it has written so far
        detail["series"] = {name: _thin(points) for name, points in read_series(sandbox.working_dir).items()}
        detail["log"] = _tail(sandbox.log, entries=True)
    notebook = ws.paths.pushed_notebook(run.notebook_sha256)
    if notebook.is_file():
        detail["notebook"] = _href(notebook, board_folder)
        kept = kept_notebook(ws, run.notebook_sha256) or {}
        recipe = kept.get("metadata", {}).get("kjob", {}).get("recipe", {}) if isinstance(kept, dict) else {}
        detail["recipe_sha256"] = recipe.get("sha256") if isinstance(recipe, dict) else None
        import hashlib

        detail["sources"] = [{"path": p, "sha256": hashlib.sha256(t.encode("utf-8")).hexdigest()}
                             for p, t in module_sources(kept).items()] if isinstance(kept, dict) else []
    if paths is None and sandbox is None and detail["notebook"] is None and not detail["inputs"]:
        return None
    return detail


def _lineage(ws, runs: list[Run]) -> dict:
    """run id -> {inputs, made_into}: what each run shown was given (its row's inputs, ledger
    schema 5: the run, its mounts, how many files) and the runs given its outputs, found in one
    read of the ledger's rows with inputs (kjob.runs.lineage says the same a run at a time).
    `run` is the id of a run on this board (its page), None for one not on it."""
    from kjob.runs.ledger import Ledger

    shown = {(r.kernel, r.backend, r.version, r.incarnation): r.id for r in runs}
    on_board = set(shown.values())
    with Ledger(ws.paths.ledger) as ledger:
        ids = [row["id"] for row in ledger.read("SELECT id FROM runs WHERE inputs <> '[]' ORDER BY created_at, id")]
        consumers = ledger.runs_with_ids(ids)
    found: dict = {}
    for consumer in consumers:
        for item in inputs_of(consumer):
            producer = shown.get((item.kernel, item.backend, item.version, item.incarnation))
            if consumer.id in on_board:
                found.setdefault(consumer.id, {}).setdefault("inputs", []).append(
                    {"label": item.label, "run": producer, "mounts": list(item.mounts), "files": len(item.files)})
            if producer is not None:
                found.setdefault(producer, {}).setdefault("made_into", []).append(
                    {"ref": consumer.ref, "run": consumer.id if consumer.id in on_board else None,
                     "status": consumer.state.status})
    return found


def _thin(points: list[tuple]) -> list[list]:
    step = max(1, -(-len(points) // MAX_POINTS))
    kept = points[::step]
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return [list(p) for p in kept]


def _tail(path: Path, entries: bool = False) -> dict | None:
    """The last lines of a log; `entries`: a sandbox's log.jsonl ({stream_name, time, data} a line)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = text.splitlines()
    if size > LOG_TAIL_BYTES:
        lines = lines[1:]  # the first may be cut
    if entries:
        lines = [text for line in lines for text in _entry_lines(line)]
    shown = lines[-LOG_TAIL_LINES:]
    return {"lines": shown, "cut": size > LOG_TAIL_BYTES or len(lines) > len(shown)}


def _entry_lines(line: str) -> list[str]:
    try:
        entry = json.loads(line)
    except ValueError:
        return []  # a line cut by the tail's start, or still being written
    data = entry.get("data") if isinstance(entry, dict) else None
    return data.splitlines() if isinstance(data, str) else []


def _outputs(folder: Path, board_folder: Path) -> list[dict]:
    found = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*")):
        if len(found) >= MAX_OUTPUTS:
            break
        if path.is_file() and not path.is_symlink():
            found.append({"name": path.relative_to(folder).as_posix(), "size": path.stat().st_size,
                          "href": _href(path, board_folder)})
    return found


def _reports(ws, board_folder: Path) -> dict:
    """(kernel, version, backend) -> [{name, href}] of the evaluations of that run
    (eval/reports/<name>/, as the evaluator records the run in its summary)."""
    found: dict = {}
    try:
        folders = sorted(p for p in ws.paths.reports.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return found
    for folder in folders:
        try:
            summary = json.loads((folder / REPORT_SUMMARY).read_text(encoding="utf-8"))
            origin = summary.get("provenance") or {}
            key = (origin.get("run"), origin.get("version"), origin.get("backend"))
        except (OSError, ValueError, AttributeError):
            continue
        page = folder / REPORT_PAGE
        found.setdefault(key, []).append({"name": folder.name, "href": _href(page, board_folder)
                                          if page.is_file() else None})
    return found


def _param_columns(runs: list[Run]) -> list[str]:
    """The parameters worth a column: those set with -p, then those whose value differs
    between runs, most often set first."""
    counts: dict[str, int] = {}
    for run in runs:
        for name in run.overrides:
            counts[name] = counts.get(name, 0) + 1
    values: dict[str, set] = {}
    for run in runs:
        for name, value in run.parameters.items():
            values.setdefault(name, set()).add(json.dumps(value, sort_keys=True, default=str))
    varying = [n for n, v in values.items() if len(v) > 1 and n not in counts]
    chosen = sorted(counts, key=lambda n: (-counts[n], n)) + sorted(varying)
    return chosen[:MAX_PARAM_COLUMNS]


def _primary(runs: list[Run], metrics: list[str], specs: dict, campaigns: list[dict]) -> str | None:
    """The metric the board calls a run best by: the newest run's recipe's declared primary
    (the first column), else the metric a campaign of that recipe ranks by (its file names
    what matters where the recipe names nothing: Loss/val.best, not the first of its own
    metrics by name, Loss/train.best), else the first column."""
    if not runs or not metrics:
        return next(iter(metrics), None)
    spec = specs.get(runs[0].kernel)
    if spec is None or not spec.primary:
        recipe = recipe_name(runs[0].kernel)
        known = {n for r in runs for n in r.metrics}
        for campaign in campaigns:
            if campaign.get("recipe") == recipe and campaign["metric"] in known:
                return campaign["metric"]
    return metrics[0]


def _metric(run: Run | None, metric: str | None):
    value = run.metrics.get(metric) if run is not None and metric else None
    return value if is_number(value) else None


# -- campaigns -----------------------------------------------------------------------------


def _campaign(ws, name: str) -> dict:
    """A campaign's stages and members as `kjob sweep --status` plans them (without asking
    any backend), its grid dimensions and its leaderboard; its file unreadable: the runs by
    stage, and why."""
    from kjob.campaigns.file import load_campaign
    from kjob.campaigns.members import member_metric
    from kjob.campaigns.plan import Planner, campaign_modes, point_text, source_digest
    from kjob.runs.ledger import Ledger
    from kjob.runs.query import sort_runs

    with Ledger(ws.paths.ledger) as ledger:
        runs = ledger.runs(campaign=name)
    try:
        campaign = load_campaign(ws, name)
        plan = Planner(ws, campaign, source_digest(ws, campaign.recipe)).plan(runs)
    except KjobError as exc:
        stages: dict = {}
        for run in sorted(runs, key=lambda r: (r.created_at, r.id)):
            stages.setdefault(run.stage or "-", []).append(run)
        return {"name": name, "error": exc.message, "metric": None, "mode": None, "dims": [], "leaderboard": [],
                "strays": 0, "stages": [{"name": stage, "state": "?", "why": "", "top": None, "members": [
                    {"label": r.ref, "status": r.state.status, "note": "", "run": r.id, "ref": r.ref, "point": {}}
                    for r in members]} for stage, members in stages.items()]}
    modes = campaign_modes(campaign)
    metric = member_metric(plan, campaign.metric)  # a base name (Loss/val) ranks by its series' best
    dims = list(dict.fromkeys(k for s in campaign.stages for p in s.points for k in p))
    stages = []
    for stage in plan.stages:
        members = [{"label": m.member.label, "status": m.status, "note": m.note,
                    "run": m.run.id if m.run else None, "ref": m.run.ref if m.run else None,
                    "point": m.member.point, "point_text": point_text(m.member.point),
                    "value": _metric(m.run, metric)} for m in stage.members]
        stages.append({"name": stage.stage.name, "state": stage.state, "why": stage.why,
                       "top": stage.stage.top.source if stage.stage.top else None, "members": members})
    done = {m.run.id: m for m in plan.members if m.status == "complete" and m.run is not None}
    ranked = [m.run for m in done.values() if metric and is_number(m.run.metrics.get(metric))]
    leaderboard = [{"rank": i, "label": done[r.id].member.label, "run": r.id, "ref": r.ref,
                    "value": r.metrics[metric]} for i, r in enumerate(sort_runs(ranked, metric, modes) if ranked
                                                                          else [], 1)]
    return {"name": name, "error": None, "metric": metric, "mode": modes.mode(metric) if metric else None,
            "recipe": campaign.recipe.name, "backend": campaign.backend, "dims": dims, "stages": stages,
            "leaderboard": leaderboard, "strays": len(plan.strays)}
