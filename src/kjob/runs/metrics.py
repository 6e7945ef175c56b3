"""A run's metrics, read without knowing the project: flattened names, their sources, and
which way each one is better.

Each source is kept apart in the ledger, so that one never overwrites another:

    metadata    every number in metadata.json's `metrics` and `final` tables, nested keys
                joined with dots ({"t20": {"mae": 0.7}} -> `t20.mae`)
    history, tensorboard, csv, trainer, log
                per-step series (kjob.runs.metric_readers: metrics.jsonl, TensorBoard events,
                Lightning's metrics.csv, trainer_state.json, the `[metrics] log` patterns);
                each series C gives `C.last`, `C.best` and `C.best_epoch` (the epoch of the
                best point where the series has one, else its step)
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

from kjob.paths import RUN_METADATA
from kjob.runs import metric_readers as readers

SOURCES = ("metadata", "history", "tensorboard", "csv", "trainer", "log", "evaluation", "earlier")
SERIES_SOURCES = {"history": readers.jsonl_series, "tensorboard": readers.tensorboard_series,
                  "csv": readers.csv_series, "trainer": readers.trainer_series}  # + "log", from the run's log
NO_METRICS = ("no metrics found; kjob reads metadata.json, metrics.jsonl, TensorBoard events, Lightning metrics.csv,"
              " trainer_state.json and [metrics] log patterns")
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
    log: tuple[str, ...] = ()  # regexes over the run's log, named groups (kjob.runs.metric_readers.log_series)

    @property
    def shown(self) -> list[str]:
        """The primary metric, then the other columns, each once."""
        return list(dict.fromkeys([*([self.primary] if self.primary else []), *self.columns]))

    def as_dict(self) -> dict:
        return {"primary": self.primary, "columns": list(self.columns), "modes": dict(self.modes),
                **({"log": list(self.log)} if self.log else {})}

    @classmethod
    def from_dict(cls, data) -> "MetricSpec":
        """A spec from plain data (a ledger row, an evaluator's summary); bad parts are dropped."""
        if not isinstance(data, dict):
            return cls()
        primary = data.get("primary") if isinstance(data.get("primary"), str) else None
        columns = tuple(c for c in data.get("columns") or () if isinstance(c, str))
        modes = data.get("modes") if isinstance(data.get("modes"), dict) else {}
        log = tuple(p for p in data.get("log") or () if isinstance(p, str))
        return cls(primary, columns, {k: v for k, v in modes.items() if isinstance(k, str) and v in MODES}, log)


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


def metric_named(name: str, names) -> str | None:
    """The metric a name as people write it stands for among `names`: itself, else its series'
    best (`val_loss` -> `val_loss.best`), each also in another case where just one name
    differs from it in case only (`kjob runs` shows LOSS/TEST.BEST for Loss/test.best); None
    where neither is there."""
    found = next((n for n in (name, f"{name}.best") if n in names), None)
    return found or folded_name(name, names)


def folded_name(name: str, names) -> str | None:
    """The one name among `names` that is `name`, or its series' best, in another case."""
    for wanted in (name.lower(), f"{name.lower()}.best"):
        folded = [n for n in names if n.lower() == wanted]
        if len(folded) == 1:
            return folded[0]
    return None


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


def series_summary(series: dict, modes: ModeBook) -> dict:
    """`C.last`, `C.best` and `C.best_epoch` of each series C ({C: [(step, epoch, value)]}): the
    best by C's mode (the first of equal values), at its epoch where the point has one, else
    its step."""
    found = {}
    for name, points in series.items():
        if not points:
            continue
        pick = min if modes.mode(name) == "min" else max
        step, epoch, value = pick(points, key=lambda p: p[2])
        found.update({f"{name}.last": points[-1][2], f"{name}.best": value,
                      f"{name}.best_epoch": step if epoch is None else epoch})
    return found


def history_metrics(lines, modes: ModeBook) -> dict:
    """The summary of metrics.jsonl lines (each column's last and best, with the best's epoch)."""
    return series_summary(readers.jsonl_lines(lines), modes)


@dataclass
class Reading:
    """What a run's outputs and log hold: series by source, metadata's numbers, and notes
    (one line each: a reader that is not installed, no metrics at all)."""

    series: dict = field(default_factory=dict)  # source -> {metric: [(step, epoch, value)]}
    metadata: dict | None = None  # None: no metadata.json
    notes: list[str] = field(default_factory=list)


def read_outputs(output_dir: Path, log: Path | None = None, patterns=()) -> Reading:
    """Every source a fetched run's output folder (and its log.txt, through `patterns`) has."""
    reading = Reading()
    metadata = output_dir / RUN_METADATA
    if metadata.is_file():
        try:
            reading.metadata = metadata_metrics(json.loads(metadata.read_text(encoding="utf-8", errors="replace")))
        except json.JSONDecodeError:
            reading.metadata = {}
    for source, reader in SERIES_SOURCES.items():
        try:
            found = reader(output_dir)
        except ImportError:
            reading.notes.append(f"TensorBoard event files not read: the reader is an extra "
                                 f"({readers.METRICS_EXTRA})")
            continue
        if found or (source == "history" and readers.jsonl_files(output_dir)):
            reading.series[source] = found
    if patterns and log is not None and log.is_file():
        reading.series["log"] = readers.log_series(log.read_text(encoding="utf-8", errors="replace"), patterns)
    if not reading.metadata and not any(reading.series.values()):
        reading.notes.append(NO_METRICS)
    return reading


def read_run_metrics(output_dir: Path, modes: ModeBook, log: Path | None = None, patterns=(),
                     notes: list | None = None) -> dict[str, dict]:
    """{source: metrics} from a fetched run's output folder (and log), for the sources it has;
    `notes` gets Reading.notes."""
    reading = read_outputs(output_dir, log, patterns)
    found = {} if reading.metadata is None else {"metadata": reading.metadata}
    for source, series in reading.series.items():
        found[source] = series_summary(series, modes)
    if notes is not None:
        notes.extend(reading.notes)
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
    columns = [...], log = ["(?P<name>...) regexes over the run's log"], [metrics.modes] name = "min"."""
    table, mw = w.table_of(data, "metrics"), w.at("metrics")
    mw.refuse_unknown(table, {"primary", "mode", "columns", "modes", "log"})
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
    return MetricSpec(primary, tuple(columns), modes, _log_patterns(mw, table.get("log", [])))


def _log_patterns(mw, patterns) -> tuple[str, ...]:
    """`log = ["regex with (?P<name>...) groups", ...]`: each compiles and names a metric."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise mw.fail("log", "expected a list of regular expressions", patterns)
    for pattern in patterns:
        try:
            groups = set(re.compile(pattern).groupindex)
        except re.error as exc:
            raise mw.fail("log", f"not a regular expression ({exc})", pattern) from exc
        if not groups - set(readers.AXES):
            raise mw.fail("log", "expected a named group for each metric, e.g. 'valid loss +(?P<valid_loss>[\\d.]+)'",
                          pattern)
    return tuple(patterns)


# -- per-step series (training curves) --------------------------------------------------------


def read_series(output_dir: Path, log: Path | None = None, patterns=()) -> dict[str, list[tuple]]:
    """Every per-step series of a fetched run's output folder (and its log, through `patterns`),
    {metric: [(step, epoch, value)]}: the sources in SOURCES' order, the first to name a metric
    wins it. A reader that is not installed is left out (fetch says so)."""
    found: dict[str, list[tuple]] = {}
    for series in read_outputs(output_dir, log, patterns).series.values():
        for name, points in series.items():
            found.setdefault(name, points)
    return found
