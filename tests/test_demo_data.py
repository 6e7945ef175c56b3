"""Checks on the committed demo data in data/demo/ (made by scripts/make_demo_data.py).

These read the committed files only and need no espeak-ng; the one test that regenerates the data
skips itself where espeak-ng is missing (or is another version than the one that made the data).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "data" / "demo"
SCRIPT = PROJECT / "scripts" / "make_demo_data.py"
SPLITS = ("train", "test")


@pytest.fixture(scope="module")
def manifest():
    return json.loads((DEMO / "manifest.json").read_text(encoding="utf-8"))


def records(manifest, split):
    return [r for r in manifest["files"] if r["split"] == split]


def read(path):
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), path
    return sf.read(str(path), dtype="int16")[0].astype(np.float64)


def active_snr_db(clean, noise, frame=320, floor_db=40.0):
    """The manifest's SNR definition, written out independently of the generator: powers over the
    20 ms frames of the clean signal whose energy is within 40 dB of its loudest frame."""
    n = len(clean) // frame * frame
    e = (clean[:n].reshape(-1, frame) ** 2).mean(axis=1)
    active = np.repeat(e > e.max() * 10 ** (-floor_db / 10), frame)
    return 10 * np.log10(np.mean(clean[:n][active] ** 2) / np.mean(noise[:n][active] ** 2))


def test_pairs_complete_and_consistent(manifest):
    counts = manifest["summary"]["counts"]
    assert counts["test"] >= 24 and 48 <= counts["train"] <= 80
    for split in SPLITS:
        names = sorted(r["file"] for r in records(manifest, split))
        assert len(names) == counts[split]
        assert sorted(p.name for p in (DEMO / split).glob("*.wav")) == names
        assert sorted(p.name for p in (DEMO / f"y_{split}").glob("*.wav")) == names
        for r in records(manifest, split):
            noisy, clean = read(DEMO / split / r["file"]), read(DEMO / f"y_{split}" / r["file"])
            assert len(noisy) == len(clean), r["file"]
            assert abs(len(clean) / 16000 - r["duration_s"]) < 1e-3
            assert 1.5 <= r["duration_s"] <= 2.6
            assert np.abs(clean).max() > 0.1 * 32767, "clean speech is nearly silent"
            assert np.abs(noisy).max() < 32767, "mixture touches full scale (clipped?)"


def test_snr_matches_manifest(manifest):
    for r in manifest["files"]:
        assert -5.0 <= r["snr_db"] <= 15.0
        noisy = read(DEMO / r["split"] / r["file"])
        clean = read(DEMO / f"y_{r['split']}" / r["file"])
        measured = active_snr_db(clean, noisy - clean)
        assert abs(measured - r["snr_db"]) < 0.5, (r["split"], r["file"], measured, r["snr_db"])


def test_no_leakage_between_splits(manifest):
    summary = manifest["summary"]
    used = {s: {"sentences": set(), "voices": set()} for s in SPLITS}
    for r in manifest["files"]:
        talkers = [r] + r.get("babble", [])
        used[r["split"]]["sentences"] |= {t["text"] for t in talkers}
        used[r["split"]]["voices"] |= {t["voice"] for t in talkers}
        # babble is made of other talkers: never the target sentence, never the target voice
        assert r["text"] not in {b["text"] for b in r.get("babble", [])}
        assert r["voice"] not in {b["voice"] for b in r.get("babble", [])}
    for kind in ("sentences", "voices"):
        assert not used["train"][kind] & used["test"][kind], kind
        assert not set(summary[kind]["train"]) & set(summary[kind]["test"]), kind
        for split in SPLITS:  # everything used is within the split's declared pool
            assert used[split][kind] <= set(summary[kind][split]), (split, kind)
    # stronger: a voice is accent+variant, and neither half of a test voice occurs in training
    for part in (0, 1):
        halves = {s: {v.split("+")[part] for v in used[s]["voices"]} for s in SPLITS}
        assert not halves["train"] & halves["test"]


def test_total_size_under_15_mb():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 15 * 1024 * 1024, total


def test_every_noise_kind_and_snr_band_in_each_split(manifest):
    for split in SPLITS:
        rows = records(manifest, split)
        assert {r["noise"] for r in rows} == {"babble", "white", "pink", "brown", "hum", "tone"}, split
        assert manifest["summary"]["noise_types"][split] == {
            k: sum(r["noise"] == k for r in rows) for k in manifest["summary"]["noise_types"][split]}
        bands = {int((r["snr_db"] + 5) // 5) for r in rows}  # -5..0, 0..5, 5..10, 10..15 dB
        assert bands >= {0, 1, 2, 3}, (split, bands)
        for r in rows:
            assert {"voice", "voice_accent", "voice_variant", "speed", "pitch"} <= set(r)
            assert r["voice"] == f"{r['voice_accent']}+{r['voice_variant']}"
            if r["noise"] == "babble":  # several overlapping talkers, not one
                assert 3 <= len(r["babble"]) <= 6
            if r["noise"] == "hum":
                assert r["hum_hz"] in (50, 60)
            if r["noise"] == "tone":
                assert 1 <= len(r["tones"]) <= 3
    voices = {r["voice"] for r in manifest["files"]}
    assert len(voices) >= 60 and len({r["speed"] for r in manifest["files"]}) >= 30


def test_refuses_without_espeak(tmp_path):
    out = tmp_path / "demo"
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no espeak-ng on this PATH
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "espeak-ng" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_real_noise_only_with_heldback(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "x"), "--real-noise", "n.wav"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "--heldback" in proc.stderr and not (tmp_path / "x").exists()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_heldback_set_shares_no_sentence_or_voice_with_the_demo(manifest, tmp_path):
    noise = np.random.default_rng(0).standard_normal(16000) * 0.1
    sf.write(tmp_path / "noise.wav", noise, 16000, subtype="FLOAT")
    out = tmp_path / "held"
    subprocess.run([sys.executable, str(SCRIPT), "--heldback", "--out", str(out), "--test", "14",
                    "--real-noise", str(tmp_path / "noise.wav")], check=True, capture_output=True)
    held = json.loads((out / "manifest.json").read_text())
    assert held["set"] == "heldback" and sorted(p.name for p in out.iterdir()) == ["manifest.json", "test", "y_test"]
    assert {r["noise"] for r in held["files"]} == {"babble", "white", "pink", "brown", "hum", "tone", "real_babble"}
    demo_talkers = [t for r in manifest["files"] for t in [r] + r.get("babble", [])]
    held_talkers = [t for r in held["files"] for t in [r] + r.get("babble", [])]
    assert not {t["text"] for t in held_talkers} & {t["text"] for t in demo_talkers}
    assert not {t["voice"] for t in held_talkers} & {t["voice"] for t in demo_talkers}
    train_accents = {v.split("+")[0] for v in manifest["summary"]["voices"]["train"]}
    assert not {t["voice"].split("+")[0] for t in held_talkers} & train_accents


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_regeneration_is_byte_identical(manifest, tmp_path):
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    if not version.startswith(manifest["espeak_ng_version"]):
        pytest.skip(f"data made with {manifest['espeak_ng_version']}, this machine has {version.split('Data')[0]}")
    out = tmp_path / "demo"
    counts = manifest["summary"]["counts"]
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--seed", str(manifest["seed"]),
                    "--train", str(counts["train"]), "--test", str(counts["test"])], check=True, capture_output=True)
    committed = sorted(p.relative_to(DEMO) for p in DEMO.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == committed
    for rel in committed:
        assert (out / rel).read_bytes() == (DEMO / rel).read_bytes(), rel
