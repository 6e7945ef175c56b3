"""`kjob sweep`: how close two lanes come to perfect packing, what polling costs, and how fast
a resumed campaign sees that it is done.

Targets (issue 12): an 8-member campaign of short local runs with 2 lanes takes at most 1.15x
(the sum of the members' durations / 2); a campaign of 100 complete members is judged
complete in under 1 s.

    .venv/bin/python benchmarks/bench_sweep.py [--pause SECONDS]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

from kjob.campaigns.file import load_campaign
from kjob.campaigns.plan import Planner, source_digest
from kjob.runs.ledger import Ledger
from kjob.runs.record import RunStatus, run_duration
from kjob.campaigns.sweep import Sweep
from kjob.workspace import find_workspace

KJOB = Path(sys.executable).with_name("kjob")
RECIPE = """
title = "Bench Model"
slug = "bench-model"
modules = ["bench/train.py"]
entry = "main"
accelerator = "none"

[parameters]
lr = 0.1
width = 8
pause = 0.0

[metrics]
primary = "val_acc"
mode = "max"
"""
TRAIN = '''
import json
import time


def main(lr, width, pause):
    time.sleep(pause)
    with open("metadata.json", "w") as f:
        json.dump({"metrics": {"val_acc": 1 - lr / width}}, f)
'''


def workspace(root: Path, campaign: str) -> None:
    files = {"pyproject.toml": '[project]\nname = "bench"\n\n[tool.kjob]\nowner = "bench"\n',
             "builders/bench.toml": RECIPE, "src/bench/__init__.py": "", "src/bench/train.py": TRAIN,
             "campaigns/c.toml": campaign}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))


def packing(pause: float) -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        workspace(root, f'recipe = "bench"\nlanes = 2\n[parameters]\npause = {pause}\n'
                        '[[grid]]\nlr = [0.1, 0.2, 0.3, 0.4]\nwidth = [8, 16]\n')
        ws = find_workspace(root)
        sweep = Sweep(ws, load_campaign(ws, "c"))
        began = time.perf_counter()
        plan = sweep.run()
        wall = time.perf_counter() - began
        runs = [m.run for m in plan.members]
        assert len(runs) == 8 and all(r.state.status == "complete" and r.fetched_at for r in runs), plan
        durations = [run_duration(r) for r in runs]
        ideal = sum(durations) / 2
        ratio = wall / ideal
        print(f"8 members, 2 lanes, each sleeping {pause:g} s: wall {wall:.2f} s, sum of durations / 2 {ideal:.2f} s "
              f"(median member {statistics.median(durations):.2f} s): {ratio:.3f}x "
              f"(target <= 1.15x: {'ok' if ratio <= 1.15 else 'OVER TARGET'})")
        print(f"  status checks: {sweep.stats.status_calls} in all, {sweep.stats.status_calls / 8:.1f} per member")


def resumed(count: int = 100) -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        workspace(root, 'recipe = "bench"\n[[grid]]\nlr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]\n'
                        'width = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n')
        ws = find_workspace(root)
        campaign = load_campaign(ws, "c")
        plan = Planner(ws, campaign, source_digest(ws, campaign.recipe)).plan([])
        assert len(plan.members) == count
        with Ledger(ws.paths.ledger) as ledger:  # what a finished sweep leaves: complete, fetched members
            for n, state in enumerate(plan.members, 1):
                m = state.member
                run = ledger.begin(kernel="bench", backend="local", notebook_sha256="0" * 64,
                                   parameters=m.parameters, overrides=m.overrides, git_commit=None, git_dirty=None,
                                   token=f"t{n}", signature=m.signature, campaign="c", stage=m.stage)
                run = ledger.complete_submission(run, SimpleNamespace(
                    version=n, identity=None, handle={}, parameters=m.parameters, state=RunStatus("queued")))
                run = ledger.update(run, RunStatus("complete", started_at=1.0, finished_at=2.0))
                run = ledger.set_metrics(run, {"val_acc": 1 - m.parameters["lr"] / m.parameters["width"]})
                ledger.mark_fetched(run)
        began = time.perf_counter()
        sweep = Sweep(ws, load_campaign(ws, "c"))
        plan = sweep.run()
        inside = time.perf_counter() - began
        assert all(m.status == "complete" for m in plan.members) and sweep.stats.pushes == 0
        samples = []
        for _ in range(5):
            began = time.perf_counter()
            done = subprocess.run([str(KJOB), "sweep", "c"], cwd=root, capture_output=True, text=True)
            samples.append(time.perf_counter() - began)
            assert done.returncode == 0 and "0 pushed" in done.stderr, done.stderr
        median = statistics.median(samples)
        print(f"a resumed campaign of {count} complete members: judged complete in {inside:.3f} s in-process, "
              f"`kjob sweep` {median:.3f} s median of 5 (with Python's start) "
              f"(target < 1 s: {'ok' if median < 1 else 'OVER TARGET'}); "
              f"{sweep.stats.status_calls} status checks, {sweep.stats.pushes} pushes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pause", type=float, default=3.0, help="seconds each member sleeps (default 3)")
    args = parser.parse_args()
    packing(args.pause)
    resumed()


if __name__ == "__main__":
    main()
