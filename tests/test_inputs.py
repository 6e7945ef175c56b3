"""Runs made from runs (issue 23): `push --input`, a recipe's `inputs`, the manifest, lineage in
the ledger (schema 5), versions named across backends, and `--resume-from`."""

import hashlib
import json
import sqlite3

import pytest

from kjob.runs.ledger import Ledger

READER_RECIPE = """
title = "Reader"
slug = "reader"
modules = ["pkg/reader.py"]
entry = "main"
accelerator = "none"

[parameters]
resume = ""

[resume]
parameter = "resume"
"""

READER = '''
"""Reads what it was given: tiny's result.json under both layouts, and the manifest."""
import json
import os


def main(resume):
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    seen = {}
    for layout in ("notebooks/alice/tiny-kernel", "tiny-kernel"):
        path = os.path.join(root, layout, "result.json")
        seen[layout] = json.load(open(path))["label"] if os.path.isfile(path) else None
    manifest = json.load(open(os.path.join(root, "kjob-inputs.json")))
    try:  # an input is read-only where the sandbox isolates runs (bubblewrap)
        open(os.path.join(root, "tiny-kernel", "scribble.txt"), "w").close()
        writable = True
    except OSError:
        writable = False
    kaggle_input = os.path.join("/kaggle", "input") + "/"  # where Kaggle (and bubblewrap) mount it
    if resume.startswith(kaggle_input):
        resume = os.path.join(root, resume[len(kaggle_input):])
    with open("seen.json", "w") as f:
        json.dump({"seen": seen, "manifest": manifest, "writable": writable,
                   "resume": sorted(os.listdir(resume)) if resume else None}, f)
'''


@pytest.fixture
def two(tiny):
    """`tiny` and a `reader` recipe that reads tiny's outputs from /kaggle/input."""
    tiny.write("builders/reader.toml", READER_RECIPE)
    tiny.write("src/pkg/reader.py", READER)
    return tiny


def seen(ws, label="local-v1", kernel="reader"):
    return json.loads((ws.root / f"downloads/{kernel}/{label}/output/seen.json").read_text())


def ledger_rows(ws):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


def push_ok(ws, *args):
    result = ws.kjob("push", *args, "--wait")
    assert result.exit_code == 0, result.output
    return result


def test_a_run_reads_exactly_the_version_asked_for_after_newer_ones_ran(two):
    push_ok(two, "tiny", "-p", "label=first")
    push_ok(two, "tiny", "-p", "label=second")
    push_ok(two, "reader", "--input", "tiny:v1")
    got = seen(two)
    assert got["seen"] == {"notebooks/alice/tiny-kernel": "first", "tiny-kernel": "first"}
    result = (two.root / "downloads/tiny/local-v1/output/result.json").read_bytes()
    [entry] = got["manifest"]["inputs"]
    assert (entry["kernel"], entry["backend"], entry["version"], entry["run"]) == ("tiny", "local", 1, "tiny:local-v1")
    assert entry["files"] == {"result.json": hashlib.sha256(result).hexdigest()}
    assert entry["paths"] == ["/kaggle/input/notebooks/alice/tiny-kernel", "/kaggle/input/tiny-kernel"]
    [reader] = [r for r in ledger_rows(two) if r.kernel == "reader"]
    if reader.handle.get("isolation") == "bubblewrap":
        assert got["writable"] is False
        assert not (two.root / "downloads/tiny/local-v1/output/scribble.txt").exists()
    # Without a version: the latest complete run.
    push_ok(two, "reader", "--input", "tiny")
    assert seen(two, "local-v2")["seen"]["tiny-kernel"] == "second"
    # The ledger keeps what each run got.
    reader = [r for r in ledger_rows(two) if r.kernel == "reader"]
    assert [(r.version, [(i["kernel"], i["version"], i["files"]) for i in r.inputs]) for r in reader] == [
        (2, [("tiny", 2, {"result.json": hashlib.sha256(
            (two.root / "downloads/tiny/local-v2/output/result.json").read_bytes()).hexdigest()})]),
        (1, [("tiny", 1, {"result.json": hashlib.sha256(result).hexdigest()})])]
    assert reader[0].signature != reader[1].signature  # another input, another run


def test_the_input_is_linked_not_copied_and_fetched_first(two):
    assert two.kjob("push", "tiny").exit_code == 0  # not waited for, so not fetched
    assert two.kjob("status", "tiny", "--watch").exit_code == 0
    assert not (two.root / "downloads/tiny/local-v1/output").exists()
    # Without bubblewrap (the environment-only fallback) the run finds its inputs by KAGGLE_INPUT_DIR.
    result = two.kjob("push", "reader", "--input", "tiny:local-v1", "--wait", env={"KJOB_SANDBOX": "env"})
    assert result.exit_code == 0, result.output
    assert (two.root / "downloads/tiny/local-v1/output/result.json").is_file()
    link = two.root / ".kjob/local/reader/v1/input/tiny-kernel"
    assert link.is_symlink() and link.resolve() == (two.root / "downloads/tiny/local-v1/output").resolve()
    assert seen(two)["seen"] == {"notebooks/alice/tiny-kernel": "run", "tiny-kernel": "run"}


def test_a_recipe_s_inputs(two):
    push_ok(two, "tiny", "-p", "label=only")
    recipe = two.root / "builders/reader.toml"
    recipe.write_text(recipe.read_text().replace('accelerator = "none"', 'accelerator = "none"\ninputs = ["tiny:v1"]'))
    push_ok(two, "reader")
    assert seen(two)["seen"]["tiny-kernel"] == "only"


@pytest.mark.parametrize("ref, code, said", [
    ("nothing", 4, "input nothing: no complete run of nothing on local"),
    ("tiny:v9", 4, "input tiny:v9: no recorded run of tiny v9 on local"),
    ("tiny:v2", 2, "input tiny:v2: tiny v2 (local) is error, not complete"),
    ("tiny@kaggle", 4, "input tiny@kaggle: no complete run of tiny on kaggle"),
    ("tiny:x3", 2, "input tiny:x3"),
])
def test_a_ref_that_cannot_be_given_is_refused_before_anything_is_pushed(two, ref, code, said):
    push_ok(two, "tiny")
    assert two.kjob("push", "tiny", "-p", "fail=true", "--wait").exit_code == 1
    before = len(ledger_rows(two))
    result = two.kjob("push", "reader", "--input", ref)
    assert result.exit_code == code, result.output
    assert said in result.output and len(result.output.strip().splitlines()) == 1
    assert len(ledger_rows(two)) == before
    assert not (two.root / ".kjob/local/reader").exists()


def test_a_run_without_outputs_is_refused(two):
    two.write("builders/quiet.toml", 'title = "Quiet"\nmodules = ["pkg/quiet.py"]\nentry = "main"\naccelerator = "none"\n')
    two.write("src/pkg/quiet.py", 'def main():\n    print("nothing written")\n')
    push_ok(two, "quiet")
    result = two.kjob("push", "reader", "--input", "quiet")
    assert result.exit_code == 4, result.output
    assert result.output == "error: input quiet: quiet v1 (local) has no output files\n"
    assert [r.kernel for r in ledger_rows(two)] == ["quiet"]


def test_a_gone_run_folder_cannot_be_fetched(two):
    import shutil

    assert two.kjob("push", "tiny").exit_code == 0
    assert two.kjob("status", "tiny", "--watch").exit_code == 0
    folder = two.root / ".kjob/local/tiny/v1"
    while folder.exists():  # its keeper may still be writing its last files
        shutil.rmtree(folder, ignore_errors=True)
    result = two.kjob("push", "reader", "--input", "tiny:v1")
    assert result.exit_code == 4, result.output
    assert result.output.startswith("error: input tiny:v1: tiny v1 (local) cannot be fetched")
    assert [r.kernel for r in ledger_rows(two)] == ["tiny"]


def test_a_ray_run_reads_a_local_run_s_outputs_from_the_shared_storage(two, monkeypatch):
    pytest.importorskip("ray")
    import sys

    from ray_head import RayHead

    head = RayHead(cpus=2).start()
    try:
        for name, value in head.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        two.write("pyproject.toml", (two.root / "pyproject.toml").read_text() + f"""
[tool.kjob.ray]
address = "{head.address}"
storage = "storage"
python = "{sys.executable}"
""")
        (two.root / "storage").mkdir()
        push_ok(two, "tiny", "-p", "label=local-one")
        push_ok(two, "tiny", "-p", "label=local-two")
        push_ok(two, "reader", "--backend", "ray", "--input", "tiny@local:v1")
        got = seen(two, "ray-v1")
        assert got["seen"] == {"notebooks/alice/tiny-kernel": "local-one", "tiny-kernel": "local-one"}
        assert got["manifest"]["inputs"][0]["run"] == "tiny:local-v1"
        shared = two.root / "storage/.inputs/tiny/local-v1/result.json"
        assert shared.read_bytes() == (two.root / "downloads/tiny/local-v1/output/result.json").read_bytes()
    finally:
        head.close()


def test_runs_lists_filters_and_diffs_inputs(two):
    push_ok(two, "tiny", "-p", "label=first")
    push_ok(two, "tiny", "-p", "label=second")
    push_ok(two, "reader", "--input", "tiny:v1")
    push_ok(two, "reader", "--input", "tiny:v2")
    listing = two.kjob("runs", "--kernel", "reader", "--columns", "inputs")
    assert listing.exit_code == 0, listing.output
    assert "tiny:local-v1" in listing.output and "tiny:local-v2" in listing.output
    for where in ("input=tiny:v1", "input=tiny:local-v1", "input=tiny@local:v1"):
        kept = two.kjob("runs", "--where", where, "--columns", "inputs", "--export", "json")
        assert kept.exit_code == 0, kept.output
        assert [(r["kernel"], r["version"]) for r in json.loads(kept.output)] == [("reader", 1)], where
    kept = two.kjob("runs", "--where", "input!=tiny:v1", "--export", "json")
    assert [(r["kernel"], r["version"]) for r in json.loads(kept.output)] == [("reader", 2)]
    diff = two.kjob("runs", "diff", "reader", "v1", "v2")
    assert diff.exit_code == 0, diff.output
    assert "inputs:\n  tiny: tiny:local-v1 -> tiny:local-v2\n" in diff.output
    same = two.kjob("runs", "diff", "tiny", "v1", "v2")
    assert "inputs" not in same.output  # runs without inputs say nothing of them


def test_lineage_both_ways(two):
    push_ok(two, "tiny", "-p", "label=first")
    push_ok(two, "reader", "--input", "tiny:v1")
    push_ok(two, "reader", "--input", "tiny:v1")
    down = two.kjob("runs", "lineage", "tiny", "--version", "1")
    assert down.exit_code == 0, down.output
    assert down.output == ("tiny v1 (local): complete\nmade from: nothing (no inputs)\n"
                           "made into:\n  reader v1 (local): complete\n  reader v2 (local): complete\n")
    # A campaign member's signature includes its inputs: the same input, the same signature.
    first, second = [r for r in ledger_rows(two) if r.kernel == "reader"]
    assert first.signature == second.signature
    up = two.kjob("runs", "lineage", "reader@local:v2")
    assert up.output == ("reader v2 (local): complete\nmade from:\n  tiny v1 (local): complete  (result.json)\n"
                         "made into: nothing yet\n")


V4_LEDGER = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, backend TEXT NOT NULL, version INTEGER,
  status TEXT NOT NULL, raw_status TEXT, failure_kind TEXT, failure_message TEXT, failure_location TEXT,
  notebook_sha256 TEXT NOT NULL, parameters TEXT NOT NULL, overrides TEXT NOT NULL DEFAULT '{}', git_commit TEXT,
  git_dirty INTEGER, created_at REAL NOT NULL, started_at REAL, finished_at REAL, handle TEXT NOT NULL DEFAULT '{}',
  metrics TEXT NOT NULL DEFAULT '{}', token TEXT, identity TEXT, incarnation INTEGER NOT NULL DEFAULT 1,
  gone_at REAL, submitter TEXT NOT NULL DEFAULT '{}', message TEXT, note TEXT, tags TEXT NOT NULL DEFAULT '[]',
  archived_at REAL, metric_spec TEXT NOT NULL DEFAULT '{}', campaign TEXT, stage TEXT, signature TEXT,
  fetched_at REAL);
INSERT INTO runs (kernel, backend, version, status, notebook_sha256, parameters, created_at, finished_at, tags, signature)
  VALUES ('tiny', 'local', 1, 'complete', 'ab', '{"steps": 3}', 1.0, 5.0, '["old"]', 'sig1'),
         ('tiny', 'kaggle', 1, 'complete', 'cd', '{"steps": 4}', 2.0, 6.0, '[]', 'sig2');
PRAGMA user_version=4;
"""


def test_a_schema_4_ledger_migrates_keeping_every_row_then_records_lineage(two):
    (two.root / ".kjob").mkdir()
    db = sqlite3.connect(two.root / ".kjob/ledger.sqlite3")
    db.executescript(V4_LEDGER)
    db.close()
    listing = two.kjob("runs", "--export", "json")
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.output)
    assert [(r["backend"], r["version"], r["tags"], r["signature"], r["inputs"]) for r in rows] == [
        ("kaggle", 1, [], "sig2", []), ("local", 1, ["old"], "sig1", [])]
    db = sqlite3.connect(two.root / ".kjob/ledger.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 5
    db.close()
    # A plain v1 on two backends is refused, naming both; a backend's label picks one.
    ambiguous = two.kjob("runs", "note", "tiny", "x", "--version", "1")
    assert ambiguous.exit_code == 2
    assert ambiguous.output == ("error: tiny v1 exists on several backends (kaggle, local); pass --backend, "
                                "or name one: tiny:kaggle-v1, tiny:local-v1\n")
    for named in (["tiny", "--version", "local-v1"], ["tiny:local-v1"], ["tiny@local:v1"], ["tiny", "--version", "v1", "--backend", "local"]):
        result = two.kjob("runs", "note", named[0], "picked", *named[1:])
        assert result.output == "tiny v1 (local): note saved\n", named
    assert two.kjob("runs", "note", "tiny:kaggle-v1", "k").output == "tiny v1: note saved\n"
    # A local run pushed now is v2 (the ledger's numbering goes on) and lineage reaches it.
    push_ok(two, "tiny")
    push_ok(two, "reader", "--input", "tiny:v2")
    up = two.kjob("runs", "lineage", "reader")
    assert "  tiny v2 (local): complete  (result.json)\n" in up.output
    for named in (["tiny:local-v2"], ["tiny@local:v2"], ["tiny", "--version", "local-v2"]):
        status = two.kjob("status", *named, "--json")
        assert (status.exit_code, json.loads(status.output)["version"]) == (0, 2), named
        assert two.kjob("fetch", *named).exit_code == 0, named
    assert two.kjob("status", "tiny", "--version", "kaggle-v2").output == (
        "error: no recorded run of tiny v2 on kaggle (see `kjob runs`)\n")
    # runs diff between a local and a Kaggle run of one kernel
    diff = two.kjob("runs", "diff", "tiny", "local-v1", "kaggle-v1")
    assert diff.exit_code == 0, diff.output
    assert diff.output.startswith("tiny v1 (local) -> tiny v1\n") and "steps: 3 -> 4" in diff.output
    conflict = two.kjob("runs", "note", "tiny:local-v1", "x", "--backend", "kaggle")
    assert conflict.exit_code == 2 and "names local" in conflict.output


TINY_TRAINING = ["-p", "synthetic=true", "-p", "steps_per_epoch=2", "-p", "batch_size=2", "-p", "crop_seconds=0.5",
                 "-p", "max_val_files=2", "-p", "num_workers=0", "-p", "time_budget_seconds=0", "-p", "num_threads=1",
                 "-p", "warmup_steps=0"]


def history(ws, label):
    lines = (ws.root / f"downloads/r3-dpt/{label}/output/metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_resume_from_continues_the_example_s_training(project):
    pytest.importorskip("torch")
    (project.root / "data/demo").mkdir(parents=True)
    push_ok(project, "r3-dpt", *TINY_TRAINING, "-p", "epochs=2")
    push_ok(project, "r3-dpt", *TINY_TRAINING, "-p", "epochs=4", "--resume-from", "v1")
    first, second = history(project, "local-v1"), history(project, "local-v2")
    assert [row["epoch"] for row in first] == [1, 2]
    assert [row["epoch"] for row in second] == [1, 2, 3, 4]
    assert second[:2] == first  # the earlier session's epochs, as they were
    log = (project.root / "downloads/r3-dpt/local-v2/log.txt").read_text()
    assert "resuming from " in log and ": epoch 2 done" in log
    final = json.loads((project.root / "downloads/r3-dpt/local-v2/output/metadata.json").read_text())["final"]
    before = json.loads((project.root / "downloads/r3-dpt/local-v1/output/metadata.json").read_text())["final"]
    assert (final["epochs_run"], final["steps"]) == (4, 8)
    assert final["best_val_loss"] <= before["best_val_loss"]  # the best so far carried over
    import torch

    last = torch.load(project.root / "downloads/r3-dpt/local-v2/output/last.pt", weights_only=True)
    assert last["epoch"] == 4 and last["train_state"]["steps"] == 8 and "scheduler_state" in last
    [run] = [r for r in ledger_rows(project) if r.version == 2]
    assert run.parameters["resume"] == "/kaggle/input/notebooks/kjob-demo/r3-dpt"
    assert [(i["kernel"], i["backend"], i["version"]) for i in run.inputs] == [("r3-dpt", "local", 1)]


def test_resume_from_needs_a_resume_parameter(two):
    result = two.kjob("push", "tiny", "--resume-from", "v1")
    assert result.exit_code == 2
    assert result.output.startswith("error: --resume-from: tiny's recipe names no resume parameter")
    assert ledger_rows(two) == []


def test_push_reuse_answers_a_complete_run_of_the_same_signature(two):
    push_ok(two, "tiny", "-p", "label=a")
    push_ok(two, "reader", "--input", "tiny:v1")
    again = two.kjob("push", "reader", "--input", "tiny:v1", "--reuse")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-1].startswith("reader v1 (local): complete, reused")
    assert [r.kernel for r in ledger_rows(two)] == ["reader", "tiny"]
    push_ok(two, "tiny", "-p", "label=b")
    other = two.kjob("push", "reader", "--input", "tiny:v2", "--reuse")  # another input: another run
    assert other.exit_code == 0 and other.stdout.splitlines()[-1] == "reader v2 (local)"


def test_a_kaggle_run_is_an_input_of_a_local_run(kaggle):
    ws = kaggle.ws
    ws.write("builders/reader.toml", READER_RECIPE)
    ws.write("src/pkg/reader.py", READER)
    assert kaggle.push("tiny", "-p", "label=on-kaggle", "--wait").exit_code == 0
    assert kaggle.push("tiny", "-p", "label=later", "--wait").exit_code == 0
    push_ok(ws, "reader", "--input", "tiny@kaggle:v1")
    got = seen(ws)
    assert got["seen"]["tiny-kernel"] == "on-kaggle"  # the version asked for, not Kaggle's latest
    [entry] = got["manifest"]["inputs"]
    assert (entry["run"], entry["identity"]) == ("tiny:v1", next(
        r.identity for r in ledger_rows(ws) if r.kernel == "tiny" and r.version == 1))
    assert entry["identity"]


def test_the_digests_are_of_what_the_run_gets_even_after_an_edit(two):
    push_ok(two, "tiny", "-p", "label=as-fetched")
    fetched = json.loads((two.root / "downloads/tiny/local-v1/.fetched.json").read_text())
    output = two.root / "downloads/tiny/local-v1/output/result.json"
    assert fetched["result.json"]["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    output.write_text(json.dumps({"label": "edited here"}))
    push_ok(two, "reader", "--input", "tiny:v1")
    got = seen(two)
    assert got["seen"]["tiny-kernel"] == "edited here"
    assert got["manifest"]["inputs"][0]["files"] == {"result.json": hashlib.sha256(output.read_bytes()).hexdigest()}
