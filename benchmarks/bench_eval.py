"""Speed of the local evaluator (issue 5).

1. Scoring 100 demo utterances (the 62 demo pairs, cycled) on both sides with --jobs 2
   versus --jobs 1 (target: at least 1.8x on 2 cores), and seconds per utterance.
2. r3-dpt (build_model("dpt"), random weights) CPU inference time per second of audio.
3. `kjob eval-local` end to end on 105 three-second utterances with r3-dpt inference on
   2 cores, as a fresh process (imports and pool start-up included): target under 120 s.

    .venv/bin/python benchmarks/bench_eval.py [--repeat N] [--skip-full]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the speech example's training modules are this workspace's, not installed
DEMO = ROOT / "data" / "demo"
KJOB = Path(sys.executable).with_name("kjob")


def _cpu_seconds() -> tuple[float, float]:
    """(CPU seconds all processes used, CPU seconds this process and its descendants used)
    since boot: their difference over a measurement is the load other work put on the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = open("/proc/stat").readline().split()[1:]
    busy = sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7)) / tick
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(stat[1])
            times[int(entry)] = sum(int(x) for x in stat[11:15]) / tick
    mine, queue = {os.getpid()}, [os.getpid()]
    while queue:
        parent = queue.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in mine:
                mine.add(pid)
                queue.append(pid)
    return busy, sum(times.get(pid, 0.0) for pid in mine)


class Load:
    """Measures the average number of cores other processes kept busy during a block."""

    def __enter__(self):
        self.start, self.wall = _cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        (busy0, mine0), (busy1, mine1) = self.start, _cpu_seconds()
        wall = time.perf_counter() - self.wall
        self.cpu = mine1 - mine0
        self.others = max(0.0, (busy1 - busy0) - self.cpu) / wall
        self.mine = self.cpu / wall


def demo_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for noisy_dir, clean_dir in (("train", "y_train"), ("test", "y_test")):
        for path in sorted((DEMO / noisy_dir).glob("*.wav")):
            noisy, _ = sf.read(path, dtype="float32")
            clean, _ = sf.read(DEMO / clean_dir / path.name, dtype="float32")
            pairs.append((noisy, clean))
    return pairs


def write_set(folder: Path, pairs, count: int, seconds: float | None = None) -> None:
    """count pairs in folder/noisy + folder/clean (+ folder/enhanced: a half-way mix)."""
    for sub in ("noisy", "clean", "enhanced"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        noisy, clean = pairs[i % len(pairs)]
        if seconds:  # concatenate the following pairs up to the length, then crop
            n, j = int(seconds * 16000), i + 1
            while noisy.size < n:
                more_noisy, more_clean = pairs[j % len(pairs)]
                noisy, clean, j = np.concatenate([noisy, more_noisy]), np.concatenate([clean, more_clean]), j + 1
            noisy, clean = noisy[:n], clean[:n]
        name = f"u{i:03d}.wav"
        sf.write(folder / "noisy" / name, noisy, 16000, subtype="PCM_16")
        sf.write(folder / "clean" / name, clean, 16000, subtype="PCM_16")
        sf.write(folder / "enhanced" / name, 0.5 * (noisy + clean), 16000, subtype="PCM_16")


def bench_scoring(tmp: Path, repeat: int) -> None:
    from speechscore.runner import EvalRequest, evaluate

    data = tmp / "hundred"
    write_set(data, demo_pairs(), 100)
    seconds = sum(sf.info(p).duration for p in (data / "noisy").iterdir())
    # Start the fork server (numpy, pesq, pystoi loaded once) before timing.
    evaluate(EvalRequest(data, tmp / "warm", enhanced=data / "enhanced", jobs=2))
    times, loads = {1: [], 2: []}, {1: [], 2: []}
    for _ in range(repeat):
        for jobs in (1, 2):
            with Load() as load:
                summary = evaluate(EvalRequest(data, tmp / f"out{jobs}", enhanced=data / "enhanced", jobs=jobs))
            times[jobs].append(summary["timing"]["score_s"])
            loads[jobs].append(load)
    one, two = min(times[1]), min(times[2])
    print(f"scoring 100 utterances ({seconds:.0f} s of audio), noisy and enhanced sides, {os.cpu_count()} cores:")
    for jobs in (1, 2):
        print(f"  --jobs {jobs}: best {min(times[jobs]):6.2f} s  median {statistics.median(times[jobs]):6.2f} s  "
              f"(n={repeat}); CPU {min(x.cpu for x in loads[jobs]):5.2f} s; cores busy: this run "
              f"{' '.join(f'{x.mine:.2f}' for x in loads[jobs])}, other processes "
              f"{' '.join(f'{x.others:.2f}' for x in loads[jobs])}")
    speedup = one / two
    print(f"  speed-up {speedup:.2f}x (median {statistics.median(times[1]) / statistics.median(times[2]):.2f}x; "
          f"target >= 1.8x: {'ok' if speedup >= 1.8 else 'UNDER TARGET'})")
    print(f"  one core: {one / 100:.3f} s per utterance for both sides "
          f"({one / seconds * 1000:.0f} ms per second of audio)")


def bench_inference(repeat: int) -> None:
    import torch

    from enhancer.models import build_model, count_parameters
    from speechscore.model import enhance

    torch.set_num_threads(os.cpu_count())
    model = build_model("dpt").eval()
    clip = demo_pairs()[0][0]
    clip = np.tile(clip, 2)[:48000]
    enhance(model, clip)
    samples = []
    with Load() as load:
        for _ in range(repeat):
            started = time.perf_counter()
            enhance(model, clip)
            samples.append(time.perf_counter() - started)
    print(f"r3-dpt inference ({count_parameters(model) / 1e6:.2f} M parameters, {torch.get_num_threads()} threads): "
          f"{min(samples) / 3:.3f} s per second of audio (best of {repeat}; median {statistics.median(samples) / 3:.3f}; "
          f"other processes kept {load.others:.2f} cores busy)")


def bench_full(tmp: Path) -> None:
    import torch

    from enhancer.models import build_model

    ws = tmp / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[tool.kjob]\nowner = "bench"\n')
    write_set(ws / "data", demo_pairs(), 105, seconds=3.0)
    model = build_model("dpt")
    torch.save({"format_version": 1, "model_name": "dpt", "model_config": model.config,
                "state_dict": model.state_dict(), "epoch": 0, "val_loss": 0.0, "optimizer_state": {}},
               ws / "dpt.pt")
    started = time.perf_counter()
    with Load() as load:
        done = subprocess.run([str(KJOB), "eval-local", "--data", "data", "--checkpoint", "dpt.pt", "--json"],
                              cwd=ws, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"kjob eval-local failed:\n{done.stderr}")
    import json

    timing = json.loads(done.stdout)["timing"]
    print(f"kjob eval-local, 105 x 3 s utterances, r3-dpt inference, {os.cpu_count()} cores: {elapsed:.1f} s wall "
          f"(target < 120 s: {'ok' if elapsed < 120 else 'OVER TARGET'})")
    print(f"  enhance {timing['enhance_s']:.1f} s, score {timing['score_s']:.1f} s, "
          f"load {timing['load_s']:.1f} s, write {timing['write_s']:.1f} s, "
          f"start-up and imports {elapsed - timing['total_s']:.1f} s; other processes kept "
          f"{load.others:.2f} cores busy meanwhile")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        bench_scoring(Path(tmp), args.repeat)
        bench_inference(5)
        if not args.skip_full:
            bench_full(Path(tmp))


if __name__ == "__main__":
    main()
