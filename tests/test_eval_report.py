"""The HTML report opened in a real headless Chromium: every audio player loads its file,
every spectrogram shows, and the table has a row for every utterance."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from speechscore.runner import EvalRequest, evaluate

CHROMIUM = Path("/usr/bin/chromium")
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")
def test_report_plays_every_file_and_lists_every_utterance(tmp_path):
    data = tmp_path / "data"
    for i in range(1, 7):
        for side in ("test", "y_test"):
            (data / side).mkdir(parents=True, exist_ok=True)
            shutil.copy(DEMO / side / f"{i:04d}.wav", data / side / f"{i:04d}.wav")
    # A 0.2 s utterance: its metrics are empty, its row and players are not.
    for side in ("test", "y_test"):
        wave, rate = sf.read(DEMO / side / "0007.wav")
        sf.write(data / side / "short.wav", wave[:3200], rate)
    out = tmp_path / "report"
    summary = evaluate(EvalRequest(data, out, enhanced=data / "test", report=True))
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing from the network

    status = None
    # The page marks itself done once every player has loaded or failed; a slow machine
    # gets a second, longer look.
    for budget in (15000, 60000):
        done = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", f"--virtual-time-budget={budget}", "--dump-dom",
             (out / "report.html").as_uri()],
            capture_output=True, text=True, timeout=180)
        dom = done.stdout
        status = re.search(r'<p id="audio-status"([^>]*)>([^<]*)<', dom)
        if status and 'data-done="1"' in status.group(1):
            break
    assert status, (dom[:2000], done.stderr[-2000:])
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', status.group(1)))
    count = summary["count"]
    assert count == 7
    assert attrs["total"] == str(3 * count) and attrs["failed"] == "0", status.group(0)
    assert attrs["ready"] == str(3 * count), status.group(0)
    assert attrs["images"] == attrs["images-total"] == str(3 * count)
    durations = [float(d) for d in re.findall(r'<audio[^>]*data-duration="([\d.]+)"', dom)]
    assert len(durations) == 3 * count and min(durations) > 0.1
    names = re.findall(r'<tr class="utterance" data-name="([^"]+)"', dom)
    assert names == ["0001", "0002", "0003", "0004", "0005", "0006", "short"]
