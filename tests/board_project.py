"""For the board's tests: a throw-away project whose recipe `snd` writes a learning curve
(metrics.jsonl, one row per epoch) that depends on its parameters, a two-stage campaign over
it, and single runs carrying hostile text (a message, a note, a parameter value and a metric
name meant to become markup). Every run is a real local run through the real CLI."""

import shutil
import textwrap
from pathlib import Path

from click.testing import CliRunner

from kjob.cli import cli

PYPROJECT = """
[project]
name = "snd"

[tool.kjob]
owner = "alice"
"""

RECIPE = """
title = "Sound MLP"
slug = "sound-mlp"
modules = ["snd/train.py"]
entry = "main"
accelerator = "none"

[parameters]
lr = 0.1
hidden = 16
epochs = 12
label = "plain"
hostile = false
fail = false
pause = 0.0

[metrics]
primary = "val_acc"
mode = "max"
columns = ["val_loss"]
"""

TRAIN = '''
"""A made-up learning curve: the best lr is 0.01, a wider layer helps a little."""
import json
import math
import time

QUALITY = {0.1: 0.62, 0.01: 0.9, 0.001: 0.74}


def main(lr, hidden, epochs, label, hostile, fail, pause):
    quality = QUALITY.get(lr, 0.5) + 0.02 * math.log2(hidden / 8)
    with open("metrics.jsonl", "w") as f:
        for epoch in range(1, epochs + 1):
            val_acc = round(quality * (1 - math.exp(-epoch / 3)), 4)
            row = {"epoch": epoch, "step": epoch * 50, "train_loss": round(1.1 - val_acc + 0.3 / epoch, 4),
                   "val_loss": round(1.2 - val_acc, 4), "val_acc": val_acc}
            if hostile:
                row["<img src=x onerror=window.pwned=4>"] = epoch
            f.write(json.dumps(row) + "\\n")
            f.flush()  # a curve read while the run is in flight
            print("epoch %d/%d val_acc %.4f" % (epoch, epochs, val_acc), flush=True)
            if fail and epoch == 3:
                raise ValueError("asked to fail at epoch 3")
            if pause and epoch == epochs // 2:
                time.sleep(pause)
    with open("metadata.json", "w") as f:
        json.dump({"metrics": {"val_acc": round(quality * (1 - math.exp(-epochs / 3)), 4)}, "label": label}, f)
'''

CAMPAIGN = """
recipe = "snd"
lanes = 2

[[stage]]
name = "screen"
parameters = { epochs = 8 }

[[stage.grid]]
lr = [0.1, 0.01, 0.001]
hidden = [8, 32]

[[stage]]
name = "full"
top = 1
from = "screen"

[stage.gate]
stage = "screen"
at_least = 0.5
"""

HOSTILE_MESSAGE = "<script>window.pwned=1</script> & friends"
HOSTILE_NOTE = '"><img src=x onerror="window.pwned=2">'
HOSTILE_LABEL = "</script><script>window.pwned=3</script>\u2028"
HOSTILE_METRIC = "<img src=x onerror=window.pwned=4>"


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()
        self.write("pyproject.toml", PYPROJECT)
        self.write("builders/snd.toml", RECIPE)
        self.write("src/snd/__init__.py", "")
        self.write("src/snd/train.py", TRAIN)
        self.write("campaigns/grid.toml", CAMPAIGN)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    def kjob(self, *args: str, env: dict | None = None):
        return self.runner.invoke(cli, list(args), env={"KJOB_WORKSPACE": str(self.root), **(env or {})},
                                  catch_exceptions=False)

    def fill(self, *sweep_options: str) -> None:
        """The campaign (6 screened members, the best run in full; `kjob sweep grid` with
        `sweep_options`), then three single runs: a hostile one, a failing one, and one whose
        fetched files are deleted afterwards; and the first member's files archived."""
        result = self.kjob("sweep", "grid", *sweep_options)
        assert result.exit_code == 0, result.output
        result = self.kjob("push", "snd", "-p", "lr=0.01", "-p", "hidden=64", "-p", f"label={HOSTILE_LABEL}",
                           "-p", "hostile=true", "-m", HOSTILE_MESSAGE, "--tag", "baseline", "--wait")
        assert result.exit_code == 0, result.output
        assert self.kjob("runs", "note", "snd", HOSTILE_NOTE).exit_code == 0
        result = self.kjob("push", "snd", "-p", "fail=true", "-m", "should fail", "--wait")
        assert result.exit_code == 1, result.output
        result = self.kjob("push", "snd", "-p", "lr=0.001", "-m", "files deleted later", "--wait")
        assert result.exit_code == 0, result.output
        shutil.rmtree(self.root / "downloads" / "snd" / "local-v10")  # the last push's files, deleted by hand
        result = self.kjob("runs", "archive", "snd", "--version", "1")  # a screened member's, packed
        assert result.exit_code == 0, result.output
