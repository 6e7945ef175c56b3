"""The HTML report opened in a real headless Chromium at 1,400 x 900: every audio player
loads its file, every spectrogram shows, the page fits without horizontal scrolling with
one utterance's three players and spectrograms side by side, and sorting and the
regressions-only view change what is listed. Screenshots go to /tmp/kjob-report-*.png."""

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechscore.runner import EvalRequest, evaluate

CHROMIUM = Path("/usr/bin/chromium")
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
SHOTS = Path("/tmp")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report over 7 utterances whose 'enhanced' files are made to differ: the clean
    file itself (SI-SDR ceiling), the clean file 3 samples late (a lag), more noise (worse),
    a half-way mix (better), the noisy input (unchanged) and a 0.2 s clip."""
    tmp = tmp_path_factory.mktemp("report")
    data, enhanced = tmp / "data", tmp / "enhanced"
    # The lag and the added noise must make things worse: they go to the cleanest inputs
    # (whatever the demo generator currently makes), the others in file order.
    entries = [e for e in json.loads((DEMO / "manifest.json").read_text())["files"] if e.get("split") == "test"]
    by_snr = sorted(entries, key=lambda e: -float(e["snr_db"]))
    rest = [e for e in entries if e not in by_snr[:2]]
    sources = {"0002": by_snr[0], "0003": by_snr[1], "0001": rest[0], "0004": rest[1], "0005": rest[2],
               "0006": rest[3], "short": rest[4]}
    for side in ("test", "y_test"):
        (data / side).mkdir(parents=True)
        for name, entry in sources.items():
            wave, rate = sf.read(DEMO / side / entry["file"])
            sf.write(data / side / f"{name}.wav", wave[:3200] if name == "short" else wave, rate)
    # Noise type and SNR per file, as the demo's manifest gives them.
    manifest = [{**entry, "file": f"{name}.wav"} for name, entry in sources.items()]
    (data / "manifest.json").write_text(json.dumps({"files": manifest}))
    enhanced.mkdir()
    rng = np.random.default_rng(0)
    for name in ("0001", "0002", "0003", "0004", "0005", "0006", "short"):
        noisy, _ = sf.read(data / "test" / f"{name}.wav", dtype="float32")
        clean, _ = sf.read(data / "y_test" / f"{name}.wav", dtype="float32")
        wave = {"0001": clean, "0002": np.concatenate([np.zeros(3, np.float32), clean[:-3]]),
                "0003": noisy + 0.05 * rng.standard_normal(noisy.size).astype(np.float32),
                "0004": 0.5 * (noisy + clean)}.get(name, noisy)
        sf.write(enhanced / f"{name}.wav", wave, 16000, subtype="FLOAT")
    out = tmp / "out"
    summary = evaluate(EvalRequest(data, out, enhanced=enhanced, report=True, jobs=2))
    return out, summary, tmp, {e["noise"] for e in sources.values()}


def chromium(page: Path, fragment: str, tmp: Path, *, screenshot: Path | None = None, budget: int = 8000) -> str:
    url = page.as_uri() + (f"#{fragment}" if fragment else "")
    args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,900", f"--virtual-time-budget={budget}"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    return subprocess.run([*args, url], capture_output=True, text=True, timeout=180).stdout


def status_of(dom: str) -> dict:
    found = re.search(r'<p id="audio-status"([^>]*)>', dom)
    assert found, dom[:2000]
    return {k: v.replace("&quot;", '"') for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', found.group(1))}


def loaded_dom(page: Path, fragment: str, tmp: Path) -> tuple[str, dict]:
    """The DOM once every player has loaded or failed; a slow machine gets a longer look."""
    for budget in (8000, 40000):
        dom = chromium(page, fragment, tmp, budget=budget)
        status = status_of(dom)
        if status.get("done") == "1":
            break
    return dom, status


def order(dom: str) -> list[tuple[str, bool]]:
    """(name, hidden) of every utterance, in page order."""
    tags = [t for t in re.findall(r"<tbody([^>]*)>", dom) if "data-name=" in t]
    return [(re.search(r'data-name="([^"]+)"', t).group(1), re.search(r"\shidden\b", t) is not None) for t in tags]


def test_report_loads_every_player_fits_1400_px_and_sorts(report):
    out, summary, tmp, _ = report
    page = out / "report.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # nothing from the network
    count = summary["count"]
    assert count == 7

    dom, status = loaded_dom(page, "view=utterances&sort=pesq_wb_delta", tmp)
    assert status["total"] == status["ready"] == str(3 * count) and status["failed"] == "0", status
    assert status["images"] == status["images-total"] == str(4 * count)  # 3 spectrograms + a colour scale
    durations = [float(d) for d in re.findall(r'<audio[^>]*data-duration="([\d.]+)"', dom)]
    assert len(durations) == 3 * count and min(durations) > 0.1

    # No horizontal scrolling at 1,400 px, and the first utterance's three figures (each
    # a spectrogram over its player) side by side, left to right, inside the 1,400 x 900 view.
    assert int(status["scroll-width"]) <= int(status["viewport-width"]) == 1400, status
    figures = json.loads(status["figures"])
    assert len(figures) == 3
    assert len({f[1] for f in figures}) == 1  # one top
    assert figures[0][2] <= figures[1][0] and figures[1][2] <= figures[2][0] and figures[2][2] <= 1400
    assert max(f[3] for f in figures) <= 900

    # Worst first by the PESQ improvement: the order changed, and follows the improvements.
    shown = [name for name, _ in order(dom)]
    listed = ["0001", "0002", "0003", "0004", "0005", "0006", "short"]
    assert sorted(shown) == listed and shown != listed
    deltas = {r["name"]: r["pesq_wb_delta"] for r in _rows(out)}
    defined = [deltas[n] for n in shown if deltas[n] is not None]
    assert defined == sorted(defined) and shown[0] == "0003"  # the noisier one is the worst
    assert shown[-1] == "short"  # no PESQ for 0.2 s: listed last

    # Regressions only: all but the two made worse (more noise; the lag costs SI-SDR) are hidden.
    dom = chromium(page, "sort=pesq_wb_delta&only=worse", tmp, budget=2000)
    assert [n for n, hidden in order(dom) if not hidden] == ["0003", "0002"]
    dom = chromium(page, "sort=-si_sdr_enhanced", tmp, budget=2000)
    assert [n for n, _ in order(dom)][0] == "0001"  # the output equal to the reference


def test_report_screenshots_at_1400_by_900(report):
    out, _, tmp, _ = report
    for name, fragment in (("overview", ""), ("utterance", "view=utterances&sort=pesq_wb_delta")):
        shot = tmp / f"{name}.png"
        chromium(out / "report.html", fragment, tmp, screenshot=shot, budget=4000)
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1400, 900)
        assert len(data) > 50_000, name  # a page with spectrograms, not a blank one
        shutil.copy(shot, SHOTS / f"kjob-report-{name}.png")


def _rows(out: Path) -> list[dict]:
    import csv

    rows = list(csv.DictReader(open(out / "per_utterance.csv")))
    for r in rows:
        r["pesq_wb_delta"] = float(r["pesq_wb_delta"]) if r["pesq_wb_delta"] else None
    return rows


def test_report_content_summary_charts_breakdown_lags_and_ceiling(report):
    out, summary, _, noises = report
    html = (out / "report.html").read_text()
    assert 'href="per_utterance.csv"' in html and 'href="summary.json"' in html
    # A histogram, a scatter and the improvement against the input SNR per metric.
    assert html.count("<svg class=chart") == 3 * len(summary["metrics"])
    assert "kHz</span>" in html and "time (s)" in html and 'alt="colour scale"' in html
    # Noise type and SNR from the manifest, as a breakdown.
    assert summary["breakdown"]["source"] == "manifest.json"
    assert set(summary["breakdown"]["by_noise"]) == noises and "By noise type, SNR and voice" in html
    # Counts improved / unchanged / worse.
    assert summary["changes"]["any"] == {"improved": 2, "unchanged": 3, "worse": 2, "undefined": 0}
    assert summary["changes"]["pesq_wb"]["undefined"] == 1  # the 0.2 s clip
    # The 3-sample lag is measured and warned about; the copy of the reference is at the ceiling.
    rows = {r["name"]: r for r in _rows(out)}
    assert rows["0002"]["lag_enhanced"] == "3" and rows["0001"]["lag_enhanced"] == "0"
    assert any("lag their clean reference" in w and "by 3 samples" in w for w in summary["warnings"])
    ceiling = summary["si_sdr_ceiling"]
    assert ceiling["enhanced"]["count"] == 1 and ceiling["enhanced"]["names"] == ["0001"]
    assert ceiling["enhanced"]["mean_without"] < summary["means"]["enhanced"]["si_sdr"] - 10
    assert rows["0001"]["si_sdr_ceiling"] == "enhanced" and "numerical ceiling" in html
