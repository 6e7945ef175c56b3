"""The edges of the `kjob` command: click's usage errors, a stdout closed early, a storage kjob may not write."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KJOB = Path(sys.executable).with_name("kjob")


@pytest.mark.parametrize("args, said", [
    (["push"], "Missing argument 'NAME'"),
    (["runs", "--sort-by"], "Option '--sort-by' requires an argument"),
    (["status", "--bogus"], "--bogus"),
    (["--bogus"], "--bogus"),
    (["pushh", "tiny"], "No such command 'pushh'"),
    (["push", "tiny", "--backend", "nowhere"], "Invalid value for '--backend'"),
    (["dataset", "push"], "Missing argument 'FOLDER'"),
])
def test_a_usage_error_is_one_error_line_with_exit_2(tiny, args, said):
    result = tiny.kjob(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and said in result.stderr, result.stderr
    assert "Usage:" not in result.stderr and "Try '" not in result.stderr


def test_help_is_unchanged(tiny):
    result = tiny.kjob("push", "--help")
    assert result.exit_code == 0 and result.stdout.startswith("Usage: ") and " push [OPTIONS] NAME\n" in result.stdout
    assert "Example: kjob push" in result.stdout
    whole = tiny.kjob("--help")
    assert whole.exit_code == 0 and "Exit codes:" in whole.stdout and "error:" not in whole.output
    bare = tiny.kjob()  # no command: the help, as click shows it
    assert "[OPTIONS] COMMAND [ARGS]" in bare.output and "error:" not in bare.output


def run_into_closed_pipe(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`kjob ARGS | head -0`, made certain: stdout is a pipe whose reader has already gone."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run([str(KJOB), *args], cwd=cwd, stdout=writer, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(writer)


@pytest.mark.skipif(os.name == "nt", reason="POSIX pipes")
def test_a_stdout_closed_by_its_reader_ends_quietly_with_exit_0(tiny):
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    for args in (["status"], ["status", "tiny"], ["builders"], ["--help"], ["runs"]):
        done = run_into_closed_pipe(tiny.root, *args)
        assert (done.returncode, done.stderr) == (0, ""), (args, done.returncode, done.stderr)


@pytest.mark.skipif(os.name == "nt", reason="POSIX pipes")
def test_a_pipe_to_head_ends_quietly(tiny):
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    done = subprocess.run(f"set -o pipefail; {KJOB} status tiny --json | head -c 1", shell=True, executable="/bin/bash",
                          cwd=tiny.root, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "{", ""), done


@pytest.mark.skipif(shutil.which("bwrap") is None or not sys.platform.startswith("linux"),
                    reason="makes the storage read-only with a bubblewrap bind mount")
def test_a_ray_push_to_read_only_storage_is_one_line_and_leaves_no_run(tiny, monkeypatch):
    pytest.importorskip("ray.job_submission", reason="ray is not installed (pip install 'kjob[ray]')")
    from ray_head import RayHead

    storage = tiny.root / "storage"
    storage.mkdir()
    head = RayHead(cpus=1)
    tiny.write("pyproject.toml", (tiny.root / "pyproject.toml").read_text() + f"""
[tool.kjob.ray]
address = "{head.address}"
storage = "storage"
python = "{sys.executable}"

[tool.kjob.ray.datasets]
"someone/some-data" = "{tiny.root / 'data/some'}"
""")
    env = {**os.environ, **head.env}
    env.pop("RAY_ADDRESS", None)
    read_only = ["bwrap", "--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--ro-bind", str(storage), str(storage), "--"]
    try:
        head.start()
        done = subprocess.run([*read_only, str(KJOB), "push", "tiny", "--backend", "ray"], cwd=tiny.root, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        head.close()
    assert done.returncode == 8, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "is not writable" in done.stderr, done.stderr
    assert not list(storage.iterdir())
    status = tiny.kjob("status", "tiny")
    assert status.exit_code == 4, status.output  # no ledger row at all, "interrupted" or otherwise
