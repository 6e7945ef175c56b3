"""Speed of the local evaluator (issues 5 and 14), every figure side by side in one run.

1. Scoring 100 demo utterances (the 62 demo pairs, cycled) on both sides with --jobs 2
   versus --jobs 1: target at least 1.9x on 2 cores.
2. Caching: a re-evaluation of the same files (both sides from the score cache) at most
   0.15x the first; a second "checkpoint" (other enhanced files) on the same set (noisy
   side from the cache) at most 0.6x. In-process evaluate() totals, and `kjob eval-local`
   as fresh processes (imports included).
3. r3-dpt (build_model("dpt"), random weights) CPU inference per second of audio, plain
   torch and the oneDNN path eval-local uses: target at most 0.2 s.
4. `kjob eval-local` end to end on 105 three-second utterances with r3-dpt inference on
   2 cores, as a fresh process (imports and pool start-up included): target under 70 s;
   then the same checkpoint again (nothing recomputed) and a second checkpoint.

    .venv/bin/python benchmarks/bench_eval.py [--repeat N] [--skip-full]
"""

import argparse
import json
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
# The bench workspace has no src/: the models checkpoints name come from this one's.
MODEL_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}


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


FIGURES: list[tuple[str, float, str, bool]] = []  # (what, value, target, met) for the closing table


def figure(what: str, value: float, target: str, met: bool) -> None:
    FIGURES.append((what, value, target, met))


def bench_scoring(tmp: Path, repeat: int) -> None:
    from speechscore.runner import EvalRequest, evaluate

    data = tmp / "hundred"
    write_set(data, demo_pairs(), 100)
    seconds = sum(sf.info(p).duration for p in (data / "noisy").iterdir())
    # Start the fork server (numpy, pesq, pystoi loaded once) before timing.
    evaluate(EvalRequest(data, tmp / "warm", enhanced=data / "enhanced", jobs=2, replace=True))
    times, loads = {1: [], 2: []}, {1: [], 2: []}
    for _ in range(repeat):
        for jobs in (1, 2):
            with Load() as load:
                summary = evaluate(EvalRequest(data, tmp / f"out{jobs}", enhanced=data / "enhanced", jobs=jobs,
                                               replace=True))
            times[jobs].append(summary["timing"]["score_s"])
            loads[jobs].append(load)
    one, two = min(times[1]), min(times[2])
    print(f"1. scoring 100 utterances ({seconds:.0f} s of audio), noisy and enhanced sides, {os.cpu_count()} cores:")
    for jobs in (1, 2):
        print(f"  --jobs {jobs}: best {min(times[jobs]):6.2f} s  median {statistics.median(times[jobs]):6.2f} s  "
              f"(n={repeat}); CPU {min(x.cpu for x in loads[jobs]):5.2f} s; cores busy: this run "
              f"{' '.join(f'{x.mine:.2f}' for x in loads[jobs])}, other processes "
              f"{' '.join(f'{x.others:.2f}' for x in loads[jobs])}")
    speedup = one / two
    print(f"  speed-up {speedup:.2f}x (median {statistics.median(times[1]) / statistics.median(times[2]):.2f}x; "
          f"target >= 1.9x: {'ok' if speedup >= 1.9 else 'UNDER TARGET'})")
    print(f"  one core: {one / 100:.3f} s per utterance for both sides "
          f"({one / seconds * 1000:.0f} ms per second of audio)")
    figure("--jobs 2 vs --jobs 1 (scoring)", speedup, ">= 1.9x", speedup >= 1.9)


def bench_cache(tmp: Path, repeat: int) -> None:
    """First evaluation (cold cache), the same files again, other enhanced files on the same set."""
    from speechscore.runner import EvalRequest, evaluate

    data = tmp / "cached"
    write_set(data, demo_pairs(), 100)
    other = data / "other"
    other.mkdir()
    for path in sorted((data / "enhanced").iterdir()):  # a second "checkpoint": other outputs
        wave, _ = sf.read(path, dtype="float32")
        sf.write(other / path.name, 0.9 * wave, 16000, subtype="PCM_16")
    totals = {"first": [], "again": [], "second": []}
    for k in range(repeat):
        cache = tmp / f"cache{k}"
        for what, enhanced in (("first", "enhanced"), ("again", "enhanced"), ("second", "other")):
            summary = evaluate(EvalRequest(data, tmp / f"c-{what}", enhanced=data / enhanced, cache_dir=cache, jobs=2,
                                           replace=True))
            totals[what].append(summary["timing"]["total_s"])
    first, again, second = (min(totals[w]) for w in ("first", "again", "second"))
    print(f"2. caching, 100 utterances, --jobs 2, in-process evaluate() totals (best of {repeat}):")
    print(f"  first {first:.2f} s; the same files again {again:.2f} s ({again / first:.3f}x, target <= 0.15x: "
          f"{'ok' if again / first <= 0.15 else 'OVER TARGET'}); other enhanced files on the same set "
          f"{second:.2f} s ({second / first:.3f}x, target <= 0.6x: {'ok' if second / first <= 0.6 else 'OVER TARGET'})")
    figure("re-evaluation of the same files (in process)", again / first, "<= 0.15x", again / first <= 0.15)
    figure("second checkpoint on the same set (in process)", second / first, "<= 0.6x", second / first <= 0.6)

    ws = tmp / "cache-ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[tool.kjob]\nowner = "bench"\n')
    walls = {}
    for what, enhanced in (("first", "enhanced"), ("again", "enhanced"), ("second", "other")):
        started = time.perf_counter()
        done = subprocess.run([str(KJOB), "eval-local", "--data", str(data), "--enhanced", str(data / enhanced),
                               "--jobs", "2"], cwd=ws, capture_output=True, text=True)
        walls[what] = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"kjob eval-local failed:\n{done.stderr}")
    print(f"  as `kjob eval-local` processes: first {walls['first']:.2f} s, again {walls['again']:.2f} s "
          f"({walls['again'] / walls['first']:.3f}x), second {walls['second']:.2f} s "
          f"({walls['second'] / walls['first']:.3f}x)")
    figure("re-evaluation of the same files (eval-local process)", walls["again"] / walls["first"], "<= 0.15x",
           walls["again"] / walls["first"] <= 0.15)
    figure("second checkpoint on the same set (eval-local process)", walls["second"] / walls["first"], "<= 0.6x",
           walls["second"] / walls["first"] <= 0.6)


def bench_inference(repeat: int) -> None:
    import torch

    from enhancer.models import build_model, count_parameters
    from speechscore.fastpath import fast_inference_model
    from speechscore.model import enhance

    torch.set_num_threads(os.cpu_count())
    model = build_model("dpt").eval()
    fast, path = fast_inference_model(model)
    clip = demo_pairs()[0][0]
    clip = np.tile(clip, 2)[:48000]
    samples = {"plain": [], "fast": []}
    for runnable in (model, fast):
        enhance(runnable, clip)
    with Load() as load:
        for _ in range(repeat):  # interleaved, so that other load hits both alike
            for what, runnable in (("plain", model), ("fast", fast)):
                started = time.perf_counter()
                enhance(runnable, clip)
                samples[what].append(time.perf_counter() - started)
    difference = float(np.max(np.abs(enhance(model, clip) - enhance(fast, clip))))
    plain, quick = min(samples["plain"]) / 3, min(samples["fast"]) / 3
    print(f"3. r3-dpt inference ({count_parameters(model) / 1e6:.2f} M parameters, {torch.get_num_threads()} threads), "
          f"s per second of audio, best of {repeat}: plain torch {plain:.3f} (median "
          f"{statistics.median(samples['plain']) / 3:.3f}); eval-local's {path} {quick:.3f} (median "
          f"{statistics.median(samples['fast']) / 3:.3f}; {plain / quick:.2f}x faster; outputs differ by at most "
          f"{difference:.1e}); target <= 0.2: {'ok' if quick <= 0.2 else 'OVER TARGET'}; "
          f"other processes kept {load.others:.2f} cores busy")
    figure("r3-dpt inference, s per second of audio", quick, "<= 0.2", quick <= 0.2)


def bench_full(tmp: Path) -> None:
    import torch

    from enhancer.models import build_model

    ws = tmp / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[tool.kjob]\nowner = "bench"\n')
    write_set(ws / "data", demo_pairs(), 105, seconds=3.0)
    for name, seed in (("dpt.pt", 0), ("dpt2.pt", 1)):
        torch.manual_seed(seed)
        model = build_model("dpt")
        torch.save({"format_version": 1, "model_name": "dpt", "model_config": model.config,
                    "state_dict": model.state_dict(), "epoch": 0, "val_loss": 0.0, "optimizer_state": {}}, ws / name)
    walls, timings = {}, {}
    for what, checkpoint in (("first", "dpt.pt"), ("again", "dpt.pt"), ("second", "dpt2.pt")):
        started = time.perf_counter()
        with Load() as load:
            done = subprocess.run([str(KJOB), "eval-local", "--data", "data", "--checkpoint", checkpoint, "--json"],
                                  cwd=ws, capture_output=True, text=True, env=MODEL_ENV)
        walls[what] = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"kjob eval-local failed:\n{done.stderr}")
        timings[what] = (json.loads(done.stdout)["timing"], load)
    timing, load = timings["first"]
    first = walls["first"]
    print(f"4. kjob eval-local, 105 x 3 s utterances, r3-dpt inference, {os.cpu_count()} cores: {first:.1f} s wall "
          f"(target < 70 s: {'ok' if first < 70 else 'OVER TARGET'})")
    print(f"  enhance {timing['enhance_s']:.1f} s, score {timing['score_s']:.1f} s, "
          f"load {timing['load_s']:.1f} s, write {timing['write_s']:.1f} s, "
          f"start-up and imports {first - timing['total_s']:.1f} s; other processes kept "
          f"{load.others:.2f} cores busy meanwhile")
    print(f"  the same checkpoint again: {walls['again']:.1f} s ({walls['again'] / first:.3f}x: scores from the cache, "
          f"no inference); a second checkpoint: {walls['second']:.1f} s ({walls['second'] / first:.3f}x: noisy side "
          f"cached, inference {timings['second'][0]['enhance_s']:.1f} s)")
    figure("105 x 3 s with r3-dpt, eval-local wall (s)", first, "< 70", first < 70)
    figure("same checkpoint again, with the model", walls["again"] / first, "<= 0.15x", walls["again"] / first <= 0.15)
    figure("second checkpoint, with the model", walls["second"] / first, "<= 0.6x", walls["second"] / first <= 0.6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        bench_scoring(Path(tmp), args.repeat)
        bench_cache(Path(tmp), args.repeat)
        bench_inference(5)
        if not args.skip_full:
            bench_full(Path(tmp))
    print("\nside by side:")
    for what, value, target, met in FIGURES:
        print(f"  {what:<55} {value:8.3f}  target {target:<8} {'ok' if met else 'MISSED'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
