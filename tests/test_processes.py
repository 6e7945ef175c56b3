"""A run's processes end with it, whatever the run did to leave, and whoever stops kjob.

Real processes through the real `kjob` command: a notebook that detaches children (a setsid
one, a double-forked one), a cancel, the end of a run, SIGTERM to a smoke run, and a Ray
head that goes away for good.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proc_helpers import processes_with_home
from kjob.sandbox import isolation

BWRAP_PROBLEM = isolation.bwrap_problem()
needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
MODES = ["env", pytest.param("auto", marks=pytest.mark.skipif(BWRAP_PROBLEM is not None,
                                                               reason=f"no bubblewrap here: {BWRAP_PROBLEM}"))]
KJOB = Path(sys.executable).with_name("kjob")

# Two children that leave the kernel's process group and session: nothing a group kill reaches.
DETACHING_JOB = '''
import os
import subprocess
import time


def main(steps, rate, label, fail, sleep):
    subprocess.Popen(["sleep", "300"], start_new_session=True)  # setsid
    child = os.fork()
    if child == 0:  # a double fork: the grandchild's parent exits, it is an orphan at once
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "300"])
        os._exit(0)
    os.waitpid(child, 0)
    print("detached", flush=True)
    time.sleep(sleep)
'''


def wait_for(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def sleepers(home: Path) -> dict[int, str]:
    return {pid: command for pid, command in processes_with_home(home).items() if command.startswith("sleep 300")}


def assert_none_left(home: Path) -> None:
    """Nothing of the run within 15 s; anything left is killed, then reported."""
    wait_for(lambda: not processes_with_home(home), 15)
    left = processes_with_home(home)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"left running: {left}"


@pytest.fixture(params=MODES)
def detaching(tiny, monkeypatch, request):
    monkeypatch.setenv("KJOB_SANDBOX", request.param)
    tiny.write("src/pkg/job.py", DETACHING_JOB)
    return tiny


@needs_proc
def test_a_cancel_ends_the_processes_a_notebook_detached(detaching):
    result = detaching.kjob("push", "tiny", "-p", "sleep=120")
    assert result.exit_code == 0, result.output
    run = detaching.root / ".kjob/local/tiny/v1"
    log = run / "log.jsonl"
    assert wait_for(lambda: log.is_file() and "detached" in log.read_text(), 60), (run / "runner.log").read_text()
    assert len(sleepers(run / "home")) == 2
    cancelled = detaching.kjob("cancel", "tiny")
    assert cancelled.exit_code == 0 and "cancelled tiny v1" in cancelled.stdout, cancelled.output
    assert_none_left(run / "home")
    assert json.loads((run / "final.json").read_text())["status"] == "cancelled"


@needs_proc
def test_a_run_that_ends_leaves_no_detached_process(detaching):
    result = detaching.kjob("push", "tiny", "--wait")
    assert result.exit_code == 0, result.output
    run = detaching.root / ".kjob/local/tiny/v1"
    assert json.loads((run / "final.json").read_text())["status"] == "complete"
    assert_none_left(run / "home")


def test_the_fallback_chosen_by_kjob_sandbox_env_says_so(tiny, monkeypatch):
    monkeypatch.setenv("KJOB_SANDBOX", "env")
    result = tiny.kjob("push", "tiny", "--wait")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: runs are isolated")]
    assert len(notes) == 1 and "environment only (KJOB_SANDBOX=env)" in notes[0], result.stderr
    assert "bubblewrap is not available" not in result.stderr and "not installed" not in result.stderr
    if sys.platform.startswith("linux"):
        assert "may outlive the run" not in notes[0]  # the keeper adopts them


@needs_proc
@pytest.mark.parametrize("sig, code, said", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_to_a_smoke_run_stops_its_sandbox(tiny, sig, code, said):
    tiny.write("src/pkg/job.py", DETACHING_JOB)
    recipe = tiny.root / "builders/tiny.toml"
    recipe.write_text(recipe.read_text().replace("[smoke.parameters]\nsteps = 1\n",
                                                 "[smoke.parameters]\nsteps = 1\nsleep = 120.0\n"))
    recipe.write_text(recipe.read_text().replace("[smoke]\ntimeout = 60\n", "[smoke]\ntimeout = 300\n"))
    smoke = tiny.root / ".kjob/smoke/tiny"
    env = {**os.environ, "KJOB_SANDBOX": "env"}
    process = subprocess.Popen([str(KJOB), "build", "tiny", "--smoke"], cwd=tiny.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = smoke / "log.jsonl"
        assert wait_for(lambda: log.is_file() and "detached" in log.read_text(), 90), process.stderr
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == said, err
    assert json.loads((smoke / "final.json").read_text())["status"] == "cancelled"
    assert_none_left(smoke / "home")


def test_a_run_on_a_ray_head_that_went_away_becomes_lost_after_the_documented_time(tiny, monkeypatch):
    pytest.importorskip("ray.job_submission", reason="ray is not installed (pip install 'kjob[ray]')")
    from ray_head import RayHead

    tiny.write("pyproject.toml", (tiny.root / "pyproject.toml").read_text() + f"""
[tool.kjob.ray]
address = "{{address}}"
storage = "storage"
python = "{sys.executable}"

[tool.kjob.ray.datasets]
"someone/some-data" = "{tiny.root / 'data/some'}"
""")
    (tiny.root / "storage").mkdir()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("KJOB_RAY_LOST_AFTER", raising=False)
    head = RayHead(cpus=2)
    pyproject = tiny.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("{address}", head.address))
    for name, value in head.env.items():
        monkeypatch.setenv(name, value)
    state = tiny.root / "storage/tiny/v1/state.json"
    try:
        head.start()
        assert tiny.kjob("push", "tiny", "--backend", "ray", "-p", "sleep=120").exit_code == 0
        assert wait_for(lambda: state.is_file() and "started_at" in json.loads(state.read_text()), 120)
        assert tiny.kjob("status", "tiny", "--backend", "ray").exit_code == 6  # running
        # v2 ends before the head goes, but kjob has not seen it end yet
        assert tiny.kjob("push", "tiny", "--backend", "ray").exit_code == 0
        assert wait_for(lambda: (tiny.root / "storage/tiny/v2/final.json").is_file(), 120)
    finally:
        head.close()  # gone for good: nothing answers at its address any more

    first = tiny.kjob("status", "tiny", "--version", "1", "--backend", "ray")
    assert first.exit_code == 7 and f"cannot reach the Ray cluster at {head.address}" in first.stderr, first.output
    assert "tiny v1 (ray) is lost if its head stays silent for 10 min" in first.stderr  # the default
    time.sleep(2.5)
    still = tiny.kjob("status", "tiny", "--version", "1", "--backend", "ray", env={"KJOB_RAY_LOST_AFTER": "30"})
    assert still.exit_code == 7 and "silent for 30 s" in still.stderr, still.output
    lost = tiny.kjob("status", "tiny", "--version", "1", "--backend", "ray", "--json",
                     env={"KJOB_RAY_LOST_AFTER": "2"})
    data = json.loads(lost.stdout)
    assert (lost.exit_code, data["status"], data["gone"]) == (4, "cancelled", True), lost.output
    assert f"the Ray cluster at {head.address} has not answered for" in data["failure_message"]
    assert "tiny v1 (ray) is lost" in data["failure_message"]
    again = tiny.kjob("status", "tiny", "--version", "1", "--backend", "ray")  # final now: not asked again
    assert again.exit_code == 4 and again.stderr == "", again.output
    ended = tiny.kjob("status", "tiny", "--version", "2", "--backend", "ray", "--json", env={"KJOB_RAY_LOST_AFTER": "2"})
    data = json.loads(ended.stdout)
    assert (ended.exit_code, data["status"], data["raw_status"]) == (0, "complete", "complete (head silent)"), ended.output
    assert not data.get("gone")
    home = tiny.root / "storage/tiny/v1/home"
    wait_for(lambda: not processes_with_home(home), 30)  # the run died with its head
    for pid in processes_with_home(home):
        os.kill(pid, signal.SIGKILL)


@needs_proc
@pytest.mark.parametrize("mode", MODES)
def test_a_script_run_ends_what_it_detached(tmp_path, monkeypatch, mode):
    from kjob.sandbox.folder import RunSpec, Sandbox

    monkeypatch.setenv("KJOB_SANDBOX", mode)
    script = DETACHING_JOB + "\nmain(1, 0.5, 'x', False, 0.0)\n"
    sandbox = Sandbox.create(tmp_path / "run", script, {}, RunSpec(timeout=120, kind="script"))
    state = sandbox.run(grace=30)
    assert state["status"] == "complete", state
    assert [e["data"] for e in sandbox.log_entries()] == ["detached\n"]
    assert_none_left(sandbox.paths.home_dir)
