"""The local evaluator on the project's own demo speech: metric values, failure cases,
discovery, the process pool, the cache, and `kjob eval-local` / `kjob compare` end to end."""

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from kjob.cli import cli
from speechscore.discovery import discover
from speechscore.metrics import active_metrics, score_signal, si_sdr
from speechscore.model import enhance
from speechscore.runner import EvalRequest, evaluate

PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "data" / "demo"
PESQ_PAIR = PROJECT.parent / "shared" / "data" / "pesq-pair"


def demo(name: str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) float32 of one demo pair."""
    noisy_dir, clean_dir = (("test", "y_test") if split == "test" else ("train", "y_train"))
    noisy, _ = sf.read(DEMO / noisy_dir / name, dtype="float32")
    clean, _ = sf.read(DEMO / clean_dir / name, dtype="float32")
    return noisy, clean


def copy_demo(dest: Path, count: int, noisy_dir: str = "test", clean_dir: str = "y_test") -> Path:
    for i in range(1, count + 1):
        for src, dst in (("test", noisy_dir), ("y_test", clean_dir)):
            (dest / dst).mkdir(parents=True, exist_ok=True)
            shutil.copy(DEMO / src / f"{i:04d}.wav", dest / dst / f"{i:04d}.wav")
    return dest


def write(path: Path, wave: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate, subtype=subtype)


# --- metric values on real speech ------------------------------------------------------

def test_noisy_baseline_is_sane_and_si_sdr_tracks_the_mixing_snr():
    files = [f for f in json.loads((DEMO / "manifest.json").read_text())["files"] if f["split"] == "test"]
    for f in files:
        noisy, clean = demo(f["file"])
        value = si_sdr(clean, noisy).value
        # The demo's SNR counts only active speech frames, so SI-SDR sits a little below it.
        assert f["snr_db"] - 2.0 < value < f["snr_db"] + 0.5, f
    for name in ("0001.wav", "0002.wav"):
        scores = score_signal(*demo(name)[::-1])
        assert 1.0 <= scores["pesq_wb"].value < 3.0
        assert 0.6 < scores["stoi"].value < 1.0
        assert 0.3 < scores["estoi"].value < scores["stoi"].value


def test_clean_as_enhanced_is_at_the_ceiling_and_a_shift_hurts_only_si_sdr():
    _, clean = demo("0003.wav")
    perfect = score_signal(clean, clean)
    assert perfect["pesq_wb"].value == pytest.approx(4.64, abs=0.01)
    assert perfect["stoi"].value > 0.999 and perfect["estoi"].value > 0.999
    assert perfect["si_sdr"].value > 90
    shifted = score_signal(clean, np.concatenate([np.zeros(3, np.float32), clean[:-3]]))
    assert shifted["si_sdr"].value < 5  # about 100 dB lower
    assert shifted["pesq_wb"].value > perfect["pesq_wb"].value - 0.05
    assert shifted["stoi"].value > 0.99


@pytest.mark.skipif(not PESQ_PAIR.is_dir(), reason="the published PESQ pair in ../shared is absent")
def test_published_values_and_the_mean_removed_si_sdr_convention():
    ref, _ = sf.read(PESQ_PAIR / "speech.wav", dtype="float32")
    deg, _ = sf.read(PESQ_PAIR / "speech_bab_0dB.wav", dtype="float32")
    scores = score_signal(ref, deg, active_metrics(pesq_nb=True))
    assert scores["pesq_wb"].value == 1.0832337141036987
    assert scores["pesq_nb"].value == 1.6072081327438354
    assert scores["stoi"].value == pytest.approx(0.67392, abs=1e-5)
    assert scores["si_sdr"].value == pytest.approx(0.104, abs=1e-3)  # 0.140 without mean removal


def test_undefined_metrics_give_reasons_instead_of_raising():
    noisy, clean = demo("0004.wav")
    silent = score_signal(np.zeros_like(clean), noisy)
    assert all(s.value is None and s.reason == "silent reference" for s in silent.values())
    nan = score_signal(clean, np.full_like(clean, np.nan))
    assert all(s.value is None and "NaN" in s.reason for s in nan.values())
    zero = score_signal(clean, np.zeros_like(clean))
    assert all(s.value is None and "all zeros" in s.reason for s in zero.values())
    short = score_signal(clean[:3200], noisy[:3200])
    assert short["pesq_wb"].value is None and "too short" in short["pesq_wb"].reason
    assert short["stoi"].value is None and "too little speech" in short["stoi"].reason
    assert short["si_sdr"].value is not None
    unequal = score_signal(clean, noisy[:-1])
    assert all(s.reason == "unequal lengths" for s in unequal.values())


def test_long_inputs_are_enhanced_in_chunks_to_the_exact_length():
    import torch

    wave = np.random.default_rng(0).standard_normal(16000 * 25 + 77).astype(np.float32)
    identity = torch.nn.Identity()
    out = enhance(identity, wave, chunk_seconds=4.0, overlap_seconds=0.5)
    assert out.shape == wave.shape
    np.testing.assert_allclose(out, wave, atol=1e-6)


# --- the runner ------------------------------------------------------------------------

def test_failure_cases_keep_their_rows_and_are_counted(tmp_path):
    data = copy_demo(tmp_path / "data", 3)
    noisy, clean = demo("0004.wav")
    write(data / "test" / "silent.wav", noisy)
    write(data / "y_test" / "silent.wav", np.zeros_like(clean))
    noisy, clean = demo("0005.wav")
    write(data / "test" / "short.wav", noisy[:3200])  # 0.2 s
    write(data / "y_test" / "short.wav", clean[:3200])
    enhanced = tmp_path / "enhanced"
    enhanced.mkdir()
    for name in ("0001", "silent", "short"):
        shutil.copy(data / "y_test" / f"{name}.wav", enhanced / f"{name}.wav")
    length = sf.info(data / "y_test" / "0002.wav").frames
    write(enhanced / "0002.wav", np.full(length, np.nan, np.float32), subtype="FLOAT")
    write(enhanced / "0003.wav", np.zeros(sf.info(data / "y_test" / "0003.wav").frames, np.float32))

    summary = evaluate(EvalRequest(data, tmp_path / "out", enhanced=enhanced, jobs=2))
    rows = {r["name"]: r for r in csv.DictReader(open(tmp_path / "out" / "per_utterance.csv"))}
    assert summary["count"] == 5 and set(rows) == {"0001", "0002", "0003", "silent", "short"}
    assert float(rows["0001"]["pesq_wb_enhanced"]) > 4.5 and float(rows["0001"]["si_sdr_enhanced"]) > 90
    assert rows["silent"]["pesq_wb_noisy"] == "" and "silent reference" in rows["silent"]["notes"]
    assert rows["short"]["pesq_wb_noisy"] == "" and "too short for PESQ" in rows["short"]["notes"]
    assert rows["short"]["si_sdr_noisy"] != ""
    assert rows["0002"]["stoi_enhanced"] == "" and "NaN" in rows["0002"]["notes"]
    assert rows["0002"]["stoi_noisy"] != "" and rows["0002"]["stoi_delta"] == ""
    assert "all zeros" in rows["0003"]["notes"]
    failures = summary["failures"]
    assert failures["noisy"]["pesq_wb"]["count"] == 2
    assert failures["enhanced"]["pesq_wb"]["count"] == 4
    assert failures["enhanced"]["si_sdr"]["reasons"] == {"silent reference": 1, "output has NaN or infinite samples": 1,
                                                         "output is all zeros": 1}
    assert summary["utterances_with_failures"] == 4
    assert "Le Roux" in summary["conventions"]["si_sdr"] and "mean" in summary["conventions"]["si_sdr"]


def test_parallel_scores_equal_serial_ones(tmp_path):
    data = copy_demo(tmp_path / "data", 6)
    serial = evaluate(EvalRequest(data, tmp_path / "one", enhanced=data / "y_test", jobs=1, pesq_nb=True))
    parallel = evaluate(EvalRequest(data, tmp_path / "two", enhanced=data / "y_test", jobs=2, pesq_nb=True))
    assert (tmp_path / "one" / "per_utterance.csv").read_text() == (tmp_path / "two" / "per_utterance.csv").read_text()
    assert serial["means"] == parallel["means"] and (serial["jobs"], parallel["jobs"]) == (1, 2)


def test_noisy_scores_come_from_the_cache_the_second_time(tmp_path):
    data = copy_demo(tmp_path / "data", 4)
    cache = tmp_path / "cache"
    first = evaluate(EvalRequest(data, tmp_path / "a", enhanced=data / "test", cache_dir=cache))
    second = evaluate(EvalRequest(data, tmp_path / "b", enhanced=data / "y_test", cache_dir=cache))
    assert (first["noisy_cache"]["hits"], first["noisy_cache"]["misses"]) == (0, 4)
    assert (second["noisy_cache"]["hits"], second["noisy_cache"]["misses"]) == (4, 0)
    assert first["means"]["noisy"] == second["means"]["noisy"]
    # The key is the files' content: a changed noisy file is scored again.
    noisy, _ = demo("0001.wav")
    write(data / "test" / "0001.wav", noisy * 0.5)
    third = evaluate(EvalRequest(data, tmp_path / "c", enhanced=data / "y_test", cache_dir=cache))
    assert (third["noisy_cache"]["hits"], third["noisy_cache"]["misses"]) == (3, 1)


def test_other_sample_rates_are_resampled(tmp_path):
    import soxr

    data = tmp_path / "data"
    for name, rate in (("0001", 22050), ("0002", 8000)):
        noisy, clean = demo(f"{name}.wav")
        write(data / "noisy" / f"{name}.wav", soxr.resample(noisy, 16000, rate), rate)
        write(data / "clean" / f"{name}.wav", soxr.resample(clean, 16000, rate), rate)
    summary = evaluate(EvalRequest(data, tmp_path / "out", enhanced=data / "clean", jobs=1))
    assert summary["data"]["resampled_from"] == {"22050": 1, "8000": 1}
    assert summary["data"]["source"] == "noisy/ + clean/"
    assert summary["failures"]["noisy"]["pesq_wb"]["count"] == 0
    assert summary["means"]["enhanced"]["pesq_wb"] > 4.5


def test_unequal_lengths_stop_the_evaluation_naming_the_pair(tmp_path):
    data = copy_demo(tmp_path / "data", 2)
    _, clean = demo("0002.wav")
    write(data / "y_test" / "0002.wav", clean[:-100])
    result = CliRunner().invoke(cli, ["eval-local", "--data", str(data), "--enhanced", str(data / "y_test"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 3
    assert "0002" in result.stderr and "equally long" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


# --- discovery ---------------------------------------------------------------------------

def test_nested_folders_archives_and_manifests_are_found(tmp_path):
    nested = copy_demo(tmp_path / "nested" / "corpus" / "v1", 3, "noisy_testset_wav", "clean_testset_wav")
    (nested / "noisy_testset_wav" / "0003.wav").rename(nested / "noisy_testset_wav" / "lonely.wav")
    found = discover(tmp_path / "nested", tmp_path / "x")
    assert [p.name for p in found.pairs] == ["0001", "0002"]
    assert sorted((Path(u.path).name, u.side) for u in found.unmatched) == [("0003.wav", "clean"), ("lonely.wav", "noisy")]

    packed = copy_demo(tmp_path / "pack" / "dataset", 3)
    archive_dir = tmp_path / "archived"
    archive_dir.mkdir()
    with zipfile.ZipFile(archive_dir / "testset.zip", "w") as zf:
        for wav in sorted(packed.rglob("*.wav")):
            zf.write(wav, wav.relative_to(tmp_path / "pack"))
    extract_dir = tmp_path / "extracted"
    found = discover(archive_dir, extract_dir)
    assert [p.name for p in found.pairs] == ["0001", "0002", "0003"]
    assert found.pairs[0].noisy.is_relative_to(extract_dir)
    assert discover(archive_dir / "testset.zip", extract_dir).pairs[0].noisy == found.pairs[0].noisy  # extracted once
    seven = shutil.which("7zz") or shutil.which("7z") or shutil.which("7za")
    if seven:
        subprocess.run([seven, "a", str(archive_dir / "more.7z"), "dataset"], cwd=tmp_path / "pack", check=True,
                       capture_output=True)
        (archive_dir / "testset.zip").unlink()
        assert [p.name for p in discover(archive_dir, extract_dir).pairs] == ["0001", "0002", "0003"]

    (tmp_path / "list.csv").write_text("noisy,clean\npack/dataset/test/0001.wav,pack/dataset/y_test/0001.wav\n"
                                       "pack/dataset/test/0002.wav,pack/dataset/y_test/missing.wav\n")
    found = discover(tmp_path / "list.csv", extract_dir)
    assert [p.name for p in found.pairs] == ["0001"]
    assert [(Path(u.path).name, u.why) for u in found.unmatched] == [("missing.wav", "manifest line 3: file not found")]


# --- the command line ---------------------------------------------------------------------

@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.kjob]\nowner = "x"\n')
    copy_demo(tmp_path / "data", 3)
    return tmp_path


def kjob(*args):
    return CliRunner().invoke(cli, list(args))


def save_crn(path: Path, plain: bool = False, prefix: str = "") -> None:
    import torch

    from enhancer.models import build_model

    torch.manual_seed(0)
    model = build_model("crn")
    state = {prefix + k: v for k, v in model.state_dict().items()}
    obj = state if plain else {"format_version": 1, "model_name": "crn", "model_config": model.config,
                               "state_dict": state, "epoch": 3, "val_loss": -1.5, "optimizer_state": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


def test_eval_local_with_a_checkpoint_writes_every_output(ws):
    save_crn(ws / "ckpt" / "best.pt")
    result = kjob("eval-local", "--data", "data", "--checkpoint", "ckpt/best.pt", "--report", "--save-audio",
                  "--jobs", "2")
    assert result.exit_code == 0, result.output
    # The default name says what was evaluated and on which test set (its content hash).
    [out] = (ws / "eval" / "reports").glob("ckpt-best--data-*")
    assert re.fullmatch(r"ckpt-best--data-[0-9a-f]{8}", out.name)
    assert f"wrote eval/reports/{out.name}/" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 3 and summary["provenance"]["model"] == "crn"
    assert summary["provenance"]["parameters"] > 100_000 and summary["provenance"]["epoch"] == 3
    assert sorted(p.name for p in (out / "enhanced").iterdir()) == ["0001.wav", "0002.wav", "0003.wav"]
    assert sf.info(out / "enhanced" / "0001.wav").frames == sf.info(ws / "data" / "test" / "0001.wav").frames
    assert (out / "report.html").is_file() and len(list((out / "report_files").glob("0*.png"))) == 9
    html = (out / "report.html").read_text()
    # The checkpoint's epoch, validation loss and parameter count in words.
    assert "epoch: <b>3</b>" in html and "validation loss: <b>-1.5</b>" in html
    assert re.search(r"parameters: <b>\d\.\d\d million \(\d{3},\d{3}\)</b>", html), html[:3000]
    assert not [p for p in out.parent.iterdir() if ".part-" in p.name or ".old-" in p.name]

    # A plain state_dict (with DataParallel's prefix) needs --model.
    save_crn(ws / "plain.pt", plain=True, prefix="module.")
    result = kjob("eval-local", "--data", "data", "--checkpoint", "plain.pt")
    assert result.exit_code == 2 and "--model" in result.stderr
    result = kjob("eval-local", "--data", "data", "--checkpoint", "plain.pt", "--model", "crn", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["means"] == summary["means"]
    result = kjob("eval-local", "--data", "data", "--checkpoint", "plain.pt", "--model", "dpt")
    assert result.exit_code == 3 and "does not fit model 'dpt'" in result.stderr
    (ws / "broken.pt").write_bytes((ws / "plain.pt").read_bytes()[:5000])
    result = kjob("eval-local", "--data", "data", "--checkpoint", "broken.pt", "--model", "crn")
    assert result.exit_code == 3 and result.stderr.count("\n") == 1 and "Traceback" not in result.output

    (ws / "notes").mkdir()
    (ws / "notes" / "keep.txt").write_text("mine")
    result = kjob("eval-local", "--data", "data", "--checkpoint", "ckpt/best.pt", "--out", "notes")
    assert result.exit_code == 2 and "refusing to replace" in result.stderr
    assert (ws / "notes" / "keep.txt").read_text() == "mine"

    result = kjob("compare", "--format", "csv")
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [r["run"] for r in rows] == ["noisy input", "ckpt-best", "plain"]
    assert "| noisy input |" in kjob("eval-local", "--compare").stdout.splitlines()[4]


def test_eval_local_run_uses_the_fetched_best_checkpoint_and_records_scores(ws):
    from kjob.runs.ledger import Ledger
    from kjob.runs.record import RunStatus
    from kjob.workspace import find_workspace

    paths = find_workspace().paths
    with Ledger(paths.ledger) as ledger:
        ledger.record(kernel="r3-crn", backend="local", version=2, notebook_sha256="0" * 64, parameters={},
                      git_commit=None, git_dirty=None, handle={}, state=RunStatus("complete"))
    result = kjob("eval-local", "--data", "data", "--run", "r3-crn:v2")
    assert result.exit_code == 4 and "kjob fetch r3-crn --version 2 --backend local --output" in result.stderr

    save_crn(paths.download("r3-crn", "local", 2).output_file("best.pt"))
    result = kjob("eval-local", "--data", "data", "--run", "r3-crn:v2")
    assert result.exit_code == 0, result.output
    [folder] = paths.reports.glob("r3-crn-local-v2--data-*")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["provenance"]["run_label"] == "r3-crn v2 (local)"
    with Ledger(paths.ledger) as ledger:
        metrics = ledger.find("r3-crn", 2).metrics
    assert metrics["pesq_wb"] == round(summary["means"]["enhanced"]["pesq_wb"], 6)
    assert set(metrics) >= {"stoi", "estoi", "si_sdr", "pesq_wb_delta", "si_sdr_delta"}
    runs = kjob("runs").stdout
    assert "PESQ_WB" in runs and "SI_SDR" in runs


def test_compare_and_help_do_not_import_the_heavy_modules(ws):
    code = ("import sys\nfrom kjob.cli import cli\n"
            "for args in (['--help'], ['eval-local', '--help'], ['compare'], ['leakage', '--help']):\n"
            "    try:\n        cli(args)\n    except SystemExit as e:\n        assert e.code == 0, (args, e.code)\n"
            "heavy = [m for m in ('torch', 'numpy', 'pesq', 'pystoi') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ws, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_same_named_files_in_two_folders_are_listed_not_dropped(tmp_path):
    import shutil

    from speechscore.discovery import discover

    demo = Path(__file__).resolve().parents[1] / "data" / "demo"
    for speaker in ("spk1", "spk2"):
        for side, source in (("noisy", "test"), ("clean", "y_test")):
            folder = tmp_path / "set" / side / speaker
            folder.mkdir(parents=True)
            shutil.copy(demo / source / "0001.wav", folder / "0001.wav")
    found = discover(tmp_path / "set", tmp_path / "cache")
    assert len(found.pairs) == 1
    assert sorted(u.side for u in found.unmatched) == ["clean", "noisy"]
    assert all("same file name" in u.why for u in found.unmatched)
