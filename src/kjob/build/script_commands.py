"""The options of a whole script, read statically: every argparse parser it builds (at module level,
under `__main__`, in a function), its click commands and its typer commands (a function decorated
by `@app.command()` where `app = typer.Typer()`, or run by `typer.run(main)`), in the order they are
declared, then the fields of the dataclasses its HfArgumentParser takes (kjob.build.script_dataclasses).
How each option is read: kjob.build.script_options.

A script of several commands (a click group, a typer app of more than one) runs one by name: its
`command` parameter, whose choices are the commands' names.
"""

import ast
from dataclasses import replace
from pathlib import Path

from kjob.build.script_dataclasses import hf_options
from kjob.build.script_options import ScriptOption, argparse_option, click_option, is_typer, typer_options


def read_options(tree: ast.Module, places: tuple[Path, ...] = ()) -> list[ScriptOption]:
    """The options of every argparse parser the script builds, of its click commands
    (`@click.option`, `@click.argument`) and of its typer commands, in the order they are declared.
    A script of several commands (a click group, a typer app with more than one) has a `command`
    parameter too, whose choices are the commands' names: the one the command line runs. `places`:
    where the project modules it imports HfArgumentParser dataclasses from are found (the script's
    folder, then the project's source root)."""
    options, seen = {}, []
    typer_commands = {id(f) for f in _typer_commands(tree)}
    named = _named_commands(tree)
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            found = [argparse_option(node)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found = [click_option(d) for d in node.decorator_list if isinstance(d, ast.Call)]
            if id(node) in typer_commands:
                found += typer_options(tree, node)
            if id(node) in named:
                found = [replace(o, commands=(named[id(node)],)) for o in found if o is not None]
        for option in found:
            if option is None:
                continue
            if option.name not in options:
                options[option.name] = option
                seen.append(option.name)
            elif option.commands and options[option.name].commands:  # one name in several commands
                first = options[option.name]
                options[option.name] = replace(first, commands=first.commands + option.commands)
    listed = sorted((options[name] for name in seen), key=lambda o: o.line)
    # HfArgumentParser's, in its order of dataclasses and fields (kjob.build.script_dataclasses).
    listed += [o for o in hf_options(tree, places) if o.name not in options]
    if named:
        names = tuple(dict.fromkeys(named.values()))
        chosen = next((n for n in names if "train" in n), names[0])  # the one a training project runs
        line = min(min([f.lineno] + [d.lineno for d in f.decorator_list]) for f in ast.walk(tree) if id(f) in named)
        key = next(k for k in ("command", "subcommand", "kjob_command") if k not in options)
        listed.insert(0, ScriptOption(key, None, "command", "str", line, chosen, required=True, choices=names))
    return listed


def _named_commands(tree: ast.Module) -> dict[int, str]:
    """id(function) -> its command name, for the commands run by name: those of a click group
    (`@cli.command()` where `@click.group()` decorates cli) and of a typer app with several.
    Both name a command after its function, underscores as dashes, unless it is named."""
    groups = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
              and any(_is_click(d, "group") for d in n.decorator_list)}
    apps = _typer_apps(tree)
    by_owner: dict[str, dict[int, str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            func = call.func if call else decorator
            if isinstance(func, ast.Attribute) and func.attr == "command" and isinstance(func.value, ast.Name) \
                    and func.value.id in groups | apps:
                given = [a.value for a in (call.args if call else []) if isinstance(a, ast.Constant)] + [
                    k.value.value for k in (call.keywords if call else [])
                    if k.arg == "name" and isinstance(k.value, ast.Constant)]
                name = given[0] if given and isinstance(given[0], str) else node.name.replace("_", "-")
                by_owner.setdefault(func.value.id, {})[id(node)] = name
    named = {}
    for owner, commands in by_owner.items():
        if owner in groups or len(commands) > 1:  # a typer app of one command runs it without its name
            named.update(commands)
    return named


def _is_click(node: ast.expr, name: str) -> bool:
    func = node.func if isinstance(node, ast.Call) else node
    return isinstance(func, ast.Attribute) and func.attr == name and isinstance(func.value, ast.Name) \
        and func.value.id == "click"


def _typer_commands(tree: ast.Module) -> list[ast.FunctionDef]:
    """The functions typer runs: decorated by `@app.command(...)` where `app = typer.Typer(...)`
    (also `app.command()(main)`), or given to `typer.run(main)`."""
    apps, run_names = _typer_apps(tree), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and is_typer(node.func, "run") and node.args:
            if isinstance(node.args[0], ast.Name):
                run_names.add(node.args[0].id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Call) and _is_command(node.func, apps) \
                and node.args and isinstance(node.args[0], ast.Name):
            run_names.add(node.args[0].id)  # app.command()(main)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [f for f in functions if f.name in run_names or any(_is_command(d, apps) for d in f.decorator_list)]


def _typer_apps(tree: ast.Module) -> set[str]:
    """The names bound to `typer.Typer(...)`."""
    return {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and is_typer(node.value.func, "Typer") for t in node.targets if isinstance(t, ast.Name)}


def _is_command(node: ast.expr, apps: set[str]) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "command"
            and isinstance(node.func.value, ast.Name) and node.func.value.id in apps)
