"""The toolkit installed alone, in a fresh virtual environment, into a project that has no audio.

kjob is installed (not in editable mode) from a copy of this checkout's packaging files, with
its own dependencies only: no torch, no audio libraries, no `enhancer` package. Then a small
project of the user's builds, runs on the local backend and is listed; the speech commands are
hidden from the help and say what to install. About 30 s, most of it pip.
"""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
PYPROJECT = """
[project]
name = "sound-mlp"
version = "0.1.0"

[tool.kjob]
owner = "someone"
"""
RECIPE = """
title = "Sound MLP"
slug = "sound-mlp"
modules = ["mlp/train.py"]
entry = "main"
accelerator = "none"

[parameters]
epochs = 2
"""
TRAIN = """
import json
import os


def main(epochs=2):
    for epoch in range(epochs):
        print("epoch", epoch, flush=True)
    with open(os.path.join(os.environ.get("KAGGLE_WORKING_DIR", "."), "metadata.json"), "w") as f:
        json.dump({"metrics": {"val_acc": 0.5 + 0.1 * epochs}}, f)
"""


def _copy_packaging(target: Path) -> None:
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(PROJECT / "src" / "kjob", target / "src" / "kjob", ignore=ignore)
    shutil.copytree(PROJECT / "eval" / "speechscore", target / "eval" / "speechscore", ignore=ignore)


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    root = tmp_path_factory.mktemp("light")
    source, venv = root / "kjob-source", root / "venv"
    _copy_packaging(source)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=600)
    if install.returncode != 0 and "No matching distribution" in install.stderr:
        pytest.skip(f"the package index is unreachable: {install.stderr.strip().splitlines()[-1]}")
    assert install.returncode == 0, install.stderr
    return python


def test_the_toolkit_installs_alone_and_runs_a_project_without_audio(light, tmp_path):
    python = light
    missing = subprocess.run([str(python), "-c", "import importlib.util as u; "
                              "print([m for m in ('torch', 'pesq', 'pystoi', 'soxr', 'enhancer') if u.find_spec(m)])"],
                             capture_output=True, text=True, check=True)
    assert missing.stdout.strip() == "[]"  # none of them: the light install stays light
    project = tmp_path / "sound-mlp"
    for rel, text in (("pyproject.toml", PYPROJECT), ("builders/sound-mlp.toml", RECIPE), ("src/mlp/train.py", TRAIN)):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(textwrap.dedent(text).lstrip())

    def kjob(*args):
        script = python.with_name("kjob.exe" if sys.platform == "win32" else "kjob")
        return subprocess.run([str(script), *args], cwd=project, capture_output=True, text=True,
                              timeout=300)

    help_text = kjob("--help").stdout
    assert "build" in help_text and "push" in help_text
    assert not any(f"  {name} " in help_text for name in ("demo", "eval-local", "compare"))
    built = kjob("build", "sound-mlp")
    assert built.returncode == 0, built.stderr
    run = kjob("push", "sound-mlp", "--backend", "local", "-p", "epochs=3", "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| epoch 2" in run.stderr  # the live log, every line
    runs = kjob("runs")
    assert runs.returncode == 0 and "sound-mlp" in runs.stdout and "0.8" in runs.stdout
    evaluate = kjob("eval-local", "--data", "nowhere")
    assert evaluate.returncode == 2
    assert "needs the speech extra" in evaluate.stderr and "pip install 'kjob[speech]'" in evaluate.stderr
