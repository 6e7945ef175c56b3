"""Wall time of `kjob --help`, `kjob build r3-dpt` and `kjob build r3-dpt --smoke`.

Targets (issue 2): --help below 0.25 s (the official `kaggle --help` takes 0.26 s here),
build below 1.5 s, build --smoke below 60 s. Runs in a temporary copy of the workspace so
the real kernels/ folder is not touched.

    .venv/bin/python benchmarks/bench_build.py [--repeat N]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KJOB = Path(sys.executable).with_name("kjob")


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(KJOB), *args], cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"kjob {' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def report(label: str, samples: list[float], target: float) -> None:
    median = statistics.median(samples)
    verdict = "ok" if median < target else "OVER TARGET"
    print(f"{label:<28} median {median:6.3f} s  min {min(samples):6.3f} s  "
          f"(n={len(samples)}, target < {target} s: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copy(ROOT / "pyproject.toml", ws)
        shutil.copytree(ROOT / "builders", ws / "builders")
        shutil.copytree(ROOT / "src" / "enhancer", ws / "src" / "enhancer")
        timed(["--help"], ws)  # warm the file cache once
        report("kjob --help", [timed(["--help"], ws) for _ in range(args.repeat)], 0.25)
        report("kjob build r3-dpt", [timed(["build", "r3-dpt"], ws) for _ in range(args.repeat)], 1.5)
        report("kjob build r3-dpt --smoke", [timed(["build", "r3-dpt", "--smoke"], ws) for _ in range(3)], 60)
        report("kjob build crn --smoke", [timed(["build", "crn", "--smoke"], ws) for _ in range(3)], 60)


if __name__ == "__main__":
    main()
