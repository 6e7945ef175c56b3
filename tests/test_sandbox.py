"""The run sandbox (`kjob.sandbox.folder`, `kjob.sandbox.isolation`): isolation, final statuses, logs, with real processes.

The local backend, smoke runs and the emulator's sessions all run in it. Tests that need the
real /kaggle paths skip, with the reason, where bubblewrap cannot run.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from proc_helpers import processes_with_home
from kjob.sandbox import isolation
from kjob.emulator.sessions import Session
from kjob.procs import wait_gone
from kjob.sandbox.folder import NO_OUTPUTS, RunSpec, Sandbox, record_final

BWRAP_PROBLEM = isolation.bwrap_problem()
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"no bubblewrap here: {BWRAP_PROBLEM}")
SECRETS = {"GITHUB_PAT": "ghp_" + "a" * 36, "DATABASE_URL": "postgres://u:pw@db/x", "KAGGLE_KEY": "k" * 32,
           "KAGGLE_USERNAME": "alice", "AWS_SECRET_ACCESS_KEY": "s" * 40, "AWS_ACCESS_KEY_ID": "AKIA" + "B" * 16,
           "HF_TOKEN": "hf_" + "c" * 30, "SOME_UNRELATED_VARIABLE": "x"}

# A job that reports what the notebook can see, and writes to the literal /kaggle/working.
SPY_JOB = '''
import json
import os


def main(steps, rate, label, fail, sleep):
    report = {{
        "env": dict(os.environ),
        "home": os.path.expanduser("~"),
        "cwd": os.getcwd(),
        "credentials_in_home": os.path.exists(os.path.expanduser("~/.kaggle/kaggle.json")),
        "credentials_of_the_user": os.path.exists({user_credentials!r}),
        "workspace_visible": os.path.exists({workspace_marker!r}),
    }}
    try:
        with open("/kaggle/working/out.txt", "w") as f:
            f.write("written to /kaggle/working\\n")
        report["wrote_kaggle_working"] = True
    except OSError as exc:
        report["wrote_kaggle_working"] = str(exc)
    with open(os.path.join(os.environ["KAGGLE_WORKING_DIR"], "report.json"), "w") as f:
        json.dump(report, f)
'''


def spy(tiny, monkeypatch) -> Path:
    """A fake user HOME with a Kaggle credential file, secrets in the environment, and the spy job."""
    home = tiny.root.parent / f"{tiny.root.name}-home"
    (home / ".kaggle").mkdir(parents=True)
    credentials = home / ".kaggle/kaggle.json"
    credentials.write_text(json.dumps({"username": "alice", "key": "k" * 32}))
    monkeypatch.setenv("HOME", str(home))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    tiny.write("src/pkg/job.py", SPY_JOB.format(user_credentials=str(credentials),
                                               workspace_marker=str(tiny.root / "pyproject.toml")))
    return credentials


def local_run(tiny, version=1) -> Path:
    return tiny.root / f".kjob/local/tiny/v{version}"


def assert_no_secrets(report: dict, run_folder: Path) -> None:
    assert report["credentials_in_home"] is False
    assert not set(SECRETS) & set(report["env"]), sorted(report["env"])
    assert not any(value in report["env"].values() for value in SECRETS.values())
    assert os.path.realpath(report["home"]).startswith(os.path.realpath(run_folder) + os.sep)
    assert report["env"]["KAGGLE_KERNEL_RUN_TYPE"] == "Batch"


@pytest.mark.parametrize("mode", ["auto", "env"])
def test_a_local_run_sees_no_credentials_and_has_its_own_home(tiny, monkeypatch, mode):
    spy(tiny, monkeypatch)
    monkeypatch.setenv("KJOB_SANDBOX", mode)
    result = tiny.kjob("push", "tiny", "--wait")
    assert result.exit_code == 0, result.output
    report = json.loads((local_run(tiny) / "working/report.json").read_text())
    assert_no_secrets(report, local_run(tiny))
    state = json.loads((local_run(tiny) / "state.json").read_text())
    expected = isolation.BUBBLEWRAP if mode == "auto" and BWRAP_PROBLEM is None else isolation.ENVIRONMENT_ONLY
    assert state["isolation"] == expected
    if expected == isolation.ENVIRONMENT_ONLY:  # the stand-ins, through the variables
        assert report["env"]["KAGGLE_WORKING_DIR"] == str((local_run(tiny) / "working").resolve())
        assert report["cwd"] == str((local_run(tiny) / "working").resolve())
    else:  # nothing of the user's or the workspace's files, even by their full path
        assert report["credentials_of_the_user"] is False
        assert report["workspace_visible"] is False


@needs_bwrap
def test_with_bubblewrap_the_literal_kaggle_working_is_the_runs_working_folder(tiny, monkeypatch):
    spy(tiny, monkeypatch)
    monkeypatch.delenv("KJOB_SANDBOX", raising=False)
    host_had_kaggle = os.path.exists("/kaggle")
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    working = local_run(tiny) / "working"
    report = json.loads((working / "report.json").read_text())
    assert report["wrote_kaggle_working"] is True
    assert (working / "out.txt").read_text() == "written to /kaggle/working\n"
    assert (report["cwd"], report["env"]["KAGGLE_WORKING_DIR"]) == ("/kaggle/working", "/kaggle/working")
    assert report["env"]["KAGGLE_INPUT_DIR"] == "/kaggle/input"
    assert os.path.exists("/kaggle") == host_had_kaggle  # the host's / was never touched
    fetched = tiny.kjob("fetch", "tiny", "--output")
    assert fetched.exit_code == 0
    assert (tiny.root / "downloads/tiny/local-v1/output/out.txt").is_file()


@needs_bwrap
def test_kaggle_input_is_read_only_with_both_layouts(tiny, monkeypatch):
    monkeypatch.delenv("KJOB_SANDBOX", raising=False)
    tiny.write("src/pkg/job.py", '''
        import json
        import os


        def main(steps, rate, label, fail, sleep):
            found = {p: open(os.path.join("/kaggle/input", p)).read() for p in
                     ("some-data/hello.txt", "datasets/someone/some-data/hello.txt")}
            refused = []
            for path in ("/kaggle/input/new.txt", "/kaggle/input/some-data/new.txt", "/usr/new.txt"):
                try:
                    open(path, "w").close()
                except OSError:
                    refused.append(path)
            with open("report.json", "w") as f:
                json.dump({"found": found, "refused": refused}, f)
    ''')
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    report = json.loads((local_run(tiny) / "working/report.json").read_text())
    assert report["found"] == {"some-data/hello.txt": "hello\n", "datasets/someone/some-data/hello.txt": "hello\n"}
    assert len(report["refused"]) == 3
    assert sorted(p.name for p in (tiny.root / "data/some").iterdir()) == ["hello.txt"]


@needs_bwrap
def test_a_smoke_run_writes_the_literal_kaggle_working_into_its_folder(tiny, monkeypatch):
    spy(tiny, monkeypatch)
    monkeypatch.delenv("KJOB_SANDBOX", raising=False)
    host_had_kaggle = os.path.exists("/kaggle")
    result = tiny.kjob("build", "tiny", "--smoke")
    assert result.exit_code == 0, result.output
    working = tiny.root / ".kjob/smoke/tiny/working"
    assert (working / "out.txt").read_text() == "written to /kaggle/working\n"
    assert (tiny.root / ".kjob/smoke/tiny/executed.ipynb").is_file()
    report = json.loads((working / "report.json").read_text())
    assert (report["env"]["KAGGLE_KERNEL_RUN_TYPE"], report["env"]["CUDA_VISIBLE_DEVICES"]) == ("Interactive", "")
    assert report["credentials_in_home"] is False and report["credentials_of_the_user"] is False
    assert not set(SECRETS) & set(report["env"])
    assert os.path.exists("/kaggle") == host_had_kaggle


def test_the_fallback_runs_with_the_variables_and_says_so_once_per_process(tiny):
    code = textwrap.dedent("""
        import json, sys
        from kjob.build.plan import build_kernel
        from kjob.sandbox.isolation import choose
        from kjob.workspace import find_workspace
        ws = find_workspace()
        first = build_kernel(ws, "tiny", smoke=True).smoke
        second = build_kernel(ws, "tiny", smoke=True).smoke
        print(json.dumps({"first": [first.isolation, first.warnings, first.outputs],
                          "second": [second.isolation, second.warnings], "again": choose().note}))
    """)
    env = {**os.environ, "KJOB_SANDBOX": "env"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tiny.root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    isolation_name, warnings, outputs = seen["first"]
    assert isolation_name == "environment only" and outputs == ["result.json"]
    assert len(warnings) == 1 and "environment only (KJOB_SANDBOX=env)" in warnings[0]
    assert seen["second"] == ["environment only", []] and seen["again"] is None
    produced = json.loads((tiny.root / ".kjob/smoke/tiny/working/result.json").read_text())
    assert produced["inputs"]["run_type"] == "Interactive"


def test_a_bad_kjob_sandbox_value_is_a_configuration_error(tiny):
    result = tiny.kjob("build", "tiny", "--smoke", env={"KJOB_SANDBOX": "chroot"})
    assert result.exit_code == 2 and "KJOB_SANDBOX must be auto, env or bwrap" in result.stderr


def test_a_run_that_writes_nothing_says_so(tiny):
    tiny.write("src/pkg/job.py", '''
        def main(steps, rate, label, fail, sleep):
            print("nothing to keep")
    ''')
    from kjob.build.plan import build_kernel
    from kjob.workspace import find_workspace

    smoke = build_kernel(find_workspace(), "tiny", smoke=True).smoke
    assert smoke.outputs == [] and NO_OUTPUTS in smoke.warnings
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    assert json.loads((local_run(tiny) / "final.json").read_text())["outputs"] == 0


# -- the sandbox on its own ------------------------------------------------------------------

def notebook(*sources: str) -> str:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
              "source": textwrap.dedent(source)} for i, source in enumerate(sources)]
    return json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}})


def wait_final(sandbox: Sandbox, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = sandbox.state()
        if state.get("status") in ("complete", "error", "cancelled"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"no final status: {sandbox.state()}")


def test_a_half_written_log_line_is_not_read_until_it_is_complete(tmp_path):
    sandbox = Sandbox.create(tmp_path / "run", notebook("1"), {}, RunSpec(timeout=60))
    first = json.dumps({"stream_name": "stdout", "time": 0.1, "data": "one\n"})
    second = json.dumps({"stream_name": "stderr", "time": 0.2, "data": "two\n"})
    sandbox.paths.log.write_text(first + "\n" + "{not json}\n" + second[:10], encoding="utf-8")
    assert [e["data"] for e in sandbox.log_entries()] == ["one\n"]
    with sandbox.paths.log.open("a", encoding="utf-8") as log:
        log.write(second[10:])
    assert [e["data"] for e in sandbox.log_entries()] == ["one\n"]  # complete, but without its newline yet
    with sandbox.paths.log.open("a", encoding="utf-8") as log:
        log.write("\n")
    assert [e["data"] for e in sandbox.log_entries()] == ["one\n", "two\n"]
    # The emulator's sessions read the same way.
    session = Session.create(tmp_path / "session", notebook("1"), {}, 60)
    session.paths.log.write_bytes(sandbox.paths.log.read_bytes() + second[:5].encode())
    assert [e["data"] for e in session.log_entries()] == ["one\n", "two\n"]


def test_a_final_status_is_written_once(tmp_path):
    sandbox = Sandbox.create(tmp_path / "run", notebook("1"), {}, RunSpec(timeout=60))
    assert record_final(sandbox.paths, {"status": "complete", "raw_status": "complete"}) is True
    assert record_final(sandbox.paths, {"status": "cancelled", "raw_status": "cancelled"}) is False
    assert sandbox.state()["status"] == "complete"
    assert sandbox.cancel() is False
    assert not list(sandbox.paths.folder.glob(".final.*"))
    with pytest.raises(ValueError):
        record_final(sandbox.paths, {"status": "running"})


RACER = """
import json, sys, time
from pathlib import Path
from kjob.paths import LocalRunPaths
from kjob.sandbox.folder import record_final
paths, me, go = LocalRunPaths(Path(sys.argv[1])), int(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
status = ("complete", "error", "cancelled")[me % 3]
print(json.dumps([me, status, record_final(paths, {"status": status, "by": me})]))
"""


def test_racing_processes_leave_exactly_one_final_status(tmp_path):
    sandbox = Sandbox.create(tmp_path / "run", notebook("1"), {}, RunSpec(timeout=60))
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(sandbox.paths.folder), str(i), str(go)],
                               stdout=subprocess.PIPE, text=True) for i in range(8)]
    time.sleep(1.0)
    go.touch()
    results = [json.loads(r.communicate(timeout=60)[0]) for r in racers]
    winners = [(me, status) for me, status, won in results if won]
    assert len(winners) == 1
    final = sandbox.final_record()
    assert (final["by"], final["status"]) == winners[0]


def test_a_cancel_racing_the_end_of_a_run_leaves_one_consistent_status(tmp_path):
    for n, delay in enumerate((0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5)):
        sandbox = Sandbox.create(tmp_path / f"run{n}", notebook("print('done')"), {}, RunSpec(timeout=60))
        sandbox.start()
        time.sleep(delay)
        sandbox.cancel(wait=10)
        final = sandbox.final_record()
        assert final is not None and final["status"] in ("complete", "cancelled"), final
        keeper = json.loads(sandbox.paths.runner_pid.read_text())
        assert wait_gone(keeper["pid"], keeper["start"], 10)  # a run that had just ended may still be exiting
        time.sleep(0.2)
        assert sandbox.final_record() == final and sandbox.state()["status"] == final["status"]
        assert not list(sandbox.paths.folder.glob(".final.*"))


def processes_of(sandbox: Sandbox) -> dict[int, str]:
    return processes_with_home(sandbox.paths.home_dir)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_runner_killed_alone_is_recorded_by_its_keeper(tmp_path):
    sandbox = Sandbox.create(tmp_path / "run", notebook("import time; time.sleep(120)"), {}, RunSpec(timeout=300))
    sandbox.start()
    deadline = time.monotonic() + 30
    while "kernel_pid" not in sandbox.state() and time.monotonic() < deadline:
        time.sleep(0.1)
    (runner,) = [pid for pid, command in processes_of(sandbox).items()  # not the keeper, not bwrap
                 if command.split()[1:3] == ["-m", "kjob.sandbox.runner"]]
    os.kill(runner, signal.SIGKILL)
    final = wait_final(sandbox, 20)
    assert (final["status"], final["failure_kind"], final["recorded_by"]) == ("error", "kernel died", "keeper")
    deadline = time.monotonic() + 20
    while processes_of(sandbox) and time.monotonic() < deadline:  # the kernel notices its parent is gone
        time.sleep(0.2)
    for pid in processes_of(sandbox):
        os.kill(pid, signal.SIGKILL)


def test_a_cancel_before_the_start_and_a_held_session(tmp_path):
    sandbox = Sandbox.create(tmp_path / "run", notebook("1"), {}, RunSpec(timeout=60))
    assert sandbox.state()["status"] == "queued"  # never started: queued, however long
    assert sandbox.cancel() is True
    assert sandbox.start() is None and not sandbox.paths.runner_pid.exists()
    assert sandbox.status().status == "cancelled"
    session = Session.create(tmp_path / "held", notebook("1"), {}, 60)
    assert session.kaggle_status() == ("QUEUED", None)
    session.cancel()
    session.start()
    assert session.kaggle_status() == ("CANCEL_ACKNOWLEDGED", None) and session.final


def test_an_emulator_session_runs_in_the_sandbox(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello\n")
    text = notebook("""
        import os
        root = os.environ["KAGGLE_INPUT_DIR"]
        print(open(os.path.join(root, "datasets/someone/some-data/hello.txt")).read().strip())
        _ = open("out.txt", "w").write(os.environ["HOME"])
    """)
    session = Session.create(tmp_path / "emulator/v1", text, {"datasets/someone/some-data": data, "some-data": data}, 60)
    session.start()
    deadline = time.monotonic() + 60
    while not session.final and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session.kaggle_status() == ("COMPLETE", None)
    assert [e["data"] for e in session.log_entries()] == ["hello\n"]
    ((name, path),) = session.outputs()
    assert name == "out.txt" and path.read_text() == str(session.paths.home_dir.resolve())
    assert session.state()["isolation"] in (isolation.BUBBLEWRAP, isolation.ENVIRONMENT_ONLY)


# -- the local backend's submission interface -----------------------------------------------

def test_submit_uses_the_notebook_as_given_from_first_version_and_can_be_found_by_token(tiny):
    from kjob import notebook as nbk
    from kjob.backends.base import Submission
    from kjob.backends.local import LocalBackend
    from kjob.build.plan import plan_build
    from kjob.workspace import find_workspace

    pyproject = tiny.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.kjob.local.parameters]\nlabel = "from-the-workspace"\n')
    ws = find_workspace()
    plan = plan_build(ws, "tiny")
    parameters = {**plan.recipe.parameters, "label": "as-submitted"}
    submission = Submission(recipe=plan.recipe, folder=ws.paths.kernel("tiny").folder,
                            notebook=nbk.parameterize(plan.notebook, {"label": "as-submitted"}),
                            metadata=plan.metadata, session_timeout=60, parameters=parameters,
                            token="t0ken", first_version=4)
    backend = LocalBackend(ws)
    (ws.paths.local_runs("tiny") / "v2").mkdir(parents=True)  # a lower number left over
    submitted = backend.submit(submission)
    assert (submitted.version, submitted.parameters, submitted.state.status) == (4, parameters, "queued")
    again = backend.submit(submission)
    assert again.version == 5
    found = backend.find_submission("tiny", "t0ken")
    assert found is not None and found.version == 5 and found.parameters == parameters
    assert backend.find_submission("tiny", "another") is None
    assert backend.find_submission("nosuch", "t0ken") is None
    for version in (4, 5):
        sandbox = Sandbox(ws.paths.local_run("tiny", version).folder)
        assert wait_final(sandbox)["status"] == "complete"
        result = json.loads((sandbox.paths.working_dir / "result.json").read_text())
        assert result["label"] == "as-submitted"  # never re-parameterised with the workspace's
        assert json.loads(sandbox.paths.spec.read_text())["token"] == "t0ken"


def test_a_bwrap_that_fails_here_falls_back_with_its_reason(tmp_path):
    fake = tmp_path / "bin/bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    code = "from kjob.sandbox.isolation import choose\nfirst, second = choose(), choose()\nprint(first.name); print(first.note); print(second.note)"
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("KJOB_SANDBOX", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    name, note, again = done.stdout.strip().splitlines()
    assert name == "environment only" and again == "None"
    assert "bwrap fails here: bwrap: No permissions to create a new namespace" in note
    forced = subprocess.run([sys.executable, "-c", code], env={**env, "KJOB_SANDBOX": "bwrap"},
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode != 0 and "KJOB_SANDBOX=bwrap, but bubblewrap cannot run here" in forced.stderr
