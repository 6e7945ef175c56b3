"""Assembling a recipe's notebook: one cell per src module, a tagged parameters cell, a main cell.

The notebook is plain JSON written deterministically (sorted keys, stable cell ids, no
timestamps), with each cell's source as one string, as Kaggle's server expects.
Module cells keep their file's line numbering exactly (sibling imports are commented out,
not removed), so a line in a cell maps back to a line in its src file.
"""

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property

from kjob.errors import ValidationError

PARAMETERS_TAG = "parameters"
PARAMETERS_ID = "kjob-parameters"
PROVENANCE_ID = "kjob-provenance"
PIP_ID = "kjob-pip"
HEADER_LINES = 1  # the "# ---- src/x.py ----" line above each module's text
_CELL_ID_BAD = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(frozen=True)
class SourceModule:
    path: str  # workspace-relative, e.g. "src/enhancer/stft.py"
    text: str

    @cached_property
    def tree(self) -> ast.Module:
        """The parsed module (raises SyntaxError); every check shares this one parse."""
        return ast.parse(self.text, filename=self.path)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def _problem(module: SourceModule, lineno: int, message: str) -> str:
    return f"{module.path}:{lineno}: {message}"


def inline_module(module: SourceModule, packages: set[str], modules: set[str], keep_main: bool = False,
                  shared: bool = True) -> str:
    """The module's text as a cell body: `from` imports of sibling modules and `__main__` blocks
    become comments on the same lines. `packages` are the recipe's top-level package names,
    `modules` the dotted names of its modules. `import x` of a sibling stays: the build registers
    module x's cell as a module object. `keep_main`: a script entry, whose `__main__` block runs
    under `with EXIT_OK():` on the same lines (see `main_block_runs`). Not `shared` (each module
    runs as a module of its own, `module_cell`): the text as it is, but a script's `__main__` block."""
    tree = module.tree
    lines = module.text.splitlines()
    problems: list[str] = []
    comment_out: list[tuple[int, int]] = []
    aliases: dict[int, list[str]] = {}
    if keep_main:
        main_block_runs(tree, lines)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in packages:
                continue
            if node.module not in modules and (shared or not any(f"{node.module}.{a.name}" in modules
                                                                   for a in node.names)):
                problems.append(_problem(module, node.lineno, f"imports {node.module}, which is not among the recipe's modules"))
            if not shared:
                continue
            # `from helpers import *` too: the modules' cells share one namespace, helpers' names are there
            comment_out.append((node.lineno, node.end_lineno or node.lineno))
            aliases[node.lineno] = [f"{a.asname} = {a.name}" for a in node.names if a.asname]
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] in packages for a in node.names):
            for alias in node.names:
                if alias.name.split(".")[0] in packages and alias.name not in modules:
                    problems.append(_problem(module, node.lineno,
                                             f"imports {alias.name}, which is not among the recipe's modules"))
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and shared:
            problems.append(_problem(module, node.lineno, "relative imports cannot be inlined into one namespace; use "
                                     "'from package.module import name', or namespaces = \"modules\" in the recipe"))
        elif is_main_guard(node) and not keep_main and shared:
            comment_out.append((node.lineno, node.end_lineno or node.lineno))
    if problems:
        raise ValidationError(f"{module.path}: cannot inline this module", details=problems)
    for start, end in comment_out:
        for i in range(start - 1, end):
            lines[i] = "# " + lines[i]
        if aliases.get(start):
            lines[start - 1] = "; ".join(aliases[start]) + "  " + lines[start - 1]
    return "\n".join(lines)


# The script entry's context for its `__main__` block (defined by the cell that sets sys.argv): a
# script's `sys.exit(0)` (click's standalone mode, `sys.exit(main())`) ends it as it ends a process,
# where in a notebook a SystemExit fails the cell; another exit code still fails it.
EXIT_OK = "_kjob_exit_ok"
_MAIN_LINE = re.compile(r"""^(\s*)if\s+__name__\s*==\s*(['"])__main__\2\s*:""")


def main_block_runs(tree: ast.Module, lines: list[str]) -> None:
    """Rewrite, in place, each `if __name__ == "__main__":` line (without an else) of a script as
    `with EXIT_OK():`, the original kept as a comment on the same line: the block runs as it would."""
    for node in tree.body:
        if is_main_guard(node) and not node.orelse:
            line = lines[node.lineno - 1]
            match = _MAIN_LINE.match(line)
            if match:
                rest = line[match.end():]
                lines[node.lineno - 1] = (f"{match.group(1)}with {EXIT_OK}():{rest}"
                                          f"{'  ' if rest.strip() else ''}# {line.strip()}")


def is_main_guard(node: ast.stmt) -> bool:
    """`if __name__ == ...`: commented out in the cell, where __name__ is always "__main__"."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def cell_id(text: str) -> str:
    return _CELL_ID_BAD.sub("-", text).strip("-")[:64]


def markdown_cell(cid: str, text: str) -> dict:
    return {"cell_type": "markdown", "id": cid, "metadata": {}, "source": text}


def code_cell(cid: str, text: str, metadata: dict | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cid,
        "metadata": metadata or {},
        "outputs": [],
        "source": text,
    }


def pip_cell(requirements: list[str], recipe_path: str) -> dict:
    """Installs the recipe's `pip` requirements before anything imports them. Plain Python, not
    `%pip`: the checks read every code cell as one Python program. Private names, deleted after,
    so that nothing here lands in the namespace the modules and parameters share."""
    args = ", ".join(json.dumps(r) for r in requirements)
    text = (
        f"# Installs the pip packages of {recipe_path} (needs internet; a smoke run skips this).\n"
        "import subprocess as _kjob_subprocess, sys as _kjob_sys\n"
        "_kjob_subprocess.check_call([_kjob_sys.executable, \"-m\", \"pip\", \"install\", \"-q\", "
        f"\"--disable-pip-version-check\", {args}])\n"
        "del _kjob_subprocess, _kjob_sys"
    )
    return code_cell(PIP_ID, text)


def without_pip_install(nb: dict, note: str) -> dict:
    """A copy of `nb` whose pip cell only says `note` (a smoke run uses the packages installed here)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell["id"] == PIP_ID:
            cell["source"] = f"# {note}"
    return nb


def parameters_cell(values: dict) -> dict:
    lines = ["# Parameters: `kjob build -p key=value` (or papermill) replaces this cell."]
    lines += [f"{key} = {value!r}" for key, value in values.items()]
    return code_cell(PARAMETERS_ID, "\n".join(lines), {"tags": [PARAMETERS_TAG]})


def main_cell(entry: str, entry_path: str, names: list[str], module: str | None = None) -> dict:
    """The call of the entry function (from `module`, when the modules run as modules)."""
    args = "".join(f"    {name}={name},\n" for name in names)
    text = (
        f"# Entry point: {entry}() from {entry_path}, called with the parameters above.\n"
        + (f"from {module} import {entry}\n" if module else "")
        + f"result = {entry}(\n{args})"
    )
    return code_cell("kjob-main", text)


def module_cell(module: SourceModule, body: str, dotted: str | None = None) -> dict:
    """The cell of one module: in the notebook's namespace, or (`dotted`, see `modules_cell`) run
    as the module of that name."""
    meta = {"kjob": {"source": module.path, "first_line": HEADER_LINES + 1}}
    header = f"%%{MODULE_MAGIC} {dotted} {module.path}" if dotted else f"# ---- {module.path} ----"
    return code_cell(cell_id("src-" + module.path.removeprefix("src/")), f"{header}\n{body}", meta)


# A recipe with namespaces = "modules": each module's cell runs as a module of its own, as Python
# would import it from a file (in sys.modules, with its package for relative imports).
MODULES_ID = "kjob-modules"
MODULE_MAGIC = "kjob_module"
_MODULES_SETUP = f'''# The cells below starting %%{MODULE_MAGIC} NAME PATH each run as the module NAME (the file PATH),
# as Python imports a project: `import NAME` and `from .x import y` find them, and each has its own names.
from IPython import get_ipython as _kjob_ipython
from IPython.core.magic import no_var_expand as _kjob_no_var_expand


@_kjob_no_var_expand
def _kjob_module(line, cell):
    __tracebackhide__ = True
    import linecache, sys, types
    name, path = line.split(maxsplit=1)
    parts = name.split(".")
    for i in range(1, len(parts)):  # its packages, as placeholders until their own cell runs
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            sys.modules[parent] = types.ModuleType(parent)
            sys.modules[parent].__path__ = []
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[parent])
    package = path.endswith("__init__.py")
    module = sys.modules.get(name) if package else None  # a package's placeholder keeps its submodules
    module = module if module is not None else types.ModuleType(name)
    module.__file__, module.__package__ = path, name if package else name.rpartition(".")[0]
    if package:
        module.__path__ = []
    sys.modules[name] = module
    if len(parts) > 1:
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)
    linecache.cache[path] = (len(cell), None, cell.splitlines(True), path)  # tracebacks show its lines
    try:
        exec(compile(cell, path, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]  # as a failed import leaves it
        raise


_kjob_ipython().register_magic_function(_kjob_module, "cell", "{MODULE_MAGIC}")
del _kjob_ipython, _kjob_no_var_expand, _kjob_module'''


def modules_cell() -> dict:
    return code_cell(MODULES_ID, _MODULES_SETUP)


def notebook(cells: list[dict], provenance: dict) -> dict:
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {
                "codemirror_mode": {"name": "ipython", "version": 3},
                "file_extension": ".py",
                "mimetype": "text/x-python",
                "name": "python",
                "nbconvert_exporter": "python",
                "pygments_lexer": "ipython3",
            },
            "kjob": provenance,
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def parameterize(nb: dict, values: dict) -> dict:
    """A copy of `nb` whose tagged parameters cell holds `values` merged over its own.

    Replaces the cell, never adds a second one."""
    nb = json.loads(json.dumps(nb))
    for index, cell in enumerate(nb["cells"]):
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            current = nb["metadata"].get("kjob", {}).get("parameters", {})
            merged = {**current, **values}
            nb["cells"][index] = parameters_cell(merged)
            nb["metadata"].setdefault("kjob", {})["parameters"] = merged
            return nb
    raise ValidationError("the notebook has no cell tagged 'parameters'")


def locate(nb: dict, cell_index: int, line: int) -> str | None:
    """`src/file.py:N` for line `line` (1-based) of code cell `cell_index`, if it is a module's."""
    if not 0 <= cell_index < len(nb["cells"]):
        return None
    info = nb["cells"][cell_index].get("metadata", {}).get("kjob", {})
    if "source" not in info or line < info["first_line"]:
        return None
    return f"{info['source']}:{line - info['first_line'] + 1}"


def program(nb: dict, cells: list[int] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """All code cells (or those of `cells`) as one program, and for each program line its (cell
    index, cell line). A cell magic's line (`%%kjob_module ...`) is a comment there."""
    text_parts, line_map = [], []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or (cells is not None and index not in cells):
            continue
        cell_lines = cell["source"].split("\n")
        if cell_lines[0].startswith("%%"):
            cell_lines[0] = "# " + cell_lines[0]
        text_parts.extend(cell_lines)
        line_map.extend((index, n) for n in range(1, len(cell_lines) + 1))
    return "\n".join(text_parts) + "\n", line_map
