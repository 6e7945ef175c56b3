"""One command-line option of a script, read statically (its code is never run): an argparse
`add_argument(...)` call, a click `@click.option` / `@click.argument` decorator, or a parameter of a
typer command (`x: int = typer.Option(3, "--x")`, `x: Annotated[int, typer.Option()] = 3`, or a plain
`x: int = 3`; a plain parameter without a default is an argument, as typer takes it).

Each option is a parameter named by its destination (`--max-steps` -> max_steps, argparse's
`dest=` and click's named argument win; typer's is the function's parameter), typed and defaulted
as the script says. Which functions are commands, and the script's options in all: kjob.build.script_commands.
"""

import ast
import keyword
from dataclasses import dataclass

_TYPES = {"int": "int", "float": "float", "str": "str"}


@dataclass(frozen=True)
class ScriptOption:
    """One command-line option of the script, as its parser declares it."""

    name: str  # the destination: the parameter's name
    flag: str | None  # "--max-steps" (the first long option string); None for a positional
    how: str  # value, true, false, both (BooleanOptionalAction), count, append, many, positional, positionals,
    # or command: the name of the command to run, of a script with several
    kind: str  # int, float, str, bool or list: the type -p values are read as
    line: int
    default: object = None  # the literal default (None: none usable)
    why: str | None = None  # why there is no usable default, or None
    required: bool = False
    choices: tuple | None = None
    # The commands (of a click group, or a typer app of several) whose option it is; () for the script's
    # own. The `command` parameter (how "command") names the one the command line runs.
    commands: tuple[str, ...] = ()
    # HfArgumentParser's options: the dataclass whose field it is (kjob.build.script_dataclasses); None otherwise.
    group: str | None = None

    @property
    def example(self):
        """A value of the option's type (how `-p` text is read for an option with no default)."""
        return {"int": 0, "float": 0.0, "str": "", "bool": False, "list": []}[self.kind]


def click_option(call: ast.Call) -> ScriptOption | None:
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
    value = lambda key, default=None: literal(keywords[key])[0] if key in keywords else default  # noqa: E731
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
        listed = literal(type_node.args[0])[0] if type_node.args else None
        choices = tuple(listed) if isinstance(listed, (list, tuple)) else None
    nargs, multiple = value("nargs", 1), value("multiple", False)
    has_default, (default, is_literal) = "default" in keywords, (literal(keywords["default"]) if "default" in keywords
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
        default, is_literal, has_default = (default if is_literal and default is not None else
                                         (0 if how == "count" else False)), True, True
    why = None
    if not has_default:
        why = "no default"
    elif not is_literal:
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


def literal(node) -> tuple[object, bool]:
    """(the node's value, True) for a Python literal; (None, False) for anything else."""
    try:
        return ast.literal_eval(node), True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, False


def argparse_option(call: ast.Call) -> ScriptOption | None:
    strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not strings or len(strings) != len(call.args):
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    action = literal(keywords["action"])[0] if "action" in keywords else "store"
    if isinstance(keywords.get("action"), ast.Attribute) and keywords["action"].attr == "BooleanOptionalAction":
        action = "both"
    if action in ("help", "version", "store_const", "append_const") or not isinstance(action, str):
        return None
    positional = not strings[0].startswith("-")
    flag = None if positional else next((s for s in strings if s.startswith("--")), strings[0])
    dest = strings[0] if positional else flag.lstrip("-").replace("-", "_")
    if "dest" in keywords:
        dest = literal(keywords["dest"])[0] or dest
    if not isinstance(dest, str) or not dest.isidentifier() or keyword.iskeyword(dest):
        return None  # no parameter can be named so (`--lambda`): the script keeps its default
    nargs = literal(keywords["nargs"])[0] if "nargs" in keywords else None
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
        default, is_literal = literal(keywords["default"]) if has_default else (None, False)
        if how in ("append", "many", "positionals"):
            kind = "list"
        if not has_default:
            why = "no default"
        elif not is_literal:
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
        value, is_literal = literal(keywords["default"])
        if is_literal and isinstance(value, (bool, int)):
            default = value
    required_node = keywords.get("required")
    required = bool(literal(required_node)[0]) if required_node is not None else (
        positional and nargs not in ("?", "*"))
    if required:
        why = "required"
    choices = literal(keywords["choices"])[0] if "choices" in keywords else None
    choices = tuple(choices) if isinstance(choices, (list, tuple)) else None
    return ScriptOption(dest, flag, how, kind, call.lineno, None if why else default, why, required, choices)


# -- typer ----------------------------------------------------------------------------------------

def is_typer(func: ast.expr, name: str) -> bool:
    """`typer.NAME` (or NAME imported from typer)."""
    return (isinstance(func, ast.Attribute) and func.attr == name and isinstance(func.value, ast.Name)
            and func.value.id == "typer") or (isinstance(func, ast.Name) and func.id == name)


def typer_options(tree: ast.Module, fn: ast.FunctionDef) -> list[ScriptOption]:
    # Option objects kept in module-level names (`EPOCHS = typer.Option(10)`, then `epochs: int = EPOCHS`).
    shared = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
              for t in n.targets if isinstance(t, ast.Name)}
    enums = enum_values(tree)
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    options = []
    for arg, default in list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults)):
        option = _typer_option(arg, shared.get(default.id, default) if isinstance(default, ast.Name) else default,
                               enums)
        if option is not None:
            options.append(option)
    return options


def _typer_option(arg: ast.arg, default: ast.expr | None, enums: dict) -> ScriptOption | None:
    annotation, info = arg.annotation, None
    if isinstance(annotation, ast.Subscript) and _subscript_name(annotation) == "Annotated":
        parts = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        annotation = parts[0]
        info = next((p for p in parts[1:] if _typer_info(p)), None)
        decls = info.args if info is not None else []  # in Annotated, Option's positionals are its names
    elif default is not None and _typer_info(default):
        info, decls = default, default.args[1:]
        keywords = {k.arg: k.value for k in default.keywords if k.arg}
        default = default.args[0] if default.args else keywords.get("default", keywords.get("default_factory"))
        if default is None:
            default = ast.Constant(...)  # Option() with no default: required
    else:
        decls = []
    keywords = {k.arg: k.value for k in info.keywords if k.arg} if info is not None else {}
    name = arg.arg
    if keyword.iskeyword(name) or name in ("ctx", "context"):
        return None
    kind, many, choices = _annotation_kind(annotation, enums)
    if kind is None:
        return None  # typer.Context and other objects typer passes itself
    is_argument = (info is not None and _info_kind(info) == "Argument") or (info is None and default is None)
    strings = [d.value for d in decls if isinstance(d, ast.Constant) and isinstance(d.value, str)]
    flags = [s for s in strings if s.startswith("-")]
    flag = None if is_argument else next((f for f in flags if f.startswith("--")), flags[0] if flags else
                                         "--" + name.replace("_", "-"))
    count = literal(keywords["count"])[0] if "count" in keywords else False
    required = default is None or (isinstance(default, ast.Constant) and default.value is Ellipsis)
    value, is_literal = (None, False) if required else literal(default)
    if not is_literal and isinstance(default, ast.Attribute) and isinstance(default.value, ast.Name):
        value, is_literal = enums.get(default.value.id, {}).get(default.attr), default.value.id in enums
    if kind == "bool" and not is_argument:
        how = "both" if not flags or "/" in flag else "true"
        if not flags:
            flag = f"{flag}/--no-{flag[2:]}"
        value, is_literal = bool(value) if is_literal else False, True
    elif count:
        how, kind = "count", "int"
        value, is_literal = (value if is_literal and isinstance(value, int) else 0), True
    elif is_argument:
        how = "positionals" if many else "positional"
    else:
        how = "append" if many else "value"
    why = None
    if required:
        why = "required"
    elif not is_literal:
        why = f"default {ast.unparse(default)} is not a literal"
    elif value is None:
        why = "default None"
    elif many and not isinstance(value, list):
        value = list(value) if isinstance(value, tuple) else [value]
    elif kind == "float" and type(value) is int:
        value = float(value)
    return ScriptOption(name, flag, how, "list" if many else kind, arg.lineno, None if why else value, why,
                        required, choices)


def _typer_info(node) -> bool:
    return isinstance(node, ast.Call) and _info_kind(node) is not None


def _info_kind(call: ast.Call) -> str | None:
    for kind in ("Option", "Argument"):
        if is_typer(call.func, kind):
            return kind
    return None


def _subscript_name(node: ast.Subscript) -> str | None:
    value = node.value
    return value.attr if isinstance(value, ast.Attribute) else value.id if isinstance(value, ast.Name) else None


def _annotation_kind(node, enums: dict) -> tuple[str | None, bool, tuple | None]:
    """(kind, a list?, choices) of a typer parameter's annotation; kind None: not a CLI value."""
    if node is None:
        return "str", False, None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # int | None
        sides = [n for n in (node.left, node.right) if not (isinstance(n, ast.Constant) and n.value is None)]
        return _annotation_kind(sides[0], enums) if len(sides) == 1 else ("str", False, None)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        try:
            return _annotation_kind(ast.parse(node.value, mode="eval").body, enums)
        except SyntaxError:
            return "str", False, None
    if isinstance(node, ast.Subscript):
        name, inner = _subscript_name(node), node.slice
        if name == "Optional":
            return _annotation_kind(inner, enums)
        if name in ("List", "list", "Sequence", "Tuple", "tuple", "Set", "set"):
            first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
            return _annotation_kind(first, enums)[0], True, _annotation_kind(first, enums)[2]
        return "str", False, None
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
    if name in ("int", "float", "str", "bool"):
        return name, False, None
    if name in enums:
        return "str", False, tuple(enums[name].values())
    if name in ("Context", "CallbackParam"):
        return None, False, None
    return "str", False, None  # Path, datetime, UUID...: typer reads them from text


def enum_values(tree: ast.Module) -> dict[str, dict[str, object]]:
    """The script's Enum classes (`class Mode(str, Enum): fast = "fast"`) and their members' values:
    typer takes a member's value on the command line."""
    enums = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                (b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")) in ("Enum", "StrEnum")
                for b in node.bases):
            members = {}
            for item in node.body:
                if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                    value, is_literal = literal(item.value)
                    if is_literal:
                        members[item.targets[0].id] = value
            enums[node.name] = members
    return enums
