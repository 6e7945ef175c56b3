"""`kjob init`: make an existing project folder a kjob workspace, with a recipe for one function.

It writes what is missing and never replaces a file: the workspace table (`[tool.kjob]`
appended to pyproject.toml, or kjob.toml where there is no pyproject.toml: creating a
pyproject.toml would make the folder look like an installable package to pip and uv), the
.gitignore lines for what kjob writes, and builders/NAME.toml. Everything is computed and
checked first, so a refusal (the recipe exists, the entry is not found) writes nothing.
"""

import ast
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kjob.build.module_paths import module_file, module_name
from kjob.build.checks import collision_problems, nesting_problem, parse_problem
from kjob.errors import ConfigError, NotFoundError, UsageError
from kjob.build.kernel_metadata import slugify
from kjob.notebook import SourceModule
from kjob.build.paramchecks import module_bindings
from kjob.build.recipe import NAME_RE
from kjob.build.schema import param_value_problem, recipe_fields
from kjob.build.script_entry import read_options, smoke_parameters as script_smoke, training_hint_lines
from kjob.credentials import kaggle_username
from kjob.workspace import OWNER_RE, environment_owner, load_config, read_toml, read_utf8

# What kjob writes that is not committed: its state (ledger, local and smoke runs), fetched
# runs, built kernels (rebuilt from src and recipes) and evaluation reports.
GITIGNORE_LINES = ("downloads/", ".kjob/", "/kernels/", "eval/reports/")


@dataclass
class InitResult:
    name: str
    done: list[str] = field(default_factory=list)  # one line per file written or left as is
    skipped: list[str] = field(default_factory=list)  # entry arguments that are not parameters, and why
    next_steps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    path: Path  # the entry module's file
    shown: str  # its path relative to the root
    function: ast.FunctionDef | None  # None: a script entry, run as __main__ with its command line
    src_dir: str  # "src", "." or another folder, relative to the root
    rel: str  # the module's path relative to src_dir
    tree: ast.Module | None = None


def init_project(root: Path, entry: str, name: str | None = None, owner: str | None = None) -> InitResult:
    root = root.resolve()
    config = load_config(root) if _has_config(root) else None
    found = _entry(root, entry, config.src_dir if config else None)
    src = root / found.src_dir
    modules = discover_modules(src, found.rel)
    if name is not None and (not NAME_RE.match(name) or ".." in name):
        raise UsageError(f"--name {name!r} is not a recipe name: letters, digits, '.', '_' and '-', starting "
                         "with a letter or digit (it names builders/NAME.toml); nothing was written")
    name, title, slug = _names(name or root.name)
    recipe_path = root / "builders" / f"{name}.toml"
    if recipe_path.exists():
        raise UsageError(f"builders/{name}.toml exists; kjob init never replaces a file "
                         "(edit it, or pass --name for another recipe)")
    if owner is not None and not OWNER_RE.fullmatch(owner):
        raise UsageError(f"--owner: expected a Kaggle user name (letters, digits, '-' and '_'), not {owner!r}")

    bound, sources = {}, []
    for rel in modules:
        module = SourceModule(_shown(root, src / rel), _read_source(src / rel, _shown(root, src / rel)))
        sources.append(module)
        for key, line in module_bindings(module, {module_name(m).split(".")[0] for m in modules}):
            bound.setdefault(key, f"{module.path}:{line}")
    smoke = {}
    if found.function is None:
        parameters, skipped, smoke = script_parameters(found)
    else:
        parameters, skipped = entry_parameters(found.function, bound)
    recipe_text = render_recipe((name, title, slug), modules, found, parameters, skipped, smoke)
    why_own = _own_namespaces(sources)
    if why_own:  # the project as Python runs it: each module of its own
        recipe_text = recipe_text.replace("private = true\n", "private = true\n# Each module runs as a module of its "
                                          f"own, as Python imports it ({why_own}).\nnamespaces = \"modules\"\n", 1)
    # A --resume-like option (a string) is what `push --resume-from vN` sets to the mounted checkpoint folder.
    resume = next((k for k, v in parameters.items() if isinstance(v, str) and k.split("_")[0] == "resume"), None)
    if resume:
        recipe_text += (f"\n# `kjob push {name} --resume-from vN` sets {resume} to the folder where that run's"
                        f" outputs are mounted.\n[resume]\nparameter = {json.dumps(resume)}\n")
    recipe_fields(name, f"builders/{name}.toml", tomllib.loads(recipe_text))  # it loads as kjob reads it

    result = InitResult(name, skipped=skipped)
    writes = []
    config_write = _config_write(root, config, owner, found.src_dir, result)
    if config_write:
        writes.append(config_write)
    gitignore = _gitignore_write(root, result)
    if gitignore:
        writes.append(gitignore)
    writes.append((recipe_path, recipe_text, "x"))
    for path, text, mode in writes:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, mode, encoding="utf-8", newline="\n") as f:
            f.write(text)
    what = f"{found.function.name}() of {found.shown}" if found.function else f"the script {found.shown}"
    result.done.insert(0, f"wrote builders/{name}.toml: {what}; modules "
                       f"{', '.join(modules)}; parameters {', '.join(parameters) or 'none'}"
                       + (f"; smoke parameters {', '.join(f'{k}={v}' for k, v in smoke.items())}" if smoke else "")
                       + (f"; resume parameter {resume}" if resume else ""))
    if why_own:
        result.done.append(f"namespaces = \"modules\": each module runs as its own ({why_own})")
    if not (owner or (config and config.owner) or environment_owner()):
        user = kaggle_username()
        if user and OWNER_RE.fullmatch(user):
            result.done.append(f"owner: {user}, the user name of your Kaggle credentials (--owner or owner = ... "
                               "for another)")
        else:
            where = "in kjob.toml" if (root / "kjob.toml").is_file() else "under [tool.kjob] in pyproject.toml"
            result.next_steps.append(f"set owner = \"<your Kaggle user name>\" {where} before a Kaggle push "
                                     "(local builds and runs need none)")
    for key, value, folder in _data_files(root, found.path.parent, parameters):
        result.next_steps.append(f"{key} = {json.dumps(value)} names a {'folder' if folder else 'file'} of this project; "
                                 f"if the code reads it, map {'it' if folder else 'its folder'} as a dataset source and "
                                 "point the parameter at /kaggle/input/SLUG/... (a kernel runs in /kaggle/working): "
                                 "docs/own-project.md, \"Data files next to the code\"")
    result.next_steps.append(f"kjob build {name} --smoke")
    return result


def _data_files(root: Path, here: Path, parameters: dict) -> list[tuple[str, str, bool]]:
    """(name, value, is a folder) for each string parameter that names a file or folder of the
    project by a relative path (from the root or the entry's folder): data a kernel will not find
    in its working folder."""
    found = []
    for key, value in parameters.items():
        if not isinstance(value, str) or not value.strip("./ ") or Path(value).is_absolute() or ".." in Path(value).parts:
            continue
        place = next((base / value for base in (root, here) if (base / value).exists()), None)
        if place is not None:
            found.append((key, value, place.is_dir()))
    return found


def _own_namespaces(sources: list[SourceModule]) -> str | None:
    """Why the project's modules cannot share the notebook's one namespace, if they cannot."""
    relative = next((f"{m.path}:{n.lineno}" for m in sources for n in ast.walk(m.tree)
                     if isinstance(n, ast.ImportFrom) and n.level), None)
    if relative:
        return f"a relative import at {relative}"
    clash = collision_problems(sources)
    return f"a name two modules define: {clash[0].split(';')[0]}" if clash else None


def _has_config(root: Path) -> bool:
    return (root / "kjob.toml").is_file() or "kjob" in _pyproject(root).get("tool", {})


def _pyproject(root: Path) -> dict:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    return read_toml(path, "pyproject.toml")


def _shown(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _entry(root: Path, entry: str, src_dir: str | None) -> _Entry:
    file, sep, function = entry.rpartition(":")
    if not sep and entry.endswith(".py"):
        file, function = entry, None  # a script entry
    elif not sep or not file.endswith(".py") or not function.isidentifier():
        raise UsageError(f"--entry expects PATH.py (a script) or PATH.py:FUNCTION, like src/pkg/train.py:main, "
                         f"not {entry!r}")
    path = (Path.cwd() / file).resolve()
    if not path.is_relative_to(root):
        raise UsageError(f"--entry {file} is outside the project folder {root}")
    if not path.is_file():
        raise NotFoundError(f"--entry: no file {file}")
    shown = _shown(root, path)
    tree = _parse(path, shown)
    if src_dir is None:
        src_dir = _guess_src_dir(root, path)
    elif not path.is_relative_to((root / src_dir).resolve()):
        raise ConfigError(f"--entry {shown} is outside the source folder {src_dir!r} ([tool.kjob] src_dir); "
                          "set src_dir to the folder your modules are imported from (\".\" for the root)")
    rel = path.relative_to((root / src_dir).resolve()).as_posix()
    if function is None:
        return _Entry(path, shown, None, src_dir, rel, tree)
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function]
    if not defs:
        raise NotFoundError(f"{shown} defines no function '{function}' at its top level")
    if isinstance(defs[-1], ast.AsyncFunctionDef):
        raise UsageError(f"{shown}:{defs[-1].lineno}: {function} is async; the notebook calls a plain function")
    return _Entry(path, shown, defs[-1], src_dir, rel, tree)


def _places(entry: _Entry) -> tuple[Path, ...]:
    """Where the modules a script imports are found: its folder (Python's sys.path[0]), then src."""
    return entry.path.parent, entry.path.parents[len(Path(entry.rel).parts) - 1]


def script_parameters(entry: _Entry) -> tuple[dict, list[str], dict]:
    """A script's [parameters] (its options with literal defaults), a line for each option left
    out (to give with -p), and [smoke.parameters] from its obvious knobs."""
    options = read_options(entry.tree, _places(entry))
    parameters, skipped = {}, []
    for option in options:
        value = option.default
        if option.why is None and value is not None and not param_value_problem(value):
            parameters[option.name] = value
        else:
            must = "required: set it here, or give it with -p" if option.required else "set it with -p"
            why = option.why if option.why != "required" else "no default"
            skipped.append(f"{option.name}: {why} ({must} {option.name}=...)")
    return parameters, skipped, script_smoke(parameters)


def _read_source(path: Path, shown: str) -> str:
    # A BOM (written by some Windows editors) is no code: Python's parser refuses it in a str.
    return read_utf8(path, shown, UsageError).removeprefix("\ufeff")


def _parse(path: Path, shown: str) -> ast.Module:
    """The module's tree; one UsageError line (by line) if it does not parse, or nests too
    deeply for the checks that walk it (a 1,000-term expression)."""
    text = _read_source(path, shown)
    try:
        tree = ast.parse(text, filename=shown)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise UsageError(parse_problem(shown, text, exc)) from exc
    problem = nesting_problem(shown, tree)
    if problem:
        raise UsageError(problem)
    return tree


def _guess_src_dir(root: Path, path: Path) -> str:
    """src/ if the entry is under it; else the folder its package is imported from (the first
    one up without an __init__.py): "." for train.py at the root, "lib" for lib/pkg/train.py."""
    rel = path.relative_to(root)
    if len(rel.parts) > 1 and rel.parts[0] == "src":
        return "src"
    folder = path.parent
    while folder != root and (folder / "__init__.py").is_file():
        folder = folder.parent
    return _shown(root, folder) if folder != root else "."


def discover_modules(src: Path, entry_rel: str) -> list[str]:
    """The entry module and the modules under `src` it imports, transitively, each after the
    modules it imports (the order the notebook's cells must run in)."""
    order: list[str] = []
    seen = {entry_rel}
    # Depth-first, each module listed after its imports; an explicit stack, not recursion, so
    # that a chain of a thousand modules (m0 imports m1 imports m2 ...) is no deeper than one.
    stack = [(entry_rel, iter(_project_imports(src, entry_rel)))]
    while stack:
        rel, deps = stack[-1]
        dep = next((d for d in deps if d not in seen), None)
        if dep is None:
            stack.pop()
            order.append(rel)
        else:
            seen.add(dep)
            stack.append((dep, iter(_project_imports(src, dep))))
    return order


def _project_imports(src: Path, rel: str) -> list[str]:
    """The modules under `src` that the module `rel` imports (paths relative to `src`)."""
    tree = _parse(src / rel, rel)
    deps = []
    for name in _imported_names(tree, rel):
        found = module_file(src, name)
        if found is None or (found.name == "__init__.py" and not _has_code(found)):
            continue  # not this project's, or an empty package marker: nothing to inline
        deps.append(found.relative_to(src).as_posix())
    return deps


def _imported_names(tree: ast.Module, rel: str) -> list[str]:
    """Every dotted name the module imports (`from a.b import c` gives a.b and a.b.c: c may be
    a submodule), relative imports resolved against its package."""
    package = module_name(rel) if rel.endswith("__init__.py") else module_name(rel).rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)] + ([base] if base else []))
            if base:
                names.append(base)
            names += [f"{base}.{a.name}" if base else a.name for a in node.names if a.name != "*"]
    return names


def _has_code(path: Path) -> bool:
    try:
        body = ast.parse(path.read_text(encoding="utf-8", errors="replace").removeprefix("\ufeff")).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True  # included, so that the build reports it by line
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def entry_parameters(fn: ast.FunctionDef, bound: dict[str, str]) -> tuple[dict, list[str]]:
    """The recipe's [parameters] from the function's literal defaults, and a line for each
    argument left out, saying why."""
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    parameters, skipped = {}, []
    for arg, default in pairs:
        name = arg.arg
        why = _not_a_parameter(arg, default, bound, args.posonlyargs, fn.name)
        if why:
            skipped.append(f"{name}: {why}")
            continue
        parameters[name] = ast.literal_eval(default)
    return parameters, skipped


def _not_a_parameter(arg, default, bound, posonly, function) -> str | None:
    if default is None:
        return f"no default in {function}(); give it a value under [parameters]"
    if arg in posonly:
        return "positional-only (the notebook passes parameters by keyword)"
    try:
        value = ast.literal_eval(default)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return f"default {ast.unparse(default)} is not a literal ({function}() keeps it)"
    if value is None:
        return f"default None (TOML has no null; {function}() keeps it)"
    if param_value_problem(value):
        return (f"default {ast.unparse(default)} is not a number, string, boolean or list of those "
                f"({function}() keeps it)")
    if arg.arg in bound:
        return f"the module-level name at {bound[arg.arg]} would replace it in the notebook; rename one"
    try:
        if tomllib.loads(f"v = {_toml(value)}")["v"] != value:
            raise ValueError
    except (ValueError, tomllib.TOMLDecodeError):
        return f"default {ast.unparse(default)} cannot be written in TOML ({function}() keeps it)"
    return None


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def _names(base: str) -> tuple[str, str, str]:
    """(recipe name, title, slug), the title slugifying to the slug as Kaggle requires."""
    if not NAME_RE.match(base) or ".." in base:
        base = slugify(base)
        if not base:
            raise UsageError("pass --name: the folder's name makes no recipe name")
    slug = slugify(base)
    if not slug:
        raise UsageError(f"--name {base!r} has no letters or digits for a Kaggle slug")
    title = " ".join(word.capitalize() for word in slug.split("-"))
    if len(title) < 5:  # Kaggle refuses shorter titles
        title += " Kernel"
        slug = slugify(title)
    return base, title, slug


def render_recipe(names: tuple[str, str, str], modules: list[str], entry: _Entry, parameters: dict,
                  skipped: list[str], smoke: dict | None = None) -> str:
    name, title, slug = names
    entry_shown = entry.shown
    if entry.function is None:
        return _render_script_recipe(names, modules, entry, parameters, skipped, smoke or {})
    where = "the project's root" if entry.src_dir == "." else f"{entry.src_dir}/"
    lines = [
        f"# Recipe for the {name} kernel, written by `kjob init` from {entry_shown}:{entry.function.name}.",
        f"# `kjob build {name} --smoke` builds kernels/{name}/ and runs it on this CPU;",
        "# README \"Recipes\" lists every key.",
        f"title = {json.dumps(title)}",
        f"slug = {json.dumps(slug)}",
        f"description = {json.dumps(f'{entry.function.name}() of {entry_shown}')}",
        f"# The modules inlined into the notebook, in order (paths under {where}): the entry's module",
        "# and the project modules it imports. Edit by hand for imports kjob cannot see.",
        "modules = [",
        *(f"    {json.dumps(m)}," for m in modules),
        "]",
        f"entry = {json.dumps(entry.function.name)}",
        'accelerator = "none"  # "gpu" for a Kaggle T4, or "tpu"',
        "internet = false  # true to reach the network (needed by pip = [\"pkg==1.2\"])",
        "private = true",
        '# dataset_sources = ["owner/slug"]  # Kaggle data, read under /kaggle/input',
        "",
        f"# {entry.function.name}()'s defaults; `kjob build {name} -p key=value` sets one for a build.",
        "[parameters]",
        *(f"{key} = {_toml(value)}" for key, value in parameters.items()),
        *(f"# skipped {line}" for line in skipped),
        "",
        "# `kjob build --smoke` runs the notebook on this CPU with these values over [parameters]:",
        "# make it small (a few steps, tiny data).",
        "[smoke]",
        "timeout = 120",
        "",
        "[smoke.parameters]",
        "",
    ]
    return "\n".join(lines)


def _render_script_recipe(names, modules, entry: _Entry, parameters: dict, skipped: list[str], smoke: dict) -> str:
    name, title, slug = names
    options = read_options(entry.tree, _places(entry))
    # A flag whose one switch sets what the script assumes anyway: the other value cannot be given.
    one_way = {o.name: f"  # {o.flag} has no off switch: the script always runs with it {_toml(o.default)}"
               for o in options if o.how in ("true", "false") and o.default is (o.how == "true")}
    one_way.update({o.name: f"  # the command {entry.shown} runs: {', '.join(o.choices)}"
                    for o in options if o.how == "command"})
    where = "the project's root" if entry.src_dir == "." else f"{entry.src_dir}/"
    lines = [
        f"# Recipe for the {name} kernel, written by `kjob init` from the script {entry.shown}.",
        f"# `kjob build {name} --smoke` builds kernels/{name}/ and runs it on this CPU;",
        "# docs/recipes.md lists every key.",
        f"title = {json.dumps(title)}",
        f"slug = {json.dumps(slug)}",
        f"description = {json.dumps(f'the script {entry.shown}')}",
        f"# The modules inlined into the notebook, in order (paths under {where}): the project modules",
        "# the script imports, then the script. Edit by hand for imports kjob cannot see.",
        "modules = [",
        *(f"    {json.dumps(m)}," for m in modules),
        "]",
        "# A script entry: the kernel runs it as __main__, its command line made of the parameters.",
        f"entry = {json.dumps(entry.rel)}",
        'accelerator = "none"  # "gpu" for a Kaggle T4, or "tpu"',
        "internet = false  # true to reach the network (needed by pip = [\"pkg==1.2\"])",
        "private = true",
        '# dataset_sources = ["owner/slug"]  # Kaggle data, read under /kaggle/input',
        "",
        f"# The command-line options of {entry.shown} with their defaults: `kjob build {name} -p key=value`",
        "# sets one (booleans: the flag present or not).",
        "[parameters]",
        *(f"{key} = {_toml(value)}" + one_way.get(key, "") for key, value in parameters.items()),
        *(f"# skipped {line}" for line in skipped),
        *training_hint_lines(options),
        "",
        "# `kjob build --smoke` runs the notebook on this CPU with these values over [parameters]:",
        "# make it small (a few steps, tiny data). `datasets = {\"owner/slug\" = \"data/sample\"}` maps a",
        "# smaller sample folder for smoke runs.",
        "[smoke]",
        "timeout = 120",
        "",
        "[smoke.parameters]",
        *(f"{key} = {_toml(value)}" for key, value in smoke.items()),
        "",
    ]
    return "\n".join(lines)


_CONFIG_HEADER = "# kjob's workspace settings (README \"Configuration\").\n"


def _config_write(root: Path, config, owner: str | None, src_dir: str, result: InitResult):
    """(path, text, mode) for the workspace table, or None when one exists (left as is)."""
    if config is not None:
        shown = "kjob.toml" if (root / "kjob.toml").is_file() else "[tool.kjob] in pyproject.toml"
        result.done.append(f"{shown}: exists, left as is" + (f" (--owner {owner} not written)" if owner else ""))
        return None
    keys = [f"owner = {json.dumps(owner)}" if owner else
            '# owner = "your-kaggle-username"  # the Kaggle user owning the kernels (or KJOB_OWNER)',
            f"src_dir = {json.dumps(src_dir)}  # where the modules are imported from (\".\": the root)"]
    body = "\n".join(keys) + "\n"
    settings = f"src_dir {src_dir!r}" + (f", owner {owner}" if owner else "")
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        result.done.append(f"wrote kjob.toml ({settings})")
        return root / "kjob.toml", _CONFIG_HEADER + body, "x"
    old = read_utf8(pyproject, "pyproject.toml")
    added = ("\n" if old and not old.endswith("\n") else "") + "\n" + _CONFIG_HEADER + "[tool.kjob]\n" + body
    try:
        table = tomllib.loads(old + added).get("tool", {}).get("kjob")
    except tomllib.TOMLDecodeError:
        table = None
    if table is None or table.get("src_dir") != src_dir:
        raise ConfigError("pyproject.toml: a [tool.kjob] table cannot be appended to it (its [tool] is written "
                          f"another way); add one yourself with src_dir = {json.dumps(src_dir)}")
    result.done.append(f"appended [tool.kjob] to pyproject.toml ({settings})")
    return pyproject, added, "a"


def _ignored(line: str) -> str:
    return line.strip().strip("/").removesuffix("/*")


def _gitignore_write(root: Path, result: InitResult):
    path = root / ".gitignore"
    old = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    present = {_ignored(line) for line in old.splitlines()}
    missing = [line for line in GITIGNORE_LINES if _ignored(line) not in present]
    if not missing:
        result.done.append(".gitignore: has kjob's lines, left as is")
        return None
    text = ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "")
    text += "# kjob: its state, fetched runs, built kernels and reports (kjob init)\n" + "\n".join(missing) + "\n"
    result.done.append(f"{'added to' if old else 'wrote'} .gitignore: {' '.join(missing)}")
    return path, text, "a"
