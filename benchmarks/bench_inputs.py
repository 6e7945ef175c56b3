"""What `push --input` costs a push: a local run given another run's 512 MiB output.

Timed (wall time of `kjob push`, which returns once the run has started in the background):
a push without inputs; a push with the input, whose digests come from the fetch's record (the
file is linked, never copied or read); the same after the file was touched, so that its
SHA-256 is computed again. Target: the input adds under 0.2 s while the fetch's record holds;
a re-hash costs what reading the file costs.

    .venv/bin/python benchmarks/bench_inputs.py [--size-mib 512] [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KJOB = Path(sys.executable).with_name("kjob")
PYPROJECT = '[project]\nname = "bench"\n\n[tool.kjob]\nowner = "bench"\n'
BIG = 'title = "Big Output"\nslug = "big-output"\nmodules = ["bench/big.py"]\nentry = "main"\naccelerator = "none"\n\n[parameters]\nmib = 512\n'
BIG_JOB = ('"""Writes one large output."""\n\n\ndef main(mib):\n    block = bytes(range(256)) * 4096\n'
           '    with open("weights.bin", "wb") as f:\n        for _ in range(mib):\n            f.write(block)\n')
READER = 'title = "Input Reader"\nslug = "input-reader"\nmodules = ["bench/reader.py"]\nentry = "main"\naccelerator = "none"\n'
READER_JOB = '"""Reads nothing: the push is what is timed."""\n\n\ndef main():\n    pass\n'


def pushed(args: list[str], cwd: Path) -> float:
    """The push's wall time; its run is then waited for (untimed), so that no run competes
    with the next push for the CPU."""
    elapsed = kjob(["push", *args], cwd)
    kjob(["status", args[0], "--watch"], cwd)
    return elapsed


def kjob(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(KJOB), *args], cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"kjob {' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kjob-bench-inputs-") as folder:
        root = Path(folder)
        for rel, text in {"pyproject.toml": PYPROJECT, "builders/big.toml": BIG, "builders/reader.toml": READER,
                          "src/bench/big.py": BIG_JOB, "src/bench/reader.py": READER_JOB}.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        kjob(["push", "big", "-p", f"mib={options.size_mib}", "--wait"], root)
        weights = root / "downloads/big/local-v1/output/weights.bin"
        print(f"input: big local-v1, {weights.stat().st_size / 2**20:.0f} MiB")
        plain = [pushed(["reader"], root) for _ in range(options.repeat)]
        recorded = [pushed(["reader", "--input", "big:v1"], root) for _ in range(options.repeat)]
        rehashed = []
        for _ in range(options.repeat):
            os.utime(weights)  # touched: the fetch's record no longer vouches for it
            rehashed.append(pushed(["reader", "--input", "big:v1"], root))
        base = statistics.median(plain)
        added = statistics.median(recorded) - base
        print(f"push, no input                 median {base:6.3f} s")
        print(f"push --input (fetch's record)  median {statistics.median(recorded):6.3f} s  "
              f"(+{added:.3f} s; target < 0.2 s: {'ok' if added < 0.2 else 'OVER TARGET'})")
        print(f"push --input (file re-hashed)  median {statistics.median(rehashed):6.3f} s  "
              f"(+{statistics.median(rehashed) - base:.3f} s: reading and hashing {options.size_mib} MiB)")


if __name__ == "__main__":
    main()
