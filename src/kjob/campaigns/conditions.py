"""Conditions and gates of a campaign file (kjob.campaigns.file): `where = ["lr<0.01"]` as
`kjob runs --where` reads them, each checked against the recipe's parameters, and a stage's
[stage.gate] tables. Every problem is one ConfigError line naming the file and the key."""

import math
from dataclasses import dataclass

from kjob.build.schema import Where, shown
from kjob.errors import UsageError

GATE_OPS = {"at_least": ">=", "above": ">", "at_most": "<=", "below": "<"}
_GATE_KEYS = {"stage", "metric", "member", "minus", *GATE_OPS}
_BOOL_WORDS = {"true", "yes", "1", "false", "no", "0"}  # as `kjob runs --where` reads them


@dataclass(frozen=True)
class Gate:
    stage: str
    metric: str
    op: str  # a key of GATE_OPS
    value: float
    member: tuple[str, ...] = ()
    minus: tuple[str, ...] | None = None

    def describe(self) -> str:
        first = f"{self.metric} of {_selector(self.stage, self.member)}"
        if self.minus is not None:
            first += f" - {self.metric} of {_selector(self.stage, self.minus)}"
        return f"{first} {GATE_OPS[self.op]} {self.value:g}"


def _selector(stage: str, where: tuple[str, ...]) -> str:
    return f"{stage}'s best" + (f" where {' and '.join(where)}" if where else "")


def one_line(w: Where, data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not (isinstance(value, str) and value.strip() and "\n" not in value):
        raise w.fail(key, "expected a one-line name", value)
    return value


def conditions(w: Where, table: dict, key: str, recipe) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise w.fail(key, "expected a list of conditions like 'lr<0.01'", value)
    for condition in value:
        _check_condition(w, key, condition, recipe)
    return tuple(value)


def _check_condition(w: Where, key: str, text: str, recipe) -> None:
    """Refuse a condition that could never be meant: `kjob runs --where` reads `lr<<<0.1` as
    lr < "<<0.1", which holds for no run, so a stage would silently pick nothing."""
    from kjob.runs.query import parse_condition

    try:
        condition = parse_condition(text)
    except UsageError:
        raise w.fail(key, "expected NAME OP VALUE with OP one of < <= > >= = != (e.g. 'lr<0.01')", text) from None
    literal, name = condition.literal, condition.name
    number, default = _float(literal), recipe.parameters.get(name)
    equality = condition.op in ("=", "==", "!=")
    if literal[:1] in ("<", ">", "=", "!"):
        why = f"{shown(literal)} is not a value (an operator typed twice?)"
    elif number is not None and not math.isfinite(number):
        why = f"{shown(literal)} compares with nothing"
    elif isinstance(default, bool) and not (equality and literal.lower() in _BOOL_WORDS):
        why = f"{name} is true or false: use = or != with one of those"
    elif isinstance(default, (int, float)) and not isinstance(default, bool) and number is None:
        why = f"{name} is a number, {shown(literal)} is not"
    elif isinstance(default, list) and not equality:
        why = f"{name} is a list: use = or !="
    else:
        return
    raise w.problem(f"{key}: {shown(text)}: {why}")


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def gate_tables(w: Where, table: dict) -> list[dict]:
    gate = table.get("gate", [])
    gates = [gate] if isinstance(gate, dict) else gate
    if not isinstance(gates, list) or not all(isinstance(g, dict) for g in gates):
        raise w.fail("gate", "expected a [stage.gate] table (or [[stage.gate]] tables, all of which must hold)",
                     gate)
    return gates


def parse_gate(w: Where, table: dict, metric: str | None, stages: list, recipe) -> Gate:
    """`recipe`: the campaign's; its conditions are on the parameters of the stage it judges."""
    gw = w.at("gate")
    earlier = [s.name for s in stages]
    gw.refuse_unknown(table, _GATE_KEYS)
    if not earlier:
        raise gw.problem("a gate judges the results of an earlier stage, and this is the first")
    stage = table.get("stage", earlier[-1])
    if stage not in earlier:
        raise gw.fail("stage", f"expected an earlier stage ({', '.join(earlier) or 'there is none'})", stage)
    recipe = stages[earlier.index(stage)].recipe or recipe
    metric = one_line(gw, table, "metric") or metric
    if metric is None:
        raise gw.problem("metric: needed (there is no campaign metric nor recipe [metrics] primary)")
    ops = [op for op in GATE_OPS if op in table]
    if len(ops) != 1:
        raise gw.problem(f"expected exactly one of {', '.join(GATE_OPS)} (the threshold)")
    value = table[ops[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        # nan holds for no value and inf for none or every one: such a gate judges nothing
        raise gw.fail(ops[0], "expected a finite number", value)
    minus = conditions(gw, table, "minus", recipe) if "minus" in table else None
    return Gate(stage, metric, ops[0], float(value), conditions(gw, table, "member", recipe), minus)
