"""Where `kjob runs`' metrics come from: fetched outputs, the ledger's schema 3 (migrated
from 2), recipes' [metrics], and live logs that drop nothing."""

import json
import sqlite3

from kjob.backends.base import LogEntry
from kjob.lifecycle.fetch import summarize_metrics
from kjob.runs.ledger import SCHEMA_VERSION, Ledger
from kjob.runs.metrics import MetricSpec, ModeBook, name_mode
from kjob.lifecycle.watch import LogTail, log_lines


def write_training_outputs(folder):
    """What src/enhancer/train.py leaves in its working folder (its keys, not made-up ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    final = {"best_val_loss": -9.5, "best_epoch": 2, "best_val_sisdr": 9.1, "epochs_run": 3, "steps": 12,
             "stop_reason": "epochs", "val_sisdr_noisy": 5.2}
    (folder / "metadata.json").write_text(json.dumps({"status": "completed", "parameters": 123456, "final": final,
                                                      "durations": {"total_seconds": 80.0}}))
    rows = [{"epoch": 1, "train_loss": -3.0, "val_loss": -8.0, "lr": 0.001, "val_sisdr": 7.9},
            {"epoch": 2, "train_loss": -5.0, "val_loss": -9.5, "lr": 0.001, "val_sisdr": 9.1},
            {"epoch": 3, "train_loss": -6.0, "val_loss": float("nan"), "lr": 0.0005, "val_sisdr": None}]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"epoch": 4, "val_lo'  # a half-written last line
    (folder / "metrics.jsonl").write_text(text)


def test_summarize_metrics_reads_what_the_training_code_writes(tmp_path):
    write_training_outputs(tmp_path)
    found = summarize_metrics(tmp_path)
    assert found["metadata"] == {"best_val_loss": -9.5, "best_epoch": 2, "best_val_sisdr": 9.1, "epochs_run": 3,
                                 "steps": 12, "val_sisdr_noisy": 5.2}
    history = found["history"]
    assert (history["val_loss.best"], history["val_loss.best_epoch"], history["val_loss.last"]) == (-9.5, 2, -9.5)
    assert (history["val_sisdr.best"], history["val_sisdr.best_epoch"]) == (9.1, 2)  # maximised
    assert (history["train_loss.best"], history["train_loss.last"]) == (-6.0, -6.0)
    assert "epoch.best" not in history
    assert summarize_metrics(tmp_path / "nothing") == {}


def test_nested_metrics_are_flattened_and_modes_are_declared_or_guessed(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"metrics": {"t20": {"mae": 0.72, "ok": True},
                                                                   "acc": 0.9, "per_class": [0.1, 0.2]}}))
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "score": 3}\n{"step": 2, "score": 1}\n')
    found = summarize_metrics(tmp_path, ModeBook([MetricSpec(modes={"score": "min"})]))
    assert found["metadata"] == {"t20.mae": 0.72, "acc": 0.9}
    assert found["history"]["score.best"] == 1 and found["history"]["score.best_epoch"] == 2
    assert [name_mode(n) for n in ("val_loss", "t20.mae", "word_error_rate", "rmse", "wer", "nllloss")] == ["min"] * 6
    assert [name_mode(n) for n in ("val_acc", "power", "lower_bound", "f1")] == ["max"] * 4
    book = ModeBook([MetricSpec("val_acc", (), {"val_acc": "max", "err_bound": "max"})])
    assert (book.mode("val_acc.best"), book.mode("err_bound"), book.mode("err_rate")) == ("max", "max", "min")


V2_TABLE = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, backend TEXT NOT NULL, version INTEGER,
  status TEXT NOT NULL, raw_status TEXT, failure_kind TEXT, failure_message TEXT, failure_location TEXT,
  notebook_sha256 TEXT NOT NULL, parameters TEXT NOT NULL, overrides TEXT NOT NULL DEFAULT '{}', git_commit TEXT,
  git_dirty INTEGER, created_at REAL NOT NULL, started_at REAL, finished_at REAL, handle TEXT NOT NULL DEFAULT '{}',
  metrics TEXT NOT NULL DEFAULT '{}', token TEXT, identity TEXT, incarnation INTEGER NOT NULL DEFAULT 1,
  gone_at REAL, submitter TEXT NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX runs_identity ON runs (kernel, backend, incarnation, version);
INSERT INTO runs (kernel, backend, version, status, notebook_sha256, parameters, overrides, git_commit, git_dirty,
  created_at, started_at, finished_at, handle, metrics, token, identity, incarnation, gone_at)
  VALUES ('r3-dpt', 'kaggle', 4, 'complete', 'ab', '{"lr": 0.1}', '{"lr": 0.1}', 'f00d', 0, 1.0, 2.0, 12.0,
          '{"slug": "x"}', '{"best_val_loss": 0.5, "pesq_wb": 2.1}', 'tok', '77', 2, NULL),
         ('r3-dpt', 'kaggle', NULL, 'submitting', 'cd', '{}', '{}', NULL, NULL, 3.0, NULL, NULL, '{}', '{}',
          'tok2', NULL, 1, NULL);
PRAGMA user_version=2;
"""


def test_a_schema_2_ledger_keeps_every_row_and_field(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V2_TABLE)
    db.close()
    with Ledger(path) as ledger:
        assert ledger._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        old, pending = sorted(ledger.runs(), key=lambda r: r.created_at)
        assert (old.kernel, old.version, old.parameters, old.git_commit, old.git_dirty) == ("r3-dpt", 4, {"lr": 0.1},
                                                                                           "f00d", False)
        assert (old.started_at, old.finished_at, old.handle, old.token, old.identity, old.incarnation) == (
            2.0, 12.0, {"slug": "x"}, "tok", "77", 2)
        assert old.metrics == {"best_val_loss": 0.5, "pesq_wb": 2.1}
        assert old.metric_sources == {"earlier": {"best_val_loss": 0.5, "pesq_wb": 2.1}}
        assert (old.notes.message, old.notes.tags, old.note, old.archived) == (None, (), None, False)
        assert (pending.version, pending.state.status, pending.metrics) == (None, "submitting", {})
        # A fetch after the upgrade: the run's own value wins, the earlier one stays recorded.
        run = ledger.set_metrics(old, {"best_val_loss": 0.25}, "metadata")
        assert run.metrics == {"best_val_loss": 0.25, "pesq_wb": 2.1}
        run = ledger.set_metrics(run, {"pesq_wb": 2.5}, "evaluation", MetricSpec(columns=("pesq_wb",)))
        assert run.metrics["pesq_wb"] == 2.5 and run.metric_specs["evaluation"].columns == ("pesq_wb",)
        assert ledger._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Ledger(path) as ledger:  # opening again changes nothing
        assert len(ledger.runs()) == 2 and ledger.find("r3-dpt", 4).metrics["best_val_loss"] == 0.25


def entries(*texts, stream="stdout"):
    return [LogEntry(stream, float(i), t) for i, t in enumerate(texts)]


def test_a_log_tail_hands_on_every_line_once_or_says_how_many_it_left_out():
    tail = LogTail(limit=5)  # handed the entries new since its last call
    assert tail.take(entries("a\nb\n", "half"), final=False) == (0, ["a", "b"])  # the half-written line waits
    assert tail.take(entries(" line\n\n", "c\r50%\r100%\n"), final=False) == (0, ["half line", "100%"])
    flood = entries("".join(f"n{i}\n" for i in range(12)))
    assert tail.take(flood, final=False) == (7, ["n7", "n8", "n9", "n10", "n11"])
    assert tail.take(entries("end", stream="stderr"), final=False) == (0, [])
    assert tail.take([], final=True) == (0, ["[stderr] end"])
    assert log_lines(entries("x\n", "y\n"), final=True) == ["x", "y"]


FLOOD = '''
def main(lines):
    for i in range(lines):
        print("line", i, flush=True)
'''


def test_watching_a_flood_says_how_many_lines_it_did_not_show(tiny):
    tiny.write("builders/flood.toml", 'title = "Flood"\nmodules = ["pkg/flood.py"]\nentry = "main"\n'
                                      'accelerator = "none"\n\n[parameters]\nlines = 450\n')
    tiny.write("src/pkg/flood.py", FLOOD)
    result = tiny.kjob("push", "flood", "--wait")
    assert result.exit_code == 0, result.output
    shown = [line.split("| ", 1)[1] for line in result.stderr.splitlines() if "| line " in line]
    markers = [line for line in result.stderr.splitlines() if "not shown" in line]
    skipped = sum(int(m.split("... ")[1].split()[0]) for m in markers)
    assert markers and all("(kjob logs flood --version 1)" in m for m in markers)
    assert skipped + len(shown) == 450 and shown[-1] == "line 449"
    assert len(set(shown)) == len(shown)


def test_a_recipes_metrics_table_is_checked(tiny):
    recipe = tiny.root / "builders/tiny.toml"
    text = recipe.read_text()
    for table, message in (('[metrics]\nprimary = "acc"\nmode = "up"\n', "[metrics] mode: expected 'min' or 'max'"),
                           ('[metrics]\nmode = "max"\n', "mode applies to the primary metric"),
                           ('[metrics]\ncolumns = "acc"\n', "[metrics] columns: expected a list of metric names"),
                           ('[metrics]\nsort = "acc"\n', "[metrics] unknown keys: sort"),
                           ('[metrics.modes]\nacc = 1\n', "[metrics.modes] acc: expected 'min' or 'max'")):
        recipe.write_text(text + "\n" + table)
        result = tiny.kjob("build", "tiny")
        assert result.exit_code == 2 and message in result.stderr, (table, result.stderr)
        assert result.stderr.startswith("error: builders/tiny.toml: ") and result.stderr.count("\n") == 1
    recipe.write_text(text + '\n[metrics]\nprimary = "acc"\nmode = "max"\ncolumns = ["loss"]\n')
    assert tiny.kjob("build", "tiny").exit_code == 0


def test_diff_of_runs_pushed_before_notebooks_were_kept_says_so(tiny):
    from kjob.runs.record import RunStatus

    with Ledger(tiny.root / ".kjob/ledger.sqlite3") as ledger:
        for version, lr in ((1, 0.1), (2, 0.2)):
            run = ledger.record(kernel="old", backend="local", version=version, notebook_sha256=f"{version}" * 64,
                                parameters={"lr": lr}, git_commit=None, git_dirty=None, handle={},
                                state=RunStatus("complete"))
            ledger.set_metrics(run, {"loss": 1.0 / version})
    result = tiny.kjob("runs", "diff", "old", "v1", "v2")
    assert result.exit_code == 0, result.output
    assert "sources: not known (kjob kept no notebook of old v1 (local), old v2 (local)" in result.stdout
    assert "  lr: 0.1 -> 0.2" in result.stdout and "  loss: 1 -> 0.5 (-0.5, better)" in result.stdout
    bad = tiny.kjob("runs", "diff", "old", "first", "v2")
    assert bad.exit_code == 2 and "'first' is not a version" in bad.stderr


def test_a_bad_tag_stops_the_push_before_anything_runs(tiny):
    result = tiny.kjob("push", "tiny", "--tag", "two words")
    assert result.exit_code == 2 and result.stderr.startswith("error: tag 'two words'")
    assert not (tiny.root / ".kjob/local").exists()
