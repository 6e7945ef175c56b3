"""Checks that the recipe's parameters reach its entry function as given.

The notebook runs the parameters cell, then the module cells, then `entry(name=name, ...)`:
a module binding a parameter's name would silently replace it, and an entry function that
does not take exactly the recipe's parameters fails only when the notebook runs.
"""

import ast

from kjob.notebook import SourceModule, is_main_guard

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _bindings(node: ast.AST, packages: set[str], found: list[tuple[str, int]]) -> None:
    """Append each (name, line) that `node` binds in the module's namespace."""
    if isinstance(node, _SCOPES):
        found.append((node.name, node.lineno))
        return  # names inside a function or class body are its own
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.Import):
        found += [(a.asname or a.name.split(".")[0], node.lineno) for a in node.names]
        return
    if isinstance(node, ast.ImportFrom):
        # A sibling import is commented out in the cell; only its aliases (`b = a`) bind.
        sibling = node.level == 0 and (node.module or "").split(".")[0] in packages
        found += [(a.asname or a.name, node.lineno) for a in node.names
                  if a.name != "*" and (a.asname or not sibling)]
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        found.append((node.id, node.lineno))
    elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
        found.append((node.name, node.lineno))
    elif isinstance(node, ast.MatchMapping) and node.rest:
        found.append((node.rest, node.lineno))
    for child in ast.iter_child_nodes(node):
        if not (isinstance(node, ast.comprehension) and child is node.target):  # local to the comprehension
            _bindings(child, packages, found)


def module_bindings(module: SourceModule, packages: set[str]) -> list[tuple[str, int]]:
    """Every name the module's cell binds at its top level, with its line."""
    found: list[tuple[str, int]] = []
    for node in module.tree.body:
        if not is_main_guard(node):
            _bindings(node, packages, found)
    return found


def shadowed_parameter_problems(modules: list[SourceModule], parameters: dict, packages: set[str]) -> list[str]:
    """The parameters cell runs first: a module binding a parameter's name silently beats `-p`."""
    problems = []
    for module in modules:
        for name, lineno in module_bindings(module, packages):
            if name in parameters:
                problems.append(
                    f"{module.path}:{lineno}: module-level '{name}' replaces the recipe parameter {name} "
                    "(the notebook runs modules after the parameters cell); rename it"
                )
    return problems


def entry_signature_problems(path: str, fn: ast.FunctionDef, parameters: dict, recipe_name: str) -> list[str]:
    """The main cell calls `entry(name=name, ...)` with every recipe parameter, by keyword."""
    args, where = fn.args, f"{path}:{fn.lineno}"
    by_keyword = {a.arg for a in args.args + args.kwonlyargs}
    positional_only = {a.arg for a in args.posonlyargs}
    problems = []
    for name in parameters:
        if name in positional_only:
            problems.append(f"{where}: {fn.name}() takes '{name}' as positional-only, but the main cell "
                            "passes the recipe parameters by keyword")
        elif name not in by_keyword and args.kwarg is None:
            problems.append(f"{where}: {fn.name}() does not accept the recipe parameter '{name}' "
                            f"({recipe_name}); add it to the signature, or **kwargs")
    positional = args.posonlyargs + args.args
    required = positional[:len(positional) - len(args.defaults)]
    required += [a for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    for arg in required:
        if arg.arg not in parameters:
            problems.append(f"{where}: {fn.name}() requires '{arg.arg}', which is not a recipe parameter; "
                            f"add it to [parameters] in {recipe_name}, or give it a default")
    return problems
