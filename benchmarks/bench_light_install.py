"""The light install's cost: a fresh virtual environment with kjob alone (no extras), from a
copy of this checkout's packaging files, without pip's cache. Prints seconds and megabytes,
next to the same for the speech extra's packages when asked (--speech).

    .venv/bin/python benchmarks/bench_light_install.py [--speech]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speech", action="store_true", help="also install the speech extra (torch==2.13.0 first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source, venv = Path(tmp) / "src-copy", Path(tmp) / "venv"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, source / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(ROOT / "src" / "kjob", source / "src" / "kjob", ignore=ignore)
        shutil.copytree(ROOT / "eval" / "speechscore", source / "eval" / "speechscore", ignore=ignore)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        bare = size_mb(venv)
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-cache-dir", str(source)], check=True)
        seconds = time.perf_counter() - started
        print(f"light install: {seconds:.1f} s, {size_mb(venv) - bare:.0f} MiB added "
              f"(venv with pip: {size_mb(venv):.0f} MiB)")
        if args.speech:
            started = time.perf_counter()
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-cache-dir", "torch==2.13.0"], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-cache-dir", f"{source}[speech]"], check=True)
            print(f"speech extra on top: {time.perf_counter() - started:.1f} s, venv now {size_mb(venv):.0f} MiB")


if __name__ == "__main__":
    main()
