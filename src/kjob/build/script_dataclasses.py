"""The options of a script that parses its command line with Hugging Face's `HfArgumentParser`
over dataclasses (transformers' examples: `HfArgumentParser((ModelArguments, DataTrainingArguments,
TrainingArguments))`, then `parse_args_into_dataclasses()`), read statically like every other option.

HfArgumentParser makes one option per field (transformers `hf_argparser.py`, `_parse_dataclass_field`):
`--field_name` (the name as written; `--field-name` is accepted too), typed by its annotation
(`Optional[X]` / `X | None` is X), defaulted by `field(default=...)`, `default_factory` or a plain
default, required when it has none. A `bool` field takes `--x` (or `--x false`), and one defaulting to
true also gets `--no_x`; `Literal[...]` and `Enum` fields have choices; a `list[...]` field takes
its values after the flag (nargs "+"); a field with `init=False` is no option.

The script's own dataclasses are read, and those it imports from the project's modules (`from
arguments import ModelArguments`, `from .args import DataArguments as Data`, `import arguments` then
`arguments.ModelArguments`), found beside the script as Python finds them when it runs the script.
Of transformers' TrainingArguments (about a hundred
fields) kjob knows the three a kernel needs: `output_dir`, `max_steps` (a smoke run's two steps) and
`report_to` ("none": no W&B login inside a kernel; kjob reads trainer_state.json). Any other field
is added under [parameters] by hand and passed as `--name value` (kjob.build.script_entry).
"""

import ast
import keyword
from pathlib import Path

from kjob.build.script_options import ScriptOption, enum_values, literal

PARSERS = {"HfArgumentParser", "TrlParser"}  # TrlParser (trl) subclasses it and takes the same options
TRAINING_ARGUMENTS = {"TrainingArguments", "Seq2SeqTrainingArguments"}
# TrainingArguments' fields a kernel needs, with the values kjob gives them (name, kind, default).
TRAINING_FIELDS = (("output_dir", "str", "trainer_output"), ("max_steps", "int", -1), ("report_to", "str", "none"))
# TrainingArguments' options worth knowing, for the recipe's comment (init): added by hand, passed as --name value.
TRAINING_HINTS = ("num_train_epochs = 3.0", "learning_rate = 5e-05", "per_device_train_batch_size = 8", "seed = 42",
                  "do_train = true", "do_eval = true")


def hf_options(tree: ast.Module, places: tuple[Path, ...] = ()) -> list[ScriptOption]:
    """The options of every HfArgumentParser the script builds, in the parser's order of dataclasses
    and each dataclass's order of fields (its own dataclass bases' fields first). `places`: where
    the project modules it imports dataclasses from are found (the script's folder first, as
    Python's sys.path[0], then the project's source root)."""
    script = _Module(tree, places[0] if places else None, places, {})
    parsers = PARSERS | {name for name, node in script.classes.items() if any(_name(b) in PARSERS for b in node.bases)}
    options, seen = [], set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _name(node.func) in parsers):
            continue
        given = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "dataclass_types"),
                                                    None)
        for expr in given.elts if isinstance(given, (ast.Tuple, ast.List)) else [given]:
            for option in _class_options(expr, script, node.lineno, set()):
                if option.name not in seen:
                    seen.add(option.name)
                    options.append(option)
    return options


class _Module:
    """A module's classes, enums and imports, and the project modules it imports, read when asked:
    an absolute import from `places`, a relative one from the module's `folder` (`loaded`: path ->
    _Module, shared by one script's reading)."""

    def __init__(self, tree: ast.Module, folder: Path | None, places: tuple[Path, ...], loaded: dict):
        self.folder, self.places, self.loaded = folder, places, loaded
        self.classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        self.enums = enum_values(tree)
        self.names: dict[str, tuple[str, int, str]] = {}  # local name: (module, level, its name there)
        self.modules: dict[str, tuple[str, int]] = {}  # `import arguments (as a)`: local name -> (module, level)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.names[alias.asname or alias.name] = (node.module or "", node.level, alias.name)
                    # `from . import arguments`, `from pkg import arguments`: perhaps a module
                    self.modules[alias.asname or alias.name] = (f"{node.module}.{alias.name}" if node.module
                                                                else alias.name, node.level)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = (alias.name, 0)

    def find(self, expr, hops: int = 0) -> "tuple[ast.ClassDef, _Module] | None":
        """The class `expr` (a name, or module.name) stands for, and the module defining it; None
        for one outside the project (transformers') or not found."""
        if hops > 20:
            return None
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in self.modules:
            module = self._module(*self.modules[expr.value.id])
            return module.find(ast.Name(expr.attr), hops + 1) if module else None
        if not isinstance(expr, ast.Name):
            return None
        if expr.id in self.classes:
            return self.classes[expr.id], self
        if expr.id in self.names:
            where, level, name = self.names[expr.id]
            module = self._module(where, level)
            return module.find(ast.Name(name), hops + 1) if module else None
        return None

    def _module(self, dotted: str, level: int) -> "_Module | None":
        if level and self.folder is None:
            return None
        if level and level > len(self.folder.parents) + 1:
            return None
        bases = [self.folder.parents[level - 2] if level > 1 else self.folder] if level else self.places
        for base in bases:
            stem = base.joinpath(*dotted.split(".")) if dotted else base
            for path in (stem.with_name(stem.name + ".py"), stem / "__init__.py"):
                if path.is_file():
                    return self._read(path.resolve())
        return None

    def _read(self, path: Path) -> "_Module | None":
        if path not in self.loaded:
            self.loaded[path] = None  # while it is read: an import cycle finds nothing
            try:
                tree = ast.parse(path.read_bytes().decode("utf-8").removeprefix("\ufeff"))
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
                return None
            self.loaded[path] = _Module(tree, path.parent, self.places, self.loaded)
        return self.loaded[path]


def takes_training_arguments(options) -> bool:
    """Whether the script's HfArgumentParser takes transformers' TrainingArguments (or a subclass)."""
    return any(o.group in TRAINING_ARGUMENTS for o in options)


def training_hint_lines(options) -> list[str]:
    """Comment lines for a recipe's [parameters]: a few TrainingArguments options one may add by hand."""
    if not takes_training_arguments(options):
        return []
    return ["# output_dir, max_steps and report_to are TrainingArguments' (report_to \"none\": no W&B login in a",
            "# kernel; kjob reads trainer_state.json from output_dir).",
            "# TrainingArguments' other options are not read (there are about a hundred): add any here by",
            "# hand and the kernel passes it as --name value; -p then sets it too. For example:",
            *(f"# {line}" for line in TRAINING_HINTS)]


def _class_options(expr, module: _Module, line, visiting) -> list[ScriptOption]:
    found = module.find(expr)
    if found is None:
        return _outside(_name(expr), line)
    node, defined_in = found
    if id(node) in visiting:  # `class TrainingArguments(TrainingArguments)`: its base is the name's earlier meaning
        return _outside(node.name, line)
    visiting = visiting | {id(node)}
    options = [o for base in node.bases for o in _class_options(base, defined_in, line, visiting)]
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            option = _field_option(item, node.name, defined_in.enums)
            if option is not None:  # a field a base declares keeps the base's place, as dataclasses order it
                at = next((i for i, o in enumerate(options) if o.name == option.name), len(options))
                options[at:at + 1] = [option]
    return options


def _outside(name: str | None, line: int) -> list[ScriptOption]:
    """The options of a dataclass from outside the project: TrainingArguments' that a kernel needs."""
    if name and name.endswith("TrainingArguments"):  # transformers' own, or one kjob cannot see
        return [ScriptOption(field, f"--{field}", "value", kind, line, default, group="TrainingArguments")
                for field, kind, default in TRAINING_FIELDS]
    return []  # a dataclass kjob cannot see (from outside the project): its options are added by hand


def _field_option(item: ast.AnnAssign, group: str, enums: dict) -> ScriptOption | None:
    name = item.target.id
    if keyword.iskeyword(name) or name.startswith("_"):
        return None
    annotation = item.annotation
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            annotation = None
    if _name(annotation) == "ClassVar" or (isinstance(annotation, ast.Subscript) and _name(annotation.value)
                                           == "ClassVar"):
        return None
    value = item.value
    default, factory = value, None
    if isinstance(value, ast.Call) and _name(value.func) in ("field", "HfArg"):
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        if "init" in keywords and literal(keywords["init"])[0] is False:
            return None
        default, factory = keywords.get("default"), keywords.get("default_factory")
    kind, optional, many, choices = _field_type(annotation, enums)
    missing = default is None and factory is None
    if factory is not None:
        found, is_literal = _factory_value(factory)
    elif missing:
        found, is_literal = None, False
    else:
        found, is_literal = literal(default)
        if not is_literal and isinstance(default, ast.Attribute) and _name(default.value) in enums:
            found, is_literal = enums[_name(default.value)].get(default.attr), True
    flag = f"--{name}"
    if kind == "bool" and not many:
        if missing and not optional:
            found, is_literal, missing = False, True, False  # a plain `x: bool` defaults to false
        if is_literal and found is True:
            return ScriptOption(name, f"{flag}/--no_{name}", "both", "bool", item.lineno, True, group=group)
        if is_literal and found is False:
            return ScriptOption(name, flag, "true", "bool", item.lineno, False, group=group)
        how = "value"  # default None: `--x true` / `--x false`
    else:
        how = "many" if many else "value"
    required = missing and not (kind == "bool" and optional)
    why = None
    if required:
        why = "required"
    elif missing:
        why = "default None"
    elif not is_literal:
        why = f"default {ast.unparse(factory or default)} is not a literal"
    elif found is None:
        why = "default None"
    elif many:
        found = list(found) if isinstance(found, (list, tuple)) else [found]
        if not found:
            why = "default [] (an empty list cannot be given after the flag)"
    elif kind == "float" and type(found) is int:
        found = float(found)
    elif kind in ("int", "float") and (isinstance(found, bool) or not isinstance(found, (int, float))) or \
            kind == "str" and not isinstance(found, str):
        kind, found = "str", str(found)  # the option reads text: the default as the text it stands for
    return ScriptOption(name, flag, how, "list" if many else kind, item.lineno, None if why else found, why,
                        required, choices, group=group)


def _field_type(node, enums) -> tuple[str, bool, bool, tuple | None]:
    """(kind, optional?, a list?, choices) of a field's annotation, as HfArgumentParser reads it."""
    optional = False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        sides, others = _union_sides(node), []
        others = [s for s in sides if not (isinstance(s, ast.Constant) and s.value is None) and _name(s) != "None"]
        optional = len(others) < len(sides)
        node = others[0] if len(others) == 1 else None
    elif isinstance(node, ast.Subscript) and _name(node.value) in ("Optional", "Union"):
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        others = [p for p in parts if not (isinstance(p, ast.Constant) and p.value is None) and _name(p) != "None"]
        optional = _name(node.value) == "Optional" or len(others) < len(parts)
        node = others[0] if len(others) == 1 else None
    if isinstance(node, ast.Subscript):
        outer = _name(node.value)
        if outer == "Literal":
            values = [literal(e)[0] for e in (node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice])]
            kind = {bool: "bool", int: "int", float: "float"}.get(type(values[0]), "str") if values else "str"
            return kind, optional, False, tuple(values)
        if outer in ("list", "List"):
            inner = _field_type(node.slice, enums)
            return inner[0], optional, True, inner[3]
        return "str", optional, False, None
    name = _name(node)
    if name in ("int", "float", "str", "bool"):
        return name, optional, False, None
    if name in enums:
        values = tuple(enums[name].values())
        kind = {bool: "bool", int: "int", float: "float"}.get(type(values[0]), "str") if values else "str"
        return kind, optional, False, values
    return "str", optional, False, None


def _union_sides(node) -> list:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_sides(node.left) + _union_sides(node.right)
    return [node]


def _factory_value(node) -> tuple[object, bool]:
    """The value of a `default_factory`: `list` -> [], `lambda: [1, 2]` -> [1, 2]."""
    if _name(node) == "list":
        return [], True
    if isinstance(node, ast.Lambda):
        return literal(node.body)
    return None, False


def _name(node) -> str | None:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
