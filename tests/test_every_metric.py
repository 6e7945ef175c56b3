"""Every metric, every run comparable: `kjob runs` on a project that is not this one.

A throw-away sound-classification project (made here, in a temporary folder) whose runs write
flat and nested metrics; three real local runs, pushed and watched through the real CLI,
then ranked, filtered, exported, diffed, noted, tagged, archived and restored.
"""

import csv
import datetime
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kjob.cli import cli

PYPROJECT = """
[project]
name = "snd"

[tool.kjob]
owner = "alice"
"""

# Ranked by its own metric, maximised; a nested one minimised by declaration; val_loss is a
# metrics.jsonl column (shown as its best).
RECIPE = """
title = "Sound MLP"
slug = "sound-mlp"
description = "a small sound-classification MLP"
modules = ["snd/features.py", "snd/train.py"]
entry = "main"
accelerator = "none"

[parameters]
lr = 0.1
hidden = 16
epochs = 40
pause = 0.0

[metrics]
primary = "val_acc"
mode = "max"
columns = ["t20.mae", "val_loss"]

[metrics.modes]
"t20.mae" = "min"
"""

FEATURES = '''
"""Features of a clip."""


def n_features():
    return 8
'''

TRAIN = '''
"""A made-up learning curve, deterministic in lr: what a real MLP would log."""
import json
import time
from snd.features import n_features

QUALITY = {0.1: 0.6, 0.01: 0.9, 0.001: 0.75}


def main(lr, hidden, epochs, pause):
    quality = QUALITY.get(lr, 0.5)
    with open("metrics.jsonl", "w") as f:
        for epoch in range(1, epochs + 1):
            val_acc = round(quality * epoch / epochs, 4)
            # the lowest val_loss is one epoch before the best accuracy
            val_loss = round(1 - val_acc + (0.05 if epoch == epochs else 0.0), 4)
            f.write(json.dumps({"epoch": epoch, "train_loss": val_loss / 2, "val_loss": val_loss,
                                "val_acc": val_acc}) + "\\n")
            print("epoch %d/%d val_acc %.4f features %d" % (epoch, epochs, val_acc, n_features()), flush=True)
            if pause and epoch == epochs // 2:
                time.sleep(pause)
    with open("metadata.json", "w") as f:
        json.dump({"status": "done", "metrics": {"val_acc": quality, "best_epoch": epochs,
                                                 "t20": {"mae": round(1 - quality, 3), "n": 20}}}, f)
'''


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()

    def kjob(self, *args: str):
        return self.runner.invoke(cli, list(args), env={"KJOB_WORKSPACE": str(self.root)}, catch_exceptions=False)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    def versions(self, *args: str) -> list[int]:
        """The VERSION column of `kjob runs ARGS`, top to bottom."""
        result = self.kjob("runs", *args)
        assert result.exit_code == 0, result.output
        return [int(line.split()[1]) for line in result.stdout.splitlines()[1:]]

    def ledger_run(self, version: int):
        from kjob.runs.ledger import Ledger

        with Ledger(self.root / ".kjob/ledger.sqlite3") as ledger:
            return ledger.find("snd", version)


def epoch_lines(text: str) -> list[str]:
    return [line.split("| ", 1)[1] for line in text.splitlines() if "| epoch " in line]


@pytest.fixture(scope="module")
def snd(tmp_path_factory):
    """The project with three runs: v1 the baseline, v2 another lr and changed features.py,
    v3 pushed without --wait (pausing half-way) and followed with `status --watch`."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("sound-project")
        mp.chdir(root)
        mp.delenv("KJOB_OWNER", raising=False)
        p = Project(root)
        p.write("pyproject.toml", PYPROJECT)
        p.write("builders/snd.toml", RECIPE)
        p.write("src/snd/__init__.py", "")
        p.write("src/snd/features.py", FEATURES)
        p.write("src/snd/train.py", TRAIN)
        p.pushes = []
        p.pushes.append(p.kjob("push", "snd", "-m", "baseline MLP", "--tag", "baseline", "--wait"))
        p.write("src/snd/features.py", FEATURES.replace("return 8", "return 12  # more mel bands"))
        p.pushes.append(p.kjob("push", "snd", "-p", "lr=0.01", "-m", "smaller lr, 12 features", "--wait"))
        p.pushes.append(p.kjob("push", "snd", "-p", "lr=0.001", "-p", "pause=3"))
        p.watched = p.kjob("status", "snd", "--version", "3", "--watch")
        p.fetched = p.kjob("fetch", "snd", "--version", "3", "--output")
        yield p


def test_the_runs_complete_and_watching_drops_no_line(snd):
    for result in snd.pushes:
        assert result.exit_code == 0, result.output
    assert snd.watched.exit_code == 0, snd.watched.output
    assert snd.fetched.exit_code == 0, snd.fetched.output
    expected = [f"epoch {i}/40 val_acc" for i in range(1, 41)]
    for output in (snd.pushes[0].stderr, snd.watched.stderr):  # push --wait, and status --watch of a live run
        lines = epoch_lines(output)
        assert [line.split(" 0.")[0] for line in lines] == expected, output  # every line, once, in order
        assert "not shown" not in output


def test_every_metric_is_recorded_and_the_users_keys_win(snd):
    metrics = snd.ledger_run(1).metrics
    assert metrics["val_acc"] == 0.6 and metrics["t20.mae"] == 0.4 and metrics["t20.n"] == 20
    assert metrics["best_epoch"] == 40  # the user's (best accuracy), not kjob's lowest val_loss
    assert metrics["val_loss.best_epoch"] == 39 and metrics["val_loss.best"] == 0.415
    assert metrics["val_acc.best"] == metrics["val_acc.last"] == 0.6 and metrics["val_acc.best_epoch"] == 40
    assert metrics["val_loss.last"] == 0.45
    assert snd.ledger_run(3).metrics["val_acc"] == 0.75


def test_the_table_shows_the_recipes_metrics_by_default(snd):
    result = snd.kjob("runs")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[:7] == ["KERNEL", "VERSION", "BACKEND", "STATUS", "DURATION", "PARAMETERS", "NOTEBOOK"]
    assert header[7:10] == ["VAL_ACC", "T20.MAE", "VAL_LOSS.BEST"]
    assert "MESSAGE" in header and "TAGS" in header
    assert "baseline MLP" in result.stdout and "lr=0.01" in result.stdout
    hashes = {line.split()[1]: line.split()[6] for line in result.stdout.splitlines()[1:]}
    assert hashes["1"] != hashes["2"] and hashes["1"] == snd.ledger_run(1).notebook_sha256[:12]


def test_runs_rank_by_a_user_metric_both_ways(snd):
    assert snd.versions("--sort-by", "val_acc") == [2, 3, 1]  # maximised: best first
    assert snd.versions("--sort-by", "-val_acc") == [2, 3, 1]
    assert snd.versions("--sort-by", "+val_acc") == [1, 3, 2]
    assert snd.versions("--sort-by=-val_acc") == [2, 3, 1]
    assert snd.versions("--sort-by", "lr") == [3, 2, 1]  # a parameter: ascending
    assert snd.versions("--sort-by", "-version") == [3, 2, 1]
    unknown = snd.kjob("runs", "--sort-by", "val_f1")
    assert unknown.exit_code == 2 and "no run has a metric 'val_f1'" in unknown.stderr
    assert "val_acc" in unknown.stderr and unknown.stderr.count("\n") == 1


def test_a_nested_metric_ranks_by_its_declared_mode(snd):
    assert snd.versions("--sort-by", "t20.mae") == [2, 3, 1]  # minimised
    assert snd.versions("--sort-by", "-t20.mae") == [1, 3, 2]
    assert snd.versions("--sort-by", "val_loss") == [2, 3, 1]  # a metrics.jsonl column: its best, minimised
    shown = snd.kjob("runs", "--sort-by", "t20.n").stdout.splitlines()[0]
    assert "T20.N" in shown  # the ranking metric is shown


def test_filters_and_columns(snd):
    assert snd.versions("--where", "lr<0.01") == [3]
    assert snd.versions("--where", "lr<=0.01", "--where", "val_acc>0.8") == [2]
    assert snd.versions("--where", "status=complete", "--sort-by", "version") == [1, 2, 3]
    assert snd.versions("--tag", "baseline") == [1]
    assert snd.versions("--where", "tags=baseline") == [1]
    bad = snd.kjob("runs", "--where", "lr 0.1")
    assert bad.exit_code == 2 and "expected NAME OP VALUE" in bad.stderr
    bad = snd.kjob("runs", "--where", "lr<fast")
    assert bad.exit_code == 2 and "lr is a number, 'fast' is not" in bad.stderr
    chosen = snd.kjob("runs", "--columns", "lr,val_acc,notebook,commit", "--sort-by", "version").stdout.splitlines()
    assert chosen[0].split() == ["KERNEL", "VERSION", "BACKEND", "LR", "VAL_ACC", "NOTEBOOK", "COMMIT"]
    assert chosen[1].split()[3:5] == ["0.1", "0.6"]
    assert chosen[1].split()[5] == snd.ledger_run(1).notebook_sha256[:12]


def test_export_has_a_column_per_parameter_and_metric(snd):
    rows = list(csv.DictReader(snd.kjob("runs", "--export", "csv", "--sort-by", "version").stdout.splitlines()))
    assert [r["version"] for r in rows] == ["1", "2", "3"]
    first = rows[0]
    assert {"param.lr", "param.hidden", "param.epochs", "metric.val_acc", "metric.t20.mae", "metric.val_loss.best",
            "metric.best_epoch", "notebook_sha256", "git_commit", "message", "tags"} <= set(first)
    assert "parameters" not in first
    assert (float(first["param.lr"]), float(first["metric.t20.mae"]), first["message"]) == (0.1, 0.4, "baseline MLP")
    assert json.loads(first["tags"]) == ["baseline"]
    assert 0 < float(first["duration"]) < 120  # seconds, not "10s"
    assert datetime.datetime.fromisoformat(first["created_at"]).tzinfo is not None
    records = json.loads(snd.kjob("runs", "--export", "json").stdout)
    assert {r["parameters"]["lr"] for r in records} == {0.1, 0.01, 0.001}
    assert all(datetime.datetime.fromisoformat(r["finished_at"]) for r in records)
    assert all(isinstance(r["duration"], float) and r["metrics"]["t20.mae"] for r in records)


def test_diff_names_the_parameters_sources_and_metrics_that_changed(snd):
    result = snd.kjob("runs", "diff", "snd", "v1", "v2", "--patch")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == "snd v1 (local) -> snd v2 (local)"
    assert "  lr: 0.1 -> 0.01" in out
    assert "  src/snd/features.py: changed (+1 -1 lines)" in out
    assert "src/snd/train.py" not in out.split("metrics:")[0]  # unchanged sources are not listed
    assert "  val_acc: 0.6 -> 0.9 (+0.3, better)" in out
    assert "  t20.mae: 0.4 -> 0.1 (-0.3, better)" in out
    assert "+    return 12  # more mel bands" in out
    same = snd.kjob("runs", "diff", "snd", "2", "3").stdout
    assert "sources: the same" in same and "  lr: 0.01 -> 0.001" in same
    assert snd.kjob("runs", "diff", "snd", "v1", "v9").exit_code == 4


def test_notes_and_tags(snd):
    assert snd.kjob("runs", "note", "snd", "overfits after epoch 30", "--version", "3").exit_code == 0
    assert snd.kjob("runs", "note", "snd", "try dropout", "--version", "3", "--append").exit_code == 0
    assert snd.ledger_run(3).note == "overfits after epoch 30\ntry dropout"
    assert "overfits after epoch 30" in snd.kjob("runs").stdout
    assert snd.kjob("runs", "tag", "snd", "best", "keep", "--version", "2").stdout.strip() == "snd v2 (local): tags best, keep"
    assert snd.versions("--tag", "best") == [2]
    assert snd.kjob("runs", "tag", "snd", "keep", "--version", "2", "--remove").exit_code == 0
    assert snd.ledger_run(2).notes.tags == ("best",)
    bad = snd.kjob("runs", "tag", "snd", "two words", "--version", "2")
    assert bad.exit_code == 2 and "tag 'two words'" in bad.stderr
    exported = {r["version"]: r for r in json.loads(snd.kjob("runs", "--export", "json").stdout)}
    assert exported[3]["note"].startswith("overfits") and exported[2]["tags"] == ["best"]
    assert exported[2]["message"] == "smaller lr, 12 features"


def test_archive_packs_the_folder_and_restore_brings_it_back(snd):
    folder = snd.root / "downloads/snd/local-v1"
    before = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert "output/metadata.json" in before
    result = snd.kjob("runs", "archive", "snd", "--version", "1")
    assert result.exit_code == 0, result.output
    assert "archived into downloads/snd/local-v1.tar.gz" in result.stdout
    assert not folder.exists() and (snd.root / "downloads/snd/local-v1.tar.gz").is_file()
    assert snd.ledger_run(1).archived
    listed = snd.kjob("runs")
    assert 1 not in [int(line.split()[1]) for line in listed.stdout.splitlines()[1:]]
    assert "1 archived run(s) not shown" in listed.stderr
    assert 1 in snd.versions("--archived")
    refused = snd.kjob("fetch", "snd", "--version", "1", "--output")
    assert refused.exit_code == 2 and "is archived" in refused.stderr and not folder.exists()
    assert snd.kjob("runs", "archive", "snd", "--version", "3").exit_code == 0
    restored = snd.kjob("runs", "archive", "snd", "--version", "1", "--restore")
    assert restored.exit_code == 0, restored.output
    after = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert not (snd.root / "downloads/snd/local-v1.tar.gz").exists() and not snd.ledger_run(1).archived
    again = snd.kjob("fetch", "snd", "--version", "1", "--output")
    assert again.exit_code == 0 and "0 downloaded" in again.stdout  # what was restored is what kjob fetched
    assert snd.kjob("runs", "archive", "snd", "--version", "3", "--restore").exit_code == 0
    assert snd.kjob("runs", "archive", "snd", "--version", "3", "--restore").exit_code == 2  # not archived


def test_the_runs_commands_import_no_heavy_module(snd):
    code = ("import sys\nfrom kjob.cli import cli\n"
            "for args in (['runs'], ['runs', '--export', 'csv'], ['runs', 'diff', 'snd', '1', '2'], ['--help']):\n"
            "    try:\n        cli(args)\n    except SystemExit as e:\n        assert e.code == 0, (args, e.code)\n"
            "heavy = [m for m in ('torch', 'numpy', 'nbclient', 'speechscore') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=snd.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_runs_command_knows_no_speech_metric():
    source = Path(__file__).resolve().parents[1] / "src/kjob"
    modules = ["cli/lifecycle.py", "cli/runs.py", "runs/query.py", "runs/metrics.py", "runs/ledger.py", "runs/schema.py",
               "lifecycle/fetch.py", "runs/record.py", "build/provenance.py", "runs/archive.py", "lifecycle/watch.py"]
    for rel in modules:
        text = (source / rel).read_text().lower()
        for word in ("pesq", "stoi", "si_sdr", "sisdr", "metric_columns"):
            assert word not in text, f"{rel} mentions {word}"
