"""`kjob status` and `kjob runs` with 1,000 runs in the ledger, and the polling cost of a
10-minute run.

Targets (issue 3): each command below 0.3 s; no more than 40 status checks for a run that
takes 10 minutes. The polling count uses each backend's own schedule and a fake clock.

    .venv/bin/python benchmarks/bench_runs.py
"""

import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kjob.backends.kaggle import KaggleBackend
from kjob.backends.local import LocalBackend
from kjob.ledger import Ledger
from kjob.paths import WorkspacePaths
from kjob.runs import RunStatus

KJOB = Path(sys.executable).with_name("kjob")


def fill(ledger: Ledger, count: int) -> None:
    rng = random.Random(0)
    for i in range(count):
        kernel = rng.choice(["r3-dpt", "crn", "r4-dpt"])
        run = ledger.record(kernel=kernel, backend="kaggle", version=i + 1, notebook_sha256="0" * 64,
                            parameters={"epochs": 60, "lr": 0.001}, overrides={"lr": 0.001},
                            git_commit="f" * 40, git_dirty=False, handle={})
        run = ledger.update(run, RunStatus(rng.choice(["complete", "error", "cancelled"])))
        ledger.set_metrics(run, {"best_val_loss": -rng.uniform(5, 15), "pesq_wb": rng.uniform(1, 3)})


def timed(args: list[str], cwd: Path, repeat: int = 7) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([str(KJOB), *args], cwd=cwd, capture_output=True, text=True)
        samples.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"kjob {' '.join(args)} failed: {done.stderr}")
    return samples


def polls_for(schedule, seconds: float) -> int:
    """Status checks made while watching a run that ends after `seconds` (fake clock)."""
    clock, checks = 0.0, 0
    delays = schedule.delays(random.Random(1))
    while True:
        checks += 1
        if clock >= seconds:
            return checks
        clock += next(delays)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "pyproject.toml").write_text('[tool.kjob]\nowner = "bench"\n')
        with Ledger(WorkspacePaths(ws).ledger) as ledger:
            fill(ledger, 1000)
        for args in (["status"], ["runs"], ["runs", "--sort-by", "pesq_wb"], ["runs", "--export", "csv"]):
            samples = timed(args, ws)
            median = statistics.median(samples)
            print(f"kjob {' '.join(args):<24} with 1,000 runs: median {median:.3f} s, min {min(samples):.3f} s "
                  f"(target < 0.3 s: {'ok' if median < 0.3 else 'OVER TARGET'})")
    for name, schedule in (("local", LocalBackend.poll), ("kaggle", KaggleBackend.poll)):
        checks = polls_for(schedule, 600)
        print(f"{name} backend: {checks} status checks for a 10-minute run (target <= 40: {'ok' if checks <= 40 else 'OVER'})")


if __name__ == "__main__":
    main()
