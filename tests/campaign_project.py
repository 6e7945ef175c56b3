"""For the campaign tests: a throw-away project whose one recipe, `lab`, trains nothing but
writes an accuracy that depends on its parameters (so rankings and gates are known ahead)."""

import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from kjob.cli import cli

PYPROJECT = """
[project]
name = "lab"

[tool.kjob]
owner = "alice"
"""

RECIPE = """
title = "Lab Model"
slug = "lab-model"
modules = ["lab/train.py"]
entry = "main"
accelerator = "none"

[parameters]
lr = 0.1
width = 8
epochs = 2
pause = 0.0
fail = false

[metrics]
primary = "val_acc"
mode = "max"
"""

TRAIN = '''
"""A made-up training run: val_acc = 1 - |lr - 0.01| - 1 / (width + epochs)."""
import json
import time


def main(lr, width, epochs, pause, fail):
    time.sleep(pause)
    if fail:
        raise ValueError("asked to fail")
    with open("metadata.json", "w") as f:
        json.dump({"metrics": {"val_acc": round(1 - abs(lr - 0.01) - 1 / (width + epochs), 4)}}, f)
    with open("params.json", "w") as f:  # what this run was given: a member's outputs are its own
        json.dump({"lr": lr, "width": width, "epochs": epochs}, f)
'''

KJOB = Path(sys.executable).with_name("kjob")


def accuracy(lr, width=8, epochs=2):
    return round(1 - abs(lr - 0.01) - 1 / (width + epochs), 4)


class Lab:
    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()
        self.write("pyproject.toml", PYPROJECT)
        self.write("builders/lab.toml", RECIPE)
        self.write("src/lab/__init__.py", "")
        self.write("src/lab/train.py", TRAIN)

    def kjob(self, *args: str):
        return self.runner.invoke(cli, list(args), env={"KJOB_WORKSPACE": str(self.root)}, catch_exceptions=False)

    def start(self, *args: str, group: bool = False) -> subprocess.Popen:
        """The real `kjob` in a process of its own (to be interrupted or killed); `group`: leading
        a process group of its own, to be killed with everything it started (os.killpg)."""
        return subprocess.Popen([str(KJOB), *args], cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=group)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    def runs(self, campaign: str | None = None):
        from kjob.runs.ledger import Ledger

        with Ledger(self.root / ".kjob/ledger.sqlite3") as ledger:
            return sorted(ledger.runs(campaign=campaign), key=lambda r: r.id)
