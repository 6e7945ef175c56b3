"""Nothing mis-filed, nothing lost: run identity, ledger-first pushes, atomic fetches, resolved
parameters. Real kjob commands, real background runs, the emulator over real HTTP."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kjob.backends import get_backend
from kjob.backends.base import Submission
from kjob.build.plan import plan_build
from kjob.runs.ledger import Ledger
from kjob.workspace import find_workspace

KJOB = Path(sys.executable).with_name("kjob")

BIG_RECIPE = """
title = "Big Output"
slug = "big-output"
modules = ["pkg/big.py"]
entry = "main"
accelerator = "none"

[parameters]
mib = 24
pause = 0.0
"""

BIG_JOB = '''
"""Writes one large file slowly enough to be caught half-way."""
import os
import time


def main(mib, pause):
    with open("blob.bin", "wb") as f:
        for i in range(mib):
            f.write(os.urandom(1 << 20))
            f.flush()
            time.sleep(pause)
    print("wrote", mib, "MiB")
'''


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith(("warning:", "note:"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def ledger_runs(ws):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


def wait_status(ws, name, wanted, seconds=60, version=None):
    deadline = time.monotonic() + seconds
    args = ["status", name, "--json"] + (["--version", str(version)] if version else [])
    while time.monotonic() < deadline:
        data = json.loads(ws.kjob(*args).stdout)
        if data["status"] in wanted:
            return data
        time.sleep(0.3)
    raise AssertionError(f"{name} never reached {wanted}: {data}")


# -- run identity ---------------------------------------------------------------------------


def test_a_re_created_kernel_is_recorded_apart_and_never_mixed_with_the_old_one(kaggle):
    ws = kaggle.ws
    assert kaggle.push("tiny", "-p", "label=old", "--wait").exit_code == 0
    old_folder = "downloads/tiny/v1"
    before = ws.snapshot(old_folder)
    assert json.loads((ws.root / old_folder / "output/result.json").read_text())["label"] == "old"
    # Deleted on Kaggle's site; the next push re-creates it, numbered from 1 again.
    kaggle.emulator.store.handle("DeleteKernel", {"userName": "alice", "kernelSlug": "tiny-kernel"}, "alice")
    again = kaggle.push("tiny", "-p", "label=new", "--wait")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == "tiny v1 (kernel #2)"
    new = json.loads((ws.root / "downloads/tiny/k2-v1/output/result.json").read_text())
    assert new["label"] == "new"
    assert ws.snapshot(old_folder) == before  # the old version's folder is untouched
    runs = sorted(ledger_runs(ws), key=lambda r: r.id)
    assert [(r.version, r.incarnation, r.gone) for r in runs] == [(1, 1, True), (1, 2, False)]
    assert runs[0].identity != runs[1].identity
    # `--version 1` now means the new kernel's v1; its files go to its own folder only.
    refetch = kaggle.kjob("fetch", "tiny", "--version", "1", "--output")
    assert refetch.exit_code == 0, refetch.output
    assert "k2-v1" in refetch.stdout and ws.snapshot(old_folder) == before
    table = kaggle.kjob("status")
    assert "tiny v1  " in table.stdout and "(kernel gone)" in table.stdout and "tiny v1 (kernel #2)" in table.stdout


def test_cancel_delete_kernel_then_push_again_records_the_new_kernel(kaggle):
    kaggle.emulator.faults.set(hold=True)
    assert kaggle.push("tiny").exit_code == 0
    deleted = kaggle.kjob("cancel", "tiny", "--delete-kernel")
    assert deleted.exit_code == 0 and "cancelled (kernel gone)" in deleted.stdout
    kaggle.emulator.faults.set(hold=False)
    again = kaggle.push("tiny", "--wait")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == "tiny v1 (kernel #2)"
    assert (kaggle.ws.root / "downloads/tiny/k2-v1/output/result.json").is_file()
    assert not (kaggle.ws.root / "downloads/tiny/v1/output").exists()


def test_a_folder_of_another_kernel_is_never_written_into(kaggle):
    assert kaggle.push("tiny", "--wait").exit_code == 0
    status = kaggle.ws.root / "downloads/tiny/v1/status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "identity": "999"}))
    before = kaggle.ws.snapshot("downloads/tiny/v1")
    result = kaggle.kjob("fetch", "tiny", "--output")
    assert result.exit_code == 8
    assert "holds the outputs of another kernel (id 999" in one_error_line(result)
    assert kaggle.ws.snapshot("downloads/tiny/v1") == before


# -- ledger first -----------------------------------------------------------------------------


def test_a_push_killed_before_kaggle_answered_is_found_again(kaggle, tiny):
    kaggle.emulator.faults.set(delay=3.0, delay_count=1, delay_method="SaveKernel")  # it answers late
    env = {**os.environ, "KJOB_WORKSPACE": str(tiny.root)}
    push = subprocess.Popen([str(KJOB), "push", "tiny", "--backend", "kaggle"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    push.kill()
    push.wait()
    [row] = ledger_runs(tiny)
    assert (row.state.status, row.version) == ("submitting", None)  # visible, not lost
    kaggle.wait_for_session("tiny-kernel", 1, "complete")  # Kaggle acted on it after all
    status = tiny.kjob("status", "tiny")
    assert status.exit_code == 0, status.output
    assert status.stdout.startswith("tiny v1: complete")
    [row] = ledger_runs(tiny)
    assert (row.version, row.state.status, row.identity) == (1, "complete", str(kaggle.emulator.store.kernel("alice", "tiny-kernel").id))


def test_a_local_push_interrupted_after_the_sandbox_started_is_reconciled(tiny):
    ws = find_workspace(tiny.root)
    plan = plan_build(ws, "tiny")
    backend = get_backend(ws, "local")
    with Ledger(ws.paths.ledger) as ledger:
        row = ledger.begin(kernel="tiny", backend="local", notebook_sha256=plan.notebook_sha256,
                           parameters=plan.recipe.parameters, git_commit=None, git_dirty=None, token="tok-1",
                           submitter={"pid": 999_999_999, "start": None})
        # What a push does between its two ledger writes; the process "dies" right after.
        backend.submit(Submission(plan.recipe, ws.paths.kernel("tiny").folder, plan.notebook, plan.metadata, 60,
                                  plan.recipe.parameters, "tok-1", ledger.next_version("tiny", "local")))
        never = ledger.begin(kernel="tiny", backend="local", notebook_sha256=plan.notebook_sha256, parameters={},
                             git_commit=None, git_dirty=None, token="tok-2", submitter={"pid": 999_999_999})
    data = wait_status(tiny, "tiny", {"complete"}, version=1)
    assert data["version"] == 1
    table = tiny.kjob("status")
    assert "tiny v1 (local)" in table.stdout
    with Ledger(ws.paths.ledger) as ledger:
        assert ledger.get(row.id).version == 1
        closed = ledger.get(never.id)
    assert (closed.state.status, closed.state.failure_kind) == ("error", "infrastructure")
    assert "interrupted before local accepted it" in closed.state.failure_message


def test_a_corrupt_ledger_is_one_line_and_nothing_is_submitted(tiny):
    ledger = tiny.root / ".kjob/ledger.sqlite3"
    ledger.parent.mkdir()
    ledger.write_bytes(b"this is not a database" * 100)
    result = tiny.kjob("push", "tiny")
    assert result.exit_code == 2
    assert "cannot open the run ledger ledger.sqlite3" in one_error_line(result)
    assert not (tiny.root / ".kjob/local").exists()
    assert tiny.kjob("status").exit_code == 2


def test_unfinished_submissions_count_against_the_two_gpu_sessions(kaggle):
    ws = find_workspace(kaggle.ws.root)
    me = {"pid": os.getpid(), "start": None}
    with Ledger(ws.paths.ledger) as ledger:
        for token in ("a", "b"):  # two pushes of other kjob processes, still on their way
            ledger.begin(kernel="tinygpu", backend="kaggle", notebook_sha256="0" * 64, parameters={}, git_commit=None,
                         git_dirty=None, token=token, submitter=me, handle={"accelerator": "gpu"})
    refused = kaggle.push("tinygpu")
    assert refused.exit_code == 7
    assert "2 Kaggle GPU runs have not finished" in one_error_line(refused)
    assert not kaggle.emulator.requests("SaveKernel")


def test_a_first_schema_ledger_keeps_its_rows(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE runs (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, backend TEXT NOT NULL,
          version INTEGER NOT NULL, status TEXT NOT NULL, raw_status TEXT, failure_kind TEXT,
          failure_message TEXT, failure_location TEXT, notebook_sha256 TEXT NOT NULL, parameters TEXT NOT NULL,
          overrides TEXT NOT NULL DEFAULT '{}', git_commit TEXT, git_dirty INTEGER, created_at REAL NOT NULL,
          started_at REAL, finished_at REAL, handle TEXT NOT NULL DEFAULT '{}', metrics TEXT NOT NULL DEFAULT '{}',
          UNIQUE (kernel, backend, version));
        INSERT INTO runs (kernel, backend, version, status, notebook_sha256, parameters, created_at, metrics)
          VALUES ('r3-dpt', 'kaggle', 4, 'complete', 'x', '{"lr": 0.1}', 1.0, '{"best_val_loss": 0.5}');
    """)
    db.close()
    with Ledger(path) as ledger:
        [run] = ledger.runs()
        assert (run.kernel, run.version, run.parameters, run.metrics["best_val_loss"]) == ("r3-dpt", 4, {"lr": 0.1}, 0.5)
        assert (run.incarnation, run.identity) == (1, None)


# -- atomic fetch ------------------------------------------------------------------------------


def big(tiny):
    tiny.write("builders/big.toml", BIG_RECIPE)
    tiny.write("src/pkg/big.py", BIG_JOB)


def test_a_running_runs_files_are_listed_not_downloaded(tiny):
    big(tiny)
    assert tiny.kjob("push", "big", "-p", "pause=0.2", "-p", "mib=20").exit_code == 0
    blob = tiny.root / ".kjob/local/big/v1/working/blob.bin"
    deadline = time.monotonic() + 60
    while not (blob.exists() and blob.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    early = tiny.kjob("fetch", "big", "--output")
    assert early.exit_code == 0, early.output
    assert "has not ended" in early.stderr
    assert not (tiny.root / "downloads/big/local-v1/output").exists()
    assert json.loads((tiny.root / "downloads/big/local-v1/outputs.json").read_text())[0]["name"] == "blob.bin"
    wait_status(tiny, "big", {"complete"})
    done = tiny.kjob("fetch", "big", "--output")
    assert done.exit_code == 0, done.output
    assert (tiny.root / "downloads/big/local-v1/output/blob.bin").read_bytes() == blob.read_bytes()


def test_two_fetches_of_one_version_at_once_both_succeed_with_identical_files(tiny):
    big(tiny)
    assert tiny.kjob("push", "big", "--wait").exit_code == 0
    folder = tiny.root / "downloads/big/local-v1"
    (folder / "output/blob.bin").unlink()
    (folder / ".fetched.json").unlink()
    env = {**os.environ, "KJOB_WORKSPACE": str(tiny.root)}
    fetches = [subprocess.Popen([str(KJOB), "fetch", "big", "--output"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(f.wait(timeout=120), f.stderr.read()) for f in fetches]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    remote = tiny.root / ".kjob/local/big/v1/working/blob.bin"
    assert (folder / "output/blob.bin").read_bytes() == remote.read_bytes()
    assert not [p for p in folder.rglob("*.part")]


def test_an_edited_download_is_not_silently_replaced(tiny):
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    local = tiny.root / "downloads/tiny/local-v1/output/result.json"
    remote = tiny.root / ".kjob/local/tiny/v1/working/result.json"
    local.write_text('{"my": "notes"}')
    kept = tiny.kjob("fetch", "tiny", "--output")  # the same remote file would replace the edit
    assert kept.exit_code == 8 and local.read_text() == '{"my": "notes"}'
    remote.write_text('{"label": "changed remotely"}')
    refused = tiny.kjob("fetch", "tiny", "--output")
    assert refused.exit_code == 8
    assert "differ from what kjob downloaded (edited?)" in one_error_line(refused) and "result.json" in refused.stderr
    assert local.read_text() == '{"my": "notes"}'
    forced = tiny.kjob("fetch", "tiny", "--output", "--force")
    assert forced.exit_code == 0 and local.read_text() == '{"label": "changed remotely"}'
    os.utime(local, (1, 1))  # touched, not changed: still what kjob downloaded
    remote.write_text('{"label": "changed again"}')
    assert tiny.kjob("fetch", "tiny", "--output").exit_code == 0
    assert local.read_text() == '{"label": "changed again"}'
    assert not [p for p in local.parent.iterdir() if p.name.endswith(".part")]


def test_colliding_and_over_long_output_names_are_reported_not_crashed_on(kaggle):
    assert kaggle.push("tiny", "--wait").exit_code == 0
    kaggle.emulator.faults.set(hostile_names=["Result.JSON", "x" * 300 + ".txt", "result.json/inner.txt", "ok.txt"])
    result = kaggle.kjob("fetch", "tiny", "--output")
    assert result.exit_code == 7
    assert "3 output file(s) could not be stored" in one_error_line(result)
    assert "collides with 'result.json'" in result.stderr and "longer than 255 bytes" in result.stderr
    output = kaggle.ws.root / "downloads/tiny/v1/output"
    assert sorted(p.name for p in output.iterdir()) == ["ok.txt", "result.json"]


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tiny):
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("mounting a small tmpfs needs root on Linux")
    big(tiny)
    assert tiny.kjob("push", "big", "-p", "mib=8", "--wait").exit_code == 0
    output = tiny.root / "downloads/big/local-v1/output"
    (output / "blob.bin").unlink()
    (output.parent / ".fetched.json").unlink()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(output)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = tiny.kjob("fetch", "big", "--output")
        assert result.exit_code == 8
        assert "No space left on device" in one_error_line(result)
        assert list(output.iterdir()) == []
    finally:
        subprocess.run(["umount", str(output)])


# -- parameters resolved once -------------------------------------------------------------------


def test_p_beats_the_workspace_parameters_and_the_ledger_shows_what_ran(tiny):
    tiny.write("pyproject.toml", (tiny.root / "pyproject.toml").read_text() + "\n[tool.kjob.local.parameters]\nsteps = 5\n")
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    assert tiny.kjob("push", "tiny", "-p", "steps=2", "--wait").exit_code == 0
    first = json.loads((tiny.root / "downloads/tiny/local-v1/output/result.json").read_text())
    second = json.loads((tiny.root / "downloads/tiny/local-v2/output/result.json").read_text())
    assert (len(first["values"]), len(second["values"])) == (5, 2)
    runs = sorted(ledger_runs(tiny), key=lambda r: r.version)
    assert [r.parameters["steps"] for r in runs] == [5, 2]
    assert [r.overrides for r in runs] == [{}, {"steps": 2}]
    exported = json.loads(tiny.kjob("runs", "--export", "json").stdout)
    assert sorted(r["parameters"]["steps"] for r in exported) == [2, 5]
