"""`kjob board` with 1,000 and 10,000 runs: the time to write it, its size, and the time the
page takes to open (and to sort and filter) in a real headless Chromium.

Targets (issue 24): at 10,000 runs `kjob board` in at most 10 s and a board under 20 MB; with
1,000 runs the page opens in about a second, and it stays usable at 10,000 (the table is paged).

The ledger is filled through kjob's own API (kjob.runs.ledger.Ledger: record, update, set_metrics,
set_note): each run has 4 parameters and 5 metrics, every tenth a message and tags, every
fiftieth a note; one run in a hundred has fetched files with a 200-step metrics.jsonl (its
curves go into runs/<id>.js), every tenth was given the latest such run's outputs (lineage:
two files' SHA-256 each), and a campaign of 24 members.

    .venv/bin/python benchmarks/bench_board.py              # 1,000 and 10,000 runs
    .venv/bin/python benchmarks/bench_board.py 1000         # one size
"""

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kjob.runs.ledger import Ledger  # noqa: E402
from kjob.paths import WorkspacePaths  # noqa: E402
from kjob.runs.record import RunNotes, RunStatus  # noqa: E402

KJOB = Path(sys.executable).with_name("kjob")
KERNELS = ["r3-dpt", "crn", "snd"]


def fill(root: Path, count: int) -> float:
    """`count` runs through the ledger's API; the seconds it took."""
    rng = random.Random(0)
    paths = WorkspacePaths(root)
    started = time.perf_counter()
    source = None  # the latest run with files: every tenth run is given its outputs
    with Ledger(paths.ledger) as ledger:
        for i in range(count):
            kernel = KERNELS[i % 3]
            lr, width = rng.choice([0.1, 0.01, 0.003, 0.001]), rng.choice([8, 16, 32, 64])
            campaign = "lr-grid" if i < 24 else None
            notes = RunNotes(f"try {i}: lr {lr}", ("sweep", f"batch{i % 7}")) if i % 10 == 0 else None
            run = ledger.begin(kernel=kernel, backend="local", notebook_sha256=f"{i:064x}",
                               parameters={"lr": lr, "width": width, "epochs": 30, "model": kernel},
                               overrides={"lr": lr, "width": width}, git_commit="f" * 40, git_dirty=False,
                               token=f"t{i}", notes=notes, campaign=campaign, stage="main" if campaign else None,
                               signature=f"s{i}" if campaign else None,
                               inputs=(_input(source),) if source is not None and i % 10 == 5 else ())
            version = ledger.next_version(kernel, "local")
            from types import SimpleNamespace

            run = ledger.complete_submission(run, SimpleNamespace(version=version, identity=None, handle={},
                                                                  parameters=run.parameters,
                                                                  state=RunStatus("running")))
            status = rng.choice(["complete"] * 8 + ["error", "cancelled"])
            run = ledger.update(run, RunStatus(status, failure_kind="user code" if status == "error" else None,
                                               failure_message="boom" if status == "error" else None))
            quality = 0.9 - abs(lr - 0.01) - 0.5 / width + rng.uniform(-0.03, 0.03)
            ledger.set_metrics(run, {"val_acc": round(quality, 4), "val_loss": round(1.2 - quality, 4),
                                     "pesq_wb": rng.uniform(1, 3), "stoi": rng.uniform(0.7, 0.95),
                                     "t20.mae": rng.uniform(0, 1)})
            if i % 50 == 0:
                ledger.set_note(run, f"note on run {i}: <b>not bold</b>")
            if i % 100 == 0:
                _fetched(paths, ledger, run, quality, rng)
                source = run
    return time.perf_counter() - started


def _input(run) -> dict:
    return {"kernel": run.kernel, "backend": run.backend, "version": run.version, "incarnation": run.incarnation,
            "identity": None, "mounts": [f"{run.kernel}-v{run.version}"],
            "files": {"metrics.jsonl": f"{run.id:064x}", "best.pt": f"{run.id + 1:064x}"}}


def _fetched(paths: WorkspacePaths, ledger: Ledger, run, quality: float, rng) -> None:
    folder = paths.download(run.kernel, run.backend, run.version, run.incarnation)
    folder.output_dir.mkdir(parents=True)
    with open(folder.output_file("metrics.jsonl"), "w") as f:
        for step in range(1, 201):
            acc = quality * (1 - 2.718 ** (-step / 40)) + rng.uniform(-0.01, 0.01)
            f.write(json.dumps({"step": step, "epoch": step // 10, "val_acc": acc, "train_loss": 1.3 - acc}) + "\n")
    folder.log.write_text("".join(f"step {s}\n" for s in range(1, 201)))
    ledger.mark_fetched(run)


def board_seconds(root: Path, repeat: int = 3) -> tuple[list[float], int]:
    env = {**os.environ, "KJOB_WORKSPACE": str(root)}
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([str(KJOB), "board"], cwd=root, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    folder = WorkspacePaths(root).board.folder
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return samples, size


def page_seconds(root: Path) -> dict:
    """Seconds from navigation to the table drawn, then to a sort by a metric and a filter."""
    from cdp_pipe import CHROMIUM, Browser

    if not CHROMIUM.exists():
        return {}
    index = WorkspacePaths(root).board.index.as_uri()
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(Path(profile))
        try:
            figures = {}
            for attempt in range(2):  # the second: files in the page cache, as a person reopening it
                browser.open("about:blank", ready="true")
                started = time.perf_counter()
                browser.open(index + "#view=runs", ready="!!document.querySelector('#runs tbody tr')")
                figures["open" if attempt else "open_cold"] = time.perf_counter() - started
            started = time.perf_counter()
            browser.js("location.hash = '#view=runs&sort=val_acc'")
            browser.wait("!!document.querySelector('th.sorted-desc')")
            figures["sort"] = time.perf_counter() - started
            started = time.perf_counter()
            browser.js("location.hash = '#view=runs&sort=val_acc&where=lr%3C0.005%3B%20tags%3Dsweep'")
            browser.wait("document.querySelector('#count') && document.querySelector('#count').dataset.shown !== "
                         "document.querySelector('#count').dataset.total")
            figures["filter"] = time.perf_counter() - started
            figures["shown"] = browser.js("document.querySelector('#count').textContent")
            started = time.perf_counter()
            browser.js("location.hash = '#view=curves'")
            browser.wait("document.querySelectorAll('#curves path.series').length > 0", timeout=60)
            figures["curves"] = time.perf_counter() - started
            return figures
        finally:
            browser.close()


def main(sizes: list[int]) -> None:
    for count in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.kjob]\nowner = "alice"\n')
            filled = fill(root, count)
            samples, size = board_seconds(root)
            page = page_seconds(root)
            print(f"{count:>6} runs: ledger filled in {filled:.1f} s; kjob board median {statistics.median(samples):.2f} s "
                  f"(of {', '.join(f'{s:.2f}' for s in samples)}), board {size / 1e6:.2f} MB "
                  f"(data.js {WorkspacePaths(root).board.data.stat().st_size / 1e6:.2f} MB)")
            if page:
                print(f"        page: opens in {page['open_cold']:.2f} s (again {page['open']:.2f} s), sorts by a metric "
                      f"in {page['sort']:.2f} s, filters in {page['filter']:.2f} s ({page['shown']}), curves drawn in "
                      f"{page['curves']:.2f} s")
            if count >= 10_000:
                assert statistics.median(samples) <= 10, "kjob board over 10 s at 10,000 runs"
                assert size < 20e6, "board over 20 MB at 10,000 runs"


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10_000])
