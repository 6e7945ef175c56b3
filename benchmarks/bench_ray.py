"""The Ray backend against a real head on this machine: what a run costs over a local run.

Prints the head's start-up (the test fixture's, `tests/ray_head.py`: `ray start --head` until
it lists its node alive) and stop; per-run overhead against the local backend on the same
trivial notebook, both as the time from push to a final status (the library, status polled
every 50 ms) and as a whole `kjob push --wait` command; and the peak memory of a
`kjob fetch --output` process reading a large output from the shared storage (local fetch
of the same file for reference). Target: at most +1 s per run.

    .venv/bin/python benchmarks/bench_ray.py [--repeat 5] [--size-mib 512]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ray_head import RayHead  # noqa: E402

KJOB = Path(sys.executable).with_name("kjob")
RECIPE = """title = "Bench Ray"
slug = "bench-ray"
modules = ["bench/job.py"]
entry = "main"
accelerator = "none"

[parameters]
size_mib = 0
"""
JOB = '''"""Writes one small output, and a large (sparse) one when asked."""


def main(size_mib):
    with open("small.txt", "w") as f:
        f.write("ok\\n")
    if size_mib:
        with open("big.bin", "wb") as f:
            f.truncate(size_mib << 20)
'''


def workspace(root: Path, address: str) -> None:
    (root / "pyproject.toml").write_text(f'[tool.kjob]\nowner = "bench"\n\n[tool.kjob.ray]\naddress = "{address}"\n'
                                         f'storage = "storage"\npython = "{sys.executable}"\n')
    for folder in ("builders", "src/bench", "storage"):
        (root / folder).mkdir(parents=True)
    (root / "builders/bench.toml").write_text(RECIPE)
    (root / "src/bench/__init__.py").write_text("")
    (root / "src/bench/job.py").write_text(JOB)


def to_final(ws, backend_name: str, overrides=None) -> tuple[float, object]:
    """Seconds from push to a final status, polled every 50 ms, in this process."""
    from kjob.backends import get_backend
    from kjob.runs.ledger import Ledger
    from kjob.lifecycle.push import push_kernel
    from kjob.lifecycle.watch import refresh

    began = time.perf_counter()
    run = push_kernel(ws, "bench", backend_name, overrides).run
    with Ledger(ws.paths.ledger) as ledger:
        backend = get_backend(ws, backend_name)
        while not run.state.final:
            time.sleep(0.05)
            run = refresh(ledger, backend, run)
    if run.state.status != "complete":
        sys.exit(f"{run.ref} ended {run.state.status}: {run.state.describe_failure()}")
    return time.perf_counter() - began, run


def empty_job(head) -> float:
    """Seconds from submitting `true` to Ray saying it succeeded, polled every 20 ms."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.address, headers={"Authorization": f"Bearer {head.token}"})
    began = time.perf_counter()
    job = client.submit_job(entrypoint="true", entrypoint_num_cpus=1)
    while (status := client.get_job_status(job)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(0.02)
    if status != "SUCCEEDED":
        sys.exit(f"an empty Ray job ended {status}")
    return time.perf_counter() - began


def command(args: list[str], cwd: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one kjob process."""
    began = time.perf_counter()
    process = subprocess.Popen([str(KJOB), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"kjob {' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=512)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kjob-bench-ray-"))
    head = RayHead(cpus=2)
    try:
        head.start()
        print(f"head start-up: {head.started_in:.2f} s (ray start --head until its node is alive)")
        os.environ.update(head.env)
        os.environ.pop("RAY_ADDRESS", None)
        workspace(root, head.address)
        from kjob.workspace import find_workspace

        ws = find_workspace(root)
        first_local, _ = to_final(ws, "local")
        first_ray, _ = to_final(ws, "ray")  # pays for importing Ray's SDK and connecting
        times = {"local": [], "ray": []}
        for turn in range(options.repeat):
            for name in (("local", "ray") if turn % 2 == 0 else ("ray", "local")):
                times[name].append(to_final(ws, name)[0])
        local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
        empty = statistics.median(empty_job(head) for _ in range(options.repeat))
        print(f"push to final status, median of {options.repeat}: local {local:.2f} s, ray {ray:.2f} s, "
              f"overhead {ray - local:+.2f} s (target <= +1 s: {'ok' if ray - local <= 1 else 'OVER TARGET'}); "
              f"first runs: local {first_local:.2f} s, ray {first_ray:.2f} s (imports, connection)")
        print(f"for scale: Ray's own start and end of an empty job (`true`, 1 CPU): {empty:.2f} s")
        walls = {name: [command(["push", "bench", "--backend", name, "--wait"], root)[0] for _ in range(3)]
                 for name in ("local", "ray")}
        print(f"kjob push --wait (whole command, median of 3): local {statistics.median(walls['local']):.2f} s, "
              f"ray {statistics.median(walls['ray']):.2f} s (each backend's own polling schedule)")
        size = {"size_mib": options.size_mib}
        for name in ("ray", "local"):
            _, run = to_final(ws, name, size)
            elapsed, peak = command(["fetch", "bench", "--backend", name, "--version", str(run.version), "--output"], root)
            label = f"downloads/bench/{name}-v{run.version}/output/big.bin"
            if (root / label).stat().st_size != options.size_mib << 20:
                sys.exit(f"{label} has the wrong size")
            print(f"kjob fetch --output of {options.size_mib} MiB ({name}): peak RSS {peak / 1e6:.0f} MB, "
                  f"{options.size_mib / elapsed:.0f} MiB/s (whole command)")
            (root / label).unlink()
        stopping = time.perf_counter()
        head.stop()
        print(f"head stop (SIGTERM to its PID): {time.perf_counter() - stopping:.2f} s")
    finally:
        head.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
