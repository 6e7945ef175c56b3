"""Metrics from where projects already write them (issue 21): TensorBoard event files, Lightning's
metrics.csv, Hugging Face's trainer_state.json and printed lines through `[metrics] log`, each a
small real project run on the local backend, listed by `kjob runs` (sorted by a base name) and
ranked by a base name in a two-member `kjob sweep`; and the readers' rules on their own."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kjob.cli import cli
from kjob.lifecycle.fetch import summarize_metrics
from kjob.runs.metrics import NO_METRICS, read_series

PYPROJECT = """
[project]
name = "{name}"

[tool.kjob]
owner = "alice"
"""

RECIPE = """
title = "{title}"
slug = "{slug}"
modules = ["{name}/train.py"]
entry = "main"
accelerator = "none"

[parameters]
lr = 0.01
quiet = false
{metrics}
"""

# Each project's loss is lowest at lr=0.01, so a sweep over [0.1, 0.01] ranks 0.01 first.
TENSORBOARD = '''
"""As the character-level LM logs: torch's SummaryWriter, tags Loss/train and Loss/test."""
from torch.utils.tensorboard import SummaryWriter


def main(lr, quiet):
    writer = SummaryWriter("runs/charlm")
    gap = abs(lr - 0.01) * 10
    for step, loss in enumerate([3.0, 2.0, 1.5, 1.7]):
        writer.add_scalar("Loss/train", loss + gap - 0.2, step * 100)
        writer.add_scalar("Loss/test", loss + gap, step * 100)
    writer.close()
'''

LIGHTNING = '''
"""As Lightning's CSVLogger writes: lightning_logs/version_0/metrics.csv, sparse rows."""
import csv
import os


def main(lr, quiet):
    if quiet:
        return
    os.makedirs("lightning_logs/version_0")
    gap = abs(lr - 0.01) * 10
    with open("lightning_logs/version_0/metrics.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["epoch", "step", "train_loss", "val_loss"])
        step = 0
        for epoch, val in enumerate([0.9, 0.5, 0.6]):
            for _ in range(2):
                out.writerow([epoch, step, round(1.0 - 0.1 * step, 3), ""])
                step += 1
            out.writerow([epoch, step - 1, "", round(val + gap, 4)])
'''

TRAINER = '''
"""As Hugging Face's Trainer leaves: out/checkpoint-N/trainer_state.json, log_history."""
import json
import os


def main(lr, quiet):
    gap = abs(lr - 0.01) * 10
    history = []
    for step, epoch, loss, eval_loss in [(2, 1.0, 2.0, 1.8), (4, 2.0, 1.2, 1.1), (6, 3.0, 0.9, 1.3)]:
        history.append({"loss": loss, "learning_rate": lr, "epoch": epoch, "step": step})
        history.append({"eval_loss": round(eval_loss + gap, 4), "eval_runtime": 0.5, "epoch": epoch, "step": step})
        os.makedirs(f"out/checkpoint-{step}")
        with open(f"out/checkpoint-{step}/trainer_state.json", "w") as f:
            json.dump({"global_step": step, "epoch": epoch, "log_history": list(history)}, f)
'''

PRINTED = '''
"""As the word-level LM reports: printed lines only."""


def main(lr, quiet):
    gap = abs(lr - 0.01) * 10
    for epoch, loss in [(1, 6.26), (2, 5.81), (3, 5.90)]:
        print(f"| end of epoch {epoch:3d} | time:  0.87s | valid loss {loss + gap:5.2f} | valid ppl   523.45")
    print(f"| End of training | test loss {5.7 + gap:5.2f} | test ppl   494.75")
'''

LOG_PATTERNS = r"""
[metrics]
log = ['\| end of epoch +(?P<epoch>\d+) .*\| valid loss +(?P<valid_loss>[\d.]+)',
       '\| End of training \| test loss +(?P<test_loss>[\d.]+)']
"""

# name: (code, recipe's [metrics], the base name ranked by, its best at lr=0.01, the epoch or step of that best)
PROJECTS = {
    "charlm": (TENSORBOARD, "", "Loss/test", 1.5, 200),
    "litcsv": (LIGHTNING, "", "val_loss", 0.5, 1),
    "hftrain": (TRAINER, "", "eval_loss", 1.1, 2.0),
    "wordlm": (PRINTED, LOG_PATTERNS, "valid_loss", 5.81, 2),
}

CAMPAIGN = """
recipe = "{name}"
metric = "{metric}"
lanes = 2

[[grid]]
lr = [0.1, 0.01]
"""


class Project:
    def __init__(self, root: Path, name: str):
        code, metrics, *_ = PROJECTS[name]
        self.root, self.name, self.runner = root, name, CliRunner()
        self.write("pyproject.toml", PYPROJECT.format(name=name))
        self.write(f"builders/{name}.toml", RECIPE.format(title=name.title() + " Model", slug=f"{name}-model",
                                                         name=name, metrics=textwrap.dedent(metrics)))
        self.write(f"src/{name}/__init__.py", "")
        self.write(f"src/{name}/train.py", code)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    def kjob(self, *args: str):
        return self.runner.invoke(cli, list(args), env={"KJOB_WORKSPACE": str(self.root)}, catch_exceptions=False)

    def runs(self):
        from kjob.runs.ledger import Ledger

        with Ledger(self.root / ".kjob/ledger.sqlite3") as ledger:
            return sorted(ledger.runs(), key=lambda r: r.id)


def _needs(name: str) -> None:
    if name == "charlm":
        pytest.importorskip("tensorboard", reason="writing and reading TensorBoard events needs the metrics extra "
                                                  "(pip install 'kjob[metrics]')")


@pytest.mark.parametrize("name", list(PROJECTS))
def test_a_project_s_own_metrics_are_listed_sorted_and_rank_a_sweep_by_their_base_name(tmp_path, name):
    _needs(name)
    _, _, metric, best, at = PROJECTS[name]
    project = Project(tmp_path, name)
    assert project.kjob("build", name).exit_code == 0
    pushed = project.kjob("push", name, "--wait", "-p", "lr=0.1")
    assert pushed.exit_code == 0, pushed.output
    assert "no metrics found" not in pushed.stderr
    [run] = project.runs()
    assert run.metrics[f"{metric}.best_epoch"] == at  # the best's own step or epoch, not its row
    assert "step.best" not in run.metrics and "epoch.best" not in run.metrics  # axes, not metrics

    # the default table shows the losses, with no [metrics] columns declared
    listed = project.kjob("runs")
    assert listed.exit_code == 0, listed.output
    assert f"{metric}.best".upper() in listed.stdout.splitlines()[0]

    # the sweep, ranked by the base name
    project.write(f"campaigns/{name}-lr.toml", CAMPAIGN.format(name=name, metric=metric))
    planned = project.kjob("sweep", f"{name}-lr", "--dry-run", "--fresh")  # lr=0.1 runs again, not adopted
    assert planned.exit_code == 0, planned.output
    assert "at most" not in planned.stdout and "by the recipe's 1 earlier run(s) here" in planned.stdout
    swept = project.kjob("sweep", f"{name}-lr", "--fresh")
    assert swept.exit_code == 0, swept.output
    assert f"note: {metric} is {metric}.best (each member's best {metric}, the lowest)" in swept.stderr
    board = swept.stdout.split(f"leaderboard by {metric}.best")[1].splitlines()
    ranked = [line.split()[1] for line in board if re.match(r"\s*\d+ ", line)]
    assert ranked == ["main[lr=0.01]", "main[lr=0.1]"]
    member = next(r for r in project.runs() if r.campaign and r.parameters["lr"] == 0.01)
    assert member.metrics[f"{metric}.best"] == pytest.approx(best)
    assert member.metrics[f"{metric}.best_epoch"] == at

    # kjob runs, sorted and filtered by the base name, says once what it stands for
    ranked = project.kjob("runs", "--sort-by", metric, "--where", f"{metric}<100", "--columns", f"lr,{metric}")
    assert ranked.exit_code == 0, ranked.output
    assert ranked.stderr.count(f"note: {metric} is {metric}.best") == 1
    rows = ranked.stdout.splitlines()[1:]
    assert [r.split()[3] for r in rows] == ["0.01", "0.1", "0.1"]
    # as the table's header spells it (LOSS/TEST): the one name that differs in case only
    shouted = project.kjob("runs", "--sort-by", metric.upper(), "--columns", f"lr,{metric}")
    assert shouted.exit_code == 0, shouted.output
    assert shouted.stdout == ranked.stdout and f"note: {metric.upper()} is {metric}.best" in shouted.stderr
    unknown = project.kjob("runs", "--sort-by", "no_such_loss")
    assert unknown.exit_code == 2 and f"{metric}.best" in unknown.stderr and unknown.stderr.count("\n") == 1


def test_a_run_with_no_metrics_gets_one_line_and_a_campaign_metric_no_member_has_is_an_error(tmp_path):
    project = Project(tmp_path, "litcsv")
    quiet = project.kjob("push", "litcsv", "--wait", "-p", "quiet=true")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr.count(f"note: {NO_METRICS}") == 1
    project.write("campaigns/typo.toml", CAMPAIGN.format(name="litcsv", metric="val_los"))
    swept = project.kjob("sweep", "typo")  # its members have val_loss.best, not val_los
    assert swept.exit_code == 2
    assert "no member has a metric 'val_los' to rank by" in swept.stderr and "val_loss.best" in swept.stderr
    assert "leaderboard" not in swept.stdout


STAGED = """
recipe = "litcsv"
metric = "val_loss"
lanes = 2

[[stage]]
name = "screen"
[[stage.grid]]
lr = [0.1, 0.01]

[[stage]]
name = "long"
top = 1
from = "screen"
[stage.gate]
below = 1.0
"""


def test_a_gate_and_a_top_stage_judge_by_a_base_name(tmp_path):
    project = Project(tmp_path, "litcsv")
    project.write("campaigns/staged.toml", STAGED)
    swept = project.kjob("sweep", "staged")
    assert swept.exit_code == 0, swept.output
    assert "gate val_loss" in swept.stdout and "holds: 0.5" in swept.stdout  # lr=0.01's val_loss.best
    assert "the 1 best of screen by val_loss" in swept.stdout
    [chosen] = [r for r in project.runs() if r.stage == "long"]
    assert chosen.parameters["lr"] == 0.01


def test_the_board_draws_a_tensorboard_run_s_curve(tmp_path):
    _needs("charlm")
    project = Project(tmp_path, "charlm")
    assert project.kjob("push", "charlm", "--wait").exit_code == 0
    assert project.kjob("board").exit_code == 0
    data = json.loads((tmp_path / ".kjob/board/data.js").read_text()[len("kjobBoard("):-3])
    [row] = data["runs"]
    detail = (tmp_path / f".kjob/board/runs/{row['id']}.js").read_text()
    series = json.loads(detail[len(f"kjobRun({row['id']},"):-3])["series"]
    assert [(p[0], p[2]) for p in series["Loss/test"]] == [(0, 3.0), (100, 2.0), (200, 1.5), (300, 1.7)]


def test_the_board_draws_the_curve_of_printed_lines(tmp_path):
    project = Project(tmp_path, "wordlm")
    assert project.kjob("push", "wordlm", "--wait").exit_code == 0
    assert project.kjob("board").exit_code == 0
    [row] = json.loads((tmp_path / ".kjob/board/data.js").read_text()[len("kjobBoard("):-3])["runs"]
    detail = (tmp_path / f".kjob/board/runs/{row['id']}.js").read_text()
    series = json.loads(detail[len(f"kjobRun({row['id']},"):-3])["series"]
    assert [(p[1], p[2]) for p in series["valid_loss"]] == [(1, 6.26), (2, 5.81), (3, 5.9)]


# -- the readers' rules, on files written here --------------------------------------------------


def test_best_epoch_is_the_series_own_step_or_epoch_and_axes_are_no_metrics(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"step": 100, "loss": 2.0}, {"step": 200, "loss": 1.0}, {"step": 300, "loss": 1.5}]) + "\n")
    found = summarize_metrics(tmp_path)["history"]  # a subfolder's metrics.jsonl is found
    assert (found["loss.best"], found["loss.best_epoch"], found["loss.last"]) == (1.0, 200, 1.5)
    assert not any(n.startswith(("step", "epoch")) for n in found)
    lightning = tmp_path / "lightning_logs"
    for version, values in (("version_0", "9,9"), ("version_1", "0.4,0.2")):  # the newest version counts
        (lightning / version).mkdir(parents=True)
        (lightning / version / "metrics.csv").write_text(
            "epoch,step,acc,val_loss\n0,10,0.1,\n0,10,,{}\n1,20,,{}\n".format(*values.split(",")))
    csv = summarize_metrics(tmp_path)["csv"]
    assert (csv["val_loss.best"], csv["val_loss.best_epoch"], csv["acc.last"]) == (0.2, 1, 0.1)


def test_a_tensorboard_epoch_tag_is_the_epoch_axis_not_a_metric(tmp_path):
    # Lightning's TensorBoardLogger writes an `epoch` scalar beside each metric; HF's callback `train/epoch`
    pytest.importorskip("tensorboard", reason="reading TensorBoard events needs the metrics extra")
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for folder, points in (("lightning_logs/version_0", [(1, "epoch", 0), (1, "valid_loss", 0.8),
                                                         (3, "epoch", 1), (3, "valid_loss", 0.5)]),
                           ("hf/runs", [(2, "train/epoch", 0.5), (2, "train/loss", 2.0), (4, "train/loss", 1.0)])):
        writer = EventFileWriter(str(tmp_path / folder))
        for step, tag, value in points:
            writer.add_event(Event(step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)])))
        writer.close()
    found = summarize_metrics(tmp_path)["tensorboard"]
    assert not any(n.startswith(("epoch", "train/epoch")) for n in found), found
    assert (found["valid_loss.best"], found["valid_loss.best_epoch"], found["train/loss.last"]) == (0.5, 1, 1.0)


def test_the_newest_trainer_state_and_log_patterns_are_read(tmp_path):
    for step, history in ((4, [{"loss": 1.0, "epoch": 1.0, "step": 4}]),
                          (12, [{"loss": 1.0, "epoch": 1.0, "step": 4}, {"loss": 0.5, "epoch": 2.0, "step": 12}])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": history}))
    log = tmp_path / "log.txt"
    log.write_text("| end of epoch   1 | valid loss  6.26\nnoise\n| end of epoch   2 | valid loss  5.00\n")
    pattern = r"\| end of epoch +(?P<epoch>\d+) .*\| valid loss +(?P<valid_loss>[\d.]+)"
    found = summarize_metrics(tmp_path, log=log, patterns=[pattern])
    assert found["trainer"]["loss.last"] == 0.5 and found["trainer"]["loss.best_epoch"] == 2.0
    assert found["log"] == {"valid_loss.last": 5.0, "valid_loss.best": 5.0, "valid_loss.best_epoch": 2}
    assert read_series(tmp_path, log, [pattern])["valid_loss"] == [(1, 1, 6.26), (2, 2, 5.0)]


def test_a_bad_log_pattern_is_one_line_naming_the_key(tmp_path):
    project = Project(tmp_path, "wordlm")
    project.write("builders/wordlm.toml", (tmp_path / "builders/wordlm.toml").read_text().replace(
        "(?P<valid_loss>", "(?P<valid_loss"))
    result = project.kjob("build", "wordlm")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: builders/wordlm.toml: [metrics] log: not a regular expression (missing >")
    assert result.stderr.count("\n") == 1


def test_without_tensorboard_event_files_are_named_with_the_extra_and_nothing_heavy_is_imported(tmp_path):
    (tmp_path / "runs/x").mkdir(parents=True)
    (tmp_path / "runs/x/events.out.tfevents.1.host").write_bytes(b"")
    code = ("import sys; sys.modules['tensorboard'] = None\n"  # as if the metrics extra were not installed
            "from kjob.lifecycle.fetch import summarize_metrics\n"
            "notes = []; print(summarize_metrics(__import__('pathlib').Path(sys.argv[1]), notes=notes)); print(notes)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert "pip install 'kjob[metrics]'" in out.stdout
    light = ("import sys, kjob.cli, kjob.runs.metrics, kjob.runs.query, kjob.lifecycle.fetch\n"
             "print(sorted(m for m in ('torch', 'tensorboard') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", light], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
