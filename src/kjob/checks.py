"""Static checks of an assembled notebook, each problem named by the src file and line."""

import ast
import sys

from kjob.leakscan import find_leaks
from kjob.notebook import SourceModule, locate, program

# pyflakes messages that make a notebook fail when it runs; the rest (unused imports,
# redefinitions of unused names, ...) are left to the author's linter.
_FATAL_PYFLAKES = {
    "UndefinedName", "UndefinedLocal", "UndefinedExport", "DuplicateArgument",
    "ReturnOutsideFunction", "YieldOutsideFunction", "ContinueOutsideLoop",
    "BreakOutsideLoop", "TwoStarredExpressions", "TooManyExpressionsInStarredAssignment",
    "ForwardAnnotationSyntaxError", "PercentFormatInvalidFormat",
    "StringDotFormatInvalidFormat", "InvalidPrintSyntax",
}


def syntax_problems(modules: list[SourceModule]) -> list[str]:
    problems = []
    for module in modules:
        try:
            module.tree
        except SyntaxError as exc:
            problems.append(f"{module.path}:{exc.lineno}: syntax error: {exc.msg}")
    return problems


def where(nb: dict, cell_index: int, line: int, notebook_name: str) -> str:
    return locate(nb, cell_index, line) or f"{notebook_name} cell {cell_index} ({nb['cells'][cell_index]['id']}) line {line}"


def undefined_name_problems(nb: dict, notebook_name: str) -> list[str]:
    """pyflakes over all code cells as one program: a name used and defined nowhere fails."""
    from pyflakes.checker import Checker

    text, line_map = program(nb)
    checker = Checker(ast.parse(text), filename=notebook_name)
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


def import_problems(modules: list[SourceModule], available: frozenset[str], packages: set[str]) -> list[str]:
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
                if top not in allowed and node.lineno not in optional:
                    problems.append(
                        f"{module.path}:{node.lineno}: imports '{top}', which is not available "
                        "in the target environment (add it to target_modules if it is)"
                    )
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
        for leak in find_leaks(cell["source"]):
            location = where(nb, index, leak.line, notebook_name)
            problems.append(f"{location}: looks like {leak.what} ({leak.masked}); never put credentials in a notebook")
    return problems
