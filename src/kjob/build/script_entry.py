"""Script entries: a recipe whose `entry` is a script (`entry = "main.py"`), run as `__main__`.

The script's command-line options are read statically (its code is never run): every argparse
`add_argument(...)` call, wherever the parser is built (module level, under `__main__`, in a
function), and click's `@click.option` / `@click.argument` decorators. Each option is a parameter named by its destination (`--max-steps` -> max_steps,
`dest=` wins), typed and defaulted as the script says. The kernel gets, right after its
parameters cell, a cell that builds `sys.argv` from the parameters, prints that command line and
deletes the parameter names (so that they never meet the script's own globals: `lr = args.lr`);
then the modules, the script's last and with its `if __name__ == "__main__":` block kept.
"""

import ast
import keyword

from kjob.notebook import EXIT_OK
from dataclasses import dataclass

ARGV_ID = "kjob-argv"
# The script's knobs a smoke run makes small, by parameter name: (value, why).
SMOKE_KNOBS = {
    "max_steps": 2, "max_iters": 2, "steps": 2, "num_steps": 2, "n_steps": 2, "iters": 2, "n_iters": 2,
    "iterations": 2, "epochs": 1, "num_epochs": 1, "n_epochs": 1, "max_epochs": 1, "dry_run": True,
    "num_workers": 0, "workers": 0, "batch_size": 2,
}
_TYPES = {"int": "int", "float": "float", "str": "str"}


@dataclass(frozen=True)
class ScriptOption:
    """One command-line option of the script, as its parser declares it."""

    name: str  # the destination: the parameter's name
    flag: str | None  # "--max-steps" (the first long option string); None for a positional
    how: str  # value, true, false, both (BooleanOptionalAction), count, append, many, positional, positionals
    kind: str  # int, float, str, bool or list: the type -p values are read as
    line: int
    default: object = None  # the literal default (None: none usable)
    why: str | None = None  # why there is no usable default, or None
    required: bool = False
    choices: tuple | None = None

    @property
    def example(self):
        """A value of the option's type (how `-p` text is read for an option with no default)."""
        return {"int": 0, "float": 0.0, "str": "", "bool": False, "list": []}[self.kind]


def is_script(entry: str) -> bool:
    return entry.endswith(".py")


def read_options(tree: ast.Module) -> list[ScriptOption]:
    """The options of every argparse parser the script builds, and of its click commands
    (`@click.option`, `@click.argument`), in the order they are declared."""
    options, seen = [], set()
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            found = [_option(node)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found = [_click_option(d) for d in node.decorator_list if isinstance(d, ast.Call)]
        for option in found:
            if option is not None and option.name not in seen:
                seen.add(option.name)
                options.append(option)
    return sorted(options, key=lambda o: o.line)


def _click_option(call: ast.Call) -> ScriptOption | None:
    """`@click.option("--max-steps", type=int, default=100)`, `@click.option("--fast/--slow")`,
    `@click.option("--cuda", is_flag=True)`, `@click.argument("path")`, as click names them."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("option", "argument")
            and isinstance(func.value, ast.Name) and func.value.id == "click"):
        return None
    strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not strings or len(strings) != len(call.args):
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    value = lambda key, default=None: _literal(keywords[key])[0] if key in keywords else default  # noqa: E731
    if func.attr == "argument":
        name, flag = strings[0], None
    else:
        named = [s for s in strings if s.isidentifier()]
        flags = [s for s in strings if s.startswith("-")]
        longest = max(flags, key=lambda f: len(f.split("/")[0].lstrip("-")), default="")
        flag = next((f for f in flags if f.startswith("--")), flags[0] if flags else None)
        name = named[0] if named else longest.split("/")[0].lstrip("-").replace("-", "_").lower()
    if not name.isidentifier() or keyword.iskeyword(name) or value("expose_value", True) is False:
        return None
    type_node = keywords.get("type")
    kind = _TYPES.get(type_node.id, "str") if isinstance(type_node, ast.Name) else "str"
    choices = None
    if isinstance(type_node, ast.Call) and isinstance(type_node.func, ast.Attribute) and type_node.func.attr == "Choice":
        listed = _literal(type_node.args[0])[0] if type_node.args else None
        choices = tuple(listed) if isinstance(listed, (list, tuple)) else None
    nargs, multiple = value("nargs", 1), value("multiple", False)
    has_default, (default, literal) = "default" in keywords, (_literal(keywords["default"]) if "default" in keywords
                                                               else (None, False))
    if flag and "/" in flag:
        how, kind = "both", "bool"
    elif value("is_flag", False) or value("count", False):
        how, kind = ("count", "int") if value("count", False) else ("true", "bool")
    elif func.attr == "argument":
        how = "positionals" if nargs == -1 or (isinstance(nargs, int) and nargs > 1) else "positional"
    else:
        how = "append" if multiple else "many" if isinstance(nargs, int) and nargs > 1 else "value"
    if how in ("append", "many", "positionals"):
        kind = "list"
    if how in ("true", "both", "count"):
        default, literal, has_default = (default if literal and default is not None else
                                         (0 if how == "count" else False)), True, True
    why = None
    if not has_default:
        why = "no default"
    elif not literal:
        why = f"default {ast.unparse(keywords['default'])} is not a literal"
    elif default is None:
        why = "default None"
    else:
        if kind == "list" and not isinstance(default, list):
            default = list(default) if isinstance(default, tuple) else [default]
        elif type_node is None and kind == "str" and isinstance(default, (bool, int, float)):
            kind = {bool: "bool", int: "int", float: "float"}[type(default)]
        if kind == "float" and type(default) is int:
            default = float(default)
    required = bool(value("required", func.attr == "argument" and not has_default))
    if required:
        why = "required"
    return ScriptOption(name, flag, how, kind, call.lineno, None if why else default, why, required, choices)


def _literal(node):
    try:
        return ast.literal_eval(node), True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, False


def _option(call: ast.Call) -> ScriptOption | None:
    strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not strings or len(strings) != len(call.args):
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    action = _literal(keywords["action"])[0] if "action" in keywords else "store"
    if isinstance(keywords.get("action"), ast.Attribute) and keywords["action"].attr == "BooleanOptionalAction":
        action = "both"
    if action in ("help", "version", "store_const", "append_const") or not isinstance(action, str):
        return None
    positional = not strings[0].startswith("-")
    flag = None if positional else next((s for s in strings if s.startswith("--")), strings[0])
    dest = strings[0] if positional else flag.lstrip("-").replace("-", "_")
    if "dest" in keywords:
        dest = _literal(keywords["dest"])[0] or dest
    if not isinstance(dest, str) or not dest.isidentifier() or keyword.iskeyword(dest):
        return None  # no parameter can be named so (`--lambda`): the script keeps its default
    nargs = _literal(keywords["nargs"])[0] if "nargs" in keywords else None
    many = nargs in ("*", "+") or (isinstance(nargs, int) and nargs > 1)
    type_node = keywords.get("type")
    kind = _TYPES.get(type_node.id, "str") if isinstance(type_node, ast.Name) else "str"
    if action in ("store_true", "store_false", "both"):
        how, kind, default = {"store_true": "true", "store_false": "false", "both": "both"}[action], "bool", \
            action == "store_false"
    elif action == "count":
        how, kind, default = "count", "int", 0
    else:
        how = "append" if action == "append" else ("positionals" if positional and many else
                                                   "positional" if positional else "many" if many else "value")
    has_default = "default" in keywords
    why = None
    if how in ("value", "positional", "append", "many", "positionals"):
        default, literal = _literal(keywords["default"]) if has_default else (None, False)
        if how in ("append", "many", "positionals"):
            kind = "list"
        if not has_default:
            why = "no default"
        elif not literal:
            why = f"default {ast.unparse(keywords['default'])} is not a literal"
        elif default is None:
            why = "default None"
        elif kind == "list" and not isinstance(default, list):
            default = list(default) if isinstance(default, tuple) else [default]
        elif type_node is None and kind != "list" and isinstance(default, (bool, int, float)):
            kind = {bool: "bool", int: "int", float: "float"}[type(default)]
        if why is None and kind == "float" and type(default) is int:
            default = float(default)
        if why is None and kind in ("int", "float") and not isinstance(default, (int, float)):
            default = str(default)
            kind = "str"
    elif has_default:
        value, literal = _literal(keywords["default"])
        if literal and isinstance(value, (bool, int)):
            default = value
    required_node = keywords.get("required")
    required = bool(_literal(required_node)[0]) if required_node is not None else (
        positional and nargs not in ("?", "*"))
    if required:
        why = "required"
    choices = _literal(keywords["choices"])[0] if "choices" in keywords else None
    choices = tuple(choices) if isinstance(choices, (list, tuple)) else None
    return ScriptOption(dest, flag, how, kind, call.lineno, None if why else default, why, required, choices)


def parameters_of(options: list[ScriptOption]) -> tuple[dict, list[ScriptOption]]:
    """The recipe's [parameters] (each option with a literal default) and the options without one."""
    parameters, without = {}, []
    for option in options:
        if option.why is None and option.default is not None:
            parameters[option.name] = option.default
        else:
            without.append(option)
    return parameters, without


def smoke_parameters(parameters: dict) -> dict:
    """Small values for the script's obvious knobs ([smoke.parameters] as init writes it)."""
    picked = {}
    for name, value in SMOKE_KNOBS.items():
        if name in parameters and type(parameters[name]) is type(value) and parameters[name] != value:
            picked[name] = value
    return picked


def option_problems(script: str, options: list[ScriptOption], parameters: dict, recipe_name: str) -> list[str]:
    """Required options the parameters do not give (one line), and values outside an option's choices."""
    problems = []
    missing = [o for o in options if o.required and o.name not in parameters]
    if missing:
        names = ", ".join(o.name for o in missing)
        problems.append(f"{script}: the script requires {names}: give {'them' if len(missing) > 1 else 'it'} with "
                        f"-p {missing[0].name}=... or under [parameters] in {recipe_name}")
    for option in options:
        value = parameters.get(option.name)
        if option.choices and value is not None:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in option.choices and str(v) not in map(str, option.choices)]
            if bad:
                problems.append(f"{script}:{option.line}: {option.name} = {bad[0]!r} is not one of its choices "
                                f"({', '.join(map(repr, option.choices))})")
    return problems


# The cell's helpers, kept literal so that the notebook reads as the command it runs.
_ARGV_HELPER = f'''\
class {EXIT_OK}:  # the script's __main__ block: sys.exit(0) ends it as it ends a process
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is SystemExit and value.code in (None, 0)


def _kjob_command_line(script, options, values):
    argv, positionals = [script], []
    for name, flag, how in options:
        value = values[name]
        if how == "true" and value or how == "false" and not value:
            argv.append(flag)
        elif how == "both":
            on, _, off = flag.partition("/")
            argv.append(on if value else off or "--no-" + on[2:])
        elif how == "count":
            argv += [flag] * int(value)
        elif how == "append":
            for item in value:
                argv += [flag, str(item)]
        elif how == "many":
            argv += [flag, *map(str, value)]
        elif how == "value":
            argv += [flag, str(value)]
        elif how == "positional":
            positionals.append(str(value))
        elif how == "positionals":
            positionals += map(str, value)
    return argv + positionals
'''


def argv_cell_text(script: str, options: list[ScriptOption], names: list[str]) -> str:
    """The cell that sets `sys.argv` for `script` from the parameters `names`, prints it and
    deletes the parameter names before any module runs."""
    by_name = {o.name: o for o in options}
    rows = "".join(f"    ({name!r}, {by_name[name].flag!r}, {by_name[name].how!r}),\n"
                   for name in names if name in by_name)
    values = ", ".join(f"{name!r}: {name}" for name in names if name in by_name)
    deleted = [name for name in names if name in by_name]
    return (
        f"# The command line of {script}, from the parameters above: the script runs as __main__ below.\n"
        "import shlex as _kjob_shlex, sys as _kjob_sys\n\n"
        + _ARGV_HELPER + "\n\n"
        f"_kjob_sys.argv = _kjob_command_line({script!r}, [\n{rows}], {{{values}}})\n"
        "print('kjob: python ' + _kjob_shlex.join(_kjob_sys.argv), flush=True)\n"
        f"del _kjob_command_line, _kjob_shlex, _kjob_sys" + "".join(f", {n}" for n in deleted)
    )


def module_registration(dotted: str, names: list[str]) -> str:
    """Lines that make an inlined module reachable as a module object (`import data`, then
    `data.Corpus`): its top-level names copied into `sys.modules[dotted]`."""
    parts = dotted.split(".")
    lines = [f"# kjob: `import {dotted}` finds this cell's names as the module {dotted}",
             "import sys as _kjob_sys, types as _kjob_types"]
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        lines.append(f"_kjob_sys.modules.setdefault({parent!r}, _kjob_types.ModuleType({parent!r})).__path__ = []")
    lines.append(f"_kjob_module = _kjob_sys.modules[{dotted!r}] = _kjob_types.ModuleType({dotted!r})")
    shown = ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "")
    lines.append(f"_kjob_module.__dict__.update({{_kjob_k: globals()[_kjob_k] for _kjob_k in ({shown}) "
                 "if _kjob_k in globals()})")
    if len(parts) > 1:
        lines.append(f"setattr(_kjob_sys.modules[{'.'.join(parts[:-1])!r}], {parts[-1]!r}, _kjob_module)")
    lines.append("del _kjob_sys, _kjob_types, _kjob_module")
    return "\n".join(lines)


def imported_as_modules(trees, dotted: set[str]) -> set[str]:
    """The recipe's modules that some module imports with `import x` (not `from x import y`)."""
    found = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in dotted}
    return found
