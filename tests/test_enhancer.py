"""Tests of the training modules (src/enhancer) with real torch on CPU."""

import ast
import json
import os
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from enhancer.audio import make_synthetic_dataset, read_audio, resample
from enhancer.data import discover_pairs, split_train_val
from enhancer.losses import si_sdr
from enhancer.models import MODELS, build_model, count_parameters
from enhancer.runtime import find_dataset, select_device
from enhancer.stft import N_BINS, STFT
from enhancer.train import TRAIN_DEFAULTS, main

# The order in which kjob inlines the modules as notebook cells.
ENHANCER_ORDER = ["runtime", "stft", "crn", "dpt", "models", "losses", "audio", "data", "train"]
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "enhancer")
SMOKE = dict(synthetic=True, device="cpu", epochs=1, steps_per_epoch=2, batch_size=2,
             crop_seconds=0.5, max_val_files=2, num_workers=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_length_equals_input_length(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        for length in (257, 1001, 4803, 16001):
            out = model(torch.randn(2, length))
            assert out.shape == (2, length)
            assert out.dtype == torch.float32
            assert torch.isfinite(out).all()


def test_stft_round_trip_with_unit_mask():
    stft = STFT()
    for length in (4999, 16001):
        wave = torch.randn(2, length)
        spec = stft(wave)
        assert spec.shape[1] == N_BINS == 257
        back = stft.inverse(spec * torch.ones(spec.shape), length)
        assert back.shape == wave.shape
        assert (back - wave).abs().max().item() < 1e-4


def test_si_sdr_is_scale_invariant():
    clean = torch.randn(2, 8000)
    noisy = clean + 0.1 * torch.randn(2, 8000)
    assert torch.allclose(si_sdr(3.0 * noisy, clean), si_sdr(noisy, clean), atol=1e-3)
    assert (si_sdr(noisy, clean) - 20).abs().max() < 1.0
    assert (si_sdr(clean, clean) > 60).all()


def test_dpt_parameter_count():
    n = count_parameters(build_model("dpt"))
    print("dpt parameters: %d" % n)
    assert 800_000 <= n <= 1_000_000


def test_models_rebuild_from_config():
    for name in MODELS:
        model = build_model(name)
        twin = build_model(name, json.loads(json.dumps(model.config)))
        twin.load_state_dict(model.state_dict(), strict=True)


def _names(pairs):
    return sorted(os.path.basename(n) for n, _ in pairs)


@pytest.mark.parametrize("layout", ["kaggle", "pairs"])
def test_discovery_on_synthetic_layouts(tmp_path, layout):
    root = make_synthetic_dataset(str(tmp_path / "ds"), n_train=5, n_test=2, seconds=0.3,
                                  layout=layout)
    found = discover_pairs(root)
    assert len(found["train"]) == 5 and len(found["test"]) == 2
    for noisy, clean in found["train"] + found["test"]:
        assert os.path.basename(noisy) == os.path.basename(clean)
        assert noisy != clean
    assert _names(found["train"]) == ["train_%04d.wav" % i for i in range(5)]


def test_discovery_extracts_nested_zip_and_reports_unmatched(tmp_path, capsys):
    make_synthetic_dataset(str(tmp_path / "plain"), n_train=4, n_test=0, seconds=0.3)
    sf.write(str(tmp_path / "plain" / "train" / "orphan.wav"), np.zeros(800, "float32"), 16000)
    dataset = tmp_path / "input" / "x"
    dataset.mkdir(parents=True)
    for folder, prefix in (("train", "train/"), ("y_train", "")):
        # train.zip holds its folder, so extraction nests it (train/train/*.wav);
        # y_train.zip holds bare files, so only the archive's name says what they are.
        with zipfile.ZipFile(dataset / (folder + ".zip"), "w") as zf:
            for name in sorted(os.listdir(tmp_path / "plain" / folder)):
                zf.write(tmp_path / "plain" / folder / name, arcname=prefix + name)
    scratch = tmp_path / "scratch"
    found = discover_pairs(str(tmp_path / "input"), str(scratch))
    assert _names(found["train"]) == ["train_%04d.wav" % i for i in range(4)]
    assert found["test"] == []
    for noisy, clean in found["train"]:
        assert noisy.startswith(str(scratch / "x" / "train" / "train"))
        assert clean.startswith(str(scratch / "x" / "y_train"))
    assert "1 noisy files have no partner" in capsys.readouterr().out
    # A second call finds the extracted copy without extracting again.
    assert len(discover_pairs(str(tmp_path / "input"), str(scratch))["train"]) == 4


def test_discovery_error_names_what_it_saw(tmp_path):
    (tmp_path / "stuff").mkdir()
    sf.write(str(tmp_path / "stuff" / "a.wav"), np.zeros(800, "float32"), 16000)
    with pytest.raises(FileNotFoundError, match="stuff"):
        discover_pairs(str(tmp_path))


def test_split_is_deterministic_and_disjoint(tmp_path):
    pairs = [("/n/f%03d.wav" % i, "/c/f%03d.wav" % i) for i in range(40)]
    train, val = split_train_val(pairs, 0.1)
    assert (train, val) == split_train_val(list(reversed(pairs)), 0.1)
    assert len(val) == 4 and len(train) == 36
    assert not set(train) & set(val)


def test_resample_8k_to_16k(tmp_path):
    t8 = np.arange(8001) / 8000.0
    up = resample(np.sin(2 * np.pi * 440 * t8).astype(np.float32), 8000, 16000)
    assert up.shape == (16002,) and up.dtype == np.float32
    t16 = np.arange(16002) / 16000.0
    interior = slice(200, -200)
    assert np.abs(up[interior] - np.sin(2 * np.pi * 440 * t16)[interior]).max() < 0.02
    assert resample(np.zeros(16001, np.float32), 16000, 8000).shape == (8001,)
    path = str(tmp_path / "stereo8k.wav")
    sf.write(path, np.stack([np.sin(2 * np.pi * 440 * t8)] * 2, axis=1), 8000)
    wave = read_audio(path)
    assert wave.ndim == 1 and wave.shape == (16002,) and wave.dtype == np.float32


def test_find_dataset_both_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_INPUT_DIR", str(tmp_path))
    (tmp_path / "datasets" / "owner" / "new-slug").mkdir(parents=True)
    (tmp_path / "old-slug").mkdir()
    assert find_dataset("owner/new-slug") == str(tmp_path / "datasets" / "owner" / "new-slug")
    assert find_dataset("someone/old-slug") == str(tmp_path / "old-slug")
    with pytest.raises(FileNotFoundError, match="old-slug"):
        find_dataset("owner/missing")


@pytest.mark.parametrize("name,epochs", [("crn", 2), ("dpt", 1)])
def test_main_smoke_writes_loadable_outputs(tmp_path, monkeypatch, name, epochs):
    monkeypatch.setenv("KAGGLE_WORKING_DIR", str(tmp_path / "working"))
    monkeypatch.setenv("KAGGLE_TEMP_DIR", str(tmp_path / "temp"))
    start = time.time()
    summary = main(**dict(SMOKE, model=name, epochs=epochs))
    # About 2-4 s on an idle 2-core CPU; the slack absorbs a busy machine.
    assert time.time() - start < 45
    assert summary["epochs_run"] == epochs and summary["model"] == name
    out = tmp_path / "working"
    for ckpt_name in ("best.pt", "last.pt"):
        ckpt = torch.load(out / ckpt_name, weights_only=True)
        assert ckpt["format_version"] == 1 and ckpt["model_name"] == name
        assert set(ckpt) >= {"model_config", "state_dict", "epoch", "val_loss", "optimizer_state"}
        model = build_model(ckpt["model_name"], ckpt["model_config"])
        model.load_state_dict(ckpt["state_dict"], strict=True)
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == epochs
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    assert all({"train_loss", "val_loss", "lr", "seconds"} <= set(r) for r in rows)
    meta = json.loads((out / "metadata.json").read_text())
    assert {"config", "parameters", "durations", "final", "torch_version",
            "cuda_version", "gpu_names"} <= set(meta)
    assert meta["final"]["best_epoch"] >= 1 and meta["final"]["best_val_loss"] is not None
    assert meta["parameters"] == summary["parameters"]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_time_budget_stops_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_WORKING_DIR", str(tmp_path / "working"))
    monkeypatch.setenv("KAGGLE_TEMP_DIR", str(tmp_path / "temp"))
    summary = main(**dict(SMOKE, model="crn", epochs=5, time_budget_seconds=0.01))
    assert summary["stop_reason"] == "time_budget" and summary["epochs_run"] == 1
    assert (tmp_path / "working" / "best.pt").exists()


def test_fixed_steps_give_the_same_checkpoint_whatever_the_workers(tmp_path, monkeypatch):
    """The demo's promise: a fixed number of steps, a seeded data order and seeded crops give the
    same weights on every run; loader workers change nothing, since crops are drawn from their
    own seeds in the main process."""
    monkeypatch.setenv("KAGGLE_TEMP_DIR", str(tmp_path / "temp"))
    params = dict(SMOKE, model="dpt", epochs=3, steps_per_epoch=2, max_steps=5, schedule="cosine",
                  warmup_steps=2, num_threads=1, deterministic=True,
                  model_config='{"d_model": 32, "d_ff": 64, "n_blocks": 1, "channels": [8, 16]}')
    weights = []
    for i, workers in enumerate((0, 0, 2)):
        monkeypatch.setenv("KAGGLE_WORKING_DIR", str(tmp_path / f"run{i}"))
        summary = main(**dict(params, num_workers=workers))
        assert summary["stop_reason"] == "max_steps" and summary["epochs_run"] == 3
        rows = [json.loads(line) for line in (tmp_path / f"run{i}" / "metrics.jsonl").read_text().splitlines()]
        assert [r["steps"] for r in rows] == [2, 2, 1]
        weights.append(torch.load(tmp_path / f"run{i}" / "last.pt", weights_only=True)["state_dict"])
    assert weights[0]["freq_embed"].shape[-1] == 32  # the model_config JSON text was used
    for other in weights[1:]:
        assert all(torch.equal(weights[0][k], other[k]) for k in weights[0])
    torch.set_num_threads(max(1, os.cpu_count() or 1))


def test_cosine_schedule_warms_up_then_decays_to_the_last_step():
    from enhancer.train import _train_lr

    cfg = dict(TRAIN_DEFAULTS, lr=1.0, warmup_steps=2, schedule="cosine", _total_steps=12)
    lrs = [_train_lr(cfg, step) for step in range(12)]
    assert lrs[:3] == [0.5, 1.0, 1.0] and lrs[-1] > 0.05
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    assert _train_lr(dict(cfg, schedule="plateau"), 5) is None  # left to ReduceLROnPlateau


def test_parameters_are_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_WORKING_DIR", str(tmp_path / "working"))
    with pytest.raises(TypeError, match="bogus"):
        main(bogus=1)
    assert "model" in TRAIN_DEFAULTS and TRAIN_DEFAULTS["loss"] == "sisdr"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_fails_fast_without_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_WORKING_DIR", str(tmp_path / "working"))
    monkeypatch.setenv("KAGGLE_TEMP_DIR", str(tmp_path / "temp"))
    start = time.time()
    with pytest.raises(RuntimeError, match="NvidiaTeslaT4"):
        main(**dict(SMOKE, device="cuda"))
    assert time.time() - start < 5
    assert not (tmp_path / "temp" / "synthetic").exists()
    assert select_device("auto").type == "cpu"


def test_modules_follow_notebook_rules():
    """The modules, inlined in order, must share one namespace without clashes."""
    allowed = {"torch", "numpy", "soundfile"}
    defined = {}
    chunks = []
    for module in ENHANCER_ORDER:
        with open(os.path.join(SRC, module + ".py")) as fh:
            source = fh.read()
        tree = ast.parse(source)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                assert node.module and node.level == 0 and node.module != "__future__"
                if node.module.startswith("enhancer"):
                    for alias in node.names:
                        assert alias.name != "*"
                        assert defined.get(alias.name) in ENHANCER_ORDER[:ENHANCER_ORDER.index(module)]
                else:
                    assert node.module.split(".")[0] in allowed | set(_stdlib())
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top != "enhancer" and (top in allowed or top in _stdlib())
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)):
                targets = [node] if not isinstance(node, ast.Assign) else node.targets
                for target in targets:
                    name = getattr(target, "name", None) or getattr(target, "id", None)
                    assert name not in defined, "%s defined in %s and %s" % (
                        name, defined.get(name), module)
                    defined[name] = module
            elif isinstance(node, ast.If):
                assert "__main__" not in ast.unparse(node.test)
        chunks.append("\n".join(line for line in source.splitlines()
                                if not line.startswith("from enhancer.")))
    compile("\n\n".join(chunks), "notebook", "exec")


def _stdlib():
    import sys
    return sys.stdlib_module_names
