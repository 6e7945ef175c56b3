"""Shared fixtures: throw-away workspaces and a way to run the real `kjob` command in them."""

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from kjob.cli import cli

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class Workspace:
    root: Path
    runner: CliRunner

    def kjob(self, *args: str, env: dict | None = None):
        return self.runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def snapshot(self, rel: str) -> dict[str, bytes]:
        """Every file under `rel` with its bytes, to prove a folder was left untouched."""
        folder = self.root / rel
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


TINY_PYPROJECT = """
[project]
name = "x"

[tool.kjob]
owner = "alice"

[tool.kjob.datasets]
"someone/some-data" = "data/some"
"""

TINY_RECIPE = """
title = "Tiny Kernel"
slug = "tiny-kernel"
description = "two small modules"
modules = ["pkg/util.py", "pkg/job.py"]
entry = "main"
accelerator = "none"
dataset_sources = ["someone/some-data"]

[parameters]
steps = 3
rate = 0.5
label = "run"
fail = false
sleep = 0.0

[smoke]
timeout = 60

[smoke.parameters]
steps = 1
"""

TINY_UTIL = '''
"""Helpers."""
import math


def scale(x, rate):
    return math.floor(x * rate * 10)
'''

TINY_JOB = '''
"""The entry point."""
import json
import time
from pkg.util import scale


def main(steps, rate, label, fail, sleep):
    time.sleep(sleep)
    values = [scale(i, rate) for i in range(steps)]
    if fail:
        raise RuntimeError("asked to fail")
    with open("result.json", "w") as f:
        json.dump({"label": label, "values": values, "inputs": inputs()}, f)
    print("wrote result.json with", len(values), "values")
    return values


def inputs():
    import os
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    layouts = ["some-data/hello.txt", "datasets/someone/some-data/hello.txt"]
    found = {p: os.path.isfile(os.path.join(root, p)) for p in layouts}
    return {"found": found, "run_type": os.environ.get("KAGGLE_KERNEL_RUN_TYPE")}
'''


def stranger_folder(tmp_path: Path, monkeypatch) -> Workspace:
    """An empty project folder (the working directory), with no Kaggle owner and no Kaggle
    credentials anywhere: a user's own project before `kjob init`."""
    monkeypatch.chdir(tmp_path)
    for name in ("KJOB_OWNER", "KJOB_WORKSPACE", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    return Workspace(tmp_path, CliRunner())


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Workspace:
    """A workspace with one small recipe `tiny` over two modules (fast to build and run)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_OWNER", raising=False)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    ws = Workspace(tmp_path, CliRunner())
    ws.write("pyproject.toml", TINY_PYPROJECT)
    ws.write("data/some/hello.txt", "hello\n")
    ws.write("builders/tiny.toml", TINY_RECIPE)
    ws.write("src/pkg/__init__.py", "")
    ws.write("src/pkg/util.py", TINY_UTIL)
    ws.write("src/pkg/job.py", TINY_JOB)
    return ws


@pytest.fixture
def project(tmp_path, monkeypatch) -> Workspace:
    """A copy of this project's own recipes and training modules."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_OWNER", raising=False)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    shutil.copy(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(PROJECT / "builders", tmp_path / "builders")
    shutil.copytree(PROJECT / "src" / "enhancer", tmp_path / "src" / "enhancer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # r3-dpt-eval inlines the evaluator's metrics from eval/ (modules = ["../eval/speechscore/metrics.py"]).
    shutil.copytree(PROJECT / "eval" / "speechscore", tmp_path / "eval" / "speechscore",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return Workspace(tmp_path, CliRunner())


@pytest.fixture
def kaggle(tiny, tmp_path, monkeypatch):
    """`tiny` with the Kaggle backend pointed at an emulator of its own (tests/kaggle_fixtures.py)."""
    from kaggle_fixtures import start_kaggle

    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    yield kaggle
    kaggle.emulator.stop()
