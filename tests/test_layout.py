"""The layout keeps its shape: kjob's parts import one way, with no cycle, counting imports
inside functions too (docs/architecture.md says why). A module flat in src/kjob/ is the
shared ground and imports no part; each subpackage is a part, and may import only the parts
below it in PARTS. One exception, explicit and only there: `kjob/__init__.py` re-exports the
library's entry points (its `_EXPORTS` table, imported lazily on first use), so it reaches every
part that defines one."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kjob"
# From the bottom up: each part may import the ground and the parts before it, never after.
PARTS = ["runs", "sandbox", "build", "backends", "lifecycle", "campaigns", "board", "emulator", "cli"]
MOST_FLAT_MODULES = 13  # __init__ and the ground
ROOT = "kjob"  # kjob/__init__.py: its lazy re-exports are the one allowed import of parts from the ground


def part_of(module: str) -> str:
    """`kjob.runs.ledger` -> "runs"; a flat module (or kjob itself) -> "ground"."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in PARTS:
        return parts[1]
    return "ground"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str) -> set[str]:
    """Every kjob module `path` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "kjob"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] == "kjob":
                found |= {f"{base}.{alias.name}" for alias in node.names} if base == "kjob" else {base}
        elif isinstance(node, ast.Call) and _imports_by_name(node):  # importlib.import_module("kjob.x")
            found.add(node.args[0].value)
    if name == ROOT:
        found |= set(reexports(path).values())
    return found


def _imports_by_name(call: ast.Call) -> bool:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    return (name in ("import_module", "__import__") and bool(call.args) and isinstance(call.args[0], ast.Constant)
            and str(call.args[0].value).split(".")[0] == "kjob")


def reexports(path: Path | None = None) -> dict[str, str]:
    """kjob/__init__.py's `_EXPORTS`: each public name -> the module that defines it."""
    tree = ast.parse((path or PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def edges() -> dict[tuple[str, str], list[str]]:
    """(from part, to part) -> the modules whose imports make that edge."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name == ROOT:
            continue  # its re-exports: test_only_the_root_reexports_reach_up_from_the_ground
        for target in imported(path, name):
            a, b = part_of(name), part_of(target)
            if a != b:
                found.setdefault((a, b), []).append(f"{name} imports {target}")
    return found


def test_parts_import_only_the_parts_below_them():
    rank = {"ground": -1, **{part: i for i, part in enumerate(PARTS)}}
    upward = {pair: why for pair, why in edges().items() if rank[pair[1]] >= rank[pair[0]]}
    assert not upward, "\n".join(line for why in upward.values() for line in why)


def test_no_cycle_between_parts():
    graph = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    state = {}

    def visit(node, trail):
        if state.get(node) == "open":
            raise AssertionError("import cycle between parts: " + " -> ".join(trail + [node]))
        if state.get(node) == "done":
            return
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


def test_every_subpackage_is_a_known_part_and_the_ground_stays_small():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(PARTS)
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= MOST_FLAT_MODULES, flat


def test_only_the_root_reexports_reach_up_from_the_ground():
    """kjob/__init__.py imports nothing at import time, and lazily only its `_EXPORTS` table's
    modules: the edges that table makes are the ones `edges()` leaves out, and no more."""
    init = PACKAGE / "__init__.py"
    table = reexports(init)
    assert table and imported(init, ROOT) == set(table.values())
    for module in set(table.values()):
        relative = Path(*module.split(".")[1:])
        assert (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file(), module


def test_the_check_sees_an_import_by_name(tmp_path):
    module = tmp_path / "kjob" / "runs" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("import importlib\ndef f():\n    return importlib.import_module('kjob.campaigns.sweep')\n")
    assert imported(module, "kjob.runs.x") == {"kjob.campaigns.sweep"}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "kjob" / "runs" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from kjob.campaigns.sweep import Sweep\n    from . import ledger\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "kjob"
    try:
        assert imported(module, "kjob.runs.x") == {"kjob.campaigns.sweep", "kjob.runs"}
    finally:
        PACKAGE = saved
