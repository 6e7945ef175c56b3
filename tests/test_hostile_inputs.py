"""Hostile inputs to `kjob init`, `kjob build`, `kjob push` and `kjob dataset push`: a
1,000-module import chain, a 1,000-term expression, symlink loops in a dataset folder, a
UTF-8 BOM and a NUL byte in a module. Each works, or is one `error:` line naming the file
(and line) with what to change: never a traceback. The real CLI on real temporary files."""

import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import Workspace
from kjob.cli import cli

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Workspace:
    """An empty project folder (not a kjob workspace yet), the current folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_OWNER", raising=False)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    ws = Workspace(tmp_path, CliRunner())
    ws.write("pyproject.toml", '[project]\nname = "mine"\nversion = "0.1"\n')
    ws.write("src/chain/__init__.py", "")
    return ws


def error_lines(result) -> list[str]:
    return result.stderr.strip().splitlines()


# -- 1. kjob init over a 1,000-module import chain ------------------------------------------

def test_init_follows_a_thousand_module_import_chain_and_the_build_takes_it(folder):
    count = 1000
    for i in range(count - 1):
        folder.write(f"src/chain/m{i}.py", f"from chain.m{i + 1} import f{i + 1}\n\n\n"
                                           f"def f{i}():\n    return f{i + 1}() + 1\n")
    folder.write(f"src/chain/m{count - 1}.py", f"def f{count - 1}():\n    return 0\n")
    folder.write("src/chain/main.py", "from chain.m0 import f0\n\n\ndef main(label=\"x\"):\n    return f0()\n")

    result = folder.kjob("init", "--entry", "src/chain/main.py:main", "--name", "chain", "--owner", "alice")
    assert result.exit_code == 0, result.output
    modules = tomllib.loads((folder.root / "builders/chain.toml").read_text())["modules"]
    # Each module after the ones it imports: the deepest first, the entry's last.
    assert modules == [f"chain/m{i}.py" for i in reversed(range(count))] + ["chain/main.py"]

    built = folder.kjob("build", "chain")
    assert built.exit_code == 0, built.output


def test_init_refuses_an_entry_too_deep_to_check_in_one_line(folder):
    folder.write("src/chain/main.py", "x = " + " + ".join(["1"] * 1000) + "\n\n\ndef main():\n    return x\n")
    result = folder.kjob("init", "--entry", "src/chain/main.py:main", "--name", "deep")
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert line.startswith("error: src/chain/main.py:1: nested more than 200 levels deep") and "split the expression" in line
    assert not (folder.root / "builders").exists()


# -- 2. kjob build of a module holding a 1,000-term expression -------------------------------

@pytest.mark.parametrize("terms, shown", [
    (1000, "src/pkg/util.py:2: nested more than 200 levels deep"),  # parsed, too deep for the checks
    (10000, "src/pkg/util.py: nested too deeply for Python's parser"),  # the parser itself gives up
])
def test_a_thousand_term_expression_is_one_line_naming_the_file(tiny, terms, shown):
    tiny.write("src/pkg/util.py", "import math\nX = " + " + ".join(["1"] * terms) + "\n\n\n"
                                  "def scale(x, rate):\n    return math.floor(x * rate * 10)\n")
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    first, last = error_lines(result)
    assert first.startswith(f"error: {shown}") and first.endswith(
        "; split the expression into smaller ones (intermediate variables, or a loop or sum() over a list) "
        "or move the data to a file"), first
    assert last == "error: build of tiny failed"
    assert not (tiny.root / "kernels/tiny").exists()  # nothing written on a refusal


def test_deeply_nested_brackets_are_one_line_by_line(tiny):
    nested = "X = " + "[" * 150 + "]" * 150 + "\n"  # under Python's 200 but still parsed
    tiny.write("src/pkg/util.py", "import math\n\n" + nested + "Y = (" + "-" * 300 + "1)\n\n\n"
               "def scale(x, rate):\n    return math.floor(x * rate * 10)\n")
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    first, last = error_lines(result)
    assert first.startswith("error: src/pkg/util.py:4: nested more than 200 levels deep"), first
    assert last == "error: build of tiny failed"


def test_a_long_but_checkable_expression_builds(tiny):
    tiny.write("src/pkg/util.py", "import math\nX = " + " + ".join(["1"] * 150) + "\n\n\n"
               "def scale(x, rate):\n    return math.floor(x * rate * 10)\n")
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output


# -- 3. symlink loops in a dataset folder -----------------------------------------------------

def make_loop(folder: Path, kind: str) -> str:
    """A loop under `folder`, and its name: `loop -> .`, or `a -> b` with `b -> a`."""
    if kind == "self":
        os.symlink(".", folder / "loop")
        return "loop"
    os.symlink("b", folder / "a")
    os.symlink("a", folder / "b")
    return "a"


@pytest.mark.parametrize("kind", ["self", "pair"])
def test_dataset_push_names_a_symlink_loop_in_one_line_and_sends_nothing(kaggle, kind):
    name = make_loop(kaggle.ws.root / "data/some", kind)
    result = kaggle.kjob("dataset", "push", "data/some", "--as", "alice/my-data")
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert lines[0].startswith(f"error: {name}: a symlink loop (it leads back to"), lines
    assert lines[-1].startswith("error: ") and all(line.startswith("error: ") for line in lines)
    assert kaggle.emulator.requests("StartBlobUpload") == [] and kaggle.emulator.requests("CreateDataset") == []


@pytest.mark.parametrize("kind", ["self", "pair"])
def test_runs_and_smoke_runs_mount_a_dataset_folder_holding_a_loop(tiny, kind):
    make_loop(tiny.root / "data/some", kind)
    smoke = tiny.kjob("build", "tiny", "--smoke")
    assert smoke.exit_code == 0, smoke.output
    pushed = tiny.kjob("push", "tiny", "--wait")
    assert pushed.exit_code == 0, pushed.output
    produced = json.loads((tiny.root / "downloads/tiny/local-v1/output/result.json").read_text())
    assert any(produced["inputs"]["found"].values())  # the dataset's own file is still there


def test_leakage_refuses_a_symlink_loop_by_its_path(tmp_path, monkeypatch):
    pytest.importorskip("soundfile")
    monkeypatch.chdir(tmp_path)
    for side, source in (("train", "train/0010.wav"), ("test", "test/0001.wav")):
        (tmp_path / side).mkdir()
        shutil.copy(DEMO / source, tmp_path / side / "a.wav")
    os.symlink(".", tmp_path / "train/loop")
    os.symlink(".", tmp_path / "train/loop2")  # with two, the walk went round 2**40 times
    result = CliRunner().invoke(cli, ["leakage", "--train", "train", "--test", "test"])
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [f"error: train/loop: a symlink loop (it leads back to {tmp_path / 'train'}); "
                                   "remove it"]


# -- 8. a UTF-8 BOM and a NUL byte in a module -----------------------------------------------

def test_a_module_saved_with_a_bom_builds_and_the_bom_is_left_out(tiny):
    path = tiny.root / "src/pkg/util.py"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = tiny.kjob("build", "tiny", "--smoke")
    assert result.exit_code == 0, result.output
    notebook = json.loads((tiny.root / "kernels/tiny/tiny.ipynb").read_text(encoding="utf-8"))
    util = next(c["source"] for c in notebook["cells"] if "def scale" in c["source"])
    assert "\ufeff" not in util and "\n\"\"\"Helpers.\"\"\"\nimport math\n" in util


def test_init_reads_a_module_saved_with_a_bom(folder):
    (folder.root / "src/chain/main.py").write_bytes(
        b"\xef\xbb\xbffrom chain.util import one\n\n\ndef main(steps=2):\n    return one() * steps\n")
    (folder.root / "src/chain/util.py").write_bytes(b"\xef\xbb\xbfdef one():\n    return 1\n")
    result = folder.kjob("init", "--entry", "src/chain/main.py:main", "--name", "bom", "--owner", "alice")
    assert result.exit_code == 0, result.output
    recipe = tomllib.loads((folder.root / "builders/bom.toml").read_text())
    assert recipe["modules"] == ["chain/util.py", "chain/main.py"] and recipe["parameters"] == {"steps": 2}
    assert folder.kjob("build", "bom").exit_code == 0


def test_a_nul_byte_is_reported_at_its_line(tiny):
    path = tiny.root / "src/pkg/util.py"
    text = path.read_bytes()
    path.write_bytes(text + b"# a comment\nY = 1  # with a \x00 in it\n")
    line = text.count(b"\n") + 2
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    assert error_lines(result) == [
        f"error: src/pkg/util.py:{line}: a NUL byte (\\x00) at column 17: Python source cannot hold one; "
        "remove it (is the file binary, or saved as UTF-16?)", "error: build of tiny failed"]

    (tiny.root / "src/pkg/job.py").write_bytes(b"import json\x00\n")
    init = tiny.kjob("init", "--entry", "src/pkg/job.py:main", "--name", "other")
    assert init.exit_code == 2
    assert error_lines(init) == ["error: src/pkg/job.py:1: a NUL byte (\\x00) at column 12: Python source cannot "
                                 "hold one; remove it (is the file binary, or saved as UTF-16?)"]
