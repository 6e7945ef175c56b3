"""The Ray backend against a real Ray head (one per module, with token authentication).

Not covered yet: a 2-member campaign on the cluster (issue 13), since kjob has no campaigns;
add it here when they exist.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from proc_helpers import processes_with_home

pytest.importorskip("ray.job_submission", reason="ray is not installed (pip install 'kjob[ray]'); CI installs it")

from ray_head import RayHead  # noqa: E402

from kjob.backends.ray import submission_id  # noqa: E402
from kjob.runs.ledger import Ledger  # noqa: E402

GPU_RECIPE = """
title = "Tiny Gpu Kernel"
slug = "tiny-gpu-kernel"
modules = ["pkg/util.py", "pkg/job.py"]
entry = "main"
accelerator = "gpu"
dataset_sources = ["someone/some-data"]

[parameters]
steps = 3
rate = 0.5
label = "gpu"
fail = false
sleep = 0.0
"""


@pytest.fixture(scope="module")
def head():
    head = RayHead(cpus=2).start()
    yield head
    head.close()


def configure(ws, address: str) -> None:
    """`tiny`'s workspace pointed at a cluster, with storage and the dataset on this machine."""
    ws.write("pyproject.toml", (ws.root / "pyproject.toml").read_text() + f"""
[tool.kjob.ray]
address = "{address}"
storage = "storage"
python = "{sys.executable}"

[tool.kjob.ray.datasets]
"someone/some-data" = "{ws.root / 'data/some'}"
""")
    (ws.root / "storage").mkdir()


@pytest.fixture
def ray_ws(tiny, head, monkeypatch):
    configure(tiny, head.address)
    for name, value in head.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield tiny
    # A run is over once its runner writes the final record; its processes (the kernel, the
    # runner, bwrap) end just after, which on a loaded machine can take some seconds.
    deadline = time.monotonic() + 30
    while (leftovers := processes_with_home_under(tiny.root / "storage")) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in leftovers:  # our own runs' processes, should a test fail half-way
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftovers, f"processes left running: {leftovers}"


def processes_with_home_under(storage):
    found = {}
    for home in storage.glob("*/v*/home"):
        found.update(processes_with_home(home))
    return found


def status_json(ws, version, name="tiny"):
    result = ws.kjob("status", name, "--version", str(version), "--backend", "ray", "--json")
    return result.exit_code, json.loads(result.stdout)


def wait_for_state(ws, version, key, seconds=60):
    path = ws.root / f"storage/tiny/v{version}/state.json"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and key in json.loads(path.read_text()):
            return
        time.sleep(0.2)
    raise AssertionError(f"v{version} never recorded {key}")


def job_info(head, job_id):
    answer = requests.get(f"{head.address}/api/jobs/{job_id}", headers={"Authorization": f"Bearer {head.token}"},
                          timeout=10)
    return answer.status_code, answer.json() if answer.status_code == 200 else None


def test_a_run_on_the_cluster_gives_what_a_local_run_gives(ray_ws, head):
    result = ray_ws.kjob("push", "tiny", "--backend", "ray", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "tiny v1 (ray)"
    assert "tiny v1 (ray): complete" in result.stdout
    again = ray_ws.kjob("fetch", "tiny", "--backend", "ray", "--output")
    assert again.exit_code == 0 and "1 unchanged" in again.stdout
    assert ray_ws.kjob("push", "tiny", "--backend", "local", "--wait").exit_code == 0
    downloads = ray_ws.root / "downloads/tiny"
    assert ray_ws.snapshot("downloads/tiny/ray-v1/output") == ray_ws.snapshot("downloads/tiny/local-v1/output")
    status = json.loads((downloads / "ray-v1/status.json").read_text())
    assert (status["status"], status["backend"]) == ("complete", "ray")
    assert status["raw_status"] in ("SUCCEEDED", "RUNNING (runner done)")
    assert status["url"].startswith(f"{head.address}/#/jobs/kjob-tiny-v1-")
    assert "wrote result.json with 3 values" in (downloads / "ray-v1/log.txt").read_text()
    with Ledger(ray_ws.root / ".kjob/ledger.sqlite3") as ledger:
        run = ledger.find("tiny", 1, "ray")
    assert set(run.handle) >= {"address", "submission_id", "token"} and run.handle["address"] == head.address
    code, info = job_info(head, run.handle["submission_id"])
    assert info["metadata"]["kjob_token"] == run.handle["token"]
    assert set(info["runtime_env"]) == {"working_dir"}  # no variables: nothing readable through the API


def test_the_kernel_gets_thread_limits_and_no_credentials(ray_ws):
    ray_ws.write("src/pkg/job.py", '''
        import json
        import os


        def main(steps, rate, label, fail, sleep):
            names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
            secrets = sorted(n for n in os.environ if "TOKEN" in n or "KAGGLE_KEY" in n or n.startswith("RAY_"))
            with open("env.json", "w") as f:
                json.dump({"limits": {n: os.environ.get(n) for n in names}, "secrets": secrets}, f)
    ''')
    result = ray_ws.kjob("push", "tiny", "--backend", "ray", "--wait", env={"KAGGLE_KEY": "x" * 32})
    assert result.exit_code == 0, result.output
    seen = json.loads((ray_ws.root / "downloads/tiny/ray-v1/output/env.json").read_text())
    # The one token is the run's own, for its kaggle_secrets endpoint (issue 21), as on Kaggle.
    assert seen == {"limits": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
                    "secrets": ["KAGGLE_USER_SECRETS_TOKEN"]}


def test_an_error_in_a_cell_names_the_src_line(ray_ws):
    result = ray_ws.kjob("push", "tiny", "--backend", "ray", "-p", "fail=true", "--wait")
    assert result.exit_code == 1, result.output
    code, data = status_json(ray_ws, 1)
    assert code == 1
    assert (data["status"], data["failure_kind"]) == ("error", "user code")
    assert data["raw_status"] in ("FAILED", "RUNNING (runner done)")
    assert data["failure_location"] == "src/pkg/job.py:11"
    assert "RuntimeError: asked to fail" in data["failure_message"]
    assert "[stderr]" in ray_ws.kjob("logs", "tiny", "--backend", "ray").stdout


def test_storage_the_cluster_does_not_share_is_reported(ray_ws):
    pyproject = ray_ws.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('storage = "storage"\n',
                                                       'storage = "storage"\ncluster_storage = "/nonexistent/kjob"\n'))
    assert ray_ws.kjob("push", "tiny", "--backend", "ray", "--wait").exit_code == 1
    code, data = status_json(ray_ws, 1)
    assert (data["status"], data["failure_kind"]) == ("error", "infrastructure")
    assert "/nonexistent/kjob/tiny/v1 is not the folder the client claimed" in data["failure_message"]


def test_cancel_stops_the_kernel_on_the_cluster(ray_ws):
    assert ray_ws.kjob("push", "tiny", "--backend", "ray", "-p", "sleep=120").exit_code == 0
    wait_for_state(ray_ws, 1, "kernel_pid")
    home = ray_ws.root / "storage/tiny/v1/home"
    assert any("ipykernel" in command for command in processes_with_home(home).values())
    result = ray_ws.kjob("cancel", "tiny", "--backend", "ray")
    assert result.exit_code == 0, result.output
    assert "cancelled tiny v1 (ray)" in result.stdout
    code, data = status_json(ray_ws, 1)
    assert (code, data["status"], data["raw_status"]) == (5, "cancelled", "STOPPED")
    deadline = time.monotonic() + 10
    while processes_with_home(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_home(home) == {}  # runner and kernel: gone with the job
    assert "nothing to cancel" in ray_ws.kjob("cancel", "tiny", "--backend", "ray").stdout


def test_a_gpu_recipe_on_a_cpu_only_cluster_is_refused_before_submission(ray_ws, head):
    ray_ws.write("builders/tinygpu.toml", GPU_RECIPE)
    result = ray_ws.kjob("push", "tinygpu", "--backend", "ray")
    assert result.exit_code == 7
    assert result.stderr.count("\n") == 1 and "no node of the Ray cluster" in result.stderr
    assert "1 CPU, 1 GPU" in result.stderr and "0 GPU" in result.stderr
    assert not (ray_ws.root / "storage/tinygpu").exists()
    assert ray_ws.kjob("status", "tinygpu").exit_code == 4  # no ledger row
    answer = requests.get(f"{head.address}/api/jobs/", headers={"Authorization": f"Bearer {head.token}"}, timeout=10)
    assert not [job for job in answer.json() if (job.get("metadata") or {}).get("kjob_kernel") == "tinygpu"]


def test_the_cluster_refuses_a_missing_token(ray_ws, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("HOME", str(ray_ws.root))  # no ~/.ray/auth_token either
    result = ray_ws.kjob("push", "tiny", "--backend", "ray")
    assert result.exit_code == 2 and "RAY_AUTH_MODE=token, but neither RAY_AUTH_TOKEN" in result.stderr
    monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
    result = ray_ws.kjob("push", "tiny", "--backend", "ray")
    assert result.exit_code == 7 and "rejected kjob's credentials" in result.stderr
    assert "0" * 64 not in result.output


def test_an_unreachable_cluster_is_one_line_and_leaves_no_run(tiny):
    from ray_head import free_ports

    address = f"http://127.0.0.1:{free_ports(1)[0]}"
    configure(tiny, address)
    result = tiny.kjob("push", "tiny", "--backend", "ray")
    assert result.exit_code == 7 and result.stderr.count("\n") == 1
    assert f"cannot reach the Ray cluster at {address}" in result.stderr
    assert tiny.kjob("status", "tiny").exit_code == 4 and not list((tiny.root / "storage").iterdir())


def test_the_ray_table_is_checked_key_by_key(tiny, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    pyproject = tiny.root / "pyproject.toml"
    base = pyproject.read_text()
    cases = {
        "[tool.kjob.ray]\nadress = 'x'\n": "[tool.kjob.ray] unknown keys: adress",
        "[tool.kjob.ray]\nstorage = 's'\n": "no Ray cluster to submit to: set RAY_ADDRESS or `address`",
        "[tool.kjob.ray]\naddress = 'http://h:8265'\n": "no storage for Ray runs",
        "[tool.kjob.ray]\naddress = 'h:8265'\nstorage = 's'\n[tool.kjob.ray.resources.gpu]\ngpus = 'one'\n":
            "[tool.kjob.ray.resources.gpu] gpus: expected a number of at least 0, not 'one'",
        "[tool.kjob.ray]\naddress = 'ray://h:10001'\nstorage = 's'\n": "is not the dashboard's",
    }
    for table, said in cases.items():
        pyproject.write_text(base + table)
        result = tiny.kjob("push", "tiny", "--backend", "ray")
        assert result.exit_code == 2 and said in result.stderr, (table, result.stderr)


def test_submission_ids_keep_to_what_ray_accepts():
    token = "ab12" * 8
    for kernel in ("tiny", "a/b c", "x" * 300, "..."):
        job_id = submission_id(kernel, 12, token)
        assert len(job_id) < 200 and all(c.isalnum() or c in "_.-" for c in job_id), job_id
        assert job_id.endswith("-v12-" + token[:12])


def test_without_ray_the_backend_says_how_to_install_it(tiny):
    configure(tiny, "http://127.0.0.1:9")
    script = """
import sys
from click.testing import CliRunner
from kjob.cli import cli
assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
assert CliRunner().invoke(cli, ["push", "tiny", "--backend", "local", "--help"]).exit_code == 0
assert not [m for m in sys.modules if m == "ray" or m.startswith("ray.")], "kjob imported ray"
sys.modules["ray"] = None  # as if it were not installed
result = CliRunner().invoke(cli, ["push", "tiny", "--backend", "ray"])
print(result.exit_code)
print(result.stderr, end="")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tiny.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code, *lines = done.stdout.splitlines()
    assert code == "2" and len(lines) == 1 and "pip install 'kjob[ray]'" in lines[0], done.stdout


def test_a_run_waiting_for_resources_is_cancelled_and_never_starts(ray_ws, head):
    for version in (1, 2):
        assert ray_ws.kjob("push", "tiny", "--backend", "ray", "-p", "sleep=60").exit_code == 0
    for version in (1, 2):
        wait_for_state(ray_ws, version, "started_at")
    # Each run reserves a CPU: a third one waits for the cluster's two.
    assert ray_ws.kjob("push", "tiny", "--backend", "ray").exit_code == 0
    time.sleep(1)
    assert status_json(ray_ws, 3)[1]["raw_status"] == "PENDING"
    cancel = ray_ws.kjob("cancel", "tiny", "--version", "3", "--backend", "ray")
    assert "while it waited for resources" in cancel.stdout, cancel.output
    assert status_json(ray_ws, 3)[1]["status"] == "cancelled"
    assert ray_ws.kjob("cancel", "tiny", "--version", "1", "--backend", "ray").exit_code == 0  # a CPU frees up
    with Ledger(ray_ws.root / ".kjob/ledger.sqlite3") as ledger:
        third = ledger.find("tiny", 3, "ray").handle["submission_id"]
    deadline = time.monotonic() + 20
    while job_info(head, third)[1]["status"] not in ("STOPPED", "SUCCEEDED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_info(head, third)[1]["status"] in ("STOPPED", "SUCCEEDED", "FAILED")
    state = ray_ws.root / "storage/tiny/v3/state.json"
    assert not state.exists() or "started_at" not in json.loads(state.read_text())  # the notebook never ran
    assert ray_ws.kjob("cancel", "tiny", "--version", "2", "--backend", "ray").exit_code == 0


def test_a_restarted_head_loses_its_runs_and_kjob_never_takes_a_new_job_for_them(ray_ws, head):
    assert ray_ws.kjob("push", "tiny", "--backend", "ray", "--wait").exit_code == 0
    for version in (2, 3):
        assert ray_ws.kjob("push", "tiny", "--backend", "ray", "-p", "sleep=30").exit_code == 0
    for version in (2, 3):
        wait_for_state(ray_ws, version, "started_at")
    with Ledger(ray_ws.root / ".kjob/ledger.sqlite3") as ledger:
        third = ledger.find("tiny", 3, "ray").handle["submission_id"]
    head.restart()
    # The new head reuses v3's submission id for a job of its own.
    answer = requests.post(f"{head.address}/api/jobs/", headers={"Authorization": f"Bearer {head.token}"},
                           json={"entrypoint": "true", "submission_id": third, "metadata": {"kjob_token": "other"}},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    code, lost = status_json(ray_ws, 2)
    assert (lost["status"], lost["gone"]) == ("cancelled", True)
    assert "no longer knows job" in lost["failure_message"] and "is lost" in lost["failure_message"]
    code, reused = status_json(ray_ws, 3)
    assert (reused["status"], reused["gone"]) == ("cancelled", True)
    assert "is another job now" in reused["failure_message"]
    fetched = ray_ws.kjob("fetch", "tiny", "--version", "3", "--backend", "ray", "--output")
    assert json.loads((ray_ws.root / "downloads/tiny/ray-v3/status.json").read_text())["gone"] is True, fetched.output
    assert not (ray_ws.root / "downloads/tiny/ray-v3/output").exists()  # nothing of the other job
    # A run that had ended is still on the storage: its outputs can be fetched again.
    (ray_ws.root / "downloads/tiny/ray-v1/output/result.json").unlink()
    again = ray_ws.kjob("fetch", "tiny", "--version", "1", "--backend", "ray", "--output")
    assert again.exit_code == 0 and "1 downloaded" in again.stdout, again.output
    deadline = time.monotonic() + 30  # the runs died with the old head
    while processes_with_home_under(ray_ws.root / "storage") and time.monotonic() < deadline:
        time.sleep(0.5)
