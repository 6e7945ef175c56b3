"""`kjob runs` in SQL: the ledger filters and ranks the runs, and only the shown ones are decoded.

kjob.runs.query states the rules (what a NAME means, how --where compares, how --sort-by ranks);
this module says the same in SQL. A metric's value is read with SQLite's JSON functions from the
first of the run's metric sources that has it (kjob.runs.metrics.merged's order), a parameter's from
the run's parameters.

Where SQL would not do what Python does, `select_in_sql` answers None and kjob.runs.query reads
every run in Python: a list or table value to rank, or to compare other than with = or !=; a
literal the value's type cannot take (its error message is Python's); a ledger text that is not
JSON to SQLite (NaN); a name with a double quote; SQLite before 3.38.
"""

import json
import math
import sqlite3

from kjob.errors import KjobError, UsageError
from kjob.runs.metrics import SOURCES, MetricSpec, ModeBook, recipe_spec
from kjob.runs.query import (_BOOLS, _TIMES, Condition, Field, RunQuery, Selection, base_names, mode_book,
                             parse_condition, resolve_with)

_JSON_ARROWS = sqlite3.sqlite_version_info >= (3, 38, 0)  # -> and ->>
# A column's SQL, for the run columns (kjob.runs.query.RUN_COLUMNS) whose value is the ledger's own.
_COLUMNS = {"kernel": "kernel", "backend": "backend", "status": "status", "created": "created_at",
            "started": "started_at", "finished": "finished_at", "notebook": "notebook_sha256",
            "commit": "git_commit", "message": "message", "note": "note", "campaign": "campaign",
            "stage": "stage", "version": "version"}
_NUMERIC = {"created", "started", "finished", "version"}
_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "==": "=", "!=": "!="}
_KNOWN_SOURCES = ", ".join(f"'{s}'" for s in SOURCES)


def _path(*labels: str) -> str:
    """An SQL literal of the JSON path to a value: `'$."metadata"."val_acc.best"'`."""
    if any('"' in label for label in labels):
        raise _NotInSql
    return _text("$" + "".join(f'."{label}"' for label in labels))


def _text(value: str) -> str:
    """An SQL string literal (the query is built as text: no parameter order to keep)."""
    if "\0" in value:
        raise _NotInSql
    return "'" + value.replace("'", "''") + "'"


class _NotInSql(Exception):
    """Python's rules apply: kjob.runs.query.select_in_python."""


def select_in_sql(ws, ledger, query: RunQuery) -> Selection | None:
    if not _JSON_ARROWS:
        return None
    try:
        return _Select(ledger, query).run(ws)
    except _NotInSql:
        return None
    except KjobError as exc:
        if _malformed_json(exc):  # a ledger text Python wrote but SQLite does not read (NaN)
            return None
        raise


def _malformed_json(exc: KjobError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, sqlite3.OperationalError) and "malformed JSON" in str(cause)


def has_metric(ledger, campaign: str, metric: str) -> bool:
    """Whether some member of the campaign has the metric (its runs are not decoded)."""
    if _JSON_ARROWS:
        try:
            return _Select(ledger, RunQuery(campaign=campaign, archived=True))._has("metrics", metric, False)
        except _NotInSql:
            pass
        except KjobError as exc:
            if not _malformed_json(exc):
                raise
    return any(metric in r.metrics for r in ledger.runs(campaign=campaign))


class _Select:
    def __init__(self, ledger, query: RunQuery):
        self.ledger, self.query = ledger, query
        scope = ["1=1"]
        if query.kernel:
            scope.append(f"kernel={_text(query.kernel)}")
        if query.campaign:
            scope.append(f"campaign={_text(query.campaign)}")
        self.scope = " AND ".join(scope)  # before archived runs and tags are left out
        base = list(scope) + ([] if query.archived else ["archived_at IS NULL"])
        base += [f"EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value={_text(t)})" for t in query.tags]
        self.base = " AND ".join(base)
        self.conditions: list[tuple[Condition, Field]] = []
        self.names: dict[str, set[str]] = {}  # every metric and parameter name (for messages)
        self.anywhere: dict[tuple[str, str], bool] = {}  # whether any run (before --where) has the name

    # -- SQL pieces ----------------------------------------------------------------------------

    @staticmethod
    def _json(field: Field) -> str | None:
        """SQL for the field's value as JSON text (NULL where the run has none), or None for a column."""
        if field.kind == "column":
            if field.name not in _COLUMNS:
                raise _NotInSql
            return None
        if field.kind == "param":
            return f"(parameters -> {_path(field.name)})"
        # the first source (in SOURCES' order, then the others by name) that has the name
        path = _path(field.name)
        known = ", ".join(f"metrics -> {_path(source, field.name)}" for source in SOURCES)
        others = (f"(SELECT s.value -> {path} FROM json_each(metrics) AS s WHERE s.key NOT IN ({_KNOWN_SOURCES})"
                  f" AND CASE WHEN s.type = 'object' THEN json_type(s.value, {path}) END IS NOT NULL"
                  f" ORDER BY s.key LIMIT 1)")
        return f"COALESCE({known}, {others})"

    def _values(self, fields: list[Field]) -> list[str]:
        """`j<i>` (JSON text) of each field that is not a plain column (the first of equal ones:
        `fields.index`)."""
        return [f"{sql} AS j{i}" for i, f in enumerate(fields)
                if fields.index(f) == i and (sql := self._json(f)) is not None]

    def _condition(self, condition: Condition, field: Field, i: int) -> tuple[str, str]:
        """(holds, odd) SQL of a --where condition on field number i."""
        op, literal = _OPS[condition.op], condition.literal
        number = _number(literal, field)
        if field.kind == "column":
            column = _COLUMNS[field.name]
            if field.name in _NUMERIC:
                if number is None:
                    raise _NotInSql  # Python says why the literal is no number
                return f"{column} {op} {number!r}", "0"
            return f"{column} {op} {_text(literal)}", "0"
        j, t, v = f"j{i}", f"json_type(j{i})", f"(j{i} ->> '$')"
        equality = op in ("=", "!=")
        truth = _BOOLS.get(literal.lower())
        branches = [f"WHEN 'text' THEN {v} {op} {_text(literal)}"]
        odd = ["'object'"]
        if number is not None:
            branches.append(f"WHEN 'integer' THEN {v} {op} {number!r} WHEN 'real' THEN {v} {op} {number!r}")
        else:
            odd += ["'integer'", "'real'"]
        if truth is not None and equality:
            branches.append(f"WHEN 'true' THEN 1 {op} {int(truth)} WHEN 'false' THEN 0 {op} {int(truth)}")
        else:
            odd += ["'true'", "'false'"]
        if equality:
            member = f"EXISTS (SELECT 1 FROM json_each({j}) WHERE type='text' AND value={_text(literal)})"
            branches.append(f"WHEN 'array' THEN {member} = {int(op == '=')}")
        else:
            odd.append("'array'")
        return f"(CASE {t} {' '.join(branches)} ELSE 0 END)", f"({t} IN ({', '.join(odd)}))"

    def _inner(self, fields: list[Field], texts: bool = True) -> str:
        """SELECT of the base's rows with the fields' values (and their metrics and parameters)."""
        columns = dict.fromkeys(["id", "created_at", "incarnation", "version", *(["metrics", "parameters"] if texts
                                 else []), *(_COLUMNS[f.name] for f in fields if f.kind == "column")])
        return f"SELECT {', '.join([*columns, *self._values(fields)])} FROM runs WHERE {self.base}"

    def _selected(self, fields: list[Field], extra: str = "", conditions: bool = True, source: str = "") -> str:
        """The runs the base and the --where conditions select, with `keep` (all conditions hold)
        and `odd` (a value SQL would not treat as Python does) for each. `fields`: the conditions'
        fields first, then any others whose values are wanted (`j<i>`); `source`: a table of
        `_inner`'s rows (else they are computed here)."""
        holds, odd = ["1"], []
        for condition, field in self.conditions if conditions else []:
            yes, strange = self._condition(condition, field, fields.index(field))
            holds.append(yes)
            odd.append(strange)
        return (f"(SELECT *, COALESCE({' AND '.join(holds)}, 0) AS keep, "
                f"COALESCE({' OR '.join(odd) if odd else '0'}, 0) AS odd{extra} "
                f"FROM {source or '(' + self._inner(fields) + ')'})")

    # -- names ---------------------------------------------------------------------------------

    def _has(self, column: str, name: str, filtered: bool) -> bool:
        """Whether a selected run has a metric (`column` "metrics") or parameter of this name:
        the newest runs answer most questions, and the others are first found as text (no JSON
        read) where the name is plain ASCII, written by json.dumps as it is."""
        if self._scan(column, name, filtered, 1000):
            return True
        if (column, name) not in self.anywhere:  # the same names come back (--where, then --sort-by)
            self.anywhere[column, name] = self._scan(column, name, False, None)
        if not self.anywhere[column, name]:
            return False
        return not filtered or self._scan(column, name, True, None)

    def _names(self, column: str) -> set[str]:
        if column not in self.names:
            if column == "metrics":
                sql = (f"SELECT DISTINCT k.key FROM runs, json_each(metrics) s,"
                       f" json_each(CASE WHEN s.type='object' THEN s.value ELSE '{{}}' END) k WHERE {self.base}")
            else:
                sql = f"SELECT DISTINCT k.key FROM runs, json_each(parameters) k WHERE {self.base}"
            self.names[column] = {r[0] for r in self.ledger.read(sql)}
        return self.names[column]

    def _scan(self, column: str, name: str, filtered: bool, newest: int | None) -> bool:
        path = _path(name)
        if column == "metrics":
            test = (f"EXISTS (SELECT 1 FROM json_each(metrics) AS s"
                    f" WHERE CASE WHEN s.type='object' THEN json_type(s.value, {path}) END IS NOT NULL)")
        else:
            test = f"json_type(parameters, {path}) IS NOT NULL"
        if name.isascii() and name.isprintable() and "\\" not in name:
            test = f"instr({column}, {_text(json.dumps(name))}) AND {test}"
        rows = self._selected([f for _, f in self.conditions] if filtered else [], conditions=filtered)
        if newest is not None:
            rows = f"(SELECT * FROM {rows} ORDER BY created_at DESC, id DESC LIMIT {newest})"
        return self.ledger.first(f"SELECT 1 FROM {rows} WHERE {test} AND keep LIMIT 1") is not None

    def _known(self) -> tuple[list[str], list[str]]:
        return sorted(self._names("metrics")), sorted(self._names("parameters"))

    def resolve(self, name: str, filtered: bool) -> Field:
        """What NAME means for the selected runs (after the --where conditions, if `filtered`)."""
        return resolve_with(name, lambda n: self._has("metrics", n, filtered),
                            lambda n: self._has("parameters", n, filtered), self._known)

    # -- the listing ---------------------------------------------------------------------------

    def run(self, ws) -> Selection:
        query, ledger = self.query, self.ledger
        hidden = 0 if query.archived else ledger.first(
            f"SELECT COUNT(*) FROM runs WHERE {self.scope} AND archived_at IS NOT NULL")[0]
        anything = ledger.first(f"SELECT 1 FROM runs WHERE {self.base} LIMIT 1") is not None
        conditions = [parse_condition(c) for c in query.where]
        self.conditions = [(c, self.resolve(c.name, False)) for c in conditions] if anything else []
        if any(f.kind == "column" and f.name not in _COLUMNS for _, f in self.conditions):
            raise _NotInSql
        kept = anything and ledger.first(
            f"SELECT 1 FROM {self._selected([f for _, f in self.conditions])} WHERE keep LIMIT 1") is not None
        keys, specs, modes = [], None, None
        if query.sort_by and kept:
            names = [k.strip() for k in query.sort_by.split(",") if k.strip()]
            if not names:
                raise UsageError("--sort-by needs a NAME, e.g. --sort-by -val_acc")
            for key in names:
                sign, name = (key[0], key[1:]) if key[0] in "+-" else ("", key)
                field = self.resolve(name, True)
                if field.kind == "column" and field.name not in _COLUMNS:
                    raise _NotInSql  # duration, parameters, tags, archived: Python's values
                if not sign and field.kind == "metric" and (modes is None or not modes.declared(field.name)):
                    specs, modes = self._modes(ws, field.name)
                descending = sign == "-" or (not sign and field.kind == "metric" and modes.mode(field.name) == "max")
                keys.append((field, descending))
        fields = [f for _, f in self.conditions] + [f for f, _ in keys]
        order, odd_keys = [], []
        for field, descending in keys:
            i = fields.index(field)
            direction = "DESC" if descending else "ASC"
            if field.kind == "column" and field.name == "version":
                order += [f"incarnation {direction}", f"COALESCE(version, 0) {direction}"]
                continue
            value = _COLUMNS[field.name] if field.kind == "column" else f"(j{i} ->> '$')"
            order += [f"({value} IS NULL)", f"{value} {direction}"]
            if field.kind != "column":
                odd_keys.append(f"json_type(j{i}) IN ('array', 'object')")
        extra = f", COALESCE({' OR '.join(odd_keys)}, 0) AS odd_key" if odd_keys else ", 0 AS odd_key"
        # One scan: the rows SQL would rank or compare unlike Python come first (then Python
        # does it all); with --where, every kept id comes back (their number is the total).
        checked = bool(self.conditions or odd_keys)  # else no row can be strange: the index gives the order
        order = ", ".join([*(["strange DESC"] if checked else []), *order, "created_at DESC", "id DESC"])
        limit = f" LIMIT {int(query.limit)}" if query.limit and not self.conditions else ""
        # each value read once per run (a materialized table): SQLite would read it again for
        # each use in the conditions and the order
        picked = f"WITH picked AS MATERIALIZED ({self._inner(fields, texts=False)}) " if checked else ""
        rows = ledger.read(f"{picked}SELECT id, (odd OR (keep AND odd_key)) AS strange FROM"
                           f" {self._selected(fields, extra, source='picked' if checked else '')}"
                           f" WHERE {'keep OR strange' if checked else 'keep'} ORDER BY {order}{limit}")
        if rows and rows[0]["strange"]:
            raise _NotInSql
        total = len(rows) if self.conditions else ledger.first(f"SELECT COUNT(*) FROM runs WHERE {self.base}")[0]
        runs = ledger.runs_with_ids([r["id"] for r in (rows[:query.limit] if query.limit else rows)])
        if specs is None:
            specs = {kernel: recipe_spec(ws, kernel) for kernel in dict.fromkeys(r.kernel for r in runs)}
            modes = mode_book(runs, specs)
        named = tuple((n, self.resolve(n, True)) for n in query.columns) if query.columns and runs else ()
        meant = [(c.name, f) for c, f in self.conditions]
        meant += [(k.strip().lstrip("+-"), f) for k, (f, _) in zip([k for k in (query.sort_by or "").split(",")
                                                                      if k.strip()], keys)]
        return Selection(runs, hidden, specs, modes, query.sort_by, query.campaign, more=total - len(runs),
                         sort_fields=tuple(f for f, _ in keys), named=named, meant=base_names([*meant, *named]))

    def _modes(self, ws, metric: str) -> tuple[dict, ModeBook]:
        """Each selected kernel's recipe spec, and the modes of those and of what the runs'
        sources declared (newer runs' first, as kjob.runs.query.mode_book orders them); the
        sources' declarations are read only where no recipe declares `metric`."""
        kernels = self.ledger.read(f"SELECT kernel FROM runs WHERE {self.base} GROUP BY kernel"
                                   f" ORDER BY MAX(created_at) DESC")
        specs = {r["kernel"]: recipe_spec(ws, r["kernel"]) for r in kernels}
        recipes = [s for s in specs.values() if s]
        if ModeBook(recipes).declared(metric):
            return specs, ModeBook(recipes)
        rows = self.ledger.read(f"SELECT metric_spec FROM runs WHERE {self.base} AND metric_spec != '{{}}'"
                                f" GROUP BY metric_spec ORDER BY MAX(created_at) DESC, MAX(id) DESC")
        declared = []
        for row in rows:
            try:
                by_source = json.loads(row["metric_spec"])
            except ValueError:
                raise _NotInSql from None
            declared += [MetricSpec.from_dict(by_source[s]) for s in SOURCES if by_source.get(s)]
        return specs, ModeBook([*recipes, *declared])


def _number(literal: str, field: Field) -> float | None:
    """The literal as Condition._number reads it, or None where it is no number."""
    if field.kind == "column" and field.name in _TIMES:
        import datetime

        try:
            return datetime.datetime.fromisoformat(literal).timestamp()
        except ValueError:
            pass
    try:
        value = float(literal)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

