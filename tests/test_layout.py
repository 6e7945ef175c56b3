"""The layout keeps its shape: kjob's parts import one way, with no cycle, counting imports
inside functions too (docs/architecture.md says why). A module flat in src/kjob/ is the
shared ground and imports no part; each subpackage is a part, and may import only the parts
below it in PARTS."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kjob"
# From the bottom up: each part may import the ground and the parts before it, never after.
PARTS = ["runs", "sandbox", "build", "backends", "lifecycle", "campaigns", "board", "emulator", "cli"]
MOST_FLAT_MODULES = 13  # __init__ and the ground


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
    return found


def edges() -> dict[tuple[str, str], list[str]]:
    """(from part, to part) -> the modules whose imports make that edge."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
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
