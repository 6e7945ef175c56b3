"""Static checks of an assembled notebook, each problem named by the src file and line."""

import ast
import sys

from kjob.credentials import find_leaks
from kjob.notebook import PROVENANCE_ID, SourceModule, locate, program

# pyflakes messages that make a notebook fail when it runs; the rest (unused imports,
# redefinitions of unused names, ...) are left to the author's linter.
_FATAL_PYFLAKES = {
    "UndefinedName", "UndefinedLocal", "UndefinedExport", "DuplicateArgument",
    "ReturnOutsideFunction", "YieldOutsideFunction", "ContinueOutsideLoop",
    "BreakOutsideLoop", "TwoStarredExpressions", "TooManyExpressionsInStarredAssignment",
    "ForwardAnnotationSyntaxError", "PercentFormatInvalidFormat",
    "StringDotFormatInvalidFormat", "InvalidPrintSyntax",
}


# The deepest nesting of a module's syntax tree that the checks accept. pyflakes and the
# other checks walk the tree recursively (two to four Python frames a level) under Python's
# recursion limit of 1,000; Python itself refuses parentheses nested more than 200 deep.
MAX_NESTING = 200
SPLIT_ADVICE = ("split the expression into smaller ones (intermediate variables, or a loop or sum() "
                "over a list) or move the data to a file")


def parse_problem(path: str, text: str, exc: BaseException) -> str:
    """One line for a module that Python cannot parse (`exc` raised by ast.parse): a syntax
    error at its line, a NUL byte at its line, or nesting too deep for the parser."""
    if "\0" in text:
        # Python names no line for it; the file is probably binary or saved as UTF-16.
        at = text.index("\0")
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        return (f"{path}:{line}: a NUL byte (\\x00) at column {column}: Python source cannot hold one; "
                "remove it (is the file binary, or saved as UTF-16?)")
    if isinstance(exc, (RecursionError, MemoryError)):
        return f"{path}: nested too deeply for Python's parser; {SPLIT_ADVICE}"
    if isinstance(exc, SyntaxError):
        return f"{path}:{exc.lineno}: syntax error: {exc.msg}"
    return f"{path}: cannot be parsed: {exc}"


def nesting_problem(path: str, tree: ast.AST, limit: int = MAX_NESTING) -> str | None:
    """A line naming where the tree nests deeper than `limit` (a 1,000-term `1 + 1 + ...` is
    1,000 levels deep), or None. Walked with a stack, so any depth is safe to measure."""
    stack = [(tree, 1, getattr(tree, "lineno", None))]
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        if depth > limit:
            at = f"{path}:{line}" if line else path
            return (f"{at}: nested more than {limit} levels deep (a long chain like 1 + 1 + ... or deeply "
                    f"nested brackets), too deep for kjob's checks; {SPLIT_ADVICE}")
        stack.extend((child, depth + 1, line) for child in ast.iter_child_nodes(node))
    return None


def syntax_problems(modules: list[SourceModule]) -> list[str]:
    """Modules that do not parse, or nest too deeply for the checks after this one."""
    problems = []
    for module in modules:
        try:
            tree = module.tree
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            problems.append(parse_problem(module.path, module.text, exc))
            continue
        problem = nesting_problem(module.path, tree)
        if problem:
            problems.append(problem)
    return problems


def where(nb: dict, cell_index: int, line: int, notebook_name: str) -> str:
    return locate(nb, cell_index, line) or f"{notebook_name} cell {cell_index} ({nb['cells'][cell_index]['id']}) line {line}"


def undefined_name_problems(nb: dict, notebook_name: str, shared: bool = True) -> list[str]:
    """pyflakes over all code cells as one program: a name used and defined nowhere fails. Not
    `shared` (namespaces = "modules"): each module's cell (`%%kjob_module`) is a program of its own."""
    code = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]
    own = [] if shared else [i for i in code if nb["cells"][i]["source"].startswith("%%")]
    problems = []
    for cells in [[i for i in code if i not in own]] + [[i] for i in own]:
        problems += _undefined_names(nb, notebook_name, cells)
    return problems


def _undefined_names(nb: dict, notebook_name: str, cells: list[int]) -> list[str]:
    from pyflakes.checker import Checker

    text, line_map = program(nb, cells)
    try:
        checker = Checker(ast.parse(text), filename=notebook_name)
    except (RecursionError, MemoryError):
        # syntax_problems refuses modules nested past MAX_NESTING first; this is the backstop.
        return [f"{notebook_name}: nested too deeply for pyflakes' check; {SPLIT_ADVICE}"]
    problems = []
    for message in sorted(checker.messages, key=lambda m: m.lineno):
        if type(message).__name__ not in _FATAL_PYFLAKES:
            continue
        cell_index, cell_line = line_map[message.lineno - 1]
        problems.append(f"{where(nb, cell_index, cell_line, notebook_name)}: {message.message % message.message_args}")
    return problems


def _optional_import_lines(tree: ast.Module) -> set[int]:
    """Lines of imports guarded by `try: ... except ImportError` (allowed to be missing)."""
    lines = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught |= {t.id for t in types if isinstance(t, ast.Name)} | ({"Exception"} if handler.type is None else set())
        if caught & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}:
            for stmt in node.body:
                lines |= {n.lineno for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def import_problems(modules: list[SourceModule], available: frozenset[str], packages: set[str], *,
                    project_module=None, recipe_name: str = "the recipe") -> list[str]:
    """Imports of modules that the notebook will not find on Kaggle. `project_module(dotted)`
    gives (path relative to the source folder, path as shown) of a module of this project, or
    None: the notebook has no src folder, so such a module must be one of the recipe's."""
    allowed = available | set(sys.stdlib_module_names) | packages
    problems = []
    for module in modules:
        tree = module.tree
        optional = _optional_import_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in allowed or node.lineno in optional:
                    continue
                found = project_module(name) if project_module else None
                if found:
                    rel, shown = found
                    problems.append(f"{module.path}:{node.lineno}: imports '{name}', a module of this project "
                                    f"({shown}) that is not among the recipe's modules: add \"{rel}\" to "
                                    f"modules in {recipe_name}, before the modules that import it")
                else:
                    problems.append(f"{module.path}:{node.lineno}: imports '{top}', which Kaggle's image does not "
                                    f"provide: list its package under pip in {recipe_name} (with internet = true), "
                                    f"or add '{top}' to target_modules if the image has it")
    return problems


def _top_level_definitions(module: SourceModule) -> dict[str, int]:
    names = {}
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node.lineno
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names[sub.id] = node.lineno
    return names


def collision_problems(modules: list[SourceModule]) -> list[str]:
    """Modules share one namespace in the notebook: a name defined twice silently shadows."""
    seen: dict[str, str] = {}
    problems = []
    for module in modules:
        for name, lineno in _top_level_definitions(module).items():
            if name.startswith("__") and name.endswith("__"):
                continue
            if name in seen:
                problems.append(f"{module.path}:{lineno}: '{name}' is also defined at {seen[name]}; inlined modules share one namespace")
            else:
                seen[name] = f"{module.path}:{lineno}"
    return problems


def credential_problems(nb: dict, notebook_name: str) -> list[str]:
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["id"] == PROVENANCE_ID:
            continue  # made of the recipe's fields, which recipe_credential_problems reports by key
        for leak in find_leaks(cell["source"]):
            location = where(nb, index, leak.line, notebook_name)
            problems.append(f"{location}: looks like {leak.what} ({leak.masked}); never put credentials in a notebook")
    return problems


def recipe_credential_problems(recipe, owner: str, metadata: dict, recipe_name: str) -> list[str]:
    """The recipe's fields that reach kernel-metadata.json or the notebook's provenance cell,
    scanned like code and reported by key (`builders/x.toml: title: looks like ...`)."""
    fields = [("title", recipe.title), ("slug", recipe.slug), ("description", recipe.description),
              ("machine_shape", recipe.machine_shape or "")]
    fields += [("modules", m) for m in recipe.modules]
    fields += [(key, s) for key in ("dataset_sources", "kernel_sources", "model_sources", "competition_sources")
               for s in getattr(recipe, key)]
    fields += [("keywords", k) for k in metadata.get("keywords", [])]
    problems = [f"{recipe_name}: {key}: looks like {leak.what} ({leak.masked}); never put credentials in a recipe"
                for key, text in fields for leak in find_leaks(text)]
    problems += [f"the workspace's owner (in kernel-metadata.json id): looks like {leak.what} ({leak.masked})"
                 for leak in find_leaks(owner)]
    return problems


_KAGGLE_DIRS = {"/kaggle/input": "KAGGLE_INPUT_DIR", "/kaggle/working": "KAGGLE_WORKING_DIR",
                "/kaggle/temp": "KAGGLE_TEMP_DIR"}


def _is_env_lookup(node: ast.AST) -> bool:
    """os.environ.get(...), os.environ.setdefault(...), os.getenv(...)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name == "getenv":
        return True
    owner = func.value if isinstance(func, ast.Attribute) else None
    owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
    return name in ("get", "setdefault") and owner_name == "environ"


def _env_fallbacks(tree: ast.Module) -> set[int]:
    """ids of constants that are an environment lookup's fallback: the form to recommend, not warn of."""
    exempt = set()
    for node in ast.walk(tree):
        if _is_env_lookup(node):
            exempt |= {id(arg) for arg in node.args[1:]} | {id(k.value) for k in node.keywords}
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and _is_env_lookup(node.values[0]):
            exempt |= {id(value) for value in node.values[1:]}
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            exempt.add(id(node.value))  # a docstring names a path; it does not use one
    return exempt


def kaggle_path_warnings(modules: list[SourceModule]) -> list[str]:
    """Literal /kaggle/... paths: right on Kaggle, but a local run maps them only in a sandbox."""
    warnings = []
    for module in modules:
        exempt = _env_fallbacks(module.tree)
        found = [node for node in ast.walk(module.tree) if isinstance(node, ast.Constant) and id(node) not in exempt
                 and isinstance(node.value, str) and (node.value == "/kaggle" or node.value.startswith("/kaggle/"))]
        for node in sorted(found, key=lambda n: (n.lineno, n.col_offset)):
            value = node.value
            root = next((d for d in _KAGGLE_DIRS if value == d or value.startswith(d + "/")), None)
            prefer = (f'os.environ.get("{_KAGGLE_DIRS[root]}", "{root}")' if root
                      else "a path under KAGGLE_INPUT_DIR, KAGGLE_WORKING_DIR or KAGGLE_TEMP_DIR")
            warnings.append(f"{module.path}:{node.lineno}: literal path {value!r}: right on Kaggle; local runs "
                            f"map it only where bubblewrap is available (prefer {prefer})")
    return warnings
