"""Campaign files, `campaigns/NAME.toml`: what `kjob sweep NAME` runs. Every problem in one is
one ConfigError line naming the file and the key (as recipes' are, `kjob.build.schema`).

    recipe = "snd"              # builders/snd.toml (required)
    backend = "local"           # local, kaggle or ray (default local)
    lanes = 2                   # members in flight at once (default: the backend's, kjob.campaigns.lanes)
    metric = "val_acc"          # ranks the members (default: the recipe's [metrics] primary)
    mode = "max"                # which way it is better (default: the recipe's, else by its name)
    retries = 2                 # pushes again after an infrastructure failure (default 2)
    timeout = 3600              # each member's session timeout (default: the recipe's)

    [parameters]                # every member's, like -p
    epochs = 30

    [[grid]]                    # a grid is a product; the members are the union of the grids
    model = ["crn"]
    lr = [1e-3, 3e-4]

    [[stage]]                   # optional; without one, the grids are one stage, "main"
    name = "screen"
    parameters = { epochs = 2 } # the stage's own, over the campaign's
                                # its grids: [[stage.grid]], else the campaign's [[grid]]
    [[stage]]
    name = "full"
    top = 2                     # the 2 best members of stage `from`, by `by` (default:
    from = "screen"             # the campaign's metric), among those `where` holds for
    by = "val_acc"
    where = ["lr<0.01"]         # kjob runs --where conditions
    after = ["screen"]          # stages to wait for (besides `from` and the gates')
    [stage.gate]                # runs only if this holds once its stage has ended
    stage = "screen"            # default: the stage before
    metric = "macro_f1"         # default: the campaign's
    member = ["model=teacher"]  # the best member for which these hold (default: the best)
    minus = ["model=student"]   # optional: the gate's value is member's metric minus this one's
    at_least = 0.03             # one of at_least, above, at_most, below
    [[stage]]
    name = "eval"
    recipe = "snd-eval"         # optional: the stage's own recipe (then the campaign's parameters
                                # and [[grid]] are not its: only its own)
    inputs = ["stage:full"]     # one member per member of `full` that completed and is fetched,
                                # given that member's run as an input (kjob.campaigns.inputs);
                                # other items are run refs every member gets (KERNEL[:vN][@BACKEND])

A grid value is a list of values (or one value); a list parameter's values are lists. Members
get, lowest first: the campaign's parameters, their stage's, then their grid point; a name in
both a grid and the parameters is refused (which one would it be?). Also refused, each as one
line: a grid of more than MAX_MEMBERS members (its size is the product of its lists' lengths,
known before it is built), a [[grid]] that no stage uses, a gate threshold that is not a finite
number, and a condition whose value is no value (`lr<<<0.1`, `lr<nan`) or does not fit the
recipe's parameter (`lr<fast`, `fail<true`).
"""

import itertools
import json
import math
import re
from dataclasses import dataclass, field

from kjob.errors import ConfigError, NotFoundError, UsageError
from kjob.runs.metrics import MODES
from kjob.build.schema import Where, kind_of, shown, typed_like
from kjob.campaigns.conditions import Gate, conditions, gate_tables, one_line as _text, parse_gate
from kjob.campaigns.inputs import stage_inputs

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # no dots: it is part of lane kernels' names
MAX_MEMBERS = 10_000
DEFAULT_STAGE = "main"
_KEYS = {"recipe", "backend", "lanes", "metric", "mode", "retries", "timeout", "parameters", "grid", "stage",
         "description"}
_STAGE_KEYS = {"name", "recipe", "parameters", "grid", "top", "from", "by", "where", "after", "gate", "inputs"}


@dataclass(frozen=True)
class TopK:
    source: str  # the earlier stage
    k: int
    metric: str
    where: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    name: str
    parameters: dict  # the campaign's, with the stage's over them
    points: tuple[dict, ...] = ()  # its grid points in order (no two alike); none for a top-k stage
    top: TopK | None = None
    gates: tuple[Gate, ...] = ()
    after: tuple[str, ...] = ()  # every stage it waits for
    recipe: object = None  # its own recipe (kjob.build.recipe.KernelRecipe); None: the campaign's
    inputs_from: str | None = None  # `inputs = ["stage:NAME"]`: a member per member of NAME, given its run
    inputs: tuple[str, ...] = ()  # run refs every member of it is given (besides its recipe's)


@dataclass(frozen=True)
class Campaign:
    name: str
    rel: str  # campaigns/NAME.toml, as errors name it
    recipe: object  # kjob.build.recipe.KernelRecipe
    backend: str
    lanes: int | None
    metric: str | None
    mode: str | None
    retries: int
    timeout: int | None
    stages: tuple[Stage, ...] = field(default_factory=tuple)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def recipe_of(self, stage: Stage):
        return stage.recipe or self.recipe

    @property
    def recipes(self) -> list:
        """Every recipe it pushes, the campaign's first."""
        return list({r.name: r for r in [self.recipe, *(s.recipe for s in self.stages if s.recipe)]}.values())


def list_campaigns(ws) -> list[str]:
    folder = ws.paths.campaigns
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_campaign(ws, name: str) -> Campaign:
    from kjob.workspace import read_toml

    if not NAME_RE.match(name):
        raise UsageError(f"'{name}' is not a campaign name (letters, digits, '_' and '-': a file in campaigns/)")
    path = ws.paths.campaign(name)
    if not path.is_file():
        known = ", ".join(list_campaigns(ws)) or "none"
        raise NotFoundError(f"no campaign '{name}' in campaigns/ (known: {known})")
    rel = ws.paths.relative(path)
    return parse_campaign(ws, name, rel, read_toml(path, rel))


def parse_campaign(ws, name: str, rel: str, data: dict) -> Campaign:
    from kjob.backends import BACKENDS

    w = Where(rel)
    w.refuse_unknown(data, _KEYS)
    if "recipe" not in data:
        raise w.problem("missing required key 'recipe' (a recipe in builders/)")
    recipe = _recipe(ws, w, data)
    backend = data.get("backend", "local")
    if backend not in BACKENDS:
        raise w.fail("backend", f"expected one of {', '.join(BACKENDS)}", backend)
    metric = _text(w, data, "metric") or recipe.metrics.primary
    mode = data.get("mode")
    if mode is not None and mode not in MODES:
        raise w.fail("mode", f"expected {' or '.join(map(repr, MODES))}", mode)
    if mode is not None and "metric" not in data and metric is None:
        raise w.problem("mode applies to the campaign's metric: set metric too")
    fixed = _parameters(w, data, recipe)
    grids = _grids(w, data, recipe, fixed)
    raw_stages = data.get("stage", [])
    if not isinstance(raw_stages, list) or not all(isinstance(s, dict) for s in raw_stages):
        raise w.fail("stage", "expected [[stage]] tables", raw_stages)
    if grids is not None and raw_stages and all("grid" in t or "top" in t or "recipe" in t for t in raw_stages):
        has = "[[stage.grid]] or a top" + (", or a recipe of its own" if any("recipe" in t for t in raw_stages) else "")
        raise w.problem(f"grid: no stage uses the campaign's [[grid]] (each has its own {has}): "
                        "move it into the stage it is meant for")
    stages: list[Stage] = []
    for index, table in enumerate(raw_stages or [{"name": DEFAULT_STAGE}], 1):
        stages.append(_stage(ws, rel, index, table, recipe, fixed, grids, metric, stages))
    return Campaign(name, rel, recipe, backend, _whole(w, data, "lanes", None, 1, 64),
                    metric, mode, _whole(w, data, "retries", 2, 0, 10),
                    _whole(w, data, "timeout", None, 60, 12 * 3600), tuple(stages))


def _recipe(ws, w: Where, data: dict):
    from kjob.build.recipe import load_recipe

    if not isinstance(data["recipe"], str):
        raise w.fail("recipe", "expected a recipe name", data["recipe"])
    try:
        return load_recipe(ws, data["recipe"])
    except (NotFoundError, UsageError) as exc:  # the campaign file names what is not there: its error
        raise ConfigError(f"{w.file}: {w.key('recipe')}: {exc.message}") from exc


def _whole(w: Where, data: dict, key: str, default, low: int, high: int):
    value = data.get(key, default)
    if value is not None and (type(value) is not int or not low <= value <= high):
        raise w.fail(key, f"expected a whole number from {low} to {high}", value)
    return value


def _typed(w: Where, recipe, key: str, value):
    if key not in recipe.parameters:
        raise w.problem(f"{key}: not a parameter of {recipe.name} (known: {', '.join(recipe.parameters) or 'none'})")
    typed = typed_like(value, recipe.parameters[key])
    if typed is None:
        default = recipe.parameters[key]
        raise w.fail(key, f"expected {kind_of(default)} like the recipe's {shown(default)}", value)
    return typed


def _parameters(w: Where, data: dict, recipe) -> dict:
    table, inner = w.table_of(data, "parameters"), w.at("parameters")
    return {key: _typed(inner, recipe, key, value) for key, value in table.items()}


def _grids(w: Where, data: dict, recipe, fixed: dict, key: str = "grid") -> list[dict] | None:
    """The grid points of `data`'s [[grid]] tables, united in order; None when it has none."""
    tables = data.get(key)
    if tables is None:
        return None
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise w.fail(key, "expected [[grid]] tables of parameter = [values]", tables)
    points, seen = [], set()
    for index, table in enumerate(tables, 1):
        gw = Where(w.file, f"{w.table + '.' if w.table else ''}{key} #{index}")
        axes = []
        for name, values in table.items():
            if name in fixed:
                raise gw.problem(f"{name}: also set by the parameters; a member would have two values")
            default = recipe.parameters.get(name)
            one = not isinstance(values, list) or (isinstance(default, list) and values and
                                                   not all(isinstance(v, list) for v in values))
            values = [values] if one else values
            if not values:
                raise gw.fail(name, "expected a list of at least one value", values)
            typed = [_typed(gw, recipe, name, v) for v in values]
            unique = {json.dumps(v, sort_keys=True): v for v in typed}  # a value given twice is one member
            axes.append([(name, v) for v in unique.values()])
        # its size before it is built: a grid far too large is refused at once
        size = math.prod(len(axis) for axis in axes)
        if len(points) + size > MAX_MEMBERS and len(points) + size - _overlap(axes, seen) > MAX_MEMBERS:
            sizes = " x ".join(str(len(axis)) for axis in axes)
            before = f" ({len(points):,} more in the grids before it)" if points else ""
            raise gw.problem(f"{sizes} = {size:,} members{before}, more than {MAX_MEMBERS:,}: "
                             "is a grid much larger than meant?")
        for combination in itertools.product(*axes):
            point = dict(combination)
            canonical = json.dumps(point, sort_keys=True)
            if canonical not in seen:
                seen.add(canonical)
                points.append(point)
    return points


def _overlap(axes: list[list[tuple]], seen: set[str]) -> int:
    """How many of the grid's points are among `seen` already (counted without building the grid)."""
    names = [axis[0][0] for axis in axes]
    values = [{json.dumps(v, sort_keys=True) for _, v in axis} for axis in axes]
    count = 0
    for canonical in seen:
        point = json.loads(canonical)
        if sorted(point) == sorted(names) and all(json.dumps(point[n], sort_keys=True) in vs
                                                  for n, vs in zip(names, values)):
            count += 1
    return count


def _stage(ws, rel: str, index: int, table: dict, recipe, fixed: dict, grids, metric, earlier: list[Stage]) -> Stage:
    name = table.get("name")
    if not (isinstance(name, str) and NAME_RE.match(name)):
        where = Where(rel, f"stage #{index}")
        raise where.problem("missing required key 'name'") if name is None else where.fail(
            "name", "expected letters, digits, '_' and '-'", name)
    w = Where(rel, f"stage {name}")
    w.refuse_unknown(table, _STAGE_KEYS)
    names = [s.name for s in earlier]
    if name in names:
        raise w.problem("a second stage of this name")
    campaign_recipe, own_recipe = recipe, _recipe(ws, w, table) if "recipe" in table else None
    if own_recipe is not None:  # the campaign's parameters and grids are its recipe's
        recipe, fixed, grids = own_recipe, {}, None
    parameters = {**fixed, **_parameters(w, table, recipe)}
    inputs_from, inputs = stage_inputs(w, table, names)
    after = list(_names(w, table, "after", names))
    top = None
    if "top" in table:
        if "grid" in table:
            raise w.problem("top takes the members of stage `from`; a [[stage.grid]] would be a second set")
        if inputs_from is not None or own_recipe is not None:
            raise w.problem("top takes the members of stage `from` with their parameters: it cannot have a recipe "
                            "of its own, nor inputs = [\"stage:...\"] (its members' own parameters would be another "
                            "recipe's)")
        source = table.get("from")
        if source is None:
            raise w.problem(f"top needs from = an earlier stage ({', '.join(names) or 'there is none'})")
        if source not in names:
            raise w.fail("from", f"expected an earlier stage ({', '.join(names) or 'there is none'})", source)
        if earlier[names.index(source)].recipe is not None:
            raise w.problem(f"from: {source} has a recipe of its own; top takes the members of a stage of the "
                            "campaign's recipe")
        by = _text(w, table, "by") or metric
        if by is None:
            raise w.problem("top needs a metric: set by, the campaign's metric, or the recipe's [metrics] primary")
        top = TopK(source, _whole(w, table, "top", None, 1, MAX_MEMBERS), by, conditions(w, table, "where", recipe))
        after.append(source)
        points = ()
    else:
        for key in ("from", "by", "where"):
            if key in table:
                raise w.problem(f"{key} goes with top (the best members of an earlier stage)")
        own = _grids(w, table, recipe, parameters)
        clash = sorted({k for p in grids or () for k in p if k in parameters}) if own is None else []
        if clash:
            raise w.problem(f"parameters: {', '.join(clash)} also set by the campaign's [[grid]]")
        points = tuple(own if own is not None else grids or [{}])
    gates = tuple(parse_gate(w, g, metric, earlier, campaign_recipe) for g in gate_tables(w, table))
    after += [g.stage for g in gates]
    return Stage(name, parameters, points, top, gates, tuple(dict.fromkeys(after)), own_recipe, inputs_from, inputs)


def _names(w: Where, table: dict, key: str, earlier: list[str]) -> tuple[str, ...]:
    value = table.get(key, [])
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or any(v not in earlier for v in value):
        raise w.fail(key, f"expected earlier stages ({', '.join(earlier) or 'there is none'})", table.get(key))
    return tuple(value)
