"""kjob's public face: every entry point docs/library.md documents imports from `kjob` and
from its own module, `kjob.__all__` is exactly what the page lists, and importing kjob (or the
CLI) pulls in nothing heavy. Each import runs in a fresh interpreter, as a user's program would."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import kjob

PROJECT = Path(__file__).resolve().parents[1]
LIBRARY_PAGE = PROJECT / "docs" / "library.md"
HEAVY = {"torch", "nbclient", "jupyter_client", "kagglesdk", "ray", "requests", "numpy"}


def documented() -> list[tuple[str, str]]:
    """(name, module) of each row of docs/library.md's table of entry points."""
    rows = re.findall(r"^\| `(\w+)` \| `([\w.]+)` \|", LIBRARY_PAGE.read_text(encoding="utf-8"), re.MULTILINE)
    assert rows, "docs/library.md has no table of entry points"
    return rows


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_library_page_lists_exactly_kjob_all():
    names = [name for name, _ in documented()]
    assert len(names) == len(set(names)), "a name listed twice"
    assert sorted(names) == sorted(kjob.__all__)


@pytest.mark.parametrize("name,module", documented())
def test_each_entry_point_imports_from_kjob_and_from_its_module(name, module):
    done = python(f"from kjob import {name}\nfrom {module} import {name} as there\n"
                  f"assert {name} is there\nassert {name}.__module__ == {module!r}, {name}.__module__\n")
    assert done.returncode == 0, done.stderr


def test_import_kjob_imports_no_submodule():
    done = python("import sys, kjob\nprint(sorted(m for m in sys.modules if m.startswith('kjob.')))")
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'kjob' has no attribute 'nothing_here'"):
        kjob.nothing_here  # noqa: B018
    assert set(kjob.__all__) <= set(dir(kjob))


def test_the_cli_imports_nothing_heavy():
    """`kjob --help` stays instant: `python -X importtime` lists every module `import kjob.cli` loads."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import kjob.cli"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "kjob" in loaded and not loaded & HEAVY, sorted(loaded & HEAVY)
