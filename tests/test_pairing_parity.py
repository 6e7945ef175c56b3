"""The training (src/enhancer/data.py, inlined into Kaggle notebooks) and the evaluator
(eval/speechscore/discovery.py, installed, usable without the speech example) each decide which
folder holds noisy or clean audio and which files pair. The rules are written in both places on
purpose; this test holds them to the same answers so they cannot drift."""

import random

import pytest

from enhancer import data as training
from speechscore import discovery as evaluator

FOLDERS = ["noisy", "clean", "train", "test", "y_train", "y_test", "x_train", "train/noisy", "test/clean",
           "noisy_testset_wav", "clean_trainset_28spk_wav", "mix", "mixture", "data/train/train", "a/b/c/x",
           "y", "x", "speech", "", ".", "Test/Clean", "nested\\test\\y_test", "other/mix/y"]
STEMS = ["0001", "noisy_0001", "clean_0001", "0002", "p232_001", "p232_001_clean", "mix-0003", "0003",
         "x_0004", "y_0004", "0005_noisy", "0005", "0005_mixture", "a", "A", "clean", "noisy"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_both_read_a_folders_role_alike(folder):
    assert training.folder_role(folder) == evaluator.folder_role(folder)


def test_both_pair_the_same_files():
    for stem in STEMS:
        assert training.match_key(stem) == evaluator.match_key(stem)
    draw = random.Random(0)
    for _ in range(3000):  # random sides of up to six stems each, every stem possibly on both
        noisy, clean = draw.sample(STEMS, draw.randint(0, 6)), draw.sample(STEMS, draw.randint(0, 6))
        n, c = {s: f"n/{s}" for s in noisy}, {s: f"c/{s}" for s in clean}
        assert training.match_stems(n, c) == evaluator.match_stems(n, c), (noisy, clean)


def test_the_evaluator_finds_pairs_without_the_speech_examples_source(tmp_path):
    """`kjob leakage` and `eval-local --enhanced` work on any folder of audio, outside a workspace."""
    import subprocess
    import sys

    code = ("import sys; sys.path = [p for p in sys.path if not p.endswith('/src')]\n"
            "from speechscore import discovery\n"
            "assert discovery.match_stems({'noisy_1': 1}, {'clean_1': 2})[0] == {'noisy_1': 'clean_1'}\n"
            "import importlib.util; assert importlib.util.find_spec('enhancer') is None\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
