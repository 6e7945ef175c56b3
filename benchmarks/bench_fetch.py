"""`kjob fetch --output` of a 1 GiB output file from the Kaggle emulator: peak memory of the
kjob process and throughput against a plain `curl` of the same URL.

Targets: peak RSS below 150 MB whatever the file size; at least 0.95 of curl's throughput
(with the SHA-256 of every file computed while it streams, for the edited-file check). Everything runs as real processes: `kjob emulator` (the server), `kjob push
--wait`, then `kjob fetch --output` and `curl`, each timed and measured with wait4(). The
file is made sparse in the emulator's run folder, so the server reads it from memory and
both clients are limited by themselves and the disk they write to.

    .venv/bin/python benchmarks/bench_fetch.py [--size-mib 1024] [--repeat 4]
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

KJOB = Path(sys.executable).with_name("kjob")
RECIPE = 'title = "Bench Fetch"\nslug = "bench-fetch"\nmodules = ["bench/job.py"]\nentry = "main"\naccelerator = "none"\n'
JOB = '"""Writes one small output."""\n\n\ndef main():\n    with open("small.txt", "w") as f:\n        f.write("ok\\n")\n'


def measured(args: list[str], cwd: Path, env: dict) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in bytes, CPU seconds) of one child process.

    Dirty pages left by the previous run are flushed first (untimed): otherwise whichever
    command runs next pays for writing back the last one's gigabyte."""
    os.sync()
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child cannot block
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(map(str, args))} failed ({code}): {errors.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def workspace(root: Path) -> None:
    (root / "pyproject.toml").write_text('[tool.kjob]\nowner = "bench"\n')
    (root / "builders").mkdir()
    (root / "builders/bench.toml").write_text(RECIPE)
    (root / "src/bench").mkdir(parents=True)
    (root / "src/bench/__init__.py").write_text("")
    (root / "src/bench/job.py").write_text(JOB)


def start_emulator(root: Path, env: dict) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([str(KJOB), "emulator", "--port", "0", "--state-dir", str(root / "emulator")],
                               cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = process.stdout.readline()
    if not first.startswith("Kaggle emulator on "):
        sys.exit(f"the emulator did not start: {first!r}")
    return process, first.split()[3]


def output_url(base: str, auth: tuple[str, str], name: str) -> str:
    body = {"userName": "bench", "kernelSlug": "bench-fetch", "versionLabel": "v1", "pageSize": 100}
    answer = requests.post(f"{base}/api/v1/kernels.KernelsApiService/ListKernelSessionOutput", json=body,
                           auth=auth, timeout=30).json()
    return next(f["url"] for f in answer["files"] if f["fileName"] == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=4)
    options = parser.parse_args()
    size = options.size_mib << 20
    root = Path(tempfile.mkdtemp(prefix="kjob-bench-fetch-"))
    emulator = None
    try:
        workspace(root)
        config = root / "kaggle-config"
        config.mkdir()
        key = secrets.token_hex(16)
        (config / "kaggle.json").write_text(json.dumps({"username": "bench", "key": key}))
        os.chmod(config / "kaggle.json", 0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "KJOB_"))}
        env["KAGGLE_CONFIG_DIR"] = str(config)
        emulator, base = start_emulator(root, env)
        env.update(KJOB_KAGGLE_ENDPOINT=base, KJOB_KAGGLE_POLL="0.5")
        measured([str(KJOB), "push", "bench", "--backend", "kaggle", "--wait"], root, env)
        big = next((root / "emulator/bench/bench-fetch").glob("**/v1/working")) / "big.bin"
        with big.open("wb") as handle:
            handle.truncate(size)  # sparse: no disk used, served from memory
        url = output_url(base, ("bench", key), "big.bin")
        downloaded = root / "downloads/bench/v1/output/big.bin"
        target = root / "curl.bin"
        curl = ["curl", "-sS", "--fail", "-o", str(target), url]
        measured(curl, root, env)  # warm-up, untimed: the server's and this disk's caches settle
        target.unlink()
        kjob_runs, curl_runs = [], []
        for turn in range(options.repeat):
            for tool in (("kjob", "curl") if turn % 2 == 0 else ("curl", "kjob")):  # neither always first
                if tool == "kjob":
                    (root / "downloads/bench/v1/.fetched.json").unlink(missing_ok=True)
                    kjob_runs.append(measured([str(KJOB), "fetch", "bench", "--output", "--pattern", "^big"], root, env))
                    if downloaded.stat().st_size != size:
                        sys.exit("kjob fetched the wrong number of bytes")
                    downloaded.unlink()
                else:
                    curl_runs.append(measured(curl, root, env))
                    if target.stat().st_size != size:
                        sys.exit("curl fetched the wrong number of bytes")
                    target.unlink()
        mib = size / (1 << 20)

        def summary(runs) -> tuple[float, float, float]:
            return (mib / statistics.median(r[0] for r in runs), max(r[1] for r in runs) / 1e6,
                    statistics.median(r[2] for r in runs))

        (kjob_rate, kjob_peak, kjob_cpu), (curl_rate, curl_peak, curl_cpu) = summary(kjob_runs), summary(curl_runs)
        ratio = kjob_rate / curl_rate
        print(f"file: {mib:.0f} MiB; {options.repeat} runs each, taking turns (median); whole commands timed")
        print(f"kjob fetch --output: {kjob_rate:7.1f} MiB/s, CPU {kjob_cpu:.2f} s, peak RSS {kjob_peak:.1f} MB "
              f"(target < 150 MB: {'ok' if kjob_peak < 150 else 'OVER TARGET'})")
        print(f"curl -o            : {curl_rate:7.1f} MiB/s, CPU {curl_cpu:.2f} s, peak RSS {curl_peak:.1f} MB")
        print(f"kjob / curl throughput: {ratio:.2f} (target >= 0.95: {'ok' if ratio >= 0.95 else 'UNDER TARGET'})")
    finally:
        if emulator is not None:
            emulator.send_signal(signal.SIGINT)
            emulator.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
