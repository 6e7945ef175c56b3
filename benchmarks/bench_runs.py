"""`kjob status` and `kjob runs` with 1,000 runs in the ledger, both with 100,000, filling a
ledger of 100,000 runs through its own API, and the polling cost of a 10-minute run.

Targets: with 1,000 runs each command below 0.3 s (issue 3); with 100,000 runs `kjob runs`
below 0.5 s and `kjob status` below 0.3 s (issue 24), `kjob runs --sort-by` and `--where`
below 1 s, and every command below 200 MB (issue 18); recording a run takes the same time
at 100,000 runs as at none, so filling is linear (issue 24: the last 10,000 of 100,000 runs
take about as long as the first 10,000); no more than 40 status checks for a run that takes
10 minutes (each backend's own schedule, a fake clock).

The 100,000-run figures are each command's own wall time and peak memory (`wait4`'s rusage
of the child, started from a small launcher), and their ratio to an anchor measured in the same run: a Python child that
reads every row of the same ledger with sqlite3 (`SELECT *`, newest first), so a slower or
busier machine moves both.

    .venv/bin/python benchmarks/bench_runs.py            # everything
    .venv/bin/python benchmarks/bench_runs.py --large    # only the commands at 100,000 runs
    .venv/bin/python benchmarks/bench_runs.py --fill     # only filling 100,000 runs through the API (about a minute)
"""

import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kjob.backends.kaggle import KaggleBackend
from kjob.backends.local import LocalBackend
from kjob.runs.ledger import Ledger
from kjob.paths import WorkspacePaths
from kjob.runs.record import RunStatus

KJOB = Path(sys.executable).with_name("kjob")
KERNELS = ["r3-dpt", "crn", "r4-dpt"]


def fill(ledger: Ledger, count: int, first: int = 0) -> None:
    """`count` runs made through the ledger's API (record, update, set_metrics), their versions
    numbered from `first` + 1."""
    rng = random.Random(first)
    for i in range(first, first + count):
        kernel = rng.choice(KERNELS)
        run = ledger.record(kernel=kernel, backend="kaggle", version=i + 1, notebook_sha256="0" * 64,
                            parameters={"epochs": 60, "lr": 0.001}, overrides={"lr": 0.001},
                            git_commit="f" * 40, git_dirty=False, handle={})
        run = ledger.update(run, RunStatus(rng.choice(["complete", "error", "cancelled"])))
        ledger.set_metrics(run, {"best_val_loss": -rng.uniform(5, 15), "pesq_wb": rng.uniform(1, 3)})


def fill_fast(path: Path, count: int) -> None:
    """`count` runs, quickly: a few through the API (so every column is what kjob writes),
    then copies of those rows with their own kernel, version, status, time and metrics,
    inserted in one transaction (the API commits each write: minutes for 100,000)."""
    with Ledger(path) as ledger:
        fill(ledger, 3)
    rng = random.Random(1)
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    templates = db.execute("SELECT * FROM runs").fetchall()
    columns = [c for c in templates[0].keys() if c != "id"]
    now = time.time()
    rows = []
    for i in range(count - len(templates)):
        row = dict(templates[i % len(templates)])
        version = len(templates) + i + 1
        created = now - (count - i) * 60
        row.update(kernel=KERNELS[i % 3], version=version, token=f"t{version}", created_at=created,
                   started_at=created + 5, finished_at=created + 5 + rng.uniform(60, 3600),
                   status=rng.choice(["complete", "error", "cancelled"]),
                   metrics='{"metadata": {"best_val_loss": %r, "pesq_wb": %r}}'
                           % (-rng.uniform(5, 15), rng.uniform(1, 3)),
                   parameters='{"epochs": 60, "lr": %r}' % rng.choice([0.1, 0.01, 0.001]))
        rows.append([row[c] for c in columns])
    with db:
        db.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
    db.close()


def timed(args: list[str], cwd: Path, repeat: int = 7) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([str(KJOB), *args], cwd=cwd, capture_output=True, text=True)
        samples.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"kjob {' '.join(args)} failed: {done.stderr}")
    return samples


# Started from a small launcher: a child's peak memory counts the memory of the process that
# forked it (Linux carries the parent's high-water mark over the exec), and this benchmark
# holds 100,000 rows.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{time.perf_counter() - started} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def measured(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """(seconds, peak MB, lines printed) of one child process running `command`."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err, result = Path(tmp, "out"), Path(tmp, "err"), Path(tmp, "result")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(result), *command], cwd=cwd, stdout=stdout,
                           stderr=stderr, check=True)
        seconds, kib, code = result.read_text().split()
        if int(code) != 0:
            sys.exit(f"{' '.join(command)} failed: {err.read_text()}")
        return float(seconds), int(kib) / 1024, out.read_bytes().count(b"\n")  # ru_maxrss: KiB on Linux


def best_of(command: list[str], cwd: Path, repeat: int) -> tuple[float, float, int]:
    samples = [measured(command, cwd) for _ in range(repeat)]
    return min(s[0] for s in samples), max(s[1] for s in samples), samples[0][2]


def large(count: int = 100_000, repeat: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "pyproject.toml").write_text('[tool.kjob]\nowner = "bench"\n')
        ledger = WorkspacePaths(ws).ledger
        started = time.perf_counter()
        fill_fast(ledger, count)
        print(f"filled a ledger with {count:,} runs in {time.perf_counter() - started:.1f} s")
        anchor_code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
                       " rows = db.execute('SELECT * FROM runs ORDER BY created_at DESC, id DESC').fetchall();"
                       " print(len(rows))")
        anchor = best_of([sys.executable, "-c", anchor_code, str(ledger)], ws, repeat)
        print(f"anchor (python + sqlite3 reading every row): {anchor[0]:.3f} s, {anchor[1]:.0f} MB")
        for args, target in ((["runs"], 0.5), (["runs", "--sort-by", "pesq_wb"], 1.0),
                             (["runs", "--where", "lr<0.05", "--sort-by", "-lr"], 1.0),
                             (["runs", "--kernel", "crn", "--limit", "20"], 1.0), (["status"], 0.3)):
            seconds, mb, lines = best_of([str(KJOB), *args], ws, repeat)
            ok = "ok" if seconds < target and mb < 200 else "OVER TARGET"
            print(f"kjob {' '.join(args):<40} {count:,} runs: {seconds:.3f} s ({seconds / anchor[0]:.1f}x anchor), "
                  f"{mb:.0f} MB ({mb / anchor[1]:.1f}x anchor), {lines} lines (target < {target} s, < 200 MB: {ok})")


def filling(count: int = 100_000, batch: int = 10_000) -> None:
    """Time each `batch` runs recorded through the ledger's API into one ledger of `count`:
    recording is constant in the number of runs when the last batch takes what the first did."""
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        with Ledger(Path(tmp) / "ledger.sqlite3") as ledger:
            for first in range(0, count, batch):
                started = time.perf_counter()
                fill(ledger, batch, first)
                times.append(time.perf_counter() - started)
                print(f"  runs {first + 1:>7,}-{first + batch:>7,}: {times[-1]:.2f} s "
                      f"({times[-1] / batch * 1e3:.2f} ms a run)", flush=True)
        ratio = times[-1] / times[0]
        print(f"filled {count:,} runs through the ledger's API in {sum(times):.1f} s; the last {batch:,} took "
              f"{ratio:.2f}x the first {batch:,} (target about 1, linear: {'ok' if ratio < 1.5 else 'NOT LINEAR'})")


def polls_for(schedule, seconds: float) -> int:
    """Status checks made while watching a run that ends after `seconds` (fake clock)."""
    clock, checks = 0.0, 0
    delays = schedule.delays(random.Random(1))
    while True:
        checks += 1
        if clock >= seconds:
            return checks
        clock += next(delays)


def small() -> None:
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


def main() -> None:
    if "--fill" in sys.argv:
        return filling()
    if "--large" not in sys.argv:
        small()
        filling()
    large()


if __name__ == "__main__":
    main()
