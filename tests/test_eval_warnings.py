"""The evaluation says where the model hurts (issue 20), on the demo's real speech: warnings
for a mean improvement below zero and for more than a tenth of the utterances made worse,
broken down by noise kind, SNR band and voice; a note on a checkpoint from very few epochs;
bootstrap intervals of the mean improvements; the improvement against the input SNR; nice
ticks on every chart; a note on stereo files averaged to mono. The report is read back
from the DOM of a real headless Chromium. Also (issue 18): saved audio names never collide."""

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from kjob.cli import cli
from speechscore.confidence import bootstrap_interval
from speechscore.runner import EvalRequest, evaluate

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
CHROMIUM = Path("/usr/bin/chromium")
SHOT = Path("/tmp/kjob-report-warnings-top.png")


def demo_files() -> list[dict]:
    """The demo's pairs with whatever conditions its manifest gives (read defensively: the
    generator may add fields or noise kinds)."""
    entries = json.loads((DEMO / "manifest.json").read_text())["files"]
    found = []
    for e in entries:
        noisy_dir, clean_dir = ("test", "y_test") if e.get("split") == "test" else ("train", "y_train")
        if (DEMO / noisy_dir / e["file"]).is_file() and (DEMO / clean_dir / e["file"]).is_file():
            found.append({**e, "noisy": DEMO / noisy_dir / e["file"], "clean": DEMO / clean_dir / e["file"]})
    return found


def make_set(dest: Path, picked: list[dict], names: list[str] | None = None, manifest: bool = True) -> Path:
    """A test set of the picked demo pairs (renamed), with its own manifest.json."""
    names = names or [f"u{i + 1:02d}" for i in range(len(picked))]
    for side in ("test", "y_test"):
        (dest / side).mkdir(parents=True, exist_ok=True)
    files = []
    for name, entry in zip(names, picked):
        shutil.copy(entry["noisy"], dest / "test" / f"{name}.wav")
        shutil.copy(entry["clean"], dest / "y_test" / f"{name}.wav")
        files.append({"split": "test", "file": f"{name}.wav", "noise": entry.get("noise"),
                      "snr_db": entry.get("snr_db"), "voice": entry.get("voice"), "added_later": {"x": 1}})
    if manifest:
        (dest / "manifest.json").write_text(json.dumps({"generator": "test", "files": files}))
    return dest


def read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def save_random_crn(path: Path, epoch: int = 1) -> Path:
    """An untrained CRN, as the training code saves it, from epoch `epoch`."""
    import torch

    from enhancer.models import build_model

    torch.manual_seed(0)
    model = build_model("crn")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format_version": 1, "model_name": "crn", "model_config": model.config,
                "state_dict": model.state_dict(), "epoch": epoch, "val_loss": -1.0}, path)
    return path


@pytest.fixture
def outside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    return tmp_path


def kjob(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# --- an untrained checkpoint: every mean worse, a young checkpoint --------------------

@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained CRN from epoch 1 on 6 demo pairs, through `kjob eval-local --report`."""
    tmp = tmp_path_factory.mktemp("untrained")
    pool = [f for f in demo_files() if f.get("split") == "test"][:6]
    data = make_set(tmp / "data", pool)
    checkpoint = save_random_crn(tmp / "rand" / "best.pt", epoch=1)
    result = CliRunner().invoke(cli, ["eval-local", "--data", str(data), "--checkpoint", str(checkpoint), "--report",
                                      "--jobs", "2", "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    return tmp, result, json.loads((tmp / "out" / "summary.json").read_text())


def test_an_untrained_checkpoint_is_warned_about_on_the_terminal_and_in_the_summary(untrained):
    _, result, summary = untrained
    assert all(summary["improvements"][m] < 0 for m in summary["metrics"])  # every mean worse
    warnings = summary["warnings"]
    # First: the means below zero, each with its interval; then the share made worse.
    assert warnings[0].startswith("mean improvement below zero: PESQ-WB -"), warnings
    assert "95 % CI" in warnings[0] and "SI-SDR" in warnings[0]
    worse = summary["changes"]["any"]["worse"]
    assert f"{worse} of 6 utterances" in warnings[1] and "more than a tenth" in warnings[1]
    assert any(w.startswith("worse by noise kind") for w in warnings)
    assert any(w.startswith("worse by voice") for w in warnings)
    assert summary["regressions"]["negative_means"] == summary["metrics"]
    assert summary["regressions"]["share"] > 0.1
    # The checkpoint is from epoch 1.
    assert any("from epoch 1 (fewer than 3)" in w for w in warnings)
    # On the terminal: the same lines, before the table.
    err = result.stderr
    assert "warning: mean improvement below zero: PESQ-WB" in err and "warning: worse by noise kind" in err
    assert "warning: the checkpoint's weights are from epoch 1" in err


def test_intervals_of_the_mean_improvements_in_summary_terminal_and_report(untrained):
    tmp, result, summary = untrained
    for m in summary["metrics"]:
        ci, mean = summary["improvement_intervals"][m], summary["improvements"][m]
        assert ci["n"] == 6 and ci["low"] < mean < ci["high"], (m, ci, mean)
    assert "bootstrap" in summary["conventions"]["improvement_intervals"]
    header = next(line for line in result.stdout.splitlines() if line.startswith("METRIC"))
    assert "95% CI" in header
    ci = summary["improvement_intervals"]["pesq_wb"]
    assert f"{ci['low']:+.3f} to {ci['high']:+.3f}" in result.stdout
    html = (tmp / "out" / "report.html").read_text()
    assert f"{ci['low']:+.3f} to {ci['high']:+.3f}" in html and ">95 % CI</th>" in html


def test_the_bootstrap_is_seeded_and_about_as_wide_as_the_normal_interval():
    rows = [f for f in demo_files() if f.get("split") == "test"]
    # Real per-utterance numbers: the demo's own SNRs.
    values = [float(f["snr_db"]) for f in rows if isinstance(f.get("snr_db"), (int, float))]
    assert len(values) >= 10
    first, again = bootstrap_interval(values), bootstrap_interval(values)
    assert first == again
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    half = 1.96 * sd / math.sqrt(len(values))
    assert first[0] < mean < first[1]
    assert 0.7 * 2 * half < first[1] - first[0] < 1.3 * 2 * half
    assert bootstrap_interval([1.0]) is None and bootstrap_interval([]) is None


def test_the_training_record_beside_the_checkpoint_tells_a_young_run_from_a_stalled_one(outside):
    data = make_set(outside / "data", demo_files()[:1])
    save_random_crn(outside / "young" / "best.pt", epoch=2)
    save_random_crn(outside / "stalled" / "best.pt", epoch=1)
    (outside / "stalled" / "metadata.json").write_text(json.dumps({"status": "completed", "final": {"epochs_run": 30}}))
    save_random_crn(outside / "grown" / "best.pt", epoch=3)
    notes = {}
    for name in ("young", "stalled", "grown"):
        result = kjob("eval-local", "--data", data, "--checkpoint", outside / name / "best.pt", "--out", outside / f"o-{name}")
        assert result.exit_code == 0, result.output
        notes[name] = [line for line in result.stderr.splitlines() if "checkpoint's weights" in line]
    assert notes["young"] == ["warning: the checkpoint's weights are from epoch 2 (fewer than 3): so little training "
                              "says little about what the model or its recipe can do"]
    assert len(notes["stalled"]) == 1 and "from epoch 1 (fewer than 3) although its run trained 30" in notes["stalled"][0]
    assert notes["grown"] == []


# --- a model good overall that hurts one noise kind ----------------------------------

def test_a_condition_the_model_hurts_is_named_even_when_the_overall_figures_look_fine(tmp_path):
    files = demo_files()
    kinds: dict[str, list] = {}
    for f in files:
        kinds.setdefault(f.get("noise"), []).append(f)
    hurt_kind = next(k for k, v in sorted(kinds.items(), key=lambda kv: str(kv[0])) if k and len(v) >= 2)
    others = [f for f in files if f.get("noise") != hurt_kind][:18]
    assert len(others) == 18
    picked = kinds[hurt_kind][:2] + others
    data = make_set(tmp_path / "data", picked)
    enhanced = tmp_path / "enhanced"
    enhanced.mkdir()
    rng = np.random.default_rng(0)
    for i in range(len(picked)):
        noisy, clean = read(data / "test" / f"u{i + 1:02d}.wav"), read(data / "y_test" / f"u{i + 1:02d}.wav")
        # Two of one noise kind made worse, every other one half-way to the clean speech.
        wave = noisy + 0.05 * rng.standard_normal(noisy.size).astype(np.float32) if i < 2 else 0.5 * (noisy + clean)
        sf.write(enhanced / f"u{i + 1:02d}.wav", wave, 16000, subtype="FLOAT")
    summary = evaluate(EvalRequest(data, tmp_path / "out", enhanced=enhanced, jobs=2))
    assert summary["changes"]["any"]["worse"] == 2 and summary["count"] == 20  # a tenth: not more
    assert all(summary["improvements"][m] > 0 for m in summary["metrics"])
    line = next((w for w in summary["warnings"] if w.startswith("worse by noise kind")), None)
    assert line is not None, summary["warnings"]
    assert f"{hurt_kind} 2 of 2 (PESQ-WB -" in line
    assert not any(w.startswith("mean improvement below zero") or "more than a tenth" in w for w in summary["warnings"])
    assert summary["breakdown"]["by_noise"][hurt_kind]["worse"] == 2
    assert summary["regressions"]["flagged"]["by_noise"] == [hurt_kind]


# --- the input SNR, given or estimated -------------------------------------------------

def test_the_input_snr_is_estimated_where_the_data_do_not_give_it(tmp_path):
    picked = [f for f in demo_files() if isinstance(f.get("snr_db"), (int, float))][:4]
    data = make_set(tmp_path / "data", picked, manifest=False)
    evaluate(EvalRequest(data, tmp_path / "out", enhanced=data / "y_test", jobs=2, report=True))
    import csv

    rows = list(csv.DictReader(open(tmp_path / "out" / "per_utterance.csv")))
    for row, entry in zip(rows, picked):
        assert row["snr_db"] == ""
        # The demo's SNR counts only active speech frames, so the whole-signal estimate sits a little below.
        assert entry["snr_db"] - 3.0 < float(row["snr_estimated_db"]) < entry["snr_db"] + 0.5, (row, entry)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Input SNR estimated from clean and noisy" in html
    assert html.count('data-kind="snr"') == 4


# --- stereo ------------------------------------------------------------------------------

def test_stereo_files_averaged_to_mono_are_noted(outside):
    picked = demo_files()[:2]
    data = make_set(outside / "data", picked)
    noisy = read(data / "test" / "u01.wav")
    sf.write(data / "test" / "u01.wav", np.stack([noisy, noisy], axis=1), 16000, subtype="FLOAT")
    enhanced = outside / "enhanced"
    enhanced.mkdir()
    for name in ("u01", "u02"):
        clean = read(data / "y_test" / f"{name}.wav")
        sf.write(enhanced / f"{name}.wav", np.stack([clean, clean], axis=1) if name == "u02" else clean, 16000,
                 subtype="FLOAT")
    result = kjob("eval-local", "--data", "data", "--enhanced", "enhanced", "--out", "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data"]["averaged_to_mono"]["noisy"]["count"] == 1
    assert summary["data"]["averaged_to_mono"]["clean"]["count"] == 0
    assert summary["data"]["averaged_to_mono"]["enhanced"] == {"count": 1, "files": ["u02"]}
    notes = [w for w in summary["warnings"] if "more than one channel" in w]
    assert len(notes) == 2 and "u01.wav" in notes[0] and "averaged to mono" in notes[0]
    assert "warning: 1 noisy file(s) had more than one channel" in result.stderr


# --- saved audio names (issue 18) -----------------------------------------------------

def test_saved_audio_names_never_collide(outside):
    """Names that differ only in ", ' or ? (and one already safe) all keep their own file."""
    picked = [f for f in demo_files() if f.get("split") == "test"][:9]
    names = ['a"b', "a'b", "a?b", "a_b", "A?B", "c d", "e", "f.g", "h"]
    data = make_set(outside / "data", picked, names=names)
    lengths = {name: sf.info(data / "test" / f"{name}.wav").frames for name in names}
    assert len(set(lengths.values())) == len(names)  # each pair recognisable by its length
    save_random_crn(outside / "ckpt.pt", epoch=5)
    result = kjob("eval-local", "--data", "data", "--checkpoint", "ckpt.pt", "--save-audio", "--out", "out")
    assert result.exit_code == 0, result.output
    assert "evaluated 9 utterances" in result.stdout
    assert "epoch" not in result.stderr  # epoch 5: no note
    import csv

    rows = list(csv.DictReader(open(outside / "out" / "per_utterance.csv")))
    saved = sorted((outside / "out" / "enhanced").iterdir())
    assert len(saved) == 9 and len({r["enhanced_file"] for r in rows}) == 9
    for row in rows:
        path = outside / "out" / row["enhanced_file"]
        assert path.is_file() and sf.info(path).frames == lengths[row["name"]], row
    by_name = {r["name"]: r["enhanced_file"] for r in rows}
    assert by_name["a_b"] == "enhanced/a_b.wav" and by_name["e"] == "enhanced/e.wav"  # safe names stay
    assert re.fullmatch(r"enhanced/a_b-[0-9a-f]{8}\.wav", by_name['a"b'])
    # The same names on another run: the same files (deterministic).
    from speechscore.writing import audio_file_names

    assert audio_file_names(list(reversed(names))) == list(reversed(audio_file_names(names)))


# --- the report in Chromium: warnings at the top, SNR charts, nice ticks -------------

def chart_axes(dom: str) -> list[dict]:
    """Each chart of the DOM: its kind, the tick labels of both axes and its point count."""
    charts = []
    for kind, body in re.findall(r'<svg class="?chart"? data-kind="(\w+)"[^>]*>(.*?)</svg>', dom, re.S):
        axes = {}
        for axis, step, inner in re.findall(r'<g class="ticks (x|y)" data-step="([^"]+)">(.*?)</g>', body, re.S):
            labels = [t.replace("−", "-") for t in re.findall(r"<text[^>]*>([^<]*)</text>", inner)]
            axes[axis] = (float(step), [float(t) for t in labels])
        charts.append({"kind": kind, "axes": axes, "points": body.count("<circle"), "bars": body.count("<rect")})
    return charts


def nice(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")
def test_report_top_warnings_snr_plots_and_nice_ticks_in_chromium(untrained):
    from test_eval_report import chromium

    tmp, _, summary = untrained
    page = tmp / "out" / "report.html"
    dom = chromium(page, "", tmp, budget=3000)
    # The warnings box comes before the summary table, with the where-it-hurts lines first.
    box = re.search(r'<div class="?warnings"?>(.*?)</div>', dom, re.S)
    assert box and dom.index(box.group(0)) < dom.index('<table id="summary">')
    items = [re.sub(r"<[^>]+>", "", i).replace("&amp;", "&") for i in re.findall(r"<li>(.*?)</li>", box.group(1), re.S)]
    assert items[0].startswith("mean improvement below zero") and "more than a tenth" in items[1]
    assert any("from epoch 1 (fewer than 3)" in i for i in items)

    charts = chart_axes(dom)
    kinds = [c["kind"] for c in charts]
    metrics = summary["metrics"]
    assert kinds.count("histogram") == kinds.count("scatter") == kinds.count("snr") == len(metrics)
    for chart in charts:
        assert set(chart["axes"]) == {"x", "y"}, chart
        for axis, (step, values) in chart["axes"].items():
            assert 4 <= len(values) <= 7, (chart["kind"], axis, values)
            assert nice(step), (chart["kind"], axis, step)
            gaps = [b - a for a, b in zip(values, values[1:])]
            assert all(abs(g - step) < 1e-6 * max(1.0, abs(step)) for g in gaps), (chart["kind"], axis, values)
        if chart["kind"] == "histogram":
            assert chart["axes"]["y"][1][0] == 0 and all(v == int(v) for v in chart["axes"]["y"][1])
    # The SNR charts: one point per utterance, at SNRs inside the x axis (the manifest's).
    import csv

    snrs = [float(r["snr_db"]) for r in csv.DictReader(open(tmp / "out" / "per_utterance.csv"))]
    for chart in (c for c in charts if c["kind"] == "snr"):
        assert chart["points"] == summary["count"] == len(snrs)
        ticks = chart["axes"]["x"][1]
        assert ticks[0] <= min(snrs) and max(snrs) <= ticks[-1]
    assert "Input SNR from manifest.json" in dom

    chromium(page, "", tmp, screenshot=SHOT, budget=3000)
    assert SHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
