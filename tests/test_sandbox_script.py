"""Script kernels (`kernel_type: script`) in the run sandbox: `python script.py`, with real processes.

The same layout, isolation, log, cancel and final records as notebooks (tests/test_sandbox.py).
Tests that need the real /kaggle paths skip, with the reason, where bubblewrap cannot run.
"""

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from proc_helpers import processes_with_home
from kjob.sandbox import isolation
from kjob.sandbox.folder import RunSpec, Sandbox
from kjob.sandbox.secrets import KERNEL_MODULES

BWRAP_PROBLEM = isolation.bwrap_problem()
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"no bubblewrap here: {BWRAP_PROBLEM}")
needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
MODES = ["env", pytest.param("bwrap", marks=needs_bwrap)]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    monkeypatch.setenv("KJOB_SANDBOX", request.param)
    return request.param


def script_run(folder: Path, source: str, timeout: float = 60, mounts=None) -> Sandbox:
    return Sandbox.create(folder, textwrap.dedent(source).lstrip("\n"), mounts or {},
                          RunSpec(timeout=timeout, kind="script"))


def run_script(folder: Path, source: str, **options) -> tuple[Sandbox, dict]:
    sandbox = script_run(folder, source, **options)
    return sandbox, sandbox.run(grace=30)


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_script_streams_stdout_and_stderr_and_writes_its_outputs(tmp_path, mode):
    sandbox, state = run_script(tmp_path / "run", """
        import os, sys, time
        print("one")
        time.sleep(0.3)
        print("two", file=sys.stderr)
        time.sleep(0.3)
        print("three")
        with open("out.txt", "w") as f:
            f.write(os.getcwd())
    """)
    assert (state["status"], state["raw_status"], state["exit_code"]) == ("complete", "complete", 0), state
    assert state["isolation"] == (isolation.BUBBLEWRAP if mode == "bwrap" else isolation.ENVIRONMENT_ONLY)
    entries = sandbox.log_entries()
    assert [(e["stream_name"], e["data"]) for e in entries] == [("stdout", "one\n"), ("stderr", "two\n"),
                                                                ("stdout", "three\n")]
    times = [e["time"] for e in entries]
    assert times == sorted(times) and times[2] - times[0] >= 0.5  # logged as printed, not at the end
    ((name, path),) = sandbox.outputs()
    working = "/kaggle/working" if mode == "bwrap" else str(sandbox.paths.working_dir.resolve())
    assert name == "out.txt" and path.read_text() == working
    assert sandbox.paths.script.is_file() and not sandbox.paths.notebook.exists()
    assert not sandbox.paths.executed_notebook.exists()
    assert json.loads(sandbox.paths.spec.read_text())["kind"] == "script"
    assert sandbox.final_record()["outputs"] == 1


@needs_bwrap
def test_under_bubblewrap_a_script_reads_kaggle_input_and_writes_the_literal_kaggle_working(tmp_path, monkeypatch):
    monkeypatch.setenv("KJOB_SANDBOX", "bwrap")
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello\n")
    host_had_kaggle = os.path.exists("/kaggle")
    sandbox, state = run_script(tmp_path / "run", """
        import os
        text = open("/kaggle/input/some-data/hello.txt").read()
        with open("/kaggle/working/copy.txt", "w") as f:
            f.write(text + os.getcwd() + " " + os.environ["KAGGLE_INPUT_DIR"])
    """, mounts={"some-data": data})
    assert state["status"] == "complete", state
    assert (sandbox.paths.working_dir / "copy.txt").read_text() == "hello\n/kaggle/working /kaggle/input"
    assert os.path.exists("/kaggle") == host_had_kaggle  # the host's / was never touched


def test_a_failing_script_names_its_exception_and_line(tmp_path, mode):
    sandbox, state = run_script(tmp_path / "run", """
        def divide(a, b):
            return a / b

        print("before")
        divide(1, 0)
    """)
    assert (state["status"], state["failure_kind"]) == ("error", "user code"), state
    assert state["failure_message"] == "ZeroDivisionError: division by zero"
    assert state["failure_location"] == "script.py:2"  # the innermost frame in the script
    streams = {e["stream_name"] for e in sandbox.log_entries()}
    assert streams == {"stdout", "stderr"}
    assert "Traceback (most recent call last):" in "".join(e["data"] for e in sandbox.log_entries())


def test_a_syntax_error_and_an_exception_from_a_library_are_located_in_the_script(tmp_path):
    _, state = run_script(tmp_path / "syntax", "x = 1\ny = (\n")
    assert state["failure_message"].startswith("SyntaxError: ") and state["failure_location"] == "script.py:2"
    _, state = run_script(tmp_path / "library", "import json\n\njson.loads('{')\n")
    assert state["failure_message"].startswith("json.decoder.JSONDecodeError: Expecting property name")
    assert state["failure_location"] == "script.py:3"


def test_a_non_zero_exit_without_a_traceback(tmp_path):
    _, state = run_script(tmp_path / "run", "import sys\nprint('bye', file=sys.stderr)\nsys.exit(3)\n")
    assert (state["status"], state["failure_kind"], state["exit_code"]) == ("error", "user code", 3), state
    assert state["failure_message"] == "the script exited with code 3" and state["failure_location"] is None


def test_a_script_killed_by_a_signal_is_a_dead_kernel(tmp_path):
    _, state = run_script(tmp_path / "run", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert (state["status"], state["failure_kind"]) == ("error", "kernel died"), state
    assert "SIGKILL" in state["failure_message"]


def test_a_script_past_its_time_limit_is_stopped(tmp_path, mode):
    sandbox, state = run_script(tmp_path / "run", """
        import time
        print("started")
        time.sleep(120)
    """, timeout=2)
    assert (state["status"], state["failure_kind"]) == ("error", "timeout"), state
    assert state["failure_message"] == "time limit of 2 s exceeded" and state["seconds"] < 15
    assert [e["data"] for e in sandbox.log_entries()] == ["started\n"]
    assert not processes_with_home(sandbox.paths.home_dir)


@needs_proc
def test_a_cancelled_script_leaves_no_process_behind(tmp_path, mode):
    sandbox = script_run(tmp_path / "run", """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # it must be killed, then
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print("running")
        time.sleep(300)
    """, timeout=600)
    sandbox.start()
    wait_for(lambda: [e["data"] for e in sandbox.log_entries()] == ["running\n"])
    assert len(processes_with_home(sandbox.paths.home_dir)) >= 4  # keeper, runner, script, its child
    assert sandbox.cancel(wait=15) is True
    final = sandbox.final_record()
    assert (final["status"], final["raw_status"]) == ("cancelled", "cancelled"), final
    wait_for(lambda: not processes_with_home(sandbox.paths.home_dir), 10)
    assert sandbox.state()["status"] == "cancelled"


def test_a_script_cancelled_before_it_starts_never_runs(tmp_path):
    sandbox = script_run(tmp_path / "run", "open('ran.txt', 'w').close()\n")
    assert sandbox.cancel() is True
    assert sandbox.start() is None and sandbox.status().status == "cancelled"
    assert sandbox.outputs() == []


def test_a_script_sees_no_secrets_of_the_parent_environment(tmp_path, monkeypatch, mode):
    secrets = {"KAGGLE_KEY": "k" * 32, "GITHUB_PAT": "ghp_" + "a" * 36, "AWS_SECRET_ACCESS_KEY": "s" * 40}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    sandbox, state = run_script(tmp_path / "run", """
        import json, os
        json.dump(dict(os.environ), open(os.path.join(os.environ["KAGGLE_WORKING_DIR"], "env.json"), "w"))
    """)
    assert state["status"] == "complete", state
    seen = json.loads((sandbox.paths.working_dir / "env.json").read_text())
    assert not set(secrets) & set(seen) and not set(secrets.values()) & set(seen.values())
    assert seen["HOME"] == str(sandbox.paths.home_dir.resolve()) and seen["PYTHONUNBUFFERED"] == "1"
    # Not the parent's PYTHONPATH: only the folder of kjob's kaggle_secrets (kjob.sandbox.secrets).
    assert seen["KAGGLE_KERNEL_RUN_TYPE"] == "Batch" and seen["PYTHONPATH"] == str(KERNEL_MODULES)
