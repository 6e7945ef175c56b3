"""A run's metrics, read without knowing the project: flattened names, their sources, and
which way each one is better.

Each source is kept apart in the ledger, so that one never overwrites another:

    metadata    every number in metadata.json's `metrics` and `final` tables, nested keys
                joined with dots ({"t20": {"mae": 0.7}} -> `t20.mae`)
    history     for each numeric column C of metrics.jsonl: `C.last`, `C.best` and
                `C.best_epoch` (the row's `epoch`, else its 1-based position)
    evaluation  what an evaluator declared for the run (`declared`)
    earlier     whatever a ledger before schema 3 recorded

A run's `metrics` is their union; on a name two sources share, the one listed first wins
(the run's own keys are never replaced by what kjob derives).

Which way is better (`ModeBook.mode`): the recipe's `[metrics]` (`primary` with `mode`, and
`modes`), then what an evaluator declared, then the name: a name with a word containing
`loss`, a word starting with `err`, or the word `mae`, `rmse` or `wer` is minimised, any
other maximised. `C.best` and `C.last` go the way of `C`.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from kjob.paths import RUN_METADATA, RUN_METRICS

SOURCES = ("metadata", "history", "evaluation", "earlier")
METADATA_TABLES = ("metrics", "final")  # metadata.json's tables of results, first wins
MODES = ("min", "max")
_DERIVED = (".best", ".last")
_WORD = re.compile(r"[a-z]+")


_ONE_LINE = re.compile(r"[^\n\r]+")


@dataclass(frozen=True)
class MetricSpec:
    """What a recipe (or an evaluator) says about its metrics: the one to rank by, the ones
    a table shows, and which way each is better."""

    primary: str | None = None
    columns: tuple[str, ...] = ()
    modes: dict = field(default_factory=dict)  # name -> "min" | "max"

    @property
    def shown(self) -> list[str]:
        """The primary metric, then the other columns, each once."""
        return list(dict.fromkeys([*([self.primary] if self.primary else []), *self.columns]))

    def as_dict(self) -> dict:
        return {"primary": self.primary, "columns": list(self.columns), "modes": dict(self.modes)}

    @classmethod
    def from_dict(cls, data) -> "MetricSpec":
        """A spec from plain data (a ledger row, an evaluator's summary); bad parts are dropped."""
        if not isinstance(data, dict):
            return cls()
        primary = data.get("primary") if isinstance(data.get("primary"), str) else None
        columns = tuple(c for c in data.get("columns") or () if isinstance(c, str))
        modes = data.get("modes") if isinstance(data.get("modes"), dict) else {}
        return cls(primary, columns, {k: v for k, v in modes.items() if isinstance(k, str) and v in MODES})


def name_mode(name: str) -> str:
    """The default way a metric is better, from its name alone."""
    for word in _WORD.findall(name.lower()):
        if "loss" in word or word.startswith("err") or word in ("mae", "rmse", "wer"):
            return "min"
    return "max"


class ModeBook:
    """Which way each metric is better, from several specs (earlier ones win)."""

    def __init__(self, specs):
        self.specs = [s for s in specs if s is not None]

    def declared(self, name: str) -> str | None:
        for spec in self.specs:
            if name in spec.modes:
                return spec.modes[name]
        return None

    def mode(self, name: str) -> str:
        found = self.declared(name)
        if found is None:
            base = next((name[: -len(s)] for s in _DERIVED if name.endswith(s)), None)
            found = self.declared(base) if base else None
        return found or name_mode(name)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def numeric_leaves(value, prefix: str = "") -> dict:
    """Every finite number in nested tables, keyed by its path joined with dots (lists are
    skipped: a per-step array is a history, not a result)."""
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if is_number(item):
                found[name] = item
            elif isinstance(item, dict):
                found.update(numeric_leaves(item, name))
    return found


def metadata_metrics(metadata) -> dict:
    values: dict = {}
    if isinstance(metadata, dict):
        for table in reversed(METADATA_TABLES):  # the first table wins on a shared name
            values.update(numeric_leaves(metadata.get(table)))
    return values


def history_metrics(lines, modes: ModeBook) -> dict:
    """Last and best value of every numeric column of metrics.jsonl rows (with the best's epoch)."""
    columns: dict[str, list[tuple[float, float]]] = {}
    position = 0
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a half-written last line, or a stray print
        if not isinstance(row, dict):
            continue
        position += 1
        epoch = row.get("epoch") if is_number(row.get("epoch")) else position
        for name, value in numeric_leaves({k: v for k, v in row.items() if k != "epoch"}).items():
            columns.setdefault(name, []).append((epoch, value))
    found = {}
    for name, points in columns.items():
        pick = min if modes.mode(name) == "min" else max
        best = pick(points, key=lambda p: p[1])  # the first of equal values
        found.update({f"{name}.last": points[-1][1], f"{name}.best": best[1], f"{name}.best_epoch": best[0]})
    return found


def read_run_metrics(output_dir: Path, modes: ModeBook) -> dict[str, dict]:
    """{source: metrics} from a fetched run's output folder, for the files it has."""
    found = {}
    metadata = output_dir / RUN_METADATA
    if metadata.is_file():
        try:
            found["metadata"] = metadata_metrics(json.loads(metadata.read_text(encoding="utf-8", errors="replace")))
        except json.JSONDecodeError:
            found["metadata"] = {}
    history = output_dir / RUN_METRICS
    if history.is_file():
        found["history"] = history_metrics(history.read_text(encoding="utf-8", errors="replace").splitlines(), modes)
    return found


def declared(part) -> tuple[dict, MetricSpec]:
    """The metrics and spec a producer (an evaluator) declared as
    {"metrics": {...}, "primary": ..., "columns": [...], "modes": {...}}."""
    if not isinstance(part, dict):
        return {}, MetricSpec()
    return numeric_leaves(part.get("metrics")), MetricSpec.from_dict(part)


def merged(sources: dict) -> dict:
    """One flat view of a run's metrics: the first source in SOURCES wins a shared name."""
    order = [s for s in SOURCES if s in sources] + sorted(set(sources) - set(SOURCES))
    view: dict = {}
    for source in reversed(order):
        if isinstance(sources[source], dict):
            view.update(sources[source])
    return view


def recipe_spec(ws, kernel: str) -> MetricSpec | None:
    """The `[metrics]` of builders/<kernel>.toml as it is now (a campaign lane's kernel: its
    recipe's); None when there is no usable table (no recipe, or a broken one: `kjob build`
    reports that, not the runs table). Read here, from the file, so that the runs table never
    needs the build part."""
    from kjob.errors import KjobError
    from kjob.runs.record import recipe_name
    from kjob.toml_tables import Where
    from kjob.workspace import read_toml

    path = ws.paths.recipe(recipe_name(kernel))
    try:
        return metrics_spec(Where(ws.paths.relative(path)), read_toml(path))
    except (KjobError, OSError):
        return None


def metrics_spec(w, data: dict) -> MetricSpec:
    """A recipe's `[metrics]` (`w`: its kjob.toml_tables.Where): primary = "val_acc", mode = "max",
    columns = [...], [metrics.modes] name = "min"."""
    table, mw = w.table_of(data, "metrics"), w.at("metrics")
    mw.refuse_unknown(table, {"primary", "mode", "columns", "modes"})
    expected_mode = f"expected {' or '.join(map(repr, MODES))}"
    primary = table.get("primary")
    if primary is not None and not (isinstance(primary, str) and _ONE_LINE.fullmatch(primary)):
        raise mw.fail("primary", "expected a metric name", primary)
    columns = table.get("columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) and _ONE_LINE.fullmatch(c) for c in columns):
        raise mw.fail("columns", "expected a list of metric names", columns)
    modes = dict(mw.table_of(table, "modes"))
    for name, mode in modes.items():
        if mode not in MODES:
            raise mw.at("modes").fail(name, expected_mode, mode)
    if "mode" in table:
        if table["mode"] not in MODES:
            raise mw.fail("mode", expected_mode, table["mode"])
        if primary is None:
            raise mw.problem("mode applies to the primary metric: set primary too")
        if modes.get(primary, table["mode"]) != table["mode"]:
            raise mw.problem(f"mode {table['mode']!r} and modes.{primary} {modes[primary]!r} disagree")
        modes[primary] = table["mode"]
    return MetricSpec(primary, tuple(columns), modes)


# -- per-step series (training curves) --------------------------------------------------------

# Each per-step source a run's output folder may hold: a name and a reader giving
# {metric: [(step, epoch or None, value), ...]}. A new source (another file format) is one
# more entry here; everything that draws curves reads them through `read_series`.
def _jsonl_series(output_dir: Path) -> dict[str, list[tuple]]:
    path = output_dir / RUN_METRICS
    if not path.is_file():
        return {}
    series: dict[str, list[tuple]] = {}
    position = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a half-written last line, or a stray print
            if not isinstance(row, dict):
                continue
            position += 1
            step = row.get("step") if is_number(row.get("step")) else position
            epoch = row.get("epoch") if is_number(row.get("epoch")) else None
            values = numeric_leaves({k: v for k, v in row.items() if k not in ("epoch", "step")})
            for name, value in values.items():
                series.setdefault(name, []).append((step, epoch, value))
    return series


SERIES_SOURCES = {"history": _jsonl_series}


def read_series(output_dir: Path) -> dict[str, list[tuple]]:
    """Every per-step series of a fetched run's output folder, {metric: [(step, epoch, value)]}:
    the sources in SERIES_SOURCES' order, the first to name a metric wins it."""
    found: dict[str, list[tuple]] = {}
    for reader in SERIES_SOURCES.values():
        for name, points in reader(output_dir).items():
            found.setdefault(name, points)
    return found
