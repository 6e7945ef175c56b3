"""Script entries: a recipe whose `entry` is a script (`entry = "main.py"`), run as `__main__`.

The script's command-line options (argparse, click, typer) are read statically by
kjob.build.script_commands; each is a parameter. The kernel gets, right after its parameters cell,
a cell that builds `sys.argv` from the parameters, prints that command line and deletes the
parameter names (so that they never meet the script's own globals: `lr = args.lr`); where the
program reads `__file__`, the same cell sets it (see `script_file`). Then come the modules, the
script's last and with its `if __name__ == "__main__":` block kept.
"""

import ast
import posixpath

from kjob.build.script_commands import read_options
from kjob.build.script_dataclasses import takes_training_arguments, training_hint_lines
from kjob.build.script_options import ScriptOption
from kjob.kaggle_platform import KaggleRef, input_layouts
from kjob.notebook import EXIT_OK

__all__ = ["ScriptOption", "read_options", "is_script", "parameters_of", "smoke_parameters", "option_problems",
           "hand_added_note", "unknown_option_hint", "training_hint_lines", "argv_cell_text", "script_file",
           "module_registration", "imported_as_modules"]

ARGV_ID = "kjob-argv"
# The script's knobs a smoke run makes small, by parameter name: (value, why).
SMOKE_KNOBS = {
    "max_steps": 2, "max_iters": 2, "steps": 2, "num_steps": 2, "n_steps": 2, "iters": 2, "n_iters": 2,
    "iterations": 2, "epochs": 1, "num_epochs": 1, "n_epochs": 1, "max_epochs": 1, "dry_run": True,
    "num_workers": 0, "workers": 0, "batch_size": 2, "max_train_samples": 8, "max_eval_samples": 8,
    "max_predict_samples": 8,
}


def is_script(entry: str) -> bool:
    return entry.endswith(".py")


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
        stuck = _stuck_flag(option, value)
        if stuck:
            problems.append(f"{script}:{option.line}: {stuck}")
        if option.choices and value is not None:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in option.choices and str(v) not in map(str, option.choices)]
            if bad:
                problems.append(f"{script}:{option.line}: {option.name} = {bad[0]!r} is not one of its choices "
                                f"({', '.join(map(repr, option.choices))})")
    return problems


def hand_added_note(script: str, options: list[ScriptOption], names: list[str]) -> str | None:
    """The build's note on parameters added by hand that are none of the options kjob read: the
    kernel passes them as `--name value`. None when there are none, or when the script's
    HfArgumentParser takes TrainingArguments, whose options are added so by design."""
    known = {o.name for o in options}
    added = [name for name in names if name not in known]
    if not added or takes_training_arguments(options):
        return None
    return (f"{script}: {', '.join(added)} {'are' if len(added) > 1 else 'is'} not among the options kjob read from "
            f"the script: passed as --{added[0]} VALUE{' (and so on)' if len(added) > 1 else ''}")


def unknown_option_hint(options: list[ScriptOption], key: str, recipe_name: str) -> str:
    """What the one line refusing an unknown `-p key` adds for a script taking TrainingArguments."""
    if not takes_training_arguments(options):
        return ""
    return (f"; a TrainingArguments option is added by hand under [parameters] in {recipe_name} "
            f"({key} = ...), then passed as --{key} VALUE")


def _stuck_flag(option: ScriptOption, value) -> str | None:
    """Why `value` cannot be given to a flag with one switch and a default that is already its
    switch's value (click's `is_flag=True, default=True`, argparse's store_true with default=True,
    typer's `typer.Option(True, "--x")`): the command line can only say what the script assumes."""
    if option.how not in ("true", "false") or not isinstance(value, bool) or option.default is None:
        return None
    sets = option.how == "true"
    if option.default is sets and value is not sets:
        state = "true" if sets else "false"
        return (f"{option.name} = {str(value).lower()} cannot be given on the command line: {option.flag} only "
                f"sets it {state}, its default, and the script has no switch for the other way; leave it {state}")
    return None


# The cell's helpers, kept literal so that the notebook reads as the command it runs.
_ARGV_HELPER = f'''\
class {EXIT_OK}:  # the script's __main__ block: sys.exit(0) ends it as it ends a process
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is SystemExit and value.code in (None, 0)


def _kjob_command_line(script, options, values):
    # A script of several commands: its own options, the command's name, then that command's options.
    argv, rest, positionals = [script], [], []
    chosen = [values[name] for name, flag, how, *_ in options if how == "command"]
    for name, flag, how, *commands in options:
        value, words = values[name], rest if commands else argv
        if how == "command" or commands and chosen and chosen[0] not in commands[0]:
            continue
        if how == "true" and value or how == "false" and not value:
            words.append(flag)
        elif how == "both":
            on, _, off = flag.partition("/")
            words.append(on if value else off or "--no-" + on[2:])
        elif how == "count":
            words += [flag] * int(value)
        elif how == "append":
            for item in value:
                words += [flag, str(item)]
        elif how == "many":
            words += [flag, *map(str, value)]
        elif how == "value":
            words += [flag, str(value)]
        elif how == "positional":
            positionals.append(str(value))
        elif how == "positionals":
            positionals += map(str, value)
        elif how == "added":  # a parameter added by hand to the recipe: --name value, a list's values after it
            words += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    return argv + chosen + rest + positionals
'''


_FILE_HELPER = '''\
def _kjob_script_file(script, places):  # the first of the script's places that is mounted, else the working folder
    import os
    base = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    for place in places:
        if os.path.isdir(os.path.dirname(os.path.join(base, place))):
            return os.path.join(base, place)
    return os.path.join(os.getcwd(), script)
'''


def script_file(ws, recipe, modules) -> tuple[list[str] | None, str | None]:
    """Where the kernel's `__file__` points, for a program that reads it (`Path(__file__).parent /
    "names.txt"`), and the build's note saying where; (None, None) when no module reads it.

    A notebook has no `__file__`. The files next to the script reach a run as the dataset source
    whose local folder ([datasets] in the workspace) holds the script: `__file__` is the script's
    place in that source's mount (its places under /kaggle/input, newest layout first), so the
    script reads them as it does at home, on Kaggle and in local runs alike. With no such source
    it is the script's name in the run's working folder, /kaggle/working."""
    users = [m.path for m in modules if any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(m.tree))]
    if not users:
        return None, None
    script = (ws.paths.src / recipe.entry).resolve()
    found = None
    for source in recipe.dataset_sources:
        key = KaggleRef.parse(source).key
        mapped = ws.config.datasets.get(key)
        folder = (ws.root / mapped).resolve() if mapped is not None else None
        if folder is not None and script.parent.is_relative_to(folder) and (
                found is None or len(folder.parts) > len(found[2].parts)):
            found = (key, mapped, folder)
    who = ", ".join(users) + (" read" if len(users) > 1 else " reads")
    name = posixpath.basename(recipe.entry)
    if found is None:
        return [], (f"{who} __file__: in the kernel it is /kaggle/working/{name} (the run's working folder), where "
                    "the files next to the script are not; to read them, map the script's folder as a dataset "
                    "source ([datasets] \"you/name\" = \".\" in the workspace, dataset_sources = [\"you/name\"] in the "
                    "recipe; docs/own-project.md)")
    key, mapped, folder = found
    rel = script.relative_to(folder).as_posix()
    places = [posixpath.join(layout, rel) for layout in input_layouts("dataset", key)]
    return places, (f"{who} __file__: in the kernel it is /kaggle/input/{places[0]} (the dataset source {key}, "
                    f"mapped from {mapped} here), so the files next to the script are read from that source")


def argv_cell_text(script: str, options: list[ScriptOption], names: list[str],
                   file_places: list[str] | None = None) -> str:
    """The cell that sets `sys.argv` for `script` from the parameters `names`, prints it and
    deletes the parameter names before any module runs; with `file_places` (see `script_file`),
    it sets `__file__` too."""
    by_name = {o.name: o for o in options}
    # A parameter added by hand that is none of the options kjob read (a TrainingArguments field): --name value.
    by_name.update({name: ScriptOption(name, f"--{name}", "added", "str", 0) for name in names if name not in by_name})
    rows = "".join(f"    ({name!r}, {by_name[name].flag!r}, {by_name[name].how!r}"
                   + (f", {by_name[name].commands!r}" if by_name[name].commands else "") + "),\n"
                   for name in names)
    values = ", ".join(f"{name!r}: {name}" for name in names)
    deleted = list(names)
    return (
        f"# The command line of {script}, from the parameters above: the script runs as __main__ below.\n"
        "import shlex as _kjob_shlex, sys as _kjob_sys\n\n"
        + _ARGV_HELPER + "\n\n"
        f"_kjob_sys.argv = _kjob_command_line({script!r}, [\n{rows}], {{{values}}})\n"
        "print('kjob: python ' + _kjob_shlex.join(_kjob_sys.argv), flush=True)\n"
        f"del _kjob_command_line, _kjob_shlex, _kjob_sys" + "".join(f", {n}" for n in deleted)
        + ("" if file_places is None else
           "\n\n# The program reads __file__, which a notebook has not: the script's place in the run.\n"
           + _FILE_HELPER + f"\n\n__file__ = _kjob_script_file({posixpath.basename(script)!r}, {file_places!r})\n"
           "print('kjob: __file__ = ' + __file__, flush=True)\ndel _kjob_script_file")
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
