"""Questions asked of the ledger's runs, for any project: `kjob runs`' names, filters,
ranking, default columns and export.

A NAME (in --sort-by, --where, --columns) is, in this order: one of the run's own columns
(`RUN_COLUMNS`), a metric some listed run has, `metric.NAME` or `param.NAME` spelt out, the
best value of a metrics.jsonl column (`val_acc` -> `val_acc.best`), or a parameter.
"""

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from kjob.errors import UsageError
from kjob.runs.metrics import SOURCES, MetricSpec, ModeBook, folded_name, is_number
from kjob.runs.lineage import input_names, inputs_text
from kjob.runs.record import Run, run_duration, run_record

_TIMES = {"created": "created_at", "started": "started_at", "finished": "finished_at"}
RUN_COLUMNS: dict[str, Callable[[Run], object]] = {
    "kernel": lambda r: r.kernel,
    "version": lambda r: r.version,
    "backend": lambda r: r.backend,
    "status": lambda r: r.state.status,
    "duration": lambda r: run_duration(r),
    "created": lambda r: r.created_at,
    "started": lambda r: r.started_at,
    "finished": lambda r: r.finished_at,
    "parameters": lambda r: " ".join(f"{k}={v}" for k, v in sorted(r.overrides.items())) or None,
    "notebook": lambda r: r.notebook_sha256,
    "commit": lambda r: r.git_commit,
    "message": lambda r: r.notes.message,
    "note": lambda r: r.note,
    "tags": lambda r: list(r.notes.tags),
    "archived": lambda r: r.archived,
    "campaign": lambda r: r.campaign,
    "stage": lambda r: r.stage,
    "inputs": lambda r: inputs_text(r) or None,  # train:local-v3, prep:v2
    "input": lambda r: input_names(r) or None,  # every name of each input: --where input=train:v3
}
FALLBACK_COLUMNS = 6  # a kernel whose recipe names no metrics shows this many of its own
_SERIES = tuple(s for s in SOURCES if s not in ("metadata", "evaluation", "earlier"))
_HEADLINE = re.compile(r"loss|acc|f1|ppl|perplexity|score|bleu|wer|err|mae|rmse|auc")


@dataclass(frozen=True)
class Field:
    kind: str  # "column", "metric" or "param"
    name: str

    def value(self, run: Run):
        if self.kind == "column":
            return RUN_COLUMNS[self.name](run)
        source = run.metrics if self.kind == "metric" else run.parameters
        return source.get(self.name)


def resolve(name: str, runs: list[Run]) -> Field:
    """What NAME means for these runs (see the module's docstring); a UsageError if nothing."""
    def known():
        return sorted({m for r in runs for m in r.metrics}), sorted({p for r in runs for p in r.parameters})

    return resolve_with(name, lambda n: any(n in r.metrics for r in runs),
                        lambda n: any(n in r.parameters for r in runs), known)


def resolve_with(name: str, metric: Callable[[str], bool], param: Callable[[str], bool],
                 known: Callable[[], tuple[list[str], list[str]]]) -> Field:
    """`resolve` over any set of runs: whether some run has a metric, or a parameter, of a
    name, and (for the message) every metric and parameter name they have."""
    head, _, rest = name.partition(".")
    if name in RUN_COLUMNS:
        return Field("column", name)
    if metric(name):
        return Field("metric", name)
    if head == "metric" and metric(rest):
        return Field("metric", rest)
    if head == "param" and param(rest):
        return Field("param", rest)
    if metric(f"{name}.best"):
        return Field("metric", f"{name}.best")
    if param(name):
        return Field("param", name)
    metrics, params = known()
    # `kjob runs` shows names in capitals (LOSS/TEST.BEST), so one spelled in another case is
    # the name that differs from it in case only, when just one does.
    if folded := folded_name(name, metrics):
        return Field("metric", folded)
    shown = ", ".join(metrics[:20]) + (f", ... ({len(metrics)} in all)" if len(metrics) > 20 else "")
    params = ", ".join(params) or "none"
    raise UsageError(f"no run has a metric '{name}' (nor a parameter or column of that name); "
                     f"metrics: {shown or 'none recorded yet'}; parameters: {params}")


# -- ranking --------------------------------------------------------------------------------


def _sort_key(field: Field, run: Run):
    value = field.value(run)
    if field.name == "version" and field.kind == "column":
        return (0, run.incarnation, value or 0)
    if isinstance(value, (bool, int, float)):
        return (0, float(value))
    if isinstance(value, list):
        return (1, ",".join(map(str, value))) if value else None
    return None if value is None else (1, str(value))


def sort_runs(runs: list[Run], spec: str, modes: ModeBook) -> list[Run]:
    """Runs ordered by `[+|-]NAME[,NAME...]`: `-` descending, `+` ascending, a bare metric
    best first (by its mode), anything else ascending; runs without the value last."""
    if not runs:
        return runs
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    if not keys:
        raise UsageError("--sort-by needs a NAME, e.g. --sort-by -val_acc")
    for key in reversed(keys):  # a stable sort per key, the first key last
        sign, name = (key[0], key[1:]) if key[0] in "+-" else ("", key)
        field = resolve(name, runs)
        descending = sign == "-" or (not sign and field.kind == "metric" and modes.mode(field.name) == "max")
        present = [r for r in runs if _sort_key(field, r) is not None]
        missing = [r for r in runs if _sort_key(field, r) is None]
        runs = sorted(present, key=lambda r: _sort_key(field, r), reverse=descending) + missing
    return runs


# -- filters --------------------------------------------------------------------------------

_CONDITION = re.compile(r"^\s*([^<>=!\s]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")
_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "=": lambda a, b: a == b, "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b}
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Condition:
    name: str
    op: str
    literal: str
    text: str  # as given, for messages

    def holds(self, field: Field, run: Run) -> bool:
        value, compare = field.value(run), _COMPARE[self.op]
        if value is None:
            return False  # a run without the value is left out
        if isinstance(value, list):
            if self.op not in ("=", "==", "!="):
                raise UsageError(f"--where {self.text!r}: {self.name} is a list; use = or !=")
            return (self.literal in value) == (self.op != "!=")
        if isinstance(value, bool):
            if self.literal.lower() not in _BOOLS or self.op not in ("=", "==", "!="):
                raise UsageError(f"--where {self.text!r}: {self.name} is true or false; use = or != with one of those")
            return compare(value, _BOOLS[self.literal.lower()])
        if is_number(value):
            return compare(value, self._number(field))
        return compare(str(value), self.literal)

    def _number(self, field: Field) -> float:
        if field.kind == "column" and field.name in _TIMES:
            try:
                return datetime.datetime.fromisoformat(self.literal).timestamp()
            except ValueError:
                pass
        try:
            return float(self.literal)
        except ValueError:
            raise UsageError(f"--where {self.text!r}: {self.name} is a number, {self.literal!r} is not") from None


def parse_condition(text: str) -> Condition:
    match = _CONDITION.match(text)
    if not match or not match.group(3):
        raise UsageError(f"--where {text!r}: expected NAME OP VALUE, OP one of < <= > >= = != (e.g. 'lr<0.01')")
    literal = match.group(3)
    if len(literal) >= 2 and literal[0] == literal[-1] and literal[0] in "'\"":
        literal = literal[1:-1]
    return Condition(match.group(1), match.group(2), literal, text)


def filter_runs(runs: list[Run], conditions: list[Condition]) -> list[Run]:
    """The runs for which every condition holds (names resolved against all of `runs`)."""
    fields = [(c, resolve(c.name, runs)) for c in conditions] if runs else []
    return [r for r in runs if all(c.holds(f, r) for c, f in fields)]


# -- what a table shows ---------------------------------------------------------------------


def mode_book(runs: list[Run], recipe_specs: dict[str, MetricSpec | None]) -> ModeBook:
    """The recipes' specs first (in the order their kernels appear), then what each source declared."""
    declared = [spec for r in runs for source in SOURCES if (spec := r.metric_specs.get(source))]
    return ModeBook([*(s for s in recipe_specs.values() if s), *declared])


def default_columns(runs: list[Run], recipe_specs: dict[str, MetricSpec | None]) -> list[str]:
    """Metric columns: each kernel's recipe's primary and columns (or, where its recipe names
    none, a few of its runs' own metadata metrics), then what evaluators declared."""
    names: list[str] = []
    for kernel in dict.fromkeys(r.kernel for r in runs):
        spec = recipe_specs.get(kernel)
        if spec and spec.shown:
            names += spec.shown
        else:
            names += own_metrics([r for r in runs if r.kernel == kernel])[:FALLBACK_COLUMNS]
    names += [n for r in runs for spec in r.metric_specs.values() for n in spec.shown]
    columns = []
    for name in dict.fromkeys(names):
        try:
            field = resolve(name, runs)
        except UsageError:
            continue  # declared, but no listed run has it (yet)
        if field.kind == "metric" and field.name not in columns:
            columns.append(field.name)
    return columns


def own_metrics(runs: list[Run]) -> list[str]:
    """The metrics a kernel's runs have of their own, for a table: metadata's, then each
    series' best (losses, accuracies and scores first: not a learning rate's)."""
    metadata = sorted({m for r in runs for m in r.metric_sources.get("metadata", {})})
    series = {m for r in runs for s in _SERIES for m in r.metric_sources.get(s, {}) if m.endswith(".best")}
    return metadata + sorted(series - set(metadata), key=lambda m: (not _HEADLINE.search(m.lower()), m))


def base_names(pairs) -> tuple[tuple[str, str], ...]:
    """(name, metric) for each name as people write it that stood for a series' best
    (`val_loss` for `val_loss.best`), or for a metric in another case, each once."""
    return tuple(dict.fromkeys((n, f.name) for n, f in pairs
                               if f.kind == "metric" and f.name != n and f.name.lower() in (n.lower(), f"{n.lower()}.best")))


DEFAULT_LIMIT = 50  # rows `kjob runs` shows unless --limit N or --all


@dataclass(frozen=True)
class RunQuery:
    """What `kjob runs` was asked for."""

    kernel: str | None = None
    sort_by: str | None = None  # "[+|-]NAME[,...]"
    where: tuple[str, ...] = ()  # "NAME OP VALUE", all must hold
    tags: tuple[str, ...] = ()  # all of them
    archived: bool = False  # list archived runs too
    campaign: str | None = None  # only this campaign's members (`kjob sweep`)
    limit: int | None = None  # only the first N of the ranked runs (None: every one)
    columns: tuple[str, ...] | None = None  # --columns, resolved against every selected run


@dataclass(frozen=True)
class Selection:
    runs: list[Run]  # filtered and ranked: the first `limit` of them
    hidden: int  # archived runs left out
    recipe_specs: dict  # kernel -> its recipe's MetricSpec (None: no usable recipe)
    modes: ModeBook
    sort_by: str | None = None
    campaign: str | None = None
    more: int = 0  # selected runs past the limit, not in `runs`
    sort_fields: tuple[Field, ...] = ()  # what each --sort-by key meant
    named: tuple[tuple[str, Field], ...] = ()  # (name, field) of RunQuery.columns
    meant: tuple[tuple[str, str], ...] = ()  # (name, metric): base names that stood for a series' best

    def base_name_notes(self) -> list[str]:
        """One line per base name the query used (`kjob runs` prints them once)."""
        way = {"min": "lowest", "max": "highest"}
        return [f"note: {name} is {metric}" + (f" (each run's best {name}, the {way[self.modes.mode(metric)]})"
                                                if metric.lower().endswith(".best") else "")
                for name, metric in self.meant]

    def fields(self, names: list[str] | None = None) -> list[tuple[str, Field]]:
        """(header, field) of each column after kernel, version and backend: `names`, or
        status, duration, the -p parameters, the notebook hash, the metric columns (and the
        ranking metric), and tags, message and note where any run has them."""
        runs = self.runs
        if names is not None:
            named = list(self.named) if [n for n, _ in self.named] == list(names) else None
            chosen = named or [(n, resolve(n, runs)) for n in names]
            # `val_loss` may stand for `val_loss.best`: the header says which value it is
            return [(f.name if f.kind == "metric" else n, f) for n, f in chosen]
        metrics = default_columns(runs, self.recipe_specs)
        keys = [k.strip().lstrip("+-") for k in (self.sort_by or "").split(",") if k.strip().lstrip("+-")]
        for field in self.sort_fields or [resolve(key, runs) for key in keys]:
            if field.kind == "metric" and field.name not in metrics:
                metrics.append(field.name)
        # the notebook's hash tells apart two runs whose code changed but not their -p
        fields = [(c, Field("column", c)) for c in ("status", "duration", "parameters", "notebook")]
        fields += [(m, Field("metric", m)) for m in metrics]
        # a campaign's stage (and, listing several campaigns, which one) where any run has them
        tail = ("stage", "inputs", "tags", "message", "note")
        tail = tail if self.campaign else ("campaign", *tail)
        return fields + [(c, Field("column", c)) for c in tail if any(RUN_COLUMNS[c](r) for r in runs)]


def select_runs(ws, query: RunQuery) -> Selection:
    """The runs a query selects, ranked, the first `query.limit` of them decoded.

    The ledger filters and ranks them in SQL (kjob.runs.select) and only the shown rows
    become Run objects; where SQL cannot apply a rule as Python does (a list or table value,
    say), every run is read and the rules above apply in Python."""
    from kjob.runs.ledger import Ledger
    from kjob.runs.select import select_in_sql

    with Ledger(ws.paths.ledger) as ledger:
        return select_in_sql(ws, ledger, query) or select_in_python(ws, ledger, query)


def select_in_python(ws, ledger, query: RunQuery) -> Selection:
    from kjob.runs.metrics import recipe_spec

    runs = ledger.runs(query.kernel, campaign=query.campaign)
    hidden = 0 if query.archived else sum(1 for r in runs if r.archived)
    runs = [r for r in runs if (query.archived or not r.archived) and all(t in r.notes.tags for t in query.tags)]
    conditions = [parse_condition(c) for c in query.where]
    meant = [(c.name, resolve(c.name, runs)) for c in conditions] if runs else []
    runs = filter_runs(runs, conditions)
    specs = {kernel: recipe_spec(ws, kernel) for kernel in dict.fromkeys(r.kernel for r in runs)}
    modes = mode_book(runs, specs)
    sort_fields: tuple[Field, ...] = ()
    if query.sort_by and runs:
        runs = sort_runs(runs, query.sort_by, modes)
        keys = [k.strip() for k in query.sort_by.split(",") if k.strip()]
        sort_fields = tuple(resolve(k[1:] if k[0] in "+-" else k, runs) for k in keys)
        meant += [(k.lstrip("+-"), f) for k, f in zip(keys, sort_fields)]
    shown = runs[:query.limit] if query.limit else runs
    named = tuple((n, resolve(n, runs)) for n in query.columns) if query.columns and shown else ()
    return Selection(shown, hidden, specs, modes, query.sort_by, query.campaign, more=len(runs) - len(shown),
                     sort_fields=sort_fields, named=named, meant=base_names([*meant, *named]))


# -- export ---------------------------------------------------------------------------------


def iso_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


def export_record(run: Run) -> dict:
    """A run as `runs --export json` writes it: run_record with ISO times."""
    record = run_record(run)
    for key in _TIMES.values():
        record[key] = iso_time(record[key])
    if record["duration"] is not None:
        record["duration"] = round(record["duration"], 3)
    record["inputs"] = list(run.inputs)
    return record


_EXPORT_COLUMNS = ("kernel", "version", "backend", "incarnation", "status", "failure_kind", "failure_location",
                   "created_at", "started_at", "finished_at", "duration", "notebook_sha256", "git_commit",
                   "git_dirty", "message", "note", "tags", "archived", "campaign", "stage")


def csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_safe(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): text
    starting with = + - @ tab or CR gets a leading ', except a plain number such as -0.5."""
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_text(rows: list[list[str]]) -> str:
    """RFC 4180 lines ending in \\n. A cell holding a carriage return is quoted too (the csv
    module quotes only its line terminator's characters, and a bare CR splits a row in two)."""
    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text

    return "".join(",".join(cell(c) for c in row) + "\n" for row in rows)


def export_rows(runs: list[Run], names: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) for CSV: the run's own columns, then one `param.NAME` per parameter and
    one `metric.NAME` per metric; with `names`, the identity columns and those. No cell
    starts a formula (`csv_safe`)."""
    if names:
        fields = [resolve(n, runs) for n in names]
        header = ["kernel", "version", "backend", *names]
        rows = [[r.kernel, csv_value(r.version), r.backend, *(csv_value(_export_value(f, r)) for f in fields)]
                for r in runs]
    else:
        params = sorted({p for r in runs for p in r.parameters})
        metrics = sorted({m for r in runs for m in r.metrics})
        header = [*_EXPORT_COLUMNS, *(f"param.{p}" for p in params), *(f"metric.{m}" for m in metrics)]
        rows = []
        for run in runs:
            record = export_record(run)
            rows.append([*(csv_value(record[c]) for c in _EXPORT_COLUMNS),
                         *(csv_value(run.parameters.get(p)) for p in params),
                         *(csv_value(run.metrics.get(m)) for m in metrics)])
    return [csv_safe(h) for h in header], [[csv_safe(cell) for cell in row] for row in rows]


def _export_value(field: Field, run: Run):
    value = field.value(run)
    if field.kind == "column" and field.name in _TIMES:
        return iso_time(value)
    return value
