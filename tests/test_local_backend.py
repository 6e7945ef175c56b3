"""The local backend, ledger and fetch, with real background runs of a small notebook."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proc_helpers import processes_with_home
from kjob.runs.ledger import Ledger
from kjob.runs.record import RunStatus


def status_json(ws, name, version):
    result = ws.kjob("status", name, "--version", str(version), "--json")
    return result.exit_code, json.loads(result.stdout)


def wait_for(ws, name, version, wanted, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code, data = status_json(ws, name, version)
        if data["status"] in wanted:
            return code, data
        time.sleep(0.3)
    raise AssertionError(f"{name} v{version} never reached {wanted}: {data}")


def local_state(ws, name, version):
    return json.loads((ws.root / f".kjob/local/{name}/v{version}/state.json").read_text())


def test_push_wait_runs_completes_and_fetches(tiny):
    result = tiny.kjob("push", "tiny", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "tiny v1 (local)"
    assert "tiny v1 (local): complete" in result.stdout
    folder = tiny.root / "downloads/tiny/local-v1"
    produced = json.loads((folder / "output/result.json").read_text())
    # Both Kaggle input layouts are there, and the run looks like a pushed (batch) run.
    assert produced["inputs"] == {"found": {"some-data/hello.txt": True, "datasets/someone/some-data/hello.txt": True},
                                  "run_type": "Batch"}
    assert json.loads((folder / "status.json").read_text())["status"] == "complete"
    assert "wrote result.json with 3 values" in (folder / "log.txt").read_text()
    assert json.loads((folder / "outputs.json").read_text()) == [{"name": "result.json", "size": (folder / "output/result.json").stat().st_size}]
    with Ledger(tiny.root / ".kjob/ledger.sqlite3") as ledger:
        run = ledger.find("tiny", 1)
    assert run.state.status == "complete" and run.backend == "local"
    assert run.parameters["steps"] == 3 and len(run.notebook_sha256) == 64
    assert run.started_at <= run.finished_at


def test_an_error_in_a_cell_names_the_src_line(tiny):
    result = tiny.kjob("push", "tiny", "-p", "fail=true", "--wait")
    assert result.exit_code == 1
    code, data = status_json(tiny, "tiny", 1)
    assert code == 1
    assert (data["status"], data["failure_kind"]) == ("error", "user code")
    assert data["failure_location"] == "src/pkg/job.py:11"
    assert "RuntimeError: asked to fail" in data["failure_message"]
    assert "[stderr]" in tiny.kjob("logs", "tiny").stdout
    assert not (tiny.root / "downloads/tiny/local-v1/output").exists()  # no output files for a failed run


def processes_of(run_folder):
    return processes_with_home(run_folder / "home")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_cancel_stops_the_whole_process_tree(tiny):
    assert tiny.kjob("push", "tiny", "-p", "sleep=120").exit_code == 0
    wait_for(tiny, "tiny", 1, {"running"})
    deadline = time.monotonic() + 30
    while "kernel_pid" not in local_state(tiny, "tiny", 1) and time.monotonic() < deadline:
        time.sleep(0.2)
    run_folder = tiny.root / ".kjob/local/tiny/v1"
    assert any("ipykernel" in command for command in processes_of(run_folder).values())
    result = tiny.kjob("cancel", "tiny")
    assert result.exit_code == 0
    assert "tiny v1 (local): cancelled" in result.stdout
    code, data = status_json(tiny, "tiny", 1)
    assert (code, data["status"]) == (5, "cancelled")
    time.sleep(0.5)
    assert processes_of(run_folder) == {}  # keeper, runner and kernel: all gone


def test_a_run_over_its_time_limit_ends_in_error(tiny):
    result = tiny.kjob("push", "tiny", "-p", "sleep=120", "--timeout", "3", "--wait")
    assert result.exit_code == 1
    code, data = status_json(tiny, "tiny", 1)
    assert data["failure_kind"] == "timeout"
    assert data["duration"] < 30


def test_a_run_killed_from_outside_is_reported_as_died(tiny):
    assert tiny.kjob("push", "tiny", "-p", "sleep=120").exit_code == 0
    wait_for(tiny, "tiny", 1, {"running"})
    runner = json.loads((tiny.root / ".kjob/local/tiny/v1/pid.json").read_text())["pid"]
    os.killpg(runner, signal.SIGKILL)
    code, data = wait_for(tiny, "tiny", 1, {"error", "complete", "cancelled"}, seconds=20)
    assert (code, data["status"], data["failure_kind"]) == (1, "error", "kernel died")


def test_two_pushes_get_two_versions_and_separate_folders(tiny):
    assert tiny.kjob("push", "tiny", "-p", "label=first", "--wait").exit_code == 0
    assert tiny.kjob("push", "tiny", "-p", "label=second", "--wait").exit_code == 0
    first = json.loads((tiny.root / "downloads/tiny/local-v1/output/result.json").read_text())
    second = json.loads((tiny.root / "downloads/tiny/local-v2/output/result.json").read_text())
    assert (first["label"], second["label"]) == ("first", "second")
    before = tiny.snapshot("downloads/tiny/local-v2")
    assert tiny.kjob("fetch", "tiny", "--version", "1", "--output").exit_code == 0
    assert tiny.snapshot("downloads/tiny/local-v2") == before
    table = tiny.kjob("runs").stdout
    assert "label=first" in table and "label=second" in table


def test_fetch_skips_unchanged_files_and_reports_vanished_ones(tiny):
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    again = tiny.kjob("fetch", "tiny", "--output")
    assert "0 downloaded, 1 unchanged" in again.stdout
    remote = tiny.root / ".kjob/local/tiny/v1/working/result.json"
    remote.write_text('{"changed": true}')
    changed = tiny.kjob("fetch", "tiny", "--output")
    assert "1 downloaded, 0 unchanged" in changed.stdout
    assert json.loads((tiny.root / "downloads/tiny/local-v1/output/result.json").read_text()) == {"changed": True}
    remote.unlink()
    gone = tiny.kjob("fetch", "tiny", "--output")
    assert "result.json no longer exists remotely" in gone.stderr
    assert not list((tiny.root / "downloads").rglob("*.part"))


def test_push_rebuilds_a_stale_kernel_and_says_so(tiny):
    assert tiny.kjob("build", "tiny").exit_code == 0
    unchanged = tiny.kjob("push", "tiny")
    assert "rebuilt" not in unchanged.stderr
    util = tiny.root / "src/pkg/util.py"
    util.write_text(util.read_text() + "\n\nEXTRA = 1\n")
    result = tiny.kjob("push", "tiny")
    assert "rebuilt kernels/tiny" in result.stderr
    assert "EXTRA = 1" in (tiny.root / "kernels/tiny/tiny.ipynb").read_text()


def test_an_unmapped_dataset_source_is_a_clear_error(tiny):
    (tiny.root / "pyproject.toml").write_text('[tool.kjob]\nowner = "alice"\n')
    result = tiny.kjob("push", "tiny")
    assert result.exit_code == 2
    assert "dataset source someone/some-data has no local folder" in result.stderr


def test_unknown_runs_are_not_found(tiny):
    result = tiny.kjob("status", "tiny", "--version", "9")
    assert result.exit_code == 4 and "no recorded run of tiny v9" in result.stderr


def test_a_status_never_moves_backwards(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        run = ledger.record(kernel="k", backend="local", version=1, notebook_sha256="0" * 64,
                            parameters={}, git_commit=None, git_dirty=None, handle={})
        run = ledger.update(run, RunStatus("running"))
        run = ledger.update(run, RunStatus("complete"))
        run = ledger.update(run, RunStatus("running"))
        run = ledger.update(run, RunStatus("error", failure_kind="kernel died"))
        assert run.state.status == "complete"


WRITER = """
import sys
from kjob.runs.ledger import Ledger
with Ledger(__import__("pathlib").Path(sys.argv[1])) as ledger:
    for i in range(int(sys.argv[3])):
        run = ledger.record(kernel=sys.argv[2], backend="local", version=i + 1, notebook_sha256="0" * 64,
                            parameters={"i": i}, git_commit=None, git_dirty=None, handle={})
        ledger.update(run, __import__("kjob.runs.record").runs.record.RunStatus("complete"))
"""


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"k{n}", "60"]) for n in range(4)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    with Ledger(path) as ledger:
        runs = ledger.runs()
        assert len(runs) == 240 and all(r.state.status == "complete" for r in runs)
        assert ledger._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_polling_a_ten_minute_run_asks_at_most_40_times():
    from kjob.backends.kaggle import KaggleBackend
    from kjob.backends.local import LocalBackend

    for schedule in (LocalBackend.poll, KaggleBackend.poll):
        elapsed, checks = 0.0, 1
        for delay in schedule.delays():
            if elapsed + delay > 600:
                break
            elapsed += delay
            checks += 1
        assert checks <= 40


def test_logs_follow_streams_until_the_run_ends(tiny):
    assert tiny.kjob("push", "tiny", "-p", "sleep=2").exit_code == 0
    result = tiny.kjob("logs", "tiny", "--follow")
    assert result.exit_code == 0
    assert "wrote result.json with 3 values" in result.stdout
    code, data = status_json(tiny, "tiny", 1)
    assert data["status"] == "complete"


def test_fetch_pattern_downloads_only_matching_files(tiny):
    assert tiny.kjob("push", "tiny").exit_code == 0
    wait_for(tiny, "tiny", 1, {"complete"})
    extra = tiny.root / ".kjob/local/tiny/v1/working/sub/model.pt"
    extra.parent.mkdir()
    extra.write_bytes(b"\0" * 1000)
    result = tiny.kjob("fetch", "tiny", "--output", "--pattern", r"\.pt$")
    assert "2 output file(s) listed, 1 downloaded" in result.stdout
    output = tiny.root / "downloads/tiny/local-v1/output"
    assert (output / "sub/model.pt").read_bytes() == b"\0" * 1000
    assert not (output / "result.json").exists()
    listing = json.loads((tiny.root / "downloads/tiny/local-v1/outputs.json").read_text())
    assert {f["name"] for f in listing} == {"result.json", "sub/model.pt"}
    assert tiny.kjob("fetch", "tiny", "--output", "--pattern", "(").exit_code == 2


def test_runs_exports_and_sorts_with_metrics(tiny):
    for label in ("a", "b"):
        assert tiny.kjob("push", "tiny", "-p", f"label={label}", "--wait").exit_code == 0
    with Ledger(tiny.root / ".kjob/ledger.sqlite3") as ledger:
        ledger.set_metrics(ledger.find("tiny", 1), {"best_val_loss": -3.0})
        ledger.set_metrics(ledger.find("tiny", 2), {"best_val_loss": -9.0})
    ordered = tiny.kjob("runs", "--sort-by", "best_val_loss").stdout.splitlines()
    assert "BEST_VAL_LOSS" in ordered[0]
    assert ordered[1].split()[1] == "2" and ordered[2].split()[1] == "1"  # lower loss first
    unknown = tiny.kjob("runs", "--sort-by", "nosuch")
    assert unknown.exit_code == 2 and "no run has a metric 'nosuch'" in unknown.stderr
    rows = tiny.kjob("runs", "--export", "csv").stdout.splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["kernel", "version", "backend"]
    assert {"status", "duration", "param.label", "param.steps", "metric.best_val_loss"} <= set(header)
    assert len(rows) == 3
    exported = json.loads(tiny.kjob("runs", "--export", "json").stdout)
    assert {r["overrides"]["label"] for r in exported} == {"a", "b"}
    assert all(r["status"] == "complete" and r["notebook_sha256"] for r in exported)


def test_a_local_run_does_not_see_the_users_credentials(tiny):
    tiny.write("src/pkg/job.py", '''
        import json
        import os


        def main(steps, rate, label, fail, sleep):
            names = sorted(n for n in os.environ if "KAGGLE" in n or "TOKEN" in n)
            with open("env.json", "w") as f:
                json.dump(names, f)
    ''')
    env = {"KAGGLE_KEY": "x" * 32, "KAGGLE_USERNAME": "alice", "HF_TOKEN": "y" * 20}
    assert tiny.kjob("push", "tiny", "--wait", env=env).exit_code == 0
    seen = json.loads((tiny.root / "downloads/tiny/local-v1/output/env.json").read_text())
    # Kaggle's own variables only; the last two find the run's kaggle_secrets endpoint (issue 21).
    assert seen == ["KAGGLE_INPUT_DIR", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_TEMP_DIR", "KAGGLE_URL_BASE",
                    "KAGGLE_USER_SECRETS_TOKEN", "KAGGLE_WORKING_DIR"]


def test_push_wait_keeps_the_status_and_log_of_a_failed_run(tiny):
    assert tiny.kjob("push", "tiny", "-p", "fail=true", "--wait").exit_code == 1
    folder = tiny.root / "downloads/tiny/local-v1"
    assert json.loads((folder / "status.json").read_text())["failure_location"] == "src/pkg/job.py:11"
    assert "RuntimeError: asked to fail" in (folder / "log.txt").read_text()
