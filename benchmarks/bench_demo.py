"""The demo checkpoint's gains on its own test pairs and on a held-back set (issue 20).

1. Trains r3-dpt with exactly the demo's parameters (the recipe's, then [tool.kjob.demo.parameters],
   then any -p), in this process, on data/demo: the same steps, seed and threads as `kjob demo`.
   Or scores a given --checkpoint (a demo run's best.pt) without training.
2. Makes the held-back set with scripts/make_demo_data.py --heldback into a temporary folder (never
   committed): sentences and voices that neither demo split uses, the same noise kinds, and real
   babble (the noise of ../shared/data/pesq-pair, `speech_bab_0dB.wav - speech.wav`) as one more
   kind. The published real pair itself is scored too, read where it lies, never copied.
3. Scores noisy and enhanced sides (PESQ-WB, STOI, SI-SDR with the mean removed, the evaluator's
   own functions) and prints the mean gains per condition: noise kind, SNR band, voice (seen in
   training or not; a training-pairs row shows what the model does on what it has heard), then
   the held-back/demo ratio of the mean gains against the targets:
   demo test >= +0.30 PESQ-WB and >= +5 dB SI-SDR; held-back >= 70 % of each.

    .venv/bin/python benchmarks/bench_demo.py [--checkpoint best.pt] [-p steps=...] [--json out.json]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the speech example's training modules are this workspace's
DEMO = ROOT / "data" / "demo"
SCRIPT = ROOT / "scripts" / "make_demo_data.py"
PESQ_PAIR = ROOT.parent / "shared" / "data" / "pesq-pair"
METRICS = ("pesq_wb", "stoi", "si_sdr")
TARGETS = {"pesq_wb": 0.30, "si_sdr": 5.0}
RATIO_TARGET = 0.70
SNR_BAND_DB = 5


def demo_parameters(overrides: list[str]) -> dict:
    """The parameters `kjob demo` gives the recipe, as main() receives them."""
    from kjob.build.recipe import load_recipe, parse_overrides
    from kjob.workspace import find_workspace

    ws = find_workspace(ROOT)
    recipe = load_recipe(ws, ws.config.demo["recipe"])
    values = dict(ws.config.demo.get("parameters", {}))
    items = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in values.items()] + overrides
    # -p after the demo's own values: a repeated key is the bench's override.
    merged = {}
    for item in items:
        key = item.partition("=")[0]
        merged[key] = item
    params = dict(recipe.parameters)
    params.update(parse_overrides(recipe, list(merged.values())))
    return params


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train(params: dict, work: Path) -> tuple[Path, dict]:
    os.environ["KAGGLE_WORKING_DIR"] = str(work / "working")
    os.environ["KAGGLE_TEMP_DIR"] = str(work / "temp")
    from enhancer.train import TRAIN_DEFAULTS, main

    params = {k: v for k, v in params.items() if k in TRAIN_DEFAULTS}
    params.update(data_dir=str(DEMO), device="cpu", num_workers=0)
    wall, cpu = time.perf_counter(), cpu_seconds()
    summary = main(**params)
    timing = {"train_wall_s": round(time.perf_counter() - wall, 1), "train_cpu_s": round(cpu_seconds() - cpu, 1)}
    return work / "working" / "best.pt", {**summary, **timing}


def make_heldback(work: Path, count: int) -> Path:
    speech, rate = sf.read(PESQ_PAIR / "speech.wav", dtype="float64")
    babble, _ = sf.read(PESQ_PAIR / "speech_bab_0dB.wav", dtype="float64")
    sf.write(work / "real_babble.wav", babble - speech, rate, subtype="FLOAT")
    out = work / "heldback"
    subprocess.run([sys.executable, str(SCRIPT), "--heldback", "--out", str(out), "--test", str(count),
                    "--real-noise", str(work / "real_babble.wav")], check=True, capture_output=True)
    return out


def manifest_pairs(folder: Path, split: str, limit: int | None = None) -> list[dict]:
    manifest = json.loads((folder / "manifest.json").read_text())
    noisy_dir, clean_dir = (split, f"y_{split}")
    rows = [dict(r, noisy=folder / noisy_dir / r["file"], clean=folder / clean_dir / r["file"])
            for r in manifest["files"] if r["split"] == split]
    return rows[:limit] if limit else rows


def score_pairs(model, pairs: list[dict], seen_voices: set, set_name: str) -> list[dict]:
    from speechscore.metrics import score_signal
    from speechscore.model import enhance

    rows = []
    for pair in pairs:
        noisy, _ = sf.read(pair["noisy"], dtype="float32")
        clean, _ = sf.read(pair["clean"], dtype="float32")
        enhanced = enhance(model, noisy)
        before, after = score_signal(clean, noisy, METRICS), score_signal(clean, enhanced, METRICS)
        row = {"set": set_name, "file": str(pair["file"]), "noise": pair.get("noise", "?"),
               "snr_db": pair.get("snr_db"), "voice": pair.get("voice", "?")}
        voice = pair.get("voice")
        row["voice_group"] = ("real speech" if voice is None else "seen voice" if voice in seen_voices
                              else "unseen voice")
        for m in METRICS:
            row[f"{m}_noisy"], row[f"{m}_enhanced"] = before[m].value, after[m].value
            row[f"{m}_delta"] = (None if before[m].value is None or after[m].value is None
                                 else after[m].value - before[m].value)
        rows.append(row)
    return rows


def snr_band(snr) -> str:
    if snr is None:
        return "?"
    # The top of the mixing range (15.0 dB after rounding) belongs to the band below it.
    low = int(np.floor(min(snr, 14.99) / SNR_BAND_DB) * SNR_BAND_DB)
    return f"{low:+d}..{low + SNR_BAND_DB:+d} dB"


def mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.fmean(values) if values else None


def table(rows: list[dict]) -> list[str]:
    groups = {}
    for r in rows:
        for kind, value in (("all", "all"), ("noise", r["noise"]), ("snr", snr_band(r["snr_db"])),
                            ("voice", r["voice_group"])):
            groups.setdefault((r["set"], kind, value), []).append(r)
    order = {"all": 0, "noise": 1, "snr": 2, "voice": 3}
    lines = [f"{'set':<9} {'condition':<26} {'n':>3}  {'PESQ-WB noisy->enh':>19} {'dPESQ':>6}  "
             f"{'SI-SDR noisy->enh':>18} {'dSI-SDR':>7}  {'dSTOI':>6}"]
    for (set_name, kind, value), members in sorted(
            groups.items(), key=lambda g: (g[0][0] != "demo", g[0][0], order[g[0][1]],
                                           float(g[0][2].split("..")[0]) if g[0][1] == "snr" and g[0][2] != "?"
                                           else 0, g[0][2])):
        label = value if kind == "all" else f"{kind}: {value}"
        lines.append(
            f"{set_name:<9} {label:<26} {len(members):>3}  "
            f"{mean(members, 'pesq_wb_noisy'):>8.2f} -> {mean(members, 'pesq_wb_enhanced'):>5.2f} "
            f"{mean(members, 'pesq_wb_delta'):>+6.2f}  {mean(members, 'si_sdr_noisy'):>7.1f} -> "
            f"{mean(members, 'si_sdr_enhanced'):>5.1f} {mean(members, 'si_sdr_delta'):>+7.1f}  "
            f"{mean(members, 'stoi_delta'):>+6.3f}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="score this checkpoint instead of training one")
    ap.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a demo parameter changed for this bench (repeatable)")
    ap.add_argument("--heldback", type=int, default=56, help="held-back pairs to make (default 56)")
    ap.add_argument("--train-pairs", type=int, default=16, help="training pairs scored as the seen-voice row")
    ap.add_argument("--json", type=Path, help="also write every row and the figures here")
    args = ap.parse_args()
    if not PESQ_PAIR.is_dir():
        sys.exit(f"bench_demo: {PESQ_PAIR} (the published real pair) is missing")

    import torch

    from speechscore.model import load_model

    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        work = Path(scratch)
        info = {}
        checkpoint = args.checkpoint
        if checkpoint is None:
            params = demo_parameters(args.overrides)
            print("training with the demo's parameters:", json.dumps(params, sort_keys=True), flush=True)
            checkpoint, info = train(params, work)
        heldback = make_heldback(work, args.heldback)
        loaded = load_model(checkpoint)
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        seen = set(json.loads((DEMO / "manifest.json").read_text())["summary"]["voices"]["train"])
        started = time.perf_counter()
        rows = score_pairs(loaded.model, manifest_pairs(DEMO, "test"), seen, "demo")
        rows += score_pairs(loaded.model, manifest_pairs(DEMO, "train", args.train_pairs), seen, "train")
        held_pairs = manifest_pairs(heldback, "test")
        held_pairs.append({"file": "pesq-pair/speech_bab_0dB.wav", "noisy": PESQ_PAIR / "speech_bab_0dB.wav",
                           "clean": PESQ_PAIR / "speech.wav", "noise": "real pair", "snr_db": 0.0, "voice": None})
        rows += score_pairs(loaded.model, held_pairs, seen, "heldback")
        info["score_wall_s"] = round(time.perf_counter() - started, 1)

    print()
    for line in table(rows):
        print(line)
    demo_rows = [r for r in rows if r["set"] == "demo"]
    held_rows = [r for r in rows if r["set"] == "heldback"]
    figures = {}
    print()
    for m, target in TARGETS.items():
        gain, held = mean(demo_rows, f"{m}_delta"), mean(held_rows, f"{m}_delta")
        ratio = held / gain if gain else float("nan")
        figures[m] = {"demo_gain": gain, "heldback_gain": held, "ratio": ratio}
        unit = " dB" if m == "si_sdr" else ""
        print(f"{m}: demo gain {gain:+.3f}{unit} (target >= +{target}{unit}: {'met' if gain >= target else 'MISSED'}); "
              f"held-back {held:+.3f}{unit}, ratio {ratio:.2f} "
              f"(target >= {RATIO_TARGET:.2f}: {'met' if ratio >= RATIO_TARGET else 'MISSED'})")
    if info:
        print("training:", json.dumps(info, sort_keys=True))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "info": info, "rows": rows}, indent=1, default=str))
    met = all(f["demo_gain"] >= TARGETS[m] and f["ratio"] >= RATIO_TARGET for m, f in figures.items())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
