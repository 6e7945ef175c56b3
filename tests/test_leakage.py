"""The leakage audit: the shipped demo data is clean, and a test side built here with
training audio planted in it (a training utterance re-mixed with other noise, gain, a
shift and a resampling; exact copies, one as FLAC; clip ids on both sides) is caught, by
`kjob leakage` and by eval-local's check of the training split beside a test set."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from click.testing import CliRunner

from kjob.cli import cli
from speechscore.runner import EvalRequest, evaluate

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def kjob(*args):
    return CliRunner().invoke(cli, list(args))


def remix(clean: np.ndarray, seed: int, snr_db: float = 5.0, gain: float = 0.6, shift: int = 160,
          rate: int = 22050) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) at `rate`: the utterance later by `shift` samples, scaled, under white
    noise at snr_db (the demo's training files never use it on this utterance's own mix)."""
    moved = gain * np.concatenate([np.zeros(shift, np.float32), clean[:-shift]])
    noise = np.random.default_rng(seed).standard_normal(moved.size).astype(np.float32)
    noise *= np.sqrt(np.mean(moved ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return (soxr.resample(moved + noise, 16000, rate).astype(np.float32),
            soxr.resample(moved, 16000, rate).astype(np.float32))


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """The demo set plus, on its test side: leak (training utterance 0005 re-mixed, at
    22.05 kHz), dup (a copy of training pair 0010) and flac (training pair 0011 as FLAC)."""
    data = tmp_path_factory.mktemp("leaky") / "data"
    shutil.copytree(DEMO, data, ignore=shutil.ignore_patterns("*.json", "*.md"))
    clean, _ = sf.read(DEMO / "y_train" / "0005.wav", dtype="float32")
    noisy, clean = remix(clean, seed=5)
    sf.write(data / "test" / "leak.wav", noisy, 22050, subtype="PCM_16")
    sf.write(data / "y_test" / "leak.wav", clean, 22050, subtype="PCM_16")
    for side, test_side in (("train", "test"), ("y_train", "y_test")):
        shutil.copy(DEMO / side / "0010.wav", data / test_side / "dup.wav")
        wave, rate = sf.read(DEMO / side / "0011.wav", dtype="int16")
        sf.write(data / test_side / "flac.flac", wave, rate, format="FLAC")
    return data


def test_the_demo_data_has_no_leakage():
    result = kjob("leakage", "--train", str(DEMO), "--test", str(DEMO))
    assert result.exit_code == 0, result.output
    assert "128 training and 64 test files" in result.stdout and "no leakage found" in result.stdout
    # Its splits named folder by folder, noisy side only: still clean.
    assert kjob("leakage", "--train", str(DEMO / "train"), "--test", str(DEMO / "test")).exit_code == 0


def test_planted_training_audio_is_caught(planted):
    result = kjob("leakage", "--train", str(planted), "--test", str(planted), "--json")
    assert result.exit_code == 9, result.output
    found = {(f["kind"], f["test"], f["train"]) for f in json.loads(result.stdout)["findings"]}
    assert found == {
        ("near-duplicate", "data/y_test/leak.wav", "data/y_train/0005.wav"),
        ("exact", "data/test/dup.wav", "data/train/0010.wav"),
        ("exact", "data/y_test/dup.wav", "data/y_train/0010.wav"),
        ("exact", "data/test/flac.flac", "data/train/0011.wav"),
        ("exact", "data/y_test/flac.flac", "data/y_train/0011.wav"),
    }
    near = next(f for f in json.loads(result.stdout)["findings"] if f["kind"] == "near-duplicate")
    assert near["correlation"] > 0.9 and near["shift_seconds"] == pytest.approx(0.01, abs=0.01)

    # The table, and the exit code, without --json.
    result = kjob("leakage", "--train", str(planted), "--test", str(planted))
    assert result.exit_code == 9
    assert "near-duplicate" in result.stdout and "leak.wav" in result.stdout and "test 8 ms later" in result.stdout
    assert "leakage: 5 finding(s) (4 exact, 1 near-duplicate)" in result.stderr

    # Noisy files only: the re-mixed utterance is found under its other noise all the same.
    result = kjob("leakage", "--train", str(planted / "train"), "--test", str(planted / "test"), "--json")
    near = [f for f in json.loads(result.stdout)["findings"] if f["kind"] == "near-duplicate"]
    assert [(f["test"], f["train"]) for f in near] == [("test/leak.wav", "train/0005.wav")]


def test_clip_ids_on_both_sides_are_grouped(tmp_path):
    for side, names in (("train", ["clip0012_a", "clip0012_b", "clip0020_a"]), ("valid", ["clip0012_c", "clip0031_a"])):
        (tmp_path / side).mkdir()
        for i, name in enumerate(names):
            source = DEMO / ("y_train" if side == "train" else "y_test") / f"{i + 1:04d}.wav"
            shutil.copy(source, tmp_path / side / f"{name}.wav")
    args = ["leakage", "--train", str(tmp_path / "train"), "--test", str(tmp_path / "valid")]
    assert kjob(*args).exit_code == 0  # different audio: nothing without --group-by
    result = kjob(*args, "--group-by", r"^(clip\d+)_", "--json")
    assert result.exit_code == 9
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["kind"] == "shared id" and finding["test"] == "valid/clip0012_c.wav"
    assert "'clip0012': 2 training file(s), 1 test file(s)" in finding["evidence"]
    assert kjob(*args, "--group-by", "(unclosed").exit_code == 2
    assert kjob("leakage", "--train", str(tmp_path / "nowhere"), "--test", str(tmp_path / "valid")).exit_code == 4


def test_eval_local_warns_about_a_training_split_beside_the_test_set(planted, tmp_path):
    summary = evaluate(EvalRequest(planted, tmp_path / "out", enhanced=planted / "y_test", jobs=2))
    leakage = summary["leakage"]
    assert not leakage["clean"] and leakage["train_files"] == 128 and leakage["test_files"] == 70
    assert {(f["kind"], f["test"]) for f in leakage["findings"]} == {
        ("near-duplicate", "y_test/leak.wav"), ("exact", "y_test/dup.wav"), ("exact", "test/dup.wav"),
        ("exact", "y_test/flac.flac"), ("exact", "test/flac.flac")}
    assert any(w.startswith("leakage: 5 test file(s) share audio with the training split") for w in summary["warnings"])
